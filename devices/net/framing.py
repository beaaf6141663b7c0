"""Length-header framings of ISO 8583 over TCP, and the optional TPDU: a pure codec.

Hosts in the field put a length header before each message; posemu speaks five, each
with or without counting the header itself (suffix ``+self``):

=========  ===========================================  ============
name       header                                       largest body
=========  ===========================================  ============
``len2``   2 bytes, binary big-endian (the default)     65535
``len2le`` 2 bytes, binary little-endian                65535
``bcd2``   2 bytes, packed BCD (``0x01 0x23`` = 123)    9999
``ascii4`` 4 ASCII decimal digits (``"0123"``)          9999
``hex4``   4 ASCII hex digits (``"007B"``)              65535
=========  ===========================================  ============

With a TPDU, the 5 bytes after the header are ``ID (0x60), destination (2), source
(2)``; the header counts them, and the answer carries them with destination and source
swapped (:func:`swap_tpdu`). Inside posemu a frame is always the simulation's own: a
2-byte big-endian length and the message (:func:`to_internal`).

:class:`FrameReader` cuts a byte stream into frames however it arrives (a frame split
across reads, several in one read) and refuses, with a :class:`~devices.errors.FramingError`
naming the bytes, a header that is not one or a length out of bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

from devices.errors import FramingError

__all__ = [
    "FRAMINGS", "MAX_BODY", "TPDU_LEN", "Frame", "FrameReader", "Framing", "swap_tpdu",
    "to_internal",
]

FRAMINGS: dict[str, tuple[int, int]] = {
    "len2": (2, 0xFFFF), "len2le": (2, 0xFFFF), "bcd2": (2, 9999), "ascii4": (4, 9999),
    "hex4": (4, 0xFFFF),
}
"""Each framing's header size and the largest number its header can hold."""
TPDU_LEN = 5
MAX_BODY = 8192
"""The largest frame (TPDU and message, header excluded) a reader accepts by default: an
ISO 8583 message of posemu's dialect is a few hundred bytes."""
_MIN_MESSAGE = 4
"""A message holds at least its MTI."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame received: the TPDU (None without one) and the ISO 8583 message."""

    message: bytes
    tpdu: bytes | None = None


@dataclass(frozen=True)
class Framing:
    """A length header (:data:`FRAMINGS`), whether it counts itself, and a TPDU or not."""

    kind: str = "len2"
    counts_self: bool = False
    tpdu: bool = False

    def __post_init__(self) -> None:
        if self.kind not in FRAMINGS:
            raise ValueError(f"unknown framing {self.kind!r}; one of: {', '.join(FRAMINGS)}")

    @classmethod
    def parse(cls, name: str, *, tpdu: bool = False) -> Framing:
        """``len2``, ``ascii4+self``, ...; ValueError naming the choices otherwise."""
        kind, plus, suffix = name.partition("+")
        if plus and suffix != "self":
            raise ValueError(f"unknown framing {name!r}: the only suffix is '+self'")
        return cls(kind, bool(plus), tpdu)

    @property
    def name(self) -> str:
        """The framing as written on the command line (``ascii4+self``)."""
        return self.kind + ("+self" if self.counts_self else "")

    @property
    def header_len(self) -> int:
        return FRAMINGS[self.kind][0]

    @property
    def max_length(self) -> int:
        """The largest body (TPDU and message) the header can announce."""
        return FRAMINGS[self.kind][1] - (self.header_len if self.counts_self else 0)

    def header(self, body_len: int) -> bytes:
        """The length header for a body of ``body_len`` bytes."""
        if not 0 <= body_len <= self.max_length:
            raise ValueError(f"{self.name} cannot frame {body_len} bytes "
                             f"(at most {self.max_length})")
        n = body_len + (self.header_len if self.counts_self else 0)
        kind = self.kind
        if kind == "len2":
            return n.to_bytes(2, "big")
        if kind == "len2le":
            return n.to_bytes(2, "little")
        if kind == "bcd2":
            return bytes.fromhex(f"{n:04d}")
        if kind == "ascii4":
            return f"{n:04d}".encode("ascii")
        return f"{n:04X}".encode("ascii")

    def length(self, header: bytes) -> int:
        """The body length ``header`` announces; FramingError if it is not a header."""
        kind = self.kind
        if kind == "len2":
            n = int.from_bytes(header, "big")
        elif kind == "len2le":
            n = int.from_bytes(header, "little")
        else:
            text = header.hex() if kind == "bcd2" else header.decode("latin-1")
            digits = "0123456789abcdefABCDEF" if kind == "hex4" else "0123456789"
            if not all(ch in digits for ch in text):
                raise FramingError(
                    f"{self.name}: length header {_show(header)} is not "
                    f"{'hex' if kind == 'hex4' else 'decimal'} digits")
            n = int(text, 16 if kind == "hex4" else 10)
        if self.counts_self:
            if n < self.header_len:
                raise FramingError(f"{self.name}: length header {_show(header)} counts {n} "
                                   f"bytes, less than the header itself")
            n -= self.header_len
        return n

    def encode(self, message: bytes, tpdu: bytes | None = None) -> bytes:
        """Header, TPDU (when the framing has one) and ``message``."""
        if self.tpdu:
            if tpdu is None or len(tpdu) != TPDU_LEN:
                raise ValueError(f"a TPDU of {TPDU_LEN} bytes is required")
            body = tpdu + message
        else:
            body = message
        return self.header(len(body)) + body


def swap_tpdu(tpdu: bytes) -> bytes:
    """The answer's TPDU: the same ID, destination and source exchanged."""
    if len(tpdu) != TPDU_LEN:
        raise ValueError(f"a TPDU has {TPDU_LEN} bytes, not {len(tpdu)}")
    return tpdu[:1] + tpdu[3:5] + tpdu[1:3]


def to_internal(message: bytes) -> bytes:
    """The simulation's frame of ``message``: its 2-byte big-endian length, then it."""
    return len(message).to_bytes(2, "big") + message


class FrameReader:
    """Cuts a byte stream into :class:`Frame` values as bytes arrive.

    ``feed`` returns the frames completed by these bytes, and raises FramingError at
    the first header that is not one or announces a body shorter than a message or
    longer than ``max_body``: the stream cannot be resynchronised after that.
    """

    def __init__(self, framing: Framing, max_body: int = MAX_BODY) -> None:
        self.framing = framing
        self.max_body = min(max_body, framing.max_length)
        self._buffer = bytearray()
        self._min = _MIN_MESSAGE + (TPDU_LEN if framing.tpdu else 0)

    @property
    def pending(self) -> int:
        """Bytes of a frame begun and not finished."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        buffer = self._buffer
        buffer += data
        frames: list[Frame] = []
        size = self.framing.header_len
        while len(buffer) >= size:
            header = bytes(buffer[:size])
            n = self.framing.length(header)
            if not self._min <= n <= self.max_body:
                raise FramingError(
                    f"{self.framing.name}: length header {_show(header)} announces {n} bytes; "
                    f"a frame here has {self._min} to {self.max_body}")
            if len(buffer) < size + n:
                break
            body = bytes(buffer[size:size + n])
            del buffer[:size + n]
            if self.framing.tpdu:
                frames.append(Frame(body[TPDU_LEN:], body[:TPDU_LEN]))
            else:
                frames.append(Frame(body))
        return frames


def _show(data: bytes) -> str:
    """Bytes for an error message: hex, and the text when it is printable."""
    text = data.decode("latin-1")
    shown = f" {text!r}" if text.isprintable() else ""
    return f"{data.hex(' ').upper()}{shown}"

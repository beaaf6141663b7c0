"""The receipt printer's pure ESC/POS core: bytes in, status replies and job outcomes out.

No simpy, no I/O, no clock: the simulation shell and the pty shell drive the same core.

Three layers:

* ``_Tokenizer`` splits a byte stream (fed in pieces cut anywhere) into text runs, single
  control bytes and commands, driven by ``_LAYOUTS`` (prefix -> argument layout). Binary
  payloads (images, QR data, barcodes, tab stops) are skipped by length, so a ``DLE EOT``
  inside them is never taken for a status query. An unknown ``ESC``/``GS``/``FS``/``DLE``
  command is read as its two bytes with no argument and has no effect.
* ``_Interpreter`` keeps the print modes (code page, character height, line spacing) and
  the line being composed, and turns tokens into printer events.
* ``PrinterCore`` adds paper, sensors and jobs; ``decode_text`` and ``segments`` are pure
  helpers over the same layers.

Units: 8 dots per mm; the default line spacing is 30 dots (3.75 mm).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple, TypeAlias

from emulator.errors import PrinterDecodeError

__all__ = ["CONDITIONS", "CUT_MARK", "DOTS_PER_MM", "JobDone", "JobFailed", "LinePrinted",
           "Output", "PrinterCore", "StatusBack", "StatusReply", "decode_text", "segments"]

DOTS_PER_MM = 8
DEFAULT_SPACING = 30
CUT_MARK = "--- cut ---"
CONDITIONS = ("paper_out", "paper_low", "jam", "cover_open", "off")

LF, HT, FF = 0x0A, 0x09, 0x0C
ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10
_PREFIXES = frozenset((ESC, GS, FS, DLE))
_TEXT_RUN = re.compile(rb"[\x20-\xff]+")
_UNTIL_NUL = -1

# ESC t n -> Python codec (Epson numbering); any other n decodes as CP437.
_CODE_PAGES: dict[int, str] = {
    0: "cp437", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865", 13: "cp857", 14: "cp737",
    15: "iso8859_7", 16: "cp1252", 17: "cp866", 18: "cp852", 19: "cp858", 32: "cp720",
    33: "cp775", 34: "cp855", 35: "cp861", 36: "cp862", 37: "cp864", 38: "cp869",
    39: "iso8859_2", 40: "iso8859_15", 45: "cp1250", 46: "cp1251", 47: "cp1253",
    48: "cp1254", 49: "cp1255", 50: "cp1256", 51: "cp1257", 52: "cp1258",
}


def _u16(args: bytes, i: int) -> int:
    return args[i] | args[i + 1] << 8


@dataclass(frozen=True, slots=True)
class _Layout:
    """What follows a two-byte command prefix.

    ``nargs`` fixed argument bytes; then ``more(args)`` further argument bytes; then a
    payload of ``payload(args)`` bytes (``_UNTIL_NUL``: up to and including a NUL).
    """

    nargs: int = 0
    more: Callable[[bytes], int] | None = None
    payload: Callable[[bytes], int] | None = None


def _ext_if_65(args: bytes) -> int:
    return 1 if args[0] >= 65 else 0


def _table() -> dict[bytes, _Layout]:
    t: dict[bytes, _Layout] = {}
    for prefix, counts in (
        (b"\x1b", {0: b"@2im<", 1: b"!EGMadeJtR{V3 =r?%-UT", 2: b"$\\c", 3: b"p", 8: b"W"}),
        (b"\x1d", {1: b"!BbHfhwarIT/", 2: b"LWP$\\*"}),
        (b"\x1c", {0: b"&.", 1: b"!C", 2: b"p"}),
        (b"\x10", {1: b"\x04\x05", 3: b"\x14"}),
    ):
        for nargs, letters in counts.items():
            for letter in letters:
                t[prefix + bytes([letter])] = _Layout(nargs)
    t[b"\x1bD"] = _Layout(0, payload=lambda a: _UNTIL_NUL)            # tab stops .. NUL
    t[b"\x1b*"] = _Layout(3, payload=lambda a: _u16(a, 1) * (3 if a[0] >= 32 else 1))
    t[b"\x1b("] = _Layout(3, payload=lambda a: _u16(a, 1))             # ESC ( fn pL pH
    t[b"\x1dV"] = _Layout(1, more=_ext_if_65)                          # GS V m [n]
    t[b"\x1dv"] = _Layout(6, payload=lambda a: _u16(a, 2) * _u16(a, 4))  # GS v 0 m x y
    t[b"\x1d*"] = _Layout(2, payload=lambda a: a[0] * a[1] * 8)        # GS * x y
    t[b"\x1d8"] = _Layout(5, payload=lambda a: int.from_bytes(a[1:5], "little"))  # GS 8 L
    # GS ( fn pL pH: the first two payload bytes (cn fn of GS ( k / GS ( L) are read as args.
    t[b"\x1d("] = _Layout(
        3, more=lambda a: min(2, _u16(a, 1)), payload=lambda a: _u16(a, 1) - (len(a) - 3))
    t[b"\x1dk"] = _Layout(                                             # GS k m: NUL or n data
        1, more=_ext_if_65, payload=lambda a: a[1] if a[0] >= 65 else _UNTIL_NUL)
    return t


_LAYOUTS = _table()
_UNKNOWN = _Layout()


class _Cmd(NamedTuple):
    key: bytes   # the two prefix bytes, e.g. b"\x1bd"
    args: bytes  # the argument bytes (payloads are skipped, not kept)


_Token: TypeAlias = bytes | int | _Cmd  # text run | control byte | command


class _Tokenizer:
    """Incremental ESC/POS tokenizer: keeps partial command state between ``feed`` calls."""

    def __init__(self) -> None:
        self._head = bytearray()       # prefix + args of the command being read
        self._layout = _UNKNOWN
        self._want = 0                 # header length wanted
        self._extended = False         # ``more`` already applied
        self._pending: _Cmd | None = None  # command whose payload is being skipped
        self._skip = 0
        self._to_nul = False
        self._offset = 0               # absolute offset of the current feed's first byte
        self.start = 0                 # absolute offset where the unfinished command began

    @property
    def idle(self) -> bool:
        """True between tokens (no command half read)."""
        return self._pending is None and not self._head

    def feed(self, data: bytes) -> Iterator[tuple[_Token, int]]:
        """Yield each completed token with its end offset in ``data``."""
        i, n = 0, len(data)
        while i < n:
            if self._pending is not None:
                if self._to_nul:
                    j = data.find(0, i)
                    if j < 0:
                        break
                    i = j + 1
                else:
                    take = min(self._skip, n - i)
                    self._skip -= take
                    i += take
                    if self._skip:
                        break
                cmd, self._pending, self._to_nul = self._pending, None, False
                yield cmd, i
            elif self._head:
                self._head.append(data[i])
                i += 1
                done = self._step()
                if done is not None and self._pending is None:
                    yield done, i
            elif data[i] >= 0x20:
                match = _TEXT_RUN.match(data, i)
                end = match.end() if match else i + 1
                yield data[i:end], end
                i = end
            elif data[i] in _PREFIXES:
                key = data[i:i + 2]
                layout = _LAYOUTS.get(key, _UNKNOWN)
                end = i + 2 + layout.nargs
                if end <= n and layout.more is None and layout.payload is None:
                    yield _Cmd(key, data[i + 2:end]), end  # whole simple command at hand
                    i = end
                    continue
                self.start = self._offset + i
                self._head.append(data[i])
                i += 1
            else:
                i += 1
                yield data[i - 1], i
        self._offset += n

    def _step(self) -> _Cmd | None:
        head = self._head
        if len(head) == 2:
            self._layout = _LAYOUTS.get(bytes(head), _UNKNOWN)
            self._want, self._extended = 2 + self._layout.nargs, False
        if len(head) < self._want:
            return None
        layout = self._layout
        if not self._extended and layout.more is not None:
            self._extended = True
            extra = layout.more(bytes(head[2:]))
            if extra:
                self._want += extra
                return None
        cmd = _Cmd(bytes(head[:2]), bytes(head[2:]))
        head.clear()
        if layout.payload is not None:
            size = layout.payload(cmd.args)
            if size == _UNTIL_NUL:
                self._pending, self._to_nul = cmd, True
            elif size > 0:
                self._pending, self._skip = cmd, size
        return cmd


# Tokens after which the paper has moved: where ``segments`` cuts the stream.
_PAPER_KEYS = frozenset((b"\x1bd", b"\x1bJ", b"\x1dV", b"\x1dv", b"\x1dk"))



class _Event(NamedTuple):
    """kind: data | line | feed | cut | query | reset | asb. ``n``: dots, or the argument."""

    kind: str
    text: str = ""
    n: int = 0


_DATA = _Event("data")
_RESET = _Event("reset")


class _Interpreter:
    """Print modes plus the line being composed; turns bytes into ``_Event``s."""

    def __init__(self) -> None:
        self.tokens = _Tokenizer()
        self.reset()

    def reset(self) -> None:
        """ESC @ / power on: modes back to their defaults, the print buffer cleared."""
        self.codec = "cp437"
        self.spacing = DEFAULT_SPACING
        self.height = 1
        self.barcode_dots = 162
        self.drop_line()

    def drop_line(self) -> None:
        """Discard the line being composed."""
        self._parts: list[str] = []
        self._line_height = 1

    @property
    def pending(self) -> str:
        """Text received but not printed yet (no LF so far)."""
        return "".join(self._parts)

    def _line(self, dots: int | None = None) -> _Event:
        event = _Event("line", "".join(self._parts),
                       self.spacing * self._line_height if dots is None else dots)
        self.drop_line()
        return event

    def run(self, data: bytes) -> Iterator[_Event]:
        """Yield the events of ``data`` in order (lazily: callers may act between them)."""
        for token, _ in self.tokens.feed(data):
            if isinstance(token, bytes):
                self._parts.append(token.decode(self.codec, "replace"))
                self._line_height = max(self._line_height, self.height)
                yield _DATA
            elif isinstance(token, int):
                if token in (LF, FF):
                    yield self._line()
                elif token == HT:
                    self._parts.append("\t")
                    yield _DATA
            else:
                yield from self._command(token.key, token.args)

    def _command(self, key: bytes, args: bytes) -> Iterator[_Event]:
        match key:
            case b"\x1b@":
                self.reset()
                yield _RESET
            case b"\x1bt":
                self.codec = _CODE_PAGES.get(args[0], "cp437")
            case b"\x1b!":
                self.height = 2 if args[0] & 0x10 else 1
            case b"\x1d!":
                self.height = (args[0] & 0x07) + 1
            case b"\x1b3":
                self.spacing = args[0]
            case b"\x1b2":
                self.spacing = DEFAULT_SPACING
            case b"\x1dh":
                self.barcode_dots = args[0]
            case b"\x1bd":
                if args[0] == 0 and self._parts:
                    yield self._line(0)
                for _ in range(args[0]):
                    yield self._line()
            case b"\x1bJ":
                yield self._line(args[0]) if self._parts else _Event("feed", n=args[0])
            case b"\x1dV":
                if self._parts:
                    yield self._line()
                yield _Event("cut", n=args[1] if len(args) > 1 else 0)
            case b"\x1dv":
                yield _Event("feed", n=_u16(args, 4) * (2 if args[1] & 2 else 1))
            case b"\x1dk":
                yield _Event("feed", n=self.barcode_dots)
            case b"\x1b*":
                yield _DATA
            case b"\x1d(" if args[:1] + args[3:5] in (b"k1Q", b"L02", b"L0\x02"):  # print
                yield _Event("feed")
            case b"\x10\x04":
                yield _Event("query", n=args[0])
            case b"\x1da":
                yield _Event("asb", n=args[0])
            case _:
                pass  # other modes, DLE ENQ/DC4, unknown commands: no effect on the model


@dataclass(frozen=True, slots=True)
class StatusReply:
    """The one-byte answer to DLE EOT n."""
    byte: int


@dataclass(frozen=True, slots=True)
class StatusBack:
    """Automatic Status Back: 4 bytes sent unasked when the status changes (GS a)."""
    data: bytes


@dataclass(frozen=True, slots=True)
class LinePrinted:
    """A line came out of the printer; ``dots`` of paper were fed for it."""
    text: str
    dots: int


@dataclass(frozen=True, slots=True)
class JobDone:
    """A job was printed and cut while online."""
    text: str
    lines: int


@dataclass(frozen=True, slots=True)
class JobFailed:
    """A job stopped before its cut; ``text`` is what was printed."""
    text: str
    reason: str  # paper_out | jam | cover_open | off | reset


Output: TypeAlias = StatusReply | StatusBack | LinePrinted | JobDone | JobFailed


class PrinterCore:
    """A receipt printer as a state machine: paper, sensors, jobs and status replies.

    A job runs from the first print data after a cut / ESC @ through the next cut (GS V).
    While offline (paper out, jam, cover open) print data is discarded: the job in progress
    fails once (``JobFailed``) and the rest of it is dropped until the next cut or ESC @.
    DLE EOT is answered at once, even offline. While "off" nothing is read or answered;
    switching off is a power cycle (modes, partial commands and ASB are reset).
    A jam recovers as soon as it is cleared; DLE ENQ 1/2 is accepted and changes nothing.
    """

    def __init__(self, paper_m: float = 20.0, near_end_m: float = 0.5) -> None:
        self._roll_dots = round(paper_m * 1000 * DOTS_PER_MM)
        self._near_end_dots = round(near_end_m * 1000 * DOTS_PER_MM)
        self._paper_dots = self._roll_dots
        self._low = self._jam = self._cover_open = self._off = False
        self._job: list[str] | None = None  # lines printed by the job in progress
        self._discarding = False            # dropping the rest of a failed job
        self._asb = False
        self._last_asb = b""
        self._interp = _Interpreter()

    # -- state ------------------------------------------------------------------------

    @property
    def paper_m(self) -> float:
        """Paper left on the roll, in metres."""
        return self._paper_dots / (1000 * DOTS_PER_MM)

    @property
    def paper_out(self) -> bool:
        """The paper end sensor sees no paper."""
        return self._paper_dots <= 0

    @property
    def near_end(self) -> bool:
        """The near-end sensor fires (forced by ``paper_low``, or little paper left)."""
        return self._low or self._paper_dots <= self._near_end_dots

    @property
    def online(self) -> bool:
        """Powered and able to print."""
        return not (self._off or self._jam or self._cover_open or self.paper_out)

    @property
    def state(self) -> str:
        """off, jam, cover_open, paper_out, paper_near_end or online (first that holds)."""
        for name, active in (("off", self._off), ("jam", self._jam),
                             ("cover_open", self._cover_open), ("paper_out", self.paper_out),
                             ("paper_near_end", self.near_end)):
            if active:
                return name
        return "online"

    @property
    def asb_enabled(self) -> bool:
        """Automatic Status Back was enabled with GS a n (n != 0)."""
        return self._asb

    @property
    def job_active(self) -> bool:
        """A job has started and not yet been cut."""
        return self._job is not None

    def status(self, n: int) -> int | None:
        """The DLE EOT n reply byte; None when off or for n outside 1..4."""
        if self._off or not 1 <= n <= 4:
            return None
        out = self.paper_out
        bits = {
            1: 0x08 if not self.online else 0,
            2: (0x04 if self._cover_open else 0) | (0x20 if out else 0)
               | (0x40 if self._jam else 0),
            3: 0x08 if self._jam else 0,
            4: (0x0C if out or self.near_end else 0) | (0x60 if out else 0),
        }[n]
        return 0x12 | bits

    def asb_bytes(self) -> bytes:
        """The 4 Automatic Status Back bytes for the current state."""
        out = self.paper_out
        return bytes((
            0x10 | (0x08 if not self.online else 0) | (0x20 if self._cover_open else 0),
            0x08 if self._jam else 0,
            (0x03 if out or self.near_end else 0) | (0x0C if out else 0),
            0,
        ))

    # -- inputs -----------------------------------------------------------------------

    def set_condition(self, name: str, active: bool) -> list[Output]:
        """Set or clear a condition (see ``CONDITIONS``); returns what that caused.

        Clearing ``paper_out`` loads a fresh roll. ``paper_low`` forces the near-end
        sensor (it also fires by itself below ``near_end_m``).
        """
        out: list[Output] = []
        if name == "off":
            if active and not self._off:
                self._fail("off", out)
                self._interp = _Interpreter()
                self._job, self._discarding, self._asb = None, False, False
            self._off = active
            return out
        if name == "paper_out":
            self._paper_dots = 0 if active else self._roll_dots
        elif name == "paper_low":
            self._low = active
        elif name == "jam":
            self._jam = active
        elif name == "cover_open":
            self._cover_open = active
        else:
            raise ValueError(f"unknown printer condition {name!r}; one of {CONDITIONS}")
        if not self.online:
            self._fail(self.state, out)
        self._report(out)
        return out

    def feed(self, data: bytes) -> list[Output]:
        """Receive bytes (any piece of a stream); returns the outputs in order."""
        out: list[Output] = []
        if self._off:
            return out
        for ev in self._interp.run(data):
            kind = ev.kind
            if kind == "query":
                byte = self.status(ev.n)
                if byte is not None:
                    out.append(StatusReply(byte))
            elif kind == "asb":
                self._asb, self._last_asb = ev.n != 0, b""
                self._report(out)
            elif kind == "reset":
                self._fail("reset", out)
                self._discarding = False
            elif kind == "cut":
                self._cut(ev.n, out)
            elif not self._accepts_print(out):
                self._interp.drop_line()
            elif kind == "line":
                self._print(ev.text, ev.n, out)
            elif kind == "feed":
                self._print(None, ev.n, out)
        return out

    # -- internals --------------------------------------------------------------------

    def _accepts_print(self, out: list[Output]) -> bool:
        if self._discarding:
            return False
        if not self.online:
            self._fail(self.state, out, starting=True)
            return False
        if self._job is None:
            self._job = []
        return True

    def _print(self, text: str | None, dots: int, out: list[Output]) -> None:
        if dots > self._paper_dots:  # the roll ends under this line: it is lost
            self._paper_dots = 0
        else:
            self._paper_dots -= dots
            if text is not None and self._job is not None:
                self._job.append(text)
                out.append(LinePrinted(text, dots))
        if self.paper_out:
            self._fail("paper_out", out)
        self._report(out)

    def _cut(self, dots: int, out: list[Output]) -> None:
        if self._discarding or not self.online:
            self._discarding = False
            return
        if dots > self._paper_dots:
            self._paper_dots = 0
            self._fail("paper_out", out)
            self._discarding = False
        else:
            self._paper_dots -= dots
            if self._job is not None:
                out.append(JobDone("\n".join(self._job), len(self._job)))
                self._job = None
        self._report(out)

    def _fail(self, reason: str, out: list[Output], *, starting: bool = False) -> None:
        """Fail the job in progress (or the one ``starting``); discard the rest of it."""
        if self._job is None and not starting:
            return
        out.append(JobFailed("\n".join(self._job or ()), reason))
        self._job = None
        self._discarding = True

    def _report(self, out: list[Output]) -> None:
        if self._asb and not self._off:
            data = self.asb_bytes()
            if data != self._last_asb:
                self._last_asb = data
                out.append(StatusBack(data))


def decode_text(data: bytes) -> str:
    """The text a complete ESC/POS stream prints: lines joined by "\\n", a cut as CUT_MARK.

    Styles are dropped, HT becomes "\\t", images and barcodes print no text, and text never
    ended by a line feed is kept as a last line. Raises only PrinterDecodeError (a command
    truncated at the end of the stream).
    """
    interp = _Interpreter()
    lines: list[str] = []
    for ev in interp.run(data):
        if ev.kind == "line":
            lines.append(ev.text)
        elif ev.kind == "cut":
            lines.append(CUT_MARK)
    if not interp.tokens.idle:
        raise PrinterDecodeError("truncated ESC/POS command", pos=interp.tokens.start)
    if interp.pending:
        lines.append(interp.pending)
    return "\n".join(lines)


def segments(data: bytes) -> list[bytes]:
    """Split a stream after each command that moves paper (LF, FF, ESC d, ESC J, GS V,
    GS v 0, GS k), never inside a command; the pieces concatenate back to ``data``."""
    pieces: list[bytes] = []
    start = 0
    for token, end in _Tokenizer().feed(data):
        if token in (LF, FF) if isinstance(token, int) else (
                isinstance(token, _Cmd) and token.key in _PAPER_KEYS):
            pieces.append(data[start:end])
            start = end
    if start < len(data):
        pieces.append(data[start:])
    return pieces

"""ESC/POS as a stream: the command table, an incremental tokenizer and an interpreter.

Pure (no escpos, no simpy, no I/O). ``_Tokenizer`` splits bytes fed in pieces cut anywhere
into text runs, control bytes and commands, driven by ``_LAYOUTS`` (prefix -> argument
layout). Binary payloads (images, QR data, barcodes, tab stops) are skipped by length, so a
``DLE EOT`` inside them is never taken for a status query; an unknown ``ESC``/``GS``/``FS``/
``DLE`` command is read as its two bytes and has no effect. ``Interpreter`` keeps the print
modes and the line being composed and turns tokens into events; ``decode_text`` and
``segments`` are pure helpers over both. The default line spacing is 30 dots (3.75 mm).

A caller that will not act between a piece's events can take it without the tokenizer: a
run of plain text lines (``plain_lines``, ``take_lines``), or a short piece read before from
the same modes, which ``run(..., remember=True)`` keeps in a bounded module-level memo
(``recall``, then ``replay`` or ``settle``). Receipts repeat most of their lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple, TypeAlias

from devices.errors import PrinterDecodeError

__all__ = ["CUT_MARK", "DEFAULT_SPACING", "Interpreter", "decode_text", "segments"]

DEFAULT_SPACING = 30
CUT_MARK = "--- cut ---"

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
_PRINTABLE_ASCII = bytes(range(0x20, 0x80))
# Code pages that read printable ASCII as ASCII (not cp864): their ASCII text decodes fast.
_ASCII_PAGES = frozenset(
    c for c in ("cp437", *_CODE_PAGES.values())
    if _PRINTABLE_ASCII.decode(c) == _PRINTABLE_ASCII.decode("ascii"))


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


def _copy_slots(source: object, target: object) -> None:
    """Copy every slot; slots instead of ``__dict__`` keep attribute access fast (CPython
    slows down every access to an instance once its ``__dict__`` has been read)."""
    for name in type(source).__slots__:  # type: ignore[attr-defined]
        setattr(target, name, getattr(source, name))


class _Tokenizer:
    """Incremental ESC/POS tokenizer: keeps partial command state between ``feed`` calls."""

    __slots__ = ("_extended", "_head", "_layout", "_offset", "_pending", "_skip", "_to_nul",
                 "_want", "start")

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

    def copy(self) -> _Tokenizer:
        twin = _Tokenizer.__new__(_Tokenizer)
        _copy_slots(self, twin)
        twin._head = bytearray(self._head)
        return twin

    def skip(self, n: int) -> None:
        """Count ``n`` bytes read elsewhere, between tokens."""
        self._offset += n

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
# The commands ``Interpreter._command`` acts on; others (ESC E, ESC a, ...) have no effect.
_MODEL_KEYS = _PAPER_KEYS | {b"\x1b@", b"\x1bt", b"\x1b!", b"\x1d!", b"\x1b3", b"\x1b2",
                             b"\x1dh", b"\x1b*", b"\x1d(", b"\x10\x04", b"\x1da"}


class _Event(NamedTuple):
    """kind: data | line | feed | cut | query | reset | asb. ``n``: dots, or the argument."""

    kind: str
    text: str = ""
    n: int = 0


_DATA = _Event("data")
_SAID_DATA = (_DATA,)
_RESET = _Event("reset")
_PRINTS_LINES = frozenset(("data", "line"))
_PAPER_EVENTS = frozenset(("line", "feed", "cut"))
_PLAIN_LINES = re.compile(rb"(?:[\x20-\xff]*\n)+")  # text and LFs: no command to read

# codec, spacing, height, barcode_dots, the line's height and parts
_Modes: TypeAlias = tuple[str, int, int, int, int, tuple[str, ...]]


class PieceMemo(NamedTuple):
    """What a piece of bytes does from given modes and line, read from between commands."""

    events: tuple[_Event, ...]
    moved: tuple[int, ...]  # paper movements read in the piece up to each event
    moves: int              # paper movements read in the whole piece
    move_end: int           # where the last one ended in the piece
    dots: int               # paper its line, feed and cut events move
    # (text, dots) per line when, but for a leading reset and a final cut, it only prints text
    lines: tuple[tuple[str, int], ...] | None
    prints: bool            # it has print data (a job starts)
    reset: bool             # its first event is a reset (ESC @)
    cut: int | None         # the dots of the cut that is its last event, if any
    after: _Modes           # modes and line afterwards


MEMO_LIMIT = 1024  # pieces remembered; the memo is emptied when full (memory stays flat)
_MEMO_BYTES, _MEMO_EVENTS = 256, 16  # longer pieces are not remembered
_MEMO: dict[tuple[object, ...], PieceMemo] = {}


def _remember(key: tuple[object, ...], memo: PieceMemo) -> PieceMemo:
    if len(_MEMO) >= MEMO_LIMIT:
        _MEMO.clear()
    _MEMO[key] = memo
    return memo


class Interpreter:
    """Print modes plus the line being composed; turns bytes into ``_Event``s."""

    __slots__ = ("_line_height", "_parts", "_touched", "barcode_dots", "codec", "height",
                 "move_end", "moves", "spacing", "tokens")

    def __init__(self) -> None:
        self.tokens = _Tokenizer()
        self.moves = 0      # paper movements (LF, FF, ESC d/J, GS V/v/k) read so far
        self.move_end = 0   # where the last one ended in the data of the last run
        self._touched = False  # drop_line or reset called during a run
        self._defaults()

    def reset(self) -> None:
        """ESC @ / power on: modes back to their defaults, the print buffer cleared."""
        self._defaults()
        self._touched = True

    def _defaults(self) -> None:
        self.codec = "cp437"
        self.spacing = DEFAULT_SPACING
        self.height = 1
        self.barcode_dots = 162
        self._parts: list[str] = []
        self._line_height = 1

    def copy(self) -> Interpreter:
        """An independent copy (modes, the line being composed, the tokenizer)."""
        twin = Interpreter.__new__(Interpreter)
        _copy_slots(self, twin)
        twin._parts = list(self._parts)
        twin.tokens = self.tokens.copy()
        return twin

    def drop_line(self) -> None:
        """Discard the line being composed."""
        self._parts = []
        self._line_height = 1
        self._touched = True

    @property
    def pending(self) -> str:
        """Text received but not printed yet (no LF so far)."""
        return "".join(self._parts)

    def _decode(self, text: bytes) -> str:
        if text.isascii() and self.codec in _ASCII_PAGES:
            return text.decode("ascii")  # the same, several times faster
        return text.decode(self.codec, "replace")

    def _line(self, dots: int | None = None) -> _Event:
        event = _Event("line", "".join(self._parts),
                       self.spacing * self._line_height if dots is None else dots)
        self._parts = []
        self._line_height = 1
        return event

    def _modes(self) -> _Modes:
        return (self.codec, self.spacing, self.height, self.barcode_dots, self._line_height,
                tuple(self._parts))

    def _key(self, data: bytes) -> tuple[object, ...]:
        return (data, self.codec, self.spacing, self.height, self.barcode_dots,
                self._line_height, *self._parts)

    def plain_lines(self, data: bytes, start: int) -> tuple[list[tuple[str, int]], int] | None:
        """The text and dots of each line ``data`` prints from ``start`` while it holds only
        plain text and LFs, read from between commands (``take_lines`` reads them so), and
        where the last one ends; None if no such line starts there."""
        match = _PLAIN_LINES.match(data, start) if self.tokens.idle else None
        if match is None:
            return None
        stop = match.end()
        # One decode for all the lines: every code page reads LF, and only LF, as "\n".
        texts = self._decode(data[start:stop - 1]).split("\n")
        spacing, tall = self.spacing, self.spacing * self.height
        lines = [(text, tall if text else spacing) for text in texts]
        first = texts[0]  # ends the line being composed
        lines[0] = ("".join(self._parts) + first,
                    spacing * (max(self._line_height, self.height) if first else self._line_height))
        return lines, stop

    def take_lines(self, count: int, start: int, stop: int) -> None:
        """Read the ``count`` plain lines ``plain_lines`` found between ``start`` and
        ``stop`` without yielding their events."""
        self.moves += count
        self.move_end = stop
        self._parts = []
        self._line_height = 1
        self.tokens.skip(stop - start)

    def recall(self, data: bytes) -> PieceMemo | None:
        """What ``data`` did when ``run`` last read and remembered it from the present modes
        and line; None if it did not, or a command is half read."""
        return _MEMO.get(self._key(data)) if self.tokens.idle else None

    def settle(self, memo: PieceMemo, data: bytes, base: int = 0) -> None:
        """Take the state ``data`` leaves (``memo`` is ``recall(data)``) without its events;
        ``base``: where ``data`` starts in the bytes ``move_end`` counts in."""
        self.moves += memo.moves
        if memo.moves:
            self.move_end = base + memo.move_end
        (self.codec, self.spacing, self.height, self.barcode_dots, self._line_height,
         parts) = memo.after
        self._parts = list(parts)
        self.tokens.skip(len(data))

    def replay(self, memo: PieceMemo, data: bytes, base: int = 0) -> Iterator[_Event]:
        """Yield the events of ``data`` from ``memo`` (``recall(data)``) as ``run`` would,
        with ``moves`` current at each. The rest of the state is taken after the last one:
        the caller must not act on the interpreter (``drop_line``, ``reset``) meanwhile."""
        moves = self.moves
        for event, moved in zip(memo.events, memo.moved, strict=True):
            self.moves = moves + moved
            yield event
        self.moves = moves
        self.settle(memo, data, base)

    def run(self, data: bytes, base: int = 0, *, remember: bool = False) -> Iterator[_Event]:
        """Yield the events of ``data`` in order (lazily: callers may act between them).

        ``base``: where ``data`` starts in the bytes ``move_end`` counts in. ``remember``:
        keep what ``data`` did for ``recall`` when it starts and ends between commands, is
        short, and the caller did not call ``drop_line`` or ``reset`` meanwhile.
        """
        if not (remember and self.tokens.idle and len(data) <= _MEMO_BYTES):
            yield from self._run(data, base)
            return
        key, moves, self._touched = self._key(data), self.moves, False
        events: list[_Event] = []
        moved: list[int] = []
        for event in self._run(data, base):
            events.append(event)
            moved.append(self.moves - moves)
            yield event
        if self._touched or not self.tokens.idle or len(events) > _MEMO_EVENTS:
            return
        dots, lines = 0, []
        for e in events:
            if e.kind in _PAPER_EVENTS:
                dots += e.n
            if e.kind == "line":
                lines.append((e.text, e.n))
        reset = bool(events) and events[0].kind == "reset"
        cut = events[-1].n if events and events[-1].kind == "cut" else None
        body = events[reset:len(events) - (cut is not None)]
        only_text = all(e.kind in _PRINTS_LINES for e in body)
        _remember(key, PieceMemo._make((
            tuple(events), tuple(moved), self.moves - moves,
            self.move_end - base if self.moves > moves else 0, dots,
            tuple(lines) if only_text else None, bool(body), reset, cut, self._modes())))

    def _run(self, data: bytes, base: int) -> Iterator[_Event]:
        for token, end in self.tokens.feed(data):
            if isinstance(token, bytes):
                self._parts.append(self._decode(token))
                self._line_height = max(self._line_height, self.height)
                yield _DATA
            elif isinstance(token, int):
                if token in (LF, FF):
                    self.moves += 1
                    self.move_end = base + end
                    yield self._line()
                elif token == HT:
                    self._parts.append("\t")
                    yield _DATA
            else:
                if token.key in _PAPER_KEYS:
                    self.moves += 1
                    self.move_end = base + end
                if token.key in _MODEL_KEYS:
                    yield from self._command(token.key, token.args)

    def _command(self, key: bytes, args: bytes) -> tuple[_Event, ...]:
        match key:
            case b"\x1b@":
                self._defaults()
                return (_RESET,)
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
                    return (self._line(0),)
                return tuple(self._line() for _ in range(args[0]))
            case b"\x1bJ":
                return (self._line(args[0]) if self._parts else _Event("feed", n=args[0]),)
            case b"\x1dV":
                cut = _Event("cut", n=args[1] if len(args) > 1 else 0)
                return (self._line(), cut) if self._parts else (cut,)
            case b"\x1dv":
                return (_Event("feed", n=_u16(args, 4) * (2 if args[1] & 2 else 1)),)
            case b"\x1dk":
                return (_Event("feed", n=self.barcode_dots),)
            case b"\x1b*":
                return _SAID_DATA
            case b"\x1d(" if args[:1] + args[3:5] in (b"k1Q", b"L02", b"L0\x02"):  # print
                return (_Event("feed"),)
            case b"\x10\x04":
                return (_Event("query", n=args[0]),)
            case b"\x1da":
                return (_Event("asb", n=args[0]),)
        return ()  # other modes, DLE ENQ/DC4, unknown commands: no effect on the model


def decode_text(data: bytes) -> str:
    """The text a complete ESC/POS stream prints: lines joined by "\\n", a cut as CUT_MARK.

    Styles are dropped, HT becomes "\\t", images and barcodes print no text, and text never
    ended by a line feed is kept as a last line. Raises only PrinterDecodeError (a command
    truncated at the end of the stream).
    """
    interp = Interpreter()
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

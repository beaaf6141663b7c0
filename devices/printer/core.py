"""The receipt printer's pure ESC/POS core: bytes in, status replies and job outcomes out.

No simpy, no I/O, no clock: the simulation shell and the pty shell drive the same core.
``PrinterCore`` adds paper, sensors and jobs to the stream interpreter of
``devices.printer.stream`` (whose ``decode_text``, ``segments`` and ``CUT_MARK`` are
re-exported here). Units: 8 dots per mm.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeAlias

from devices.printer.stream import (
    _PREFIXES,
    CUT_MARK,
    Interpreter,
    PieceMemo,
    _copy_slots,
    _Event,
    decode_text,
    segments,
)

__all__ = ["CONDITIONS", "CUT_MARK", "DOTS_PER_MM", "JobDone", "JobFailed", "LinePrinted",
           "Output", "PrinterCore", "StatusBack", "StatusReply", "decode_text", "segments"]

DOTS_PER_MM = 8
CONDITIONS = ("paper_out", "paper_low", "jam", "cover_open", "off")
_PRINTING = frozenset(("data", "line", "feed"))


@dataclass(frozen=True, slots=True)
class StatusReply:
    """The one-byte answer to DLE EOT n."""
    byte: int


@dataclass(frozen=True, slots=True)
class StatusBack:
    """Automatic Status Back: 4 bytes sent unasked when the status changes (GS a)."""
    data: bytes


class LinePrinted(NamedTuple):
    """A line came out of the printer; ``dots`` of paper were fed for it. (A named tuple,
    not a frozen dataclass like the other outputs: a receipt makes one per line, and a
    tuple is made in half the time.)"""
    text: str
    dots: int


@dataclass(frozen=True, slots=True)
class JobDone:
    """A job was printed and cut while online; ``moves``: the paper movements read since
    power on, this cut included (the simulated printer times the job by them)."""
    text: str
    lines: int
    moves: int = 0


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

    __slots__ = ("_asb", "_cover_open", "_discarding", "_interp", "_jam", "_job", "_last_asb",
                 "_low", "_near_end_dots", "_off", "_paper_dots", "_roll_dots")

    def __init__(self, paper_m: float = 20.0, near_end_m: float = 0.5) -> None:
        self._roll_dots = round(paper_m * 1000 * DOTS_PER_MM)
        self._near_end_dots = round(near_end_m * 1000 * DOTS_PER_MM)
        self._paper_dots = self._roll_dots
        self._low = self._jam = self._cover_open = self._off = False
        self._job: list[str] | None = None  # lines printed by the job in progress
        self._discarding = False            # dropping the rest of a failed job
        self._asb = False
        self._last_asb = b""
        self._interp = Interpreter()

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
        if self._off:
            return "off"
        if self._jam:
            return "jam"
        if self._cover_open:
            return "cover_open"
        if self.paper_out:
            return "paper_out"
        return "paper_near_end" if self.near_end else "online"

    @property
    def asb_enabled(self) -> bool:
        """Automatic Status Back was enabled with GS a n (n != 0)."""
        return self._asb

    @property
    def moves(self) -> int:
        """Paper movements (LF, FF, ESC d/J, GS V/v/k) read since power on."""
        return self._interp.moves

    @property
    def move_end(self) -> int:
        """Where the last paper movement ended in the bytes of the last :meth:`feed`."""
        return self._interp.move_end

    @property
    def between_commands(self) -> bool:
        """No command is half read."""
        return self._interp.tokens.idle

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

    # -- snapshots --------------------------------------------------------------------

    def snapshot(self) -> PrinterCore:
        """An independent copy of the whole state (paper, sensors, job, parser)."""
        twin = PrinterCore.__new__(PrinterCore)
        _copy_slots(self, twin)
        twin._job = None if self._job is None else list(self._job)
        twin._interp = self._interp.copy()
        return twin

    def restore(self, snapshot: PrinterCore) -> None:
        """Go back to the state ``snapshot`` was taken in (the snapshot is used up)."""
        _copy_slots(snapshot, self)

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
                self._interp = Interpreter()
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

    def new_connection(self) -> None:
        """A new host connection: a command the last one left unfinished is dropped, so
        its payload does not swallow the new host's bytes (modes and the line stay)."""
        self._interp.tokens = Interpreter().tokens

    def feed(self, data: bytes) -> list[Output]:
        """Receive bytes (any piece of a stream); returns the outputs in order.

        The bytes are read a line (through LF) at a time. A run of plain text lines, or a
        line the interpreter remembers from the same modes (``Interpreter.recall``), is taken
        without being read again when nothing in it can be refused or reported (online, no
        failed job being dropped, paper for all of it, no status back): then nothing here
        acts on the interpreter between its events. So is such a line of the rest of a
        failed job, which is dropped whatever the printer's state.
        """
        out: list[Output] = []
        if self._off:
            return out
        interp = self._interp
        start, size = 0, len(data)
        while start < size:
            # a line starting with a command is not plain: no need to ask
            plain = None if data[start] in _PREFIXES else interp.plain_lines(data, start)
            if plain is not None:
                lines, stop = plain
                dots = sum(n for _, n in lines)
                if self._discarding:  # the rest of a failed job: each line dropped
                    interp.take_lines(len(lines), start, stop)
                elif self._steady(dots):
                    interp.take_lines(len(lines), start, stop)
                    self._print_lines(lines, dots, out)
                else:
                    self._take(interp.run(data[start:stop], start), out)
                start = stop
                continue
            stop = data.find(b"\n", start) + 1 or size
            piece = data if stop - start == size else data[start:stop]
            memo = interp.recall(piece)
            if memo is None:
                self._take(interp.run(piece, start, remember=True), out)
            elif self._discarding and memo.lines is not None and not memo.reset:
                self._drop(memo, piece, start)
            elif not self._steady(memo.dots):
                self._take(interp.run(piece, start), out)
            elif memo.lines is None or (memo.reset and self._job is not None):
                self._take(interp.replay(memo, piece, start), out)
            else:
                self._take_steady(memo, piece, start, out)
            start = stop
        return out

    # -- internals --------------------------------------------------------------------

    def _take(self, events: Iterator[_Event], out: list[Output]) -> None:
        """Act on the interpreter's events in turn."""
        for ev in events:
            kind = ev.kind
            if kind in _PRINTING:  # most events: checked first
                if not self._accepts_print(out):
                    self._interp.drop_line()
                elif kind == "line":
                    self._print(ev.text, ev.n, out)
                elif kind == "feed":
                    self._print(None, ev.n, out)
            elif kind == "query":
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
                self._cut(ev.n, out, self._interp.moves)

    def _take_steady(self, memo: PieceMemo, piece: bytes, start: int, out: list[Output]) -> None:
        """What ``_take`` does with the events of ``piece`` (``memo``: their replay) when
        steady and they are a reset with no job in progress (which does nothing), lines of
        text and a cut, each optional, in that order."""
        moves = self._interp.moves
        self._interp.settle(memo, piece, start)
        if memo.prints:
            self._print_lines(memo.lines or (), memo.dots - (memo.cut or 0), out)
        if memo.cut is not None:
            self._cut(memo.cut, out, moves + memo.moved[-1])

    def _drop(self, memo: PieceMemo, piece: bytes, start: int) -> None:
        """What ``_take`` does with the events of ``piece`` (``memo``: their replay) while
        the rest of a failed job is dropped, when they are lines of text and a cut, each
        optional: every line is dropped, and the cut ends the dropping."""
        self._interp.settle(memo, piece, start)
        if memo.prints:
            self._interp.drop_line()
        if memo.cut is not None:
            self._discarding = False

    def _steady(self, dots: int) -> bool:
        """Nothing can refuse or report print data moving ``dots`` of paper: printing it
        changes nothing but the paper left and the job."""
        return not (self._discarding or self._jam or self._cover_open or self._asb
                    or self._paper_dots <= dots)

    def _print_lines(self, lines: Sequence[tuple[str, int]], dots: int,
                     out: list[Output]) -> None:
        """What ``_take`` does with print data and lines moving ``dots`` when steady."""
        self._paper_dots -= dots
        job = self._job
        if job is None:
            job = self._job = []
        for text, n in lines:
            job.append(text)
            out.append(LinePrinted(text, n))

    def _accepts_print(self, out: list[Output]) -> bool:
        if self._discarding:
            return False
        if self._off or self._jam or self._cover_open or self._paper_dots <= 0:  # offline
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
        if self._paper_dots <= 0:
            self._fail("paper_out", out)
        if self._asb:
            self._report(out)

    def _cut(self, dots: int, out: list[Output], moves: int) -> None:
        """GS V: cut after ``dots`` of paper; ``moves``: paper movements read through it."""
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
                out.append(JobDone("\n".join(self._job), len(self._job), moves))
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

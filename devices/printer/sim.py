"""The receipt printer in simulated time: the ESC/POS core fed line by line.

A job's bytes go to the core one paper-moving segment at a time, segment i at
``start + i / lines_per_s``, so a fault can strike between lines. Each segment after
the first is fed after everything else due at that moment (priority ``LATE``): a fault,
or its clearing, reaching the printer at the very moment a line is due comes before
that line, whenever it was scheduled. The job's
result (completed through the cut, or not) is what the printer reports after
the cut; :meth:`status` answers DLE EOT n at once, as a real printer does.

Most jobs print without anything touching the printer while they run, so a
job is first run ahead: every segment is fed at once on a snapshot-backed
core, and when that shows the printer's state steady until the cut, the job
takes two timeouts (to the cut, to the end) instead of one per segment. If a
fault or power change reaches the printer mid-job, the core goes back to the
snapshot, takes again the segments whose time has passed, and the job goes on
segment by segment: the outcome and the trace are those of the slow path. (That rule
for a tie is what makes them so: which of a segment's timer and a fault's comes first
otherwise depends on which was made first, and a job run ahead makes no timer for the
segments between its first and its cut.)
A job that reaches a printer already offline (jammed, cover open, out of
paper) fails at its first segment and the rest of it is dropped; it is run
ahead the same way, and takes one timeout.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, cast

import simpy

from devices.fault import ActiveFault, FaultBoard
from devices.ports import TraceSink
from devices.printer.core import JobDone, JobFailed, Output, PrinterCore, segments
from devices.simkit.queues import LATE, Turns, due_at

_JOB_ENDS = (JobDone, JobFailed)  # a tuple: ``JobDone | JobFailed`` is built anew at each use

_CONDITIONS = {
    "printer.paper_out": "paper_out",
    "printer.paper_jam": "jam",
    "printer.cover_open": "cover_open",
    "printer.offline": "off",
}


@dataclass
class _RunAhead:
    """A job fed ahead of time: the core before it, its segments and when each is due."""

    before: PrinterCore
    process: simpy.Process
    data: bytes
    times: list[float]
    cut: int            # the segment whose cut completes the job (-1: it fails)
    text: str           # what the job printed
    reason: str | None  # why it fails at its first segment; None: it completes
    released: int = 0   # segments whose events were emitted
    stopped: int = 0    # segments fed when something reached the printer mid-job


class SimPrinter:
    """An ESC/POS receipt printer driven in simulated time."""

    def __init__(
        self, env: simpy.Environment, trace: TraceSink, core: PrinterCore,
        lines_per_s: float = 20.0, *, run_ahead: bool = True,
    ) -> None:
        self.env = env
        self.trace = trace
        self.core = core
        self.line_s = 1.0 / lines_per_s
        self.faults = FaultBoard()
        self._jobs = 0
        self.open_jobs = 0
        """Jobs given and not yet over: waiting their turn, printing, or holding the
        printer for the line after their cut."""
        self._turns = Turns(env)
        self._stash: list[Output] = []  # what a condition change made the core say
        self._ahead: _RunAhead | None = None
        self._shown = core.state
        self.run_ahead = run_ahead  # False: every job segment by segment (the reference)

    def apply(self, fault: ActiveFault) -> None:
        self._catch_up()
        self.faults.add(fault)
        self._set(fault.kind, True)

    def clear(self, fault: ActiveFault) -> None:
        self._catch_up()
        self.faults.remove(fault)
        if not self.faults.has(fault.kind):
            self._set(fault.kind, False)

    def _set(self, kind: str, active: bool) -> None:
        self._stash.extend(self.core.set_condition(_CONDITIONS[kind], active))
        self._show_state()

    def _show_state(self) -> None:
        """Trace the printer's state when it differs from the last one traced."""
        state = self.core.state
        if state != self._shown:
            self._shown = state
            self.trace.emit("printer.state", state=state)

    def status(self, n: int) -> int | None:
        """DLE EOT ``n``: one status byte, or None when the printer is off."""
        return self.core.status(n)  # a job run ahead keeps the state steady

    def print_job(self, data: bytes, **about: Any) -> simpy.Process:
        """Print one receipt; the process's value is True when it came out whole."""
        self.open_jobs += 1
        return self.env.process(self._job(data, about))

    def _job(self, data: bytes, about: dict[str, Any]) -> Generator[simpy.Event, Any, bool]:
        yield self._turns.take()
        whole = yield from self._print(data, about)
        self._turns.done()  # not on a run's end mid-job: nothing asks after it
        self.open_jobs -= 1
        return whole

    def _print(self, data: bytes, about: dict[str, Any]) -> Generator[simpy.Event, Any, bool]:
        self._jobs += 1
        job = self._jobs
        self.trace.emit("printer.job_started", job=job, **about)
        ahead = self._run_ahead(data)
        if ahead is None:
            return (yield from self._segments(segments(data), 0, job, about, done=False))
        failed = ahead.reason is not None
        try:
            if failed:
                ahead.released = 1
                self.trace.emit("printer.job_failed", job=job, text=ahead.text,
                                reason=ahead.reason, **about)
            else:
                yield due_at(self.env, ahead.times[ahead.cut], LATE)
                ahead.released = ahead.cut + 1
                self.trace.emit("printer.job_done", job=job, text=ahead.text, **about)
            if self._ahead is ahead:  # no fault triggered by that event
                yield due_at(self.env, ahead.times[-1] + self.line_s, LATE)
                self._ahead = None
                return not failed
            first = ahead.stopped
        except simpy.Interrupt as stop:  # touched mid-job: go on segment by segment
            first = cast(int, stop.cause)
        count = len(ahead.times)
        due = ahead.times[first] if first < count else ahead.times[-1] + self.line_s
        yield due_at(self.env, due, LATE)
        return (yield from self._segments(segments(data), first, job, about,
                                          done=not failed and first > ahead.cut,
                                          failed=failed))

    def _segments(
        self, pieces: list[bytes], first: int, job: int, about: dict[str, Any], *, done: bool,
        failed: bool = False,
    ) -> Generator[simpy.Event, Any, bool]:
        """Feed ``pieces[first:]`` one per line time, the first one now (``done`` /
        ``failed``: the job's end was traced from an earlier piece)."""
        for piece in pieces[first:]:
            outs, self._stash = [*self._stash, *self.core.feed(piece)], []
            for out in outs:
                if isinstance(out, JobDone):
                    done = True
                    self.trace.emit("printer.job_done", job=job, text=out.text, **about)
                elif isinstance(out, JobFailed) and not failed:
                    failed = True
                    self.trace.emit("printer.job_failed", job=job, text=out.text,
                                    reason=out.reason, **about)
            self._show_state()
            yield due_at(self.env, self.env.now + self.line_s, LATE)
        if not done and not failed:
            self.trace.emit(
                "printer.job_failed", job=job, text="", reason=self.core.state, **about,
            )
        return done

    def _run_ahead(self, data: bytes) -> _RunAhead | None:
        """Feed the whole job now. Keep that when the state stays steady and exactly one
        cut completes the job; else go back to the snapshot (None: segment by segment).

        The state cannot change and change back within a job (paper only runs down), so
        comparing it before and after is enough; the cut's segment is the number of paper
        movements before it, as :func:`segments` splits the job after each one.
        """
        core = self.core
        if not self.run_ahead or self._stash or not data or not core.between_commands:
            return None
        if not core.online:
            return self._fail_ahead(data)
        before = core.snapshot()
        state, moved = core.state, core.moves
        done = [out for out in core.feed(data) if isinstance(out, _JOB_ENDS)]
        moves = core.moves - moved
        if (core.state != state or len(done) != 1 or not isinstance(done[0], JobDone)
                or not core.online or moves == 0):
            core.restore(before)
            return None
        count = moves + (core.move_end < len(data))  # a tail after the last movement
        return self._ahead_by(before, data, count, done[0].moves - 1 - moved, done[0].text)

    def _fail_ahead(self, data: bytes) -> _RunAhead | None:
        """The job reaches an offline printer: feed it whole now, and keep that when it
        fails at its first segment and the state stays steady (what follows is dropped, or
        fails again after a reset, which is not traced); else go back to the snapshot
        (None: segment by segment).

        The job is fed in two parts, through its first LF byte and the rest. A movement
        ends the first segment, so the first part lies inside it when it reads none, or
        one that ends the part; then a failure it reports is the first segment's.
        """
        core = self.core
        before = core.snapshot()
        state, moved = core.state, core.moves
        head = data[:data.find(b"\n") + 1] or data
        failed = [out for out in core.feed(head) if isinstance(out, _JOB_ENDS)]
        head_moves = core.moves - moved
        inside = head_moves == 0 or (head_moves == 1 and core.move_end == len(head))
        rest = data[len(head):]
        if rest:
            core.feed(rest)
        moves = core.moves - moved
        if (not inside or len(failed) != 1 or not isinstance(failed[0], JobFailed)
                or core.state != state or moves == 0):
            core.restore(before)
            return None
        # a tail after the last movement: in the rest, or all of the rest
        tail = core.move_end < len(rest) if moves > head_moves else bool(rest)
        return self._ahead_by(before, data, moves + tail, -1, failed[0].text,
                              failed[0].reason)

    def _ahead_by(self, before: PrinterCore, data: bytes, count: int, cut: int, text: str,
                  reason: str | None = None) -> _RunAhead:
        """Keep ``data`` as run ahead: ``count`` segments due one per line time from now."""
        times = []
        t = self.env.now
        for _ in range(count):
            times.append(t)
            t += self.line_s
        process = self.env.active_process
        assert process is not None
        self._ahead = _RunAhead(before, process, data, times, cut, text, reason)
        return self._ahead

    def _catch_up(self) -> None:
        """Something reaches the printer during a job run ahead: the core goes back to
        the snapshot and takes again the segments already due; the job is interrupted
        to go on segment by segment."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return
        # Segment 0 was fed as the job started; the others when due, after all else then.
        fed = max(ahead.released, 1, bisect_left(ahead.times, self.env.now))
        self.core.restore(ahead.before)
        for piece in segments(ahead.data)[:fed]:
            self.core.feed(piece)
        ahead.stopped = fed
        if ahead.process is not self.env.active_process:  # else it sees ``_ahead`` gone
            ahead.process.interrupt(fed)

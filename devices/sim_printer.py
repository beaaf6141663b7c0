"""The receipt printer in simulated time: the ESC/POS core fed line by line.

A job's bytes go to the core one paper-moving segment at a time, each taking
``1 / lines_per_s`` seconds, so a fault can strike between lines. The job's
result (completed through the cut, or not) is what the printer reports after
the cut; :meth:`status` answers DLE EOT n at once, as a real printer does.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from devices.fault import ActiveFault, FaultBoard
from devices.printer import JobDone, JobFailed, Output, PrinterCore, segments

if TYPE_CHECKING:
    from emulator.trace import Trace

_CONDITIONS = {
    "printer.paper_out": "paper_out",
    "printer.paper_jam": "jam",
    "printer.cover_open": "cover_open",
    "printer.offline": "off",
}


class SimPrinter:
    """An ESC/POS receipt printer driven in simulated time."""

    def __init__(
        self, env: simpy.Environment, trace: Trace, core: PrinterCore, lines_per_s: float = 20.0,
    ) -> None:
        self.env = env
        self.trace = trace
        self.core = core
        self.line_s = 1.0 / lines_per_s
        self.faults = FaultBoard()
        self._jobs = 0
        self._lock = simpy.Resource(env, capacity=1)
        self._stash: list[Output] = []  # what a condition change made the core say

    def apply(self, fault: ActiveFault) -> None:
        self.faults.add(fault)
        self._set(fault.kind, True)

    def clear(self, fault: ActiveFault) -> None:
        self.faults.remove(fault)
        if not self.faults.has(fault.kind):
            self._set(fault.kind, False)

    def _set(self, kind: str, active: bool) -> None:
        before = self.core.state
        self._stash.extend(self.core.set_condition(_CONDITIONS[kind], active))
        if self.core.state != before:
            self.trace.emit("printer.state", state=self.core.state)

    def status(self, n: int) -> int | None:
        """DLE EOT ``n``: one status byte, or None when the printer is off."""
        return self.core.status(n)

    def print_job(self, data: bytes, **about: Any) -> simpy.Process:
        """Print one receipt; the process's value is True when it came out whole."""
        return self.env.process(self._job(data, about))

    def _job(self, data: bytes, about: dict[str, Any]) -> Generator[simpy.Event, Any, bool]:
        with self._lock.request() as turn:
            yield turn
            self._jobs += 1
            job = self._jobs
            self.trace.emit("printer.job_started", job=job, **about)
            done = False
            failed = False
            for piece in segments(data):
                before = self.core.state
                outs, self._stash = [*self._stash, *self.core.feed(piece)], []
                for out in outs:
                    if isinstance(out, JobDone):
                        done = True
                        self.trace.emit(
                            "printer.job_done", job=job, text=out.text, **about,
                        )
                    elif isinstance(out, JobFailed) and not failed:
                        failed = True
                        self.trace.emit(
                            "printer.job_failed", job=job, text=out.text,
                            reason=out.reason, **about,
                        )
                if self.core.state != before:
                    self.trace.emit("printer.state", state=self.core.state)
                yield self.env.timeout(self.line_s)
            if not done and not failed:
                self.trace.emit(
                    "printer.job_failed", job=job, text="", reason=self.core.state, **about,
                )
            return done

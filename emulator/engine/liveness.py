"""Liveness (``[liveness]``): faults stop at a horizon, then the terminal must be quiet.

Safety (no anomaly) says nothing bad happened; liveness says the terminal gets its
work done once the world lets it. A :class:`Watch` stops every fault of one terminal
at the horizon (none starts after it, those in force are cleared), and when the run
ends, ``quiet_s`` later, asks whether the terminal is quiet: nothing owed in
store-and-forward (advices acknowledged, reversals and voids answered), no receipt
held, no step still running or waiting, the printer idle and the terminal powered:
its batch can be settled. A terminal that is not shows the anomaly ``not_quiet``,
whose detail says what kept it busy. A single run (``posemu run``) and each terminal
of a fleet keep one watch each; ``posemu fuzz --liveness`` writes the key.

The watch only listens to the trace and adds one timer: a scenario without the key
runs as before, event for event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from emulator.judge.oracle import Anomaly
from emulator.scenario.catalogue import NOT_QUIET

if TYPE_CHECKING:
    import simpy

    from devices.ports import TraceBus
    from emulator.engine.trace import Event
    from emulator.scenario.model import Liveness

__all__ = ["NOT_QUIET", "Watch", "at_horizon"]


def at_horizon(env: simpy.Environment, spec: Liveness, *stops: Callable[[], None]) -> None:
    """Call each of ``stops`` at ``spec.horizon_s``, in turn."""
    def stop(_event: simpy.Event) -> None:
        for each in stops:
            each()

    env.timeout(float(spec.horizon_s)).callbacks.append(stop)


class Watch:
    """One terminal's liveness check: each of ``stops`` (its faults' horizon: its
    injector's, a swizzle's) is called at ``spec.horizon_s``; :meth:`judge` says, at the
    end, what keeps it from being quiet."""

    def __init__(self, env: simpy.Environment, spec: Liveness, trace: TraceBus,
                 *stops: Callable[[], None]) -> None:
        self.spec = spec
        at_horizon(env, spec, *stops)
        self.running: str | None = None  # the step the terminal runs (a power cut ends it)
        self.last: str | None = None  # the last step it started
        self.why: list[str] = []
        """What kept the terminal from being quiet, once judged (empty: quiet)."""
        trace.subscribe("terminal.txn_started", self._started)
        trace.subscribe("terminal.txn_done", self._ended)
        trace.subscribe("terminal.power_lost", self._ended)

    def _started(self, event: Event) -> None:
        self.running = self.last = str(event.fields["step"])

    def _ended(self, _event: Event) -> None:
        self.running = None

    def judge(self, terminal: object, printer: object,
              owed: Iterable[tuple[str, str]]) -> tuple[Anomaly, ...]:
        """``not_quiet`` when the terminal (``owed``: its ``unresolved()``) is not quiet
        at the end of the run, naming the first step it names (else the last started)."""
        busy: list[tuple[str | None, str]] = [(step, f"owes {what} for {step}")
                                              for step, what in owed]
        if not getattr(terminal, "powered", True):  # posemu's own firmware says; a plug-in may not
            busy.append((None, "powered off"))
        if self.running is not None:
            busy.append((self.running, f"step {self.running} still running"))
        waiting = getattr(getattr(terminal, "steps", None), "items", ())
        busy += [(s.id, f"step {s.id} not started") for s in waiting]
        if getattr(printer, "open_jobs", 0):  # the simulated printer's count
            busy.append((None, "printer still printing"))
        self.why = [text for _, text in busy]
        if not busy:
            return ()
        step = next((s for s, _ in busy if s is not None), self.last or "")
        return (Anomaly(NOT_QUIET, step, "; ".join(self.why)),)

"""Fires the scenario's faults at their moments and clears them when they heal.

A fault starts at ``at_s`` or on the ``nth`` occurrence of a trace event
(``on``), lasts ``for_s`` (or for ever) and is handed to its device as an
:class:`~devices.fault.ActiveFault`: data the device reads, never an
exception. ``terminal.power_loss`` is delivered a moment later (same
simulated time) because a process cannot interrupt itself.

A fault with ``step`` counts only that step's events, told as
:data:`~emulator.scenario.events.STEP_BY` says: by the event's ``step`` field, by its
frame's STAN (the terminal traces the step and STAN of each request and reversal it
sends, and an injector hears one terminal's events), or as the step running when it
happens. Nothing is added to the trace for it. The injector keeps which faults fired,
so a run can fail on one that never did (``fault_never_fired``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import simpy

from devices.fault import ActiveFault
from devices.ports import FaultTarget, TraceBus
from devices.simkit.agenda import Agenda
from emulator.scenario.events import STAN_SOURCES, STEP_BY

if TYPE_CHECKING:
    from emulator.engine.trace import Event
    from emulator.scenario.model import FaultSpec


class Injector:
    """Schedules every fault of a scenario on its device."""

    def __init__(
        self, env: simpy.Environment, trace: TraceBus, targets: dict[str, FaultTarget],
        faults: tuple[FaultSpec, ...],
    ) -> None:
        self.env = env
        self.trace = trace
        self.targets = targets
        self.stopped = False
        self._active: dict[int, tuple[FaultSpec, FaultTarget, ActiveFault]] = {}
        faults = tuple(f for f in faults if f.fault.split(".", 1)[0] in targets)  # not fleet's
        self.faults = faults
        self.fired: list[int] = []
        """The indices of the faults that started, in the order they did."""
        self.steps = _StepTeller(trace, faults)
        for spec in faults:
            if spec.at_s is None:
                assert spec.on is not None
                self._arm(spec)
        self.agenda = Agenda(env, ((spec.at_s, spec) for spec in faults
                                   if spec.at_s is not None), self._start)

    def unfired(self) -> tuple[FaultSpec, ...]:
        """The faults that have not started (so far), optional ones included."""
        fired = set(self.fired)
        return tuple(spec for spec in self.faults if spec.index not in fired)

    def _arm(self, spec: FaultSpec) -> None:
        step_of = self.steps.teller(spec)

        def start(fired: FaultSpec) -> None:
            self.steps.done(fired)
            self._start(fired)

        arm(self.trace, spec, start, step_of)

    def stop(self) -> None:
        """The fault horizon (``posemu fuzz --liveness``): no fault starts from now on,
        and every fault in force is cleared now."""
        self.stopped = True
        for spec, target, fault in list(self._active.values()):
            self._stop(spec, target, fault)

    def _start(self, spec: FaultSpec) -> None:
        if self.stopped:
            return
        self.fired.append(spec.index)
        fault = ActiveFault(spec.fault, dict(spec.params))
        target = self.targets[spec.fault.split(".", 1)[0]]
        self.trace.emit("fault.started", fault=spec.fault, index=spec.index,
                        for_s=spec.for_s, **_plain(spec.params))
        self._active[id(fault)] = (spec, target, fault)
        self._later(lambda: self._apply(target, fault), spec.fault == "terminal.power_loss")
        if spec.for_s is not None:
            timer = self.env.timeout(spec.for_s)
            timer.callbacks.append(lambda _e: self._stop(spec, target, fault))

    def _apply(self, target: FaultTarget, fault: ActiveFault) -> None:
        if id(fault) in self._active:  # not cleared at the horizon in the meantime
            target.apply(fault)

    def _stop(self, spec: FaultSpec, target: FaultTarget, fault: ActiveFault) -> None:
        if self._active.pop(id(fault), None) is None:  # cleared at the horizon already
            return
        self.trace.emit("fault.cleared", fault=spec.fault, index=spec.index)
        target.clear(fault)

    def _later(self, action: Callable[[], None], deferred: bool) -> None:
        if not deferred:
            action()
            return
        self.env.timeout(0).callbacks.append(lambda _e: action())


def arm(trace: TraceBus, spec: FaultSpec, start: Callable[[FaultSpec], None],
        step_of: Callable[[Event], object] | None = None) -> None:
    """Call ``start(spec)`` on the ``nth`` event ``spec.on`` of ``trace`` (of its
    ``step`` only, when it names one, told by ``step_of``: by default the event's
    ``step`` field)."""
    seen = 0
    step = spec.step
    tell = step_of if step_of is not None else _step_field

    def listener(event: Event) -> None:
        nonlocal seen
        if step is not None and tell(event) != step:
            return
        seen += 1
        if seen == spec.nth:
            assert spec.on is not None
            trace.unsubscribe(spec.on, listener)
            start(spec)

    trace.subscribe(spec.on, listener)


def _step_field(event: Event) -> object:
    return event.fields.get("step")


class _StepTeller:
    """Tells the step of the events step-bound faults wait for: the STANs each step's
    frames went out under and the step running, heard from the terminal's events only
    while a fault still needs them."""

    def __init__(self, trace: TraceBus, faults: tuple[FaultSpec, ...]) -> None:
        self.trace = trace
        self.stans: dict[str, str] = {}  # STAN -> the step whose frame last carried it
        self.current: str | None = None
        self.waiting = {how: {f.index for f in faults if f.step is not None and f.on
                              and STEP_BY.get(f.on) == how} for how in ("stan", "current")}
        if self.waiting["stan"]:
            for name in STAN_SOURCES:
                trace.subscribe(name, self._sent)
        if self.waiting["current"]:
            trace.subscribe("terminal.txn_started", self._started)
            trace.subscribe("terminal.txn_done", self._ended)

    def teller(self, spec: FaultSpec) -> Callable[[Event], object]:
        """How ``spec``'s trigger events are told to belong to a step."""
        how = STEP_BY.get(spec.on or "")
        if how == "stan":
            return lambda event: self.stans.get(str(event.fields.get("stan")))
        if how == "current":
            return lambda _event: self.current
        return lambda event: event.fields.get("step")

    def done(self, spec: FaultSpec) -> None:
        """``spec`` fired: stop listening once no fault needs it."""
        for how, waiting in self.waiting.items():
            if spec.index in waiting:
                waiting.discard(spec.index)
                if not waiting:
                    self._stop(how)

    def _stop(self, how: str) -> None:
        if how == "stan":
            for name in STAN_SOURCES:
                self.trace.unsubscribe(name, self._sent)
            self.stans.clear()
        else:
            self.trace.unsubscribe("terminal.txn_started", self._started)
            self.trace.unsubscribe("terminal.txn_done", self._ended)

    def _sent(self, event: Event) -> None:
        self.stans[str(event.fields.get("stan"))] = event.fields["step"]

    def _started(self, event: Event) -> None:
        self.current = event.fields["step"]

    def _ended(self, event: Event) -> None:
        if event.fields["step"] == self.current:
            self.current = None


def _plain(params: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in params.items() if v is not None}

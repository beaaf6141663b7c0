"""Fires the scenario's faults at their moments and clears them when they heal.

A fault starts at ``at_s`` or on the ``nth`` occurrence of a trace event
(``on``), lasts ``for_s`` (or for ever) and is handed to its device as an
:class:`~devices.fault.ActiveFault`: data the device reads, never an
exception. ``terminal.power_loss`` is delivered a moment later (same
simulated time) because a process cannot interrupt itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import simpy

from devices.fault import ActiveFault
from devices.ports import FaultTarget, TraceBus
from devices.simkit.agenda import Agenda

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
        for spec in faults:
            if spec.at_s is None:
                assert spec.on is not None
                self._arm(spec)
        self.agenda = Agenda(env, ((spec.at_s, spec) for spec in faults
                                   if spec.at_s is not None), self._start)

    def _arm(self, spec: FaultSpec) -> None:
        arm(self.trace, spec, self._start)

    def stop(self) -> None:
        """The fault horizon (``posemu fuzz --liveness``): no fault starts from now on,
        and every fault in force is cleared now."""
        self.stopped = True
        for spec, target, fault in list(self._active.values()):
            self._stop(spec, target, fault)

    def _start(self, spec: FaultSpec) -> None:
        if self.stopped:
            return
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


def arm(trace: TraceBus, spec: FaultSpec, start: Callable[[FaultSpec], None]) -> None:
    """Call ``start(spec)`` on the ``nth`` event ``spec.on`` of ``trace`` (of its
    ``step`` only, when it names one)."""
    seen = 0
    step = spec.step

    def listener(event: Event) -> None:
        nonlocal seen
        if step is not None and event.fields.get("step") != step:
            return
        seen += 1
        if seen == spec.nth:
            assert spec.on is not None
            trace.unsubscribe(spec.on, listener)
            start(spec)

    trace.subscribe(spec.on, listener)


def _plain(params: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in params.items() if v is not None}

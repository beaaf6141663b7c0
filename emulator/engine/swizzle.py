"""``fleet.swizzle_clog``: clog a random subset of the fleet's links one by one, then,
``for_s`` after the first clog (or once the last is clogged, if later), unclog them one
by one in another random order (FoundationDB's swizzle-clog).

A clogged link holds every frame that reaches its end (nothing is lost) and delivers
them, in order, when it is unclogged (``network.clog`` on :class:`~devices.net.link.Link`).
The fault is the fleet's, not one terminal's: it starts at ``at_s`` or on the ``nth``
event of any terminal (``step`` restricts it to that step's events), draws its subset
and orders from the run's seeded RNG, and is traced on the fleet's trace
(``fault.started``, ``fault.cleared``) and on each link's (``network.clogged``,
``network.unclogged``, with the terminal's ``tid``). A single run is a fleet of one.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import simpy

from devices.fault import ActiveFault
from emulator.engine.injector import arm
from emulator.scenario.catalogue import FAULTS, FLEET_DEVICE

if TYPE_CHECKING:
    from devices.net.link import Link
    from emulator.engine.trace import Trace
    from emulator.scenario.model import FaultSpec

CLOG = "network.clog"
"""The fault a swizzle puts on each link it clogs."""


class Swizzle:
    """Schedules the scenario's fleet faults over ``links`` (in terminal order)."""

    def __init__(self, env: simpy.Environment, rng: random.Random, trace: Trace,
                 links: Sequence[Link], faults: tuple[FaultSpec, ...]) -> None:
        self.env = env
        self.rng = rng
        self.trace = trace
        self.links = links
        self.stopped = False
        self._clogs: dict[int, dict[int, ActiveFault]] = {}  # in force: index -> link's clog
        for spec in faults:
            if FAULTS[spec.fault].device != FLEET_DEVICE:
                continue
            if spec.at_s is not None:
                env.timeout(spec.at_s).callbacks.append(self._starter(spec))
            else:
                arm(self.trace, spec, self._start)

    def _starter(self, spec: FaultSpec) -> Callable[[simpy.Event], None]:
        return lambda _event: self._start(spec)

    def _start(self, spec: FaultSpec) -> None:
        if not self.stopped:
            self.env.process(self._swizzle(spec))

    def stop(self) -> None:
        """The fault horizon (``[liveness]``): no swizzle starts from now on, and every
        link a swizzle holds clogged is unclogged now, in terminal order."""
        self.stopped = True
        for index, clogs in sorted(self._clogs.items()):
            self._unclog(clogs, sorted(clogs))
            self.trace.emit("fault.cleared", fault="fleet.swizzle_clog", index=index)
        self._clogs.clear()

    def _unclog(self, clogs: dict[int, ActiveFault], numbers: Sequence[int]) -> None:
        for number in numbers:
            link = self.links[number]
            link.trace.emit("network.unclogged")
            link.clear(clogs.pop(number))

    def _swizzle(self, spec: FaultSpec) -> simpy.events.ProcessGenerator:
        if self.stopped:  # the horizon came between its start and now
            return
        params = spec.params
        wanted = params.get("terminals", 0)
        count = wanted if isinstance(wanted, int) and wanted > 0 else (len(self.links) + 1) // 2
        count = min(count, len(self.links))
        interval = params.get("interval_s", 1.0)
        interval_s = float(interval) if isinstance(interval, int | float) else 1.0
        self.trace.emit("fault.started", fault=spec.fault, index=spec.index, for_s=spec.for_s,
                        terminals=count, interval_s=interval_s)
        chosen = self.rng.sample(range(len(self.links)), count)  # the order they clog in
        clogs: dict[int, ActiveFault] = {}
        self._clogs[spec.index] = clogs
        start = self.env.now
        for k, number in enumerate(chosen):
            if k:
                yield self.env.timeout(interval_s)
                if self.stopped:  # stop() unclogged what was clogged
                    return
            link = self.links[number]
            clogs[number] = fault = ActiveFault(CLOG)
            link.apply(fault)
            link.trace.emit("network.clogged")
        if spec.for_s is None:
            return
        yield self.env.timeout(max(0.0, start + spec.for_s - self.env.now))
        if self.stopped:
            return
        order = list(chosen)
        self.rng.shuffle(order)
        for k, number in enumerate(order):
            if k:
                yield self.env.timeout(interval_s)
                if self.stopped:
                    return
            self._unclog(clogs, (number,))
        del self._clogs[spec.index]
        self.trace.emit("fault.cleared", fault=spec.fault, index=spec.index)

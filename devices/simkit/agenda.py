"""A run's listed instants, put on simpy's event queue one at a time.

A scenario lists its steps (and a fleet repeats them on every terminal). Making a
timer for each listed instant when the run is built costs a timer, its callback and
a heap entry per instant for the whole run: about a kilobyte a step, which a
year-long scenario feels. An :class:`Agenda` instead gives each instant, at build
time, the event id its own timer would have taken (simpy runs events due at the same
time in the order of those ids, after priority), and queues the instant's event only
when the instant before it comes. simpy then takes events in exactly the order it
would with every timer made up front: the next instant is always queued before
anything that comes after it could be taken.

It takes the ids from simpy's private id counter and queues the events with
:func:`devices.simkit.queues.due_at`; ``tests/unit/test_agenda.py`` checks the order
against timers made up front.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import simpy

from devices.simkit.queues import due_at

T = TypeVar("T")


class Agenda(Generic[T]):
    """Call ``act(item)`` at each instant of ``instants`` (seconds from now, in the order
    given where they tie), as timers made now would, but holding one event at a time."""

    def __init__(self, env: simpy.Environment, instants: Iterable[tuple[float, T]],
                 act: Callable[[T], None]) -> None:
        self._env = env
        self._act = act
        now = env.now
        booked = [(now + at_s, next(env._eid), item) for at_s, item in instants]
        booked.sort()  # simpy's order: time, then id (ids differ: items are never compared)
        self._due = deque(booked)
        self._queue_next()

    def __len__(self) -> int:
        """Instants still to come."""
        return len(self._due)

    def _queue_next(self) -> None:
        if not self._due:
            return
        at, eid, _ = self._due[0]
        due_at(self._env, at, eid=eid).callbacks.append(self._fire)

    def _fire(self, _event: simpy.Event) -> None:
        _, _, item = self._due.popleft()
        self._queue_next()
        self._act(item)

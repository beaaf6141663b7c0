"""Two simpy queues and a race without simpy's bookkeeping, their events in the same order.

simpy's ``Store`` and ``Resource`` make an event object per request and release and
walk their queues on every one; a sale went through them seven times, about 5% of its
cost. :class:`Mailbox` (an unbounded ``Store``) and :class:`Turns` (a ``Resource`` of
capacity 1) schedule their events at the same moments as simpy's (one step after a put,
a free turn or a release), so a run's trace does not change; tests/unit/test_queues.py
compares them with simpy's under random timings. :func:`any_of` is ``a | b`` without
building the condition's value. :func:`due_at` is a timer set for a moment rather than
after a delay.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any, cast

import simpy
from simpy.events import NORMAL, EventPriority

__all__ = ["LATE", "Mailbox", "Take", "Turns", "any_of", "due_at"]

LATE = EventPriority(NORMAL + 1)
"""A priority after simpy's own two (URGENT, NORMAL): an event of it comes after every
other event due at the same moment."""


class Take(simpy.Event):
    """A pending take from a :class:`Mailbox`; ``cancel()`` withdraws it if not served."""

    def __init__(self, box: Mailbox) -> None:
        super().__init__(box.env)
        self.box = box

    def cancel(self) -> None:
        if not self.triggered:
            self.box.get_queue.remove(self)


class Mailbox:
    """Items delivered in order to whoever waits for them: a simpy ``Store`` of unlimited
    capacity, with ``put``, ``get`` (an event whose value is the item), ``items`` and
    ``get_queue``.

    As in the store, a get is served at once when an item waits, and only the first get
    in the queue ever is; a put serves the first waiting get one step later (the store's
    put event), even when nobody waited at the put: a get may come to wait before then,
    and another put fill the box.
    """

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.items: list[Any] = []
        self.get_queue: list[Take] = []

    def put(self, item: Any) -> None:
        self.items.append(item)
        self.env.timeout(0).callbacks.append(self._serve)  # the store's put event

    def get(self) -> Take:
        get = Take(self)
        self.get_queue.append(get)
        self._serve()
        return get

    def _serve(self, _event: simpy.Event | None = None) -> None:
        if self.get_queue and self.items:
            self.get_queue.pop(0).succeed(self.items.pop(0))


class Turns:
    """One at a time, in the order they asked: a simpy ``Resource`` of capacity 1.

    ``take()`` is the event to yield; the holder calls ``done()`` when it is done. As with
    the resource, asking while nobody holds a turn gets it at once (one step later), and
    the first one waiting gets it when the holder is done, one step after that (or at once
    if another one asks meanwhile).
    """

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.busy = False
        self.waiting: deque[simpy.Event] = deque()

    def take(self) -> simpy.Event:
        turn = simpy.Event(self.env)
        self.waiting.append(turn)
        self._hand_on()
        return turn

    def done(self) -> None:
        self.busy = False
        if self.waiting:  # the resource's release event, processed one step later
            self.env.timeout(0).callbacks.append(self._hand_on)

    def _hand_on(self, _event: simpy.Event | None = None) -> None:
        if not self.busy and self.waiting:
            self.busy = True
            self.waiting.popleft().succeed()


def any_of(*events: simpy.Event) -> simpy.Event:
    """An event processed one step after the first of ``events`` is (or failing with its
    exception): simpy's ``a | b`` (``AnyOf``) at the same moment, without building the
    condition's value. As with it, more than one of ``events`` may have been processed by
    then: ask each one's ``processed``. The events must share one environment."""
    race = simpy.Event(events[0].env)

    def check(event: simpy.Event) -> None:
        if race.triggered:
            return
        if event.ok:
            race.succeed()
        else:
            event.defused = True
            race.fail(cast(Exception, event.value))

    for event in events:
        if event.callbacks is None:  # already processed
            check(event)
        else:
            event.callbacks.append(check)
    return race


def due_at(env: simpy.Environment, when: float, priority: EventPriority = NORMAL,
           eid: int | None = None) -> simpy.Event:
    """A timer processed at exactly ``when`` (not before now): ``env.timeout(when -
    env.now)`` can land a float's last bit away, as ``now + (when - now)`` need not be
    ``when``. Among events due at the same moment it comes by ``priority``, then by
    ``eid``: the event id it takes now, unless one was taken for it before.

    This reads two private parts of ``simpy.Environment`` (``_eid``, the id counter, and
    ``_queue``, its heap), as simpy 4 has them (pyproject.toml keeps simpy below 5).
    """
    event = simpy.Event(env)
    event._ok, event._value = True, None  # triggered, as a timer is when made
    heapq.heappush(env._queue, (max(when, env.now), priority,
                                next(env._eid) if eid is None else eid, event))
    return event

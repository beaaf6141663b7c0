"""A simpy environment whose clock is an asyncio event loop's: the live mode's time.

``env.now`` is the loop's seconds since the run started (times ``speed``: a client
that runs its simulated parts faster than real time, say its card reader).
:meth:`LoopEnvironment.run` runs an asyncio loop that processes each simpy event when
its moment comes and sleeps in between, so sockets are served while nothing is due;
whatever I/O brings (a frame read) enters the model through
:meth:`LoopEnvironment.deliver`, at the moment it came.
The components are the simulation's own, unchanged: only the clock is real.

A run without ``until`` ends when nothing is scheduled and no outside operation is
under way (:meth:`hold` / :meth:`release`: a connection being opened, a write being
flushed), as a simulated run ends when nothing is left to happen.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import simpy

__all__ = ["LoopEnvironment"]


class LoopEnvironment(simpy.Environment):
    """simpy time from an asyncio loop's clock (seconds since :meth:`run` began)."""

    def __init__(self, speed: float = 1.0) -> None:
        super().__init__()
        if not speed > 0:
            raise ValueError(f"speed must be more than 0, not {speed}")
        self.speed = speed
        """Simulated seconds per real second (1: real time)."""
        self.at_exit: list[Callable[[], Awaitable[None]]] = []
        """Awaited as :meth:`run_async` returns (connections to close)."""
        self.loop: asyncio.AbstractEventLoop | None = None
        self._t0 = 0.0
        self._wake: asyncio.Future[None] | None = None
        self._deadline = math.inf
        self._holds = 0
        self._open_ended = False  # run without until: it ends when nothing is left
        self._stop: simpy.Event | None = None

    def run(self, until: float | simpy.Event | None = None) -> Any:
        """Run in real time on a new asyncio loop until ``until`` (a time or an event)."""
        return asyncio.run(self.run_async(until))

    def attach(self) -> None:
        """Take the running loop's clock (from ``now`` on): before serving sockets."""
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            self.loop = loop
            self._t0 = loop.time() - self.now / self.speed

    async def run_async(self, until: float | simpy.Event | None = None) -> Any:
        """:meth:`run` on the running loop."""
        try:
            return await self._run(until)
        finally:
            for done in self.at_exit:
                await done()

    async def _run(self, until: float | simpy.Event | None) -> Any:
        self.attach()
        loop = asyncio.get_running_loop()
        stop: simpy.Event | None
        self._open_ended = until is None
        if until is None or isinstance(until, simpy.Event):
            stop = until
        else:
            stop = self.timeout(max(float(until) - self.now, 0.0))
        self._stop = stop
        while True:
            self.catch_up()
            if stop is not None and stop.processed:
                return stop.value
            due = self.peek()
            if due == math.inf and stop is None and self._holds == 0:
                return None
            wake = self._wake = loop.create_future()
            self._deadline = due
            timer = (loop.call_at(self._t0 + due / self.speed, _wake_up, wake)
                     if due != math.inf else None)
            try:
                await wake
            finally:
                if timer is not None:
                    timer.cancel()
                self._wake, self._deadline = None, math.inf

    def real_now(self) -> float:
        """The loop's clock as simulated time (ahead of ``now`` between events)."""
        assert self.loop is not None, "the environment is not running"
        return (self.loop.time() - self._t0) * self.speed

    def catch_up(self) -> None:
        """Process every event due by the loop's clock, then move ``now`` to it."""
        real = self.real_now()
        while self.peek() <= real:
            self.step()
        self._now = max(self._now, real)

    def deliver(self, action: Callable[[], object]) -> None:
        """Do ``action`` (I/O reached the model) at the moment it happens, then what it set
        off at once; the loop wakes earlier if it scheduled something sooner."""
        self.catch_up()
        action()
        self.catch_up()
        due = self.peek()
        if due < self._deadline or (self._open_ended and self._holds == 0 and due == math.inf) or (
            self._stop is not None and self._stop.processed
        ):
            self.kick()

    def kick(self) -> None:
        """Wake :meth:`run_async` to look at the schedule again."""
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def hold(self) -> None:
        """An outside operation started: the run does not end while it lasts."""
        self._holds += 1

    def release(self) -> None:
        """An outside operation ended."""
        self._holds -= 1
        self.kick()


def _wake_up(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

"""The network link between terminal and acquirer: real frames, latency, faults.

Two directions (``to_bank``, ``to_terminal``), each ending in a mailbox (a
simpy ``Store`` in effect, see ``devices.simkit.queues``) the receiver reads.
Latency and jitter come from the world's seeded RNG. Faults in force are read
from the link's :class:`FaultBoard` as each frame is sent; ``network.down``
also loses frames already in flight.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import simpy

from devices.fault import ActiveFault, FaultBoard
from devices.iso8583.message import corrupt
from devices.ports import Refused, TraceSink
from devices.simkit.queues import Mailbox

if TYPE_CHECKING:
    from devices.simkit.queues import Take

__all__ = ["TO_BANK", "TO_TERMINAL", "Link", "LinkEnd", "Refused"]

TO_BANK = "to_bank"
TO_TERMINAL = "to_terminal"


class Link:
    """A point-to-point link carrying framed ISO 8583 messages both ways."""

    def __init__(
        self, env: simpy.Environment, rng: random.Random, trace: TraceSink,
        latency_s: float = 0.12, jitter_s: float = 0.0,
    ) -> None:
        self.env = env
        self.rng = rng
        self.trace = trace
        self.latency_s = latency_s
        self.jitter_s = jitter_s
        self.inbox = {TO_BANK: Mailbox(env), TO_TERMINAL: Mailbox(env)}
        self.faults = FaultBoard()
        self._epoch = 0  # bumped by network.down: frames in flight are lost
        self.in_flight = {TO_BANK: 0, TO_TERMINAL: 0}
        """Copies sent each way and not yet delivered or lost."""
        self._held: list[tuple[bytes | Refused, str, int, dict[str, Any]]] = []
        """Frames that arrived while the link was clogged (``network.clog``)."""
        self.terminal_end = LinkEnd(self, TO_BANK, TO_TERMINAL)
        """The terminal's :class:`~devices.ports.Transport`."""
        self.bank_end = LinkEnd(self, TO_TERMINAL, TO_BANK)
        """The acquirer's :class:`~devices.ports.Transport`."""

    def apply(self, fault: ActiveFault) -> None:
        self.faults.add(fault)
        if fault.kind == "network.down":
            self.cut()

    def cut(self) -> None:
        """Lose every frame in flight (the link went down)."""
        self._epoch += 1

    def clear(self, fault: ActiveFault) -> None:
        self.faults.remove(fault)
        if fault.kind == "network.clog" and not self.faults.has("network.clog"):
            held, self._held = self._held, []
            for frame, direction, epoch, about in held:  # in the order they arrived
                self._deliver(frame, direction, epoch, about)

    def send(self, frame: bytes | Refused, direction: str, **about: Any) -> None:
        """Put a frame on the wire; ``about`` (mti, stan) only labels the trace."""
        self.trace.emit("network.sent", direction=direction, size=_size(frame), **about)
        faults = self.faults
        if faults and self._lost(direction):
            self.trace.emit("network.lost", direction=direction, **about)
            return
        copies = 1
        delay_s = self._delay()
        if faults:
            if isinstance(frame, bytes):
                bad = faults.first("network.corrupt", direction)
                if bad is not None:
                    field = bad.param("field", 0)
                    try:
                        frame = corrupt(
                            frame, self.rng, nbytes=int(_num(bad.param("bytes", 1))),
                            field=str(field) if field else None,
                        )
                    except ValueError:  # the targeted field is not in this frame
                        pass
                    else:
                        faults.consume(bad)
                        self.trace.emit("network.corrupted", direction=direction, **about)
            dup = faults.first("network.duplicate", direction)
            if dup is not None:
                faults.consume(dup)
                copies = 2
            for slow in faults.all("network.latency", direction):
                delay_s += _num(slow.param("delay_s", 0.0))
                jitter = _num(slow.param("jitter_s", 0.0))
                if jitter:
                    delay_s += self.rng.uniform(0.0, jitter)
        epoch = self._epoch
        self.in_flight[direction] += copies
        for copy in range(copies):
            extra = self._delay() if copy else 0.0
            timer = self.env.timeout(delay_s + extra)
            timer.callbacks.append(self._courier(frame, direction, epoch, about))

    def _courier(
        self, frame: bytes | Refused, direction: str, epoch: int, about: dict[str, Any],
    ) -> Callable[[simpy.Event], None]:
        return lambda _event: self._deliver(frame, direction, epoch, about)

    def _lost(self, direction: str) -> bool:
        if self.faults.has("network.down"):
            return True
        drop = self.faults.first("network.drop", direction)
        if drop is not None:
            self.faults.consume(drop)
            return True
        if direction == TO_TERMINAL:  # the connection the answer was to go on is gone
            cut = self.faults.first("network.close") or self.faults.first("network.reset")
            if cut is not None:
                self.faults.consume(cut)
                return True
        return False

    def _delay(self) -> float:
        if self.jitter_s:
            return self.latency_s + self.rng.uniform(0.0, self.jitter_s)
        return self.latency_s

    def _deliver(
        self, frame: bytes | Refused, direction: str, epoch: int, about: dict[str, Any],
    ) -> None:
        if self.faults and self.faults.has("network.clog"):  # held until unclogged
            self._held.append((frame, direction, epoch, about))
            return
        self.in_flight[direction] -= 1
        if epoch != self._epoch or self.faults.has("network.down"):
            self.trace.emit("network.lost", direction=direction, **about)
            return
        self.trace.emit("network.delivered", direction=direction, **about)
        self.inbox[direction].put(frame)


class LinkEnd:
    """One end of a :class:`Link` as a :class:`~devices.ports.Transport`: it sends one
    way and receives from the other."""

    __slots__ = ("_inbox", "_link", "_out")

    def __init__(self, link: Link, out: str, into: str) -> None:
        self._link = link
        self._out = out
        self._inbox = link.inbox[into]

    def send(self, frame: bytes | Refused, **about: Any) -> None:
        self._link.send(frame, self._out, **about)

    def receive(self) -> Take:
        return self._inbox.get()

    def discard(self) -> None:
        self._inbox.items.clear()


def _size(frame: bytes | Refused) -> int:
    return len(frame) if isinstance(frame, bytes) else 0


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0

"""The card reader: a card is presented, read, the PIN keyed, and later removed.

Faults: ``card.read_error`` makes reads fail while it lasts;
``card.removed_early`` pulls out the card in the reader now, and any card read
while it lasts is pulled out right after the read.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from devices.fault import ActiveFault, FaultBoard
from devices.ports import TraceSink


class SimCardReader:
    """A chip reader with a PIN pad; reads take simulated time."""

    def __init__(
        self, env: simpy.Environment, trace: TraceSink, read_s: float = 1.5, pin_s: float = 3.0,
    ) -> None:
        self.env = env
        self.trace = trace
        self.read_s = read_s
        self.pin_s = pin_s
        self.card: str | None = None
        self.faults = FaultBoard()

    def apply(self, fault: ActiveFault) -> None:
        self.faults.add(fault)
        if fault.kind == "card.removed_early":
            self._pull_out("removed_early")

    def clear(self, fault: ActiveFault) -> None:
        self.faults.remove(fault)

    @property
    def card_present(self) -> bool:
        return self.card is not None

    def power_off(self) -> None:
        """The terminal lost power: the card it held is forgotten (no event: nobody saw)."""
        self.card = None

    def read(self, card: str, pin: bool) -> Generator[simpy.Event, Any, bool]:
        """Insert and read ``card`` (and take the PIN); True when it was read."""
        self.card = card
        yield self.env.timeout(self.read_s)
        if self.faults.has("card.read_error"):
            self.trace.emit("card.read_failed", card=card)
            self.card = None
            return False
        self.trace.emit("card.read", card=card)
        if pin:
            yield self.env.timeout(self.pin_s)
            self.trace.emit("card.pin_entered", card=card)
        if self.faults.has("card.removed_early"):
            self._pull_out("removed_early")
        return True

    def eject(self) -> None:
        """The customer takes the card back at the end of the transaction."""
        if self.card is not None:
            self._pull_out("taken")

    def _pull_out(self, why: str) -> None:
        if self.card is not None:
            self.trace.emit("card.removed", card=self.card, why=why)
            self.card = None

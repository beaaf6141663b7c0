"""The terminal's wall clock: the scenario's start plus simulated time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from emulator.firmware.messages import field7


class SimTime(Protocol):
    """What the clock reads simulated time from (a simpy environment)."""

    @property
    def now(self) -> float: ...


class WallClock:
    """The simulated date and time, computed once per instant (a record's field 7 and
    its request read it at the same moment)."""

    def __init__(self, env: SimTime, start: datetime) -> None:
        self.env = env
        self.start = start
        self._at: tuple[float, datetime] | None = None

    def now(self) -> datetime:
        now = self.env.now
        if self._at is None or self._at[0] != now:
            self._at = (now, self.start + timedelta(seconds=now))
        return self._at[1]

    def f7(self) -> str:
        """Field 7, transmission date and time, now."""
        return field7(self.now())

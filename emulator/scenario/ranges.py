"""The ranges of a scenario's numbers that its types alone do not state.

Each is checked when the file is loaded (:mod:`emulator.scenario.load`) and listed in
docs/scenario-format.md. They keep every valid scenario finite and on the wire: money
that ISO 8583 can carry, retries and polls that end, dates the calendar holds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from msgspec import Meta

from emulator.scenario.model import MAX_AMOUNT_MINOR

MAX_BALANCE_MINOR = 999_999_999_999_999
"""An account balance, either sign: 15 digits of minor units (9,999,999,999,999.99)."""
MAX_BATCH_MINOR = 9_999_999_999_999_999
"""The sales (or refunds) of a scenario together: ISO 8583 fields 86/88 hold 16 digits."""
MIN_PERIOD_S = 0.01
"""The shortest printer poll or store-and-forward retry period."""
MAX_TRIES = 100
"""At most this many request retries, or reversal sends per attempt."""
MAX_PERIODS = 100_000
"""A hold (``receipt_hold_s``, ``saf_expiry_s``) lasts at most this many of its periods."""
EARLIEST_START, LATEST_START = datetime(1970, 1, 1), datetime(2999, 12, 31, 23, 59, 59)
"""``start``: the calendar keeps its dates (and a retention before them) in range."""

Period = Annotated[float, Meta(ge=MIN_PERIOD_S, le=1e9)]
Tries = Annotated[int, Meta(ge=0, le=MAX_TRIES)]
SETTING_TYPES: dict[str, Any] = {
    "printer_poll_s": Period, "saf_retry_s": Period,
    "request_retries": Tries, "reversal_tries": Tries,
}
"""The settings whose range is narrower than their type's (seconds > 0, counts >= 0)."""
PERIODS = (("printer_poll_s", "receipt_hold_s"), ("saf_retry_s", "saf_expiry_s"))
"""(period, the hold it repeats over)."""


def too_many_periods(policy: object, overrides: dict[str, object]) -> tuple[str, str] | None:
    """(key, message) when a hold repeats its period more than ``MAX_PERIODS`` times."""
    for period, hold in PERIODS:
        every, span = float(getattr(policy, period)), float(getattr(policy, hold))
        if span / every > MAX_PERIODS:
            key = period if period in overrides else hold
            return (f"terminal.{key}", f"{hold} = {span:g} s is {span / every:,.0f} times "
                    f"{period} = {every:g} s; at most {MAX_PERIODS:,}")
    return None


def start_error(start: datetime) -> str | None:
    """Why ``start`` (naive UTC) is out of range; None when it is not."""
    if EARLIEST_START <= start <= LATEST_START:
        return None
    return f"must be from {EARLIEST_START:%Y-%m-%d} to {LATEST_START:%Y-%m-%dT%H:%M:%S}"


__all__ = ["MAX_AMOUNT_MINOR", "MAX_BALANCE_MINOR", "MAX_BATCH_MINOR", "SETTING_TYPES",
           "start_error", "too_many_periods"]

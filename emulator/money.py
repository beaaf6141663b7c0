"""Money is exact: integers of minor units inside, decimal strings outside."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MAX_DIGITS = 30
"""Digits before the point that an amount may have at all (tighter ranges are the caller's)."""


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_minor(value: str | int | float) -> int:
    """``"12.50"`` (or 12.5, or 12) to 1250 minor units; ValueError when not exact to 2 places."""
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {_shown(value)}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not an amount: {_shown(value)}") from None
    if not amount.is_finite():
        raise ValueError(f"not an amount: {_shown(value)}")
    if amount and amount.adjusted() > MAX_DIGITS:
        raise ValueError(f"too large: {_shown(value)}")
    minor = amount * 100
    if minor != minor.to_integral_value():
        raise ValueError(f"more than two decimals: {_shown(value)}")
    return int(minor)


def format_minor(minor: int) -> str:
    """1250 to ``"12.50"``; negative amounts keep their sign."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole}.{cents:02d}"

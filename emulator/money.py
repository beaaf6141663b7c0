"""Money is exact: integers of minor units inside, decimal strings outside."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def parse_minor(value: str | int | float) -> int:
    """``"12.50"`` (or 12.5, or 12) to 1250 minor units; ValueError when not exact to 2 places."""
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    minor = amount * 100
    if minor != minor.to_integral_value():
        raise ValueError(f"more than two decimals: {value!r}")
    return int(minor)


def format_minor(minor: int) -> str:
    """1250 to ``"12.50"``; negative amounts keep their sign."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole}.{cents:02d}"

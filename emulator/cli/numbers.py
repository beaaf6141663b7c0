"""Number flags of the command line, each checked against its documented range as it is read.

``type=integer(1, 10**9)`` or ``type=number(0, 1e6, low_open=True)`` in an argparse
argument: a value outside the range (or not a finite number) is one line, exit status 2,
before anything runs. The ranges are listed in docs/cli.md and docs/fuzzing.md.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

_SHOWN = 40  # characters of a bad value echoed back


def shown(text: str) -> str:
    """A user's value as quoted in a message: at most ``_SHOWN`` characters."""
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def _fmt(x: float) -> str:
    """1000000 as ``1,000,000``; 0.01 as ``0.01``."""
    if isinstance(x, int) or (x.is_integer() and abs(x) < 1e18):
        return f"{int(x):,}"
    return f"{x:g}"


def integer(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        value = text.strip()
        digits = value.removeprefix("-").removeprefix("+")
        if (not (digits.isascii() and digits.isdigit()) or len(digits) > 30
                or not low <= int(value) <= high):
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {_fmt(low)} to {_fmt(high)}, not {shown(text)}")
        return int(value)

    parse.__name__ = "integer"  # argparse names the type in some messages
    return parse


def number(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in [low, high] (``low_open``: above ``low``)."""
    span = (f"above {_fmt(low)} and at most {_fmt(high)}" if low_open
            else f"from {_fmt(low)} to {_fmt(high)}")

    def parse(text: str) -> float:
        try:
            value = float(text) if len(text) <= 100 else math.nan
        except ValueError:
            value = math.nan
        above = value > low if low_open else value >= low
        if not (math.isfinite(value) and above and value <= high):
            raise argparse.ArgumentTypeError(
                f"must be a number {span}, not {shown(text)}")
        return value

    parse.__name__ = "number"
    return parse

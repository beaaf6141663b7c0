"""Small helpers the benchmarks share: the machine line, medians with their spread, verdicts."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence


def machine() -> str:
    """``python 3.11.7 (CPython) on x86_64, 2 cores, Linux 6.1``: where the numbers come from."""
    return (f"python {platform.python_version()} ({platform.python_implementation()}) on "
            f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
            f"{platform.release()}")


def spread(values: Sequence[float], fmt: str = ",.0f") -> str:
    """``median [min .., max ..]`` of ``values``."""
    return (f"{statistics.median(values):{fmt}}  [min {min(values):{fmt}}, "
            f"max {max(values):{fmt}}]")


def verdict(what: str, value: float, target: float, *, at_least: bool, fmt: str = ",.2f",
            unit: str = "") -> str:
    """``target <what> >= <target>: met (<value>)`` or ``... not met (...)``."""
    met = value >= target if at_least else value <= target
    sign = ">=" if at_least else "<="
    return (f"target {what} {sign} {target:{fmt}}{unit}: {'met' if met else 'not met'} "
            f"({value:{fmt}}{unit})")

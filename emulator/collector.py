"""How the cyclic garbage collector runs while a simulation runs.

A run allocates mostly objects that die young (events, frames, generator
steps) or live to its end (trace events, postings, the oracle's record), and
almost none of them form cycles. With CPython's default generation-0
threshold (700) the collector runs every few sales, promotes what is still
in flight, and so keeps scanning everything the run has kept: about a fifth
of a single terminal's run time, and more for a large fleet. A run raises
the threshold while it runs and restores it after.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_COLLECTION = 50_000
"""The generation-0 threshold while a run runs (CPython's default is 700). With the
default, 1,000 terminals x 10 sales took about 1.3x as long as 10 terminals x 1,000
sales, and one terminal's back-to-back sales spent about 20% of their time in the
collector (benchmarks/throughput.py; see docs/performance.md)."""


@contextmanager
def young_collections(threshold: int = YOUNG_COLLECTION) -> Iterator[None]:
    """Collect generation 0 every ``threshold`` allocations (at least), then restore."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], threshold), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)

"""How the cyclic garbage collector runs while a simulation runs: not at all.

A run allocates mostly objects that die young (events, frames, generator
steps) and are freed by reference counting, or live to its end (trace events,
postings, the oracle's records). Almost none form cycles: the unreachable
objects a run leaves are its own world (environment, processes, devices), a
few hundred whatever the run's length, its faults or its fleet size
(tests/unit/test_collector.py pins this). Automatic collections would
only scan, again and again, what the run keeps: about 5% of a single
terminal's time in young collections, and a full collection now and then
that can take a tenth of a 2,000-sale run (docs/performance.md). So a run
pauses automatic collection while it runs, and restores it after; the world
it leaves is collected as usual afterwards. ``run_scenario`` and ``run_fleet``
keep the pause until they have dropped their world, so that world is freed by
the next young collection rather than promoted, still held, to the
generations only full collections scan.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collection_paused() -> Iterator[None]:
    """No automatic cyclic collection inside; as before after (also on error)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()

"""``posemu fuzz --check-determinism``: a sample of a campaign's runs, run again in two
fresh worker processes, their trace hashes compared.

Each process is spawned, not forked: it imports posemu anew, with its own string-hash
seed, so a run whose trace depends on set or dict order of strings, on the process, or
on anything but its scenario and seed shows up as two different hashes.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import NamedTuple

from emulator.fuzz.runs import run_candidate
from emulator.fuzz.workload import Workload, draw

Hasher = Callable[[Workload, int, Sequence[int]], list[str]]


class TraceMismatch(NamedTuple):
    """A run whose trace differed between the two processes."""

    run: int
    first: str  # trace SHA-256 in the first process
    second: str  # ... and in the second


def trace_hashes(workload: Workload, seed: int, indices: Sequence[int]) -> list[str]:
    """The trace hash of each run of ``indices`` of campaign ``seed``."""
    return [run_candidate(workload, draw(workload, seed, i)).trace_sha256 for i in indices]


def sample(runs: Sequence[int], size: int) -> list[int]:
    """``size`` run indices spread evenly over ``runs`` (all of them when fewer)."""
    if size >= len(runs):
        return list(runs)
    return [runs[k * len(runs) // size] for k in range(size)]


def check(workload: Workload, seed: int, indices: Sequence[int],
          hasher: Hasher = trace_hashes) -> list[TraceMismatch]:
    """Run ``indices`` in two spawned processes at once; the runs whose traces differ."""
    if not indices:
        return []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as one, \
            ProcessPoolExecutor(1, mp_context=context) as two:
        first = one.submit(hasher, workload, seed, list(indices))
        second = two.submit(hasher, workload, seed, list(indices))
        pairs = zip(indices, first.result(), second.result(), strict=True)
    return [TraceMismatch(i, a, b) for i, a, b in pairs if a != b]

"""Scenario loading against its size: a file of N sale steps written, read and validated
(load_scenario: TOML, types, cross-checks) for N doubling; the time per step should stay
flat (linear loading). Target: loading 2N steps takes <= 2.5 x loading N, at the largest N.

    .venv/bin/python benchmarks/loading.py [--steps N] [--runs R]
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import machine, spread, verdict
from emulator.scenario.load import load_scenario

TARGET = 2.5


def write(path: Path, steps: int) -> None:
    """A scenario of ``steps`` sales of 1.00 by one card, one every 10 s, each with an id."""
    with path.open("w", encoding="utf-8") as f:
        f.write('format = 1\n[[cards]]\nid = "a"\npan = "4111111111111111"\n'
                'balance = "99999999.00"\n')
        for i in range(steps):
            f.write(f'[[steps]]\nid = "s{i}"\nat_s = {i * 10}\ndo = "sale"\ncard = "a"\n'
                    'amount = "1.00"\n')


def seconds(path: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        load_scenario(path)
        times.append(time.perf_counter() - started)
    return times


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=80_000,
                        help="the largest file's steps (default 80,000; halved twice)")
    parser.add_argument("--runs", type=int, default=3, help="loads per size (default 3)")
    args = parser.parse_args(argv)
    if args.steps < 4 or args.runs < 1:
        parser.error("--steps must be at least 4 and --runs at least 1")
    sizes = [args.steps // 4, args.steps // 2, args.steps]
    medians: list[float] = []
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"steps{n}.toml"
            write(path, n)
            times = seconds(path, args.runs)
            medians.append(statistics.median(times))
            per_step = [t / n * 1e6 for t in times]
            print(f"{n:>9,} steps ({path.stat().st_size / 1e6:.1f} MB): load s "
                  f"{spread(times, ',.3f')}; us per step {spread(per_step, ',.1f')}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of the process: {peak:,.0f} MB")
    ratio = medians[-1] / medians[-2]
    print(verdict(f"load time x for 2x steps at {sizes[-1]:,}", ratio, TARGET, at_least=False,
                  fmt=",.2f", unit="x"))


if __name__ == "__main__":
    main()

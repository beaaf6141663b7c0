"""A long run's memory against its length: ``posemu run FILE --json`` on soak files of N
steps (sales of 1.00, a settlement after every 200th step), N doubling, each in a fresh
process whose peak resident memory is read when it exits; and the peak of a process that
only loads the same file. A run streams its trace (it keeps no events), so what it holds
grows with its steps only by a small record per step, not by the ~27 events of a sale.
Target: the run's memory beyond loading grows by at most 2 KB a step at the largest N.

    .venv/bin/python benchmarks/long_run.py [--steps N] [--settle-every K]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import machine, verdict

TARGET_BYTES_PER_STEP = 2048
LOAD_ONLY = ("import sys; from emulator.scenario.load import load_scenario; "
             "load_scenario(sys.argv[1])")


def write(path: Path, steps: int, settle_every: int) -> None:
    """``steps`` steps, one every 10 s: sales of 1.00 by one card, and with
    ``settle_every`` > 0 every ``settle_every``-th step a settlement; paper for all of
    their receipts (a 20 m roll runs out after 231, and the sales after it are cancelled)."""
    with path.open("w", encoding="utf-8") as f:
        f.write('format = 1\n[printer]\npaper_m = 1000000.0\n'  # 8.7 cm a receipt
                '[[cards]]\nid = "a"\npan = "4111111111111111"\nbalance = "99999999.00"\n')
        for i in range(steps):
            head = f"[[steps]]\nat_s = {i * 10}\n"  # ids by default: a million fit 64 MiB
            if settle_every and i % settle_every == settle_every - 1:
                f.write(head + 'do = "settle"\n')
            else:
                f.write(head + 'do = "sale"\ncard = "a"\namount = "1.00"\n')


def peak_mb(argv: list[str]) -> tuple[float, float]:
    """Run ``argv`` (its output discarded); its peak resident memory in MB, and seconds."""
    began = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)}: exit {process.returncode}")
    return usage.ru_maxrss / 1024, time.perf_counter() - began


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000,
                        help="the largest file's steps (default 100,000; halved twice)")
    parser.add_argument("--settle-every", type=int, default=200, metavar="K",
                        help="a settlement every K steps (default 200; 0: none)")
    args = parser.parse_args(argv)
    if args.steps < 4 or args.settle_every < 0:
        parser.error("--steps must be at least 4 and --settle-every at least 0")
    posemu = str(Path(sys.executable).with_name("posemu"))
    sizes = [args.steps // 4, args.steps // 2, args.steps]
    beyond: list[float] = []
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"soak{n}.toml"
            write(path, n, args.settle_every)
            loaded, _ = peak_mb([sys.executable, "-c", LOAD_ONLY, str(path)])
            ran, seconds = peak_mb([posemu, "run", str(path), "--json"])
            beyond.append(ran - loaded)
            print(f"{n:>9,} steps ({path.stat().st_size / 1e6:.1f} MB): run {seconds:,.1f} s, "
                  f"peak {ran:,.0f} MB; loading alone peaks at {loaded:,.0f} MB; "
                  f"the run beyond it {ran - loaded:,.0f} MB")
    per_step = (beyond[-1] - beyond[-2]) * 1024 * 1024 / (sizes[-1] - sizes[-2])
    print(verdict(f"bytes a step beyond loading, {sizes[-2]:,} to {sizes[-1]:,} steps",
                  per_step, TARGET_BYTES_PER_STEP, at_least=False, fmt=",.0f"))


if __name__ == "__main__":
    main()

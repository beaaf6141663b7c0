"""Where the time of back-to-back sales goes: a pyinstrument sampling profile.

One terminal, robust profile, full fidelity (the workload of throughput.py),
run once to warm up and once under the sampling profiler; prints the call tree
(frames under 1% of the time hidden).

    .venv/bin/python benchmarks/profile_sales.py [--sales 3000]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pyinstrument import Profiler

from benchmarks.common import machine
from benchmarks.throughput import back_to_back
from emulator.engine.world import run_scenario
from emulator.scenario.load import scenario_from_dict


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=3000, help="sales to profile")
    args = parser.parse_args(argv)
    scenario = scenario_from_dict(back_to_back(args.sales))
    run_scenario(scenario)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    run_scenario(scenario)
    profiler.stop()
    print(machine())
    print(profiler.output_text(unicode=False, color=False))


if __name__ == "__main__":
    main()

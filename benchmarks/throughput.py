"""Simulated sales per second for one terminal: robust profile, full fidelity.

Full fidelity: ISO 8583 frames encoded, MACed and decoded on the link, ESC/POS
receipts rendered with python-escpos and parsed by the printer core, every
event traced, the oracle run. Prints the median of several runs.

    .venv/bin/python benchmarks/throughput.py [--sales N] [--runs R]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from emulator.scenario import scenario_from_dict
from emulator.world import run_scenario


def back_to_back(sales: int) -> dict[str, object]:
    """One card with enough money, ``sales`` sales queued at t = 0, a long roll."""
    return {
        "format": 1, "name": "throughput", "printer": {"paper_m": sales * 0.1 + 10},
        "cards": [{"id": "c", "pan": "4111111111111111", "balance": f"{sales * 10}.00"}],
        "steps": [{"do": "sale", "card": "c", "amount": "1.00"} for _ in range(sales)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    scenario = scenario_from_dict(back_to_back(args.sales))
    rates = []
    for _ in range(args.runs):
        started = time.perf_counter()
        result = run_scenario(scenario)
        wall_s = time.perf_counter() - started
        assert result.passed
        assert all(s.end_state == "approved" for s in result.steps)
        rates.append(args.sales / wall_s)
    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"sales per run: {args.sales}, events per run: {result.events}, "
          f"simulated time: {result.sim_time_s:.0f} s")
    print(f"simulated sales per second (median of {args.runs}): {statistics.median(rates):,.0f}"
          f"  [min {min(rates):,.0f}, max {max(rates):,.0f}]")
    speedup = result.sim_time_s * statistics.median(rates) / args.sales
    print(f"speed-up over real time: {speedup:,.0f}x")


if __name__ == "__main__":
    main()

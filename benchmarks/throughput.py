"""Simulated sales per second for one terminal: robust profile, full fidelity, vs a bare model.

Full fidelity: ISO 8583 frames encoded, MACed and decoded on the link, ESC/POS
receipts rendered with python-escpos and parsed by the printer core, every
event traced, the oracle run, the trace hashed (``Result.trace_sha256`` hashes
when first read; CI's pytest plugin reads it for every run, so it is timed).
The same number of back-to-back sales is run in the bare simpy model of
benchmarks/reference.py, run by run in turn with posemu (so other load on the
machine slows both alike), each timed from a full collection (so neither pays
for the garbage the other left). Prints the medians, the ratio posemu /
reference (target >= 0.2) and posemu's speed-up over real time (target >=
10,000x).

    .venv/bin/python benchmarks/throughput.py [--sales N] [--runs R]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Sequence

from benchmarks.common import machine, spread, verdict
from benchmarks.reference import run_reference
from emulator.engine.world import run_scenario
from emulator.scenario.load import scenario_from_dict

RATIO_TARGET = 0.2
SPEEDUP_TARGET = 10_000.0


def back_to_back(sales: int) -> dict[str, object]:
    """One card with enough money, ``sales`` sales queued at t = 0, a long roll."""
    return {
        "format": 1, "name": "throughput", "printer": {"paper_m": sales * 0.1 + 10},
        "cards": [{"id": "c", "pan": "4111111111111111", "balance": f"{sales * 10}.00"}],
        "steps": [{"do": "sale", "card": "c", "amount": "1.00"} for _ in range(sales)],
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sales", type=int, default=2000, help="sales per run (default 2000)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each (default 5)")
    args = parser.parse_args(argv)
    if args.sales < 1 or args.runs < 1:
        parser.error("--sales and --runs must be at least 1")
    scenario = scenario_from_dict(back_to_back(args.sales))
    rates: list[float] = []
    reference: list[float] = []
    for _ in range(args.runs):
        gc.collect()  # neither pays for the other's garbage
        started = time.perf_counter()
        result = run_scenario(scenario)
        digest = result.trace_sha256  # hashed when read: timed, as CI reads it
        wall_s = time.perf_counter() - started
        assert len(digest) == 64
        assert result.passed
        assert all(s.end_state == "approved" for s in result.steps)
        rates.append(args.sales / wall_s)
        gc.collect()
        started = time.perf_counter()
        reference_sim_s = run_reference(args.sales)
        reference.append(args.sales / (time.perf_counter() - started))
    posemu_rate, reference_rate = statistics.median(rates), statistics.median(reference)
    ratio = posemu_rate / reference_rate
    speedup = result.sim_time_s * posemu_rate / args.sales
    reference_speedup = reference_sim_s * reference_rate / args.sales
    print(machine())
    print(f"sales per run: {args.sales}, runs: {args.runs} of each, interleaved")
    print(f"posemu: events per run: {result.events}, simulated time: {result.sim_time_s:.0f} s")
    print(f"reference: simulated time: {reference_sim_s:.0f} s")
    print(f"posemu simulated sales per second (median of {args.runs}): {spread(rates)}")
    print(f"reference simulated sales per second (median of {args.runs}): {spread(reference)}")
    print(f"ratio posemu / reference: {ratio:.3f}")
    print(f"posemu speed-up over real time: {speedup:,.0f}x "
          f"(reference: {reference_speedup:,.0f}x)")
    print(verdict("ratio posemu / reference", ratio, RATIO_TARGET, at_least=True, fmt=".3f"))
    print(verdict("speed-up over real time", speedup, SPEEDUP_TARGET, at_least=True,
                  fmt=",.0f", unit="x"))


if __name__ == "__main__":
    main()

"""Fresh scenarios per second on one core: validate, build a world, run, judge, hash.

Each scenario is built anew from a dict (scenario_from_dict) with its own seed
(network jitter is on, so the seed changes the timing) and its own amounts, and
run by run_scenario in a new World with the oracle: three transactions (sale,
sale, refund) and two faults that fire (the first sale's request is dropped on
its way to the bank and retried; the second sale's receipt jams and is reprinted
when the jam clears). Every scenario must end as expected (approved, approved,
refunded, no anomaly, the balances its amounts give) with both faults started,
or the benchmark fails. Each run's trace is hashed (``Result.trace_sha256``, as
CI's pytest plugin reads it). Target: >= 1,000 scenarios per second.

    .venv/bin/python benchmarks/fresh.py [--scenarios N] [--runs R]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Sequence
from typing import Any

from benchmarks.common import machine, spread, verdict
from emulator.engine.world import run_scenario
from emulator.money import format_minor
from emulator.scenario.load import scenario_from_dict

TARGET = 1000.0
END_STATES = {"s1": "approved", "s2": "approved", "r1": "refunded"}
FAULTS = ("network.drop", "printer.paper_jam")
REFUND_MINOR = 300


def fresh(n: int) -> dict[str, Any]:
    """Scenario ``n``: its seed and amounts come from ``n``; its expectations too."""
    sale1, sale2 = 1000 + n % 4000, 500 + n * 7 % 2000
    return {
        "format": 1, "name": f"fresh-{n}", "seed": n,
        "network": {"jitter_s": 0.02},
        "cards": [{"id": "alice", "pan": "4111111111111111", "balance": "500.00"},
                  {"id": "bob", "pan": "4242424242424242", "balance": "100.00"}],
        "steps": [
            {"id": "s1", "do": "sale", "card": "alice", "amount": format_minor(sale1)},
            {"id": "s2", "do": "sale", "card": "bob", "amount": format_minor(sale2), "at_s": 60},
            {"id": "r1", "do": "refund", "card": "alice", "amount": format_minor(REFUND_MINOR),
             "at_s": 120},
        ],
        "faults": [
            {"fault": "network.drop", "on": "terminal.request_sent", "step": "s1",
             "direction": "to_bank"},
            {"fault": "printer.paper_jam", "on": "printer.job_started", "step": "s2",
             "for_s": 20},
        ],
        "expect": {
            "anomalies": [], "end_states": END_STATES,
            "balances": {"alice": format_minor(50000 - sale1 + REFUND_MINOR),
                         "bob": format_minor(10000 - sale2),
                         "merchant": format_minor(sale1 + sale2 - REFUND_MINOR)},
        },
    }


def run_one(n: int) -> int:
    """Build and run scenario ``n``, check it ended as expected; its number of events."""
    result = run_scenario(scenario_from_dict(fresh(n)))
    digest = result.trace_sha256  # hashed when read: CI (the pytest plugin) reads it
    assert len(digest) == 64
    assert result.passed, (n, result.failures)
    assert {s.id: s.end_state for s in result.steps} == END_STATES, n
    started = tuple(e.fields["fault"] for e in result.trace.events if e.name == "fault.started")
    assert started == FAULTS, (n, started)
    return result.events


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=500,
                        help="scenarios per run (default 500)")
    parser.add_argument("--runs", type=int, default=5, help="runs (default 5)")
    args = parser.parse_args(argv)
    if args.scenarios < 1 or args.runs < 1:
        parser.error("--scenarios and --runs must be at least 1")
    rates: list[float] = []
    events: set[int] = set()
    for run in range(args.runs):
        first = run * args.scenarios  # a new seed for every scenario of every run
        gc.collect()  # each run starts with nothing left over to collect
        started = time.perf_counter()
        for n in range(first, first + args.scenarios):
            events.add(run_one(n))
        rates.append(args.scenarios / (time.perf_counter() - started))
    print(machine())
    print(f"scenarios per run: {args.scenarios}, runs: {args.runs}, each: 3 transactions, "
          f"2 faults, oracle; events per scenario: {min(events)}-{max(events)}")
    states = ", ".join(f"{step}={state}" for step, state in END_STATES.items())
    print(f"every scenario ended as expected: {states}, no anomaly, both faults fired")
    print(f"fresh scenarios per second (median of {args.runs}): {spread(rates)}")
    print(verdict("fresh scenarios per second", statistics.median(rates), TARGET,
                  at_least=True, fmt=",.0f"))


if __name__ == "__main__":
    main()

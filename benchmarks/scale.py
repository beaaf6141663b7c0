"""Scale: one acquirer serving N terminals, S sales each over a simulated day.

For each N of ``--terminals`` (default 10, 100, 1000) it runs a fleet
(emulator/engine/fleet.py) of N terminals, each doing ``--sales`` sales (default 100)
spread evenly over a simulated business day and settling at its end, robust
profile, full fidelity, the trace streamed to a temporary file. Then it runs
``--length`` terminals (default 100) for 10 such days, to see how memory grows
with the length of the run (``--days`` days: 10 by default). Every point runs in
a fresh child process (``--one N S DAYS``) so its peak resident memory
(ru_maxrss) is its own. With ``--faults`` each terminal's day also lists three
faults that act once (``count = 1``) and that the robust firmware gets every
sale approved through: a request lost, a request doubled, an answer 5 s late.

Prints per point: wall time (median of ``--runs`` fresh processes for points of
at most 10,000 transactions, ``--large-runs`` above), transactions per second, peak
RSS and its growth over the child's RSS before the fleet was built, the trace
file's size; then the growth ratios and a verdict per target: time per 10x
terminals <= 13x (linear within 1.3x), time per 10x run length <= 13x, and
memory flat in run length: peak RSS for the longer run at most 1.3x. The bytes kept
per extra transaction are printed too (nothing need stay: the terminals clear
their journals at settlement, the oracle judges and forgets each step then, the
bank forgets a closed batch after ``[bank] retention_s``, no trace events are
kept).

    .venv/bin/python benchmarks/scale.py [--terminals 10,100,1000] [--sales 100]
        [--length 100] [--days 10] [--faults] [--runs 3] [--large-runs 1]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import machine
from emulator.engine.fleet import run_fleet
from emulator.scenario.load import scenario_from_dict

DAY_S = 86_400.0
OPEN_S = 23 * 3600.0
"""Sales happen in the first 23 hours of a day; the terminal settles half an hour later."""
SMALL = 10_000
"""Points of at most this many transactions are short and noisy: run them ``--runs`` times."""
TIME_TARGET = 13.0
"""Wall time may grow at most 13x per 10x transactions: linear within 1.3x."""
FLAT_TARGET = 1.3
"""Peak memory for 10x the run length may be at most 1.3x: what a day holds (the bank's
postings and duplicate records, the journals, the oracle's records of steps not yet
judged) is kept, what earlier days held is not."""


def day_of_sales(sales: int, days: int = 1, faults: bool = False) -> dict[str, object]:
    """``sales`` 1.00 sales a day on one shared card, evenly spread over the business
    day, and the day's settlement; ``days`` such days. With ``faults``, each day a
    request is lost, one doubled and one answered 5 s late, each fault acting once."""
    steps: list[dict[str, object]] = []
    listed: list[dict[str, object]] = []
    for day in range(days):
        start = day * DAY_S
        steps += [{"do": "sale", "card": "c", "amount": "1.00",
                   "at_s": start + i * OPEN_S / sales} for i in range(sales)]
        steps.append({"do": "settle", "at_s": start + OPEN_S + 1800})
        if faults:
            listed += [
                {"fault": "network.drop", "direction": "to_bank", "count": 1,
                 "at_s": start + OPEN_S / 4},
                {"fault": "network.duplicate", "direction": "to_bank", "count": 1,
                 "at_s": start + OPEN_S / 2},
                {"fault": "bank.timeout", "delay_s": 5, "count": 1,
                 "at_s": start + 3 * OPEN_S / 4},
            ]
    return {
        "format": 1, "name": f"scale: {sales} sales a day, settled, {days} days",
        "printer": {"paper_m": sales * days * 0.1 + 10},
        "cards": [{"id": "c", "pan": "4111111111111111", "balance": "100000000.00"}],
        "steps": steps, "faults": listed,
    }


def rss_kib() -> int:
    """Peak resident set size of this process so far, KiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def one(terminals: int, sales: int, days: int = 1, faults: bool = False) -> dict[str, Any]:
    """Run one fleet in this process; what it measured, as a JSON-able dict."""
    run_fleet(scenario_from_dict(day_of_sales(1)), 1)  # warm up: lazy imports, caches
    scenario = scenario_from_dict(day_of_sales(sales, days, faults))
    base = rss_kib()
    with tempfile.TemporaryDirectory(prefix="posemu-scale-") as tmp:
        path = Path(tmp) / "fleet.jsonl"
        with open(path, "wb", buffering=1 << 20) as sink:
            started = time.perf_counter()
            result = run_fleet(scenario, terminals, trace_sink=sink)
            wall_s = time.perf_counter() - started
        trace_bytes = path.stat().st_size
    peak = rss_kib()
    transactions = terminals * sales * days
    if (result.end_states != {"approved": transactions, "settled": terminals * days}
            or result.anomaly_total):
        raise SystemExit(f"not every sale approved and settled: {dict(result.end_states)}, "
                         f"{dict(result.anomaly_counts)}")
    return {
        "terminals": terminals, "sales": sales, "days": days, "transactions": transactions,
        "events": result.events, "postings": result.postings, "wall_s": wall_s,
        "sim_time_s": result.sim_time_s, "base_rss_kib": base, "peak_rss_kib": peak,
        "trace_bytes": trace_bytes, "trace_sha256": result.trace_sha256,
    }


def measure(terminals: int, sales: int, args: argparse.Namespace,
            days: int = 1) -> dict[str, Any]:
    """Fresh child processes of one point: median wall time, largest peak RSS."""
    runs = args.runs if terminals * sales * days <= SMALL else args.large_runs
    rows = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(terminals), str(sales), str(days),
             *(["--faults"] if args.faults else [])],
            check=True, capture_output=True, text=True,
        ).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    if len({r["trace_sha256"] for r in rows}) != 1:
        raise SystemExit(f"{terminals} x {sales}: runs gave different traces")
    walls = [r["wall_s"] for r in rows]
    point = dict(rows[0])
    point.update(wall_s=statistics.median(walls), wall_min_s=min(walls), wall_max_s=max(walls),
                 peak_rss_kib=max(r["peak_rss_kib"] for r in rows),
                 base_rss_kib=min(r["base_rss_kib"] for r in rows))
    return point


def show(p: dict[str, Any]) -> str:
    grown = (p["peak_rss_kib"] - p["base_rss_kib"]) / 1024
    return (f"{p['terminals']:>6} {p['sales']:>6} {p['days']:>4} {p['transactions']:>9,} "
            f"{p['events']:>11,} "
            f"{p['wall_s']:>8.1f} {p['transactions'] / p['wall_s']:>8,.0f} "
            f"{p['peak_rss_kib'] / 1024:>8.1f} {grown:>8.1f} "
            f"{grown * 2**20 / p['transactions']:>9,.0f} {p['trace_bytes'] / 2**20:>9.1f}")


def target(what: str, value: float, limit: float, unit: str = "") -> str:
    met = "met" if value <= limit else "not met"
    return f"target {what} <= {limit:,.1f}{unit}: {met} ({value:,.2f}{unit})"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--terminals", default="10,100,1000",
                        help="fleet sizes, comma-separated (default 10,100,1000)")
    parser.add_argument("--sales", type=int, default=100, help="sales per terminal (default 100)")
    parser.add_argument("--length", type=int, default=100,
                        help="fleet size run again for --days days (default 100; 0: skip)")
    parser.add_argument("--days", type=int, default=10,
                        help="days of the longer run (default 10)")
    parser.add_argument("--faults", action="store_true",
                        help="each day, three faults that act once (see above)")
    parser.add_argument("--runs", type=int, default=3, help=(
        f"fresh processes per point of at most {SMALL:,} transactions (default 3)"))
    parser.add_argument("--large-runs", type=int, default=1,
                        help="fresh processes per larger point (default 1)")
    parser.add_argument("--one", nargs=3, type=int, metavar=("N", "SALES", "DAYS"),
                        help="run one point in this process and print it as JSON")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(*args.one, faults=args.faults)))
        return
    sizes = sorted({int(n) for n in args.terminals.split(",") if n.strip()})
    if (not sizes or min(sizes) < 1 or args.sales < 1 or min(args.runs, args.large_runs) < 1
            or args.length < 0 or args.days < 2):
        parser.error("--terminals, --sales, --runs and --large-runs must be at least 1, "
                     "--days at least 2")

    print(machine())
    print(f"python {sys.version.split()[0]} {platform.python_implementation()}, "
          f"{platform.machine()}; runs per point (a fresh process each): {args.runs} up to "
          f"{SMALL:,} transactions, {args.large_runs} above; wall time is their median")
    print(f"workload: robust profile, 1.00 sales spread evenly over {OPEN_S / 3600:.0f} "
          "simulated hours, then the day's settlement; one shared card, trace streamed "
          "to a temporary file"
          + ("; each day a request lost, one doubled, one answered late" if args.faults
             else ""))
    print(f"{'N':>6} {'sales':>6} {'days':>4} {'txns':>9} {'events':>11} {'wall s':>8} "
          f"{'txn/s':>8} "
          f"{'peak MiB':>8} {'grew MiB':>8} {'B/txn':>9} {'trace MiB':>9}")
    by_size = []
    for n in sizes:
        by_size.append(measure(n, args.sales, args))
        print(show(by_size[-1]), flush=True)
    longer = None
    if args.length:
        short = next((p for p in by_size if p["terminals"] == args.length), None)
        if short is None:
            short = measure(args.length, args.sales, args)
            print(show(short), flush=True)
        longer = measure(args.length, args.sales, args, days=args.days)
        print(show(longer), flush=True)

    verdicts = []
    for a, b in itertools.pairwise(by_size):
        scale = b["transactions"] / a["transactions"]
        per_10x = (b["wall_s"] / a["wall_s"]) ** (1 / math.log10(scale))
        print(f"terminals {a['terminals']} -> {b['terminals']}: transactions x{scale:g}, "
              f"wall time x{b['wall_s'] / a['wall_s']:.2f} (per 10x: x{per_10x:.2f}), "
              f"peak RSS x{b['peak_rss_kib'] / a['peak_rss_kib']:.2f}")
        verdicts.append(target(f"time per 10x terminals ({a['terminals']} -> {b['terminals']})",
                               per_10x, TIME_TARGET, "x"))
    if longer is not None and short is not None:
        grew_kib = longer["peak_rss_kib"] - short["peak_rss_kib"]
        more = longer["transactions"] - short["transactions"]
        per_txn = max(grew_kib, 0) * 1024 / more
        longer_x = (longer["wall_s"] / short["wall_s"]) ** (1 / math.log10(args.days))
        print(f"run length x{args.days} at {args.length} terminals ({short['days']} -> "
              f"{longer['days']} days of {short['sales']} sales): wall time "
              f"x{longer['wall_s'] / short['wall_s']:.2f} (per 10x: x{longer_x:.2f})"
              f", peak RSS {short['peak_rss_kib'] / 1024:.1f} -> "
              f"{longer['peak_rss_kib'] / 1024:.1f} MiB (x"
              f"{longer['peak_rss_kib'] / short['peak_rss_kib']:.2f}), {per_txn:,.0f} bytes "
              f"per extra transaction; events x{longer['events'] / short['events']:.1f}, "
              f"trace file x{longer['trace_bytes'] / short['trace_bytes']:.1f} (on disk, "
              "not in memory)")
        verdicts.append(target("time per 10x run length", longer_x, TIME_TARGET, "x"))
        verdicts.append(target(f"peak RSS for x{args.days} the run length (flat)",
                               longer["peak_rss_kib"] / short["peak_rss_kib"], FLAT_TARGET, "x"))
    for line in verdicts:
        print(line)


if __name__ == "__main__":
    main()

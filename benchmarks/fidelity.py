"""What one sale's fidelity costs, part by part, against the budget of target (2).

Every posemu sale, whatever its firmware and bank logic, encodes its 0200 and 0210
with their MAC, decodes both and checks the MAC, renders a receipt to ESC/POS bytes
and feeds it through the printer core (with a new STAN and RRN, as every sale's is),
and keeps its trace events and writes them as the lines the trace hash reads. This
times each part alone (``timeit``, best of ``--runs``, on frames and receipts cycled
through more than any cache holds, so no cache is hit that a sale would not hit;
the kept events are let go after each sale's worth, where a run keeps them all),
sums them, and sets the sum against the
plain-simpy reference sale (benchmarks/reference.py) and a whole posemu sale
(benchmarks/throughput.py's workload), measured in the same run. Target (2) asks a
sale to take at most 5 reference sales; the best ratio these parts alone would allow
is the reference sale over their sum.

    .venv/bin/python benchmarks/fidelity.py [--runs 7] [--calls 10000] [--sales 2000]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import statistics
import time
import timeit
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from benchmarks.common import machine
from benchmarks.reference import reference_rates
from benchmarks.throughput import back_to_back
from devices.bank.acquirer import Account, Acquirer
from devices.iso8583 import message
from devices.printer.core import PrinterCore
from devices.printer.receipt import ReceiptData, render
from devices.printer.stream import MEMO_LIMIT
from emulator.engine.trace import Event, Trace
from emulator.engine.wiring import MAC_KEY
from emulator.engine.world import run_scenario
from emulator.scenario.load import scenario_from_dict

DISTINCT = 4 * MEMO_LIMIT
"""Distinct frames and receipts to cycle through: four times what the printer's line
memo holds (the decode caches hold 32), so each receipt's STAN line misses it, as a
sale's does."""
PAN = "4111111111111111"
START = datetime(2026, 11, 22, 9, 0)
RATIO_TARGET = 0.2


class _Clock:
    now = 1.5


def best_us(action: Callable[[], object], number: int, repeat: int) -> float:
    """The fastest of ``repeat`` timings of ``number`` calls, in µs a call."""
    return min(timeit.repeat(action, number=number, repeat=repeat)) / number * 1e6


def cycling(items: Sequence[Any]) -> Callable[[], Any]:
    """A call that returns the next of ``items``, round and round."""
    it: Iterator[Any] = itertools.cycle(items)
    return it.__next__


def sale_request(n: int) -> dict[str, str]:
    """A sale's 0200 fields, with STAN and time of its own."""
    when = START + timedelta(seconds=n)
    return {"t": "0200", "2": PAN, "3": "000000", "4": "000000000100",
            "7": when.strftime("%m%d%H%M%S"), "11": f"{n % 1_000_000:06d}",
            "12": when.strftime("%H%M%S"), "13": when.strftime("%m%d"), "22": "051",
            "41": "TERM0001", "42": "MERCHANT0000001", "49": "978"}


def receipt(n: int) -> ReceiptData:
    """A sale's receipt, with STAN and RRN of its own."""
    return ReceiptData(
        merchant="POSEMU DEMO SHOP", merchant_id="MERCHANT0000001", terminal_id="TERM0001",
        when=(START + timedelta(seconds=n)).isoformat(" ", "seconds"), title="SALE",
        pan_last4=PAN[-4:], amount="1.00", result="APPROVED", response_code="00",
        stan=f"{n % 1_000_000:06d}", rrn=f"{n:012d}", approval_code=f"{n % 1_000_000:06d}",
    )


def parts(calls: int, repeat: int) -> dict[str, float]:
    """µs a sale for each fidelity part, timed ``calls`` times (a sale's trace: a tenth)."""
    bank = Acquirer({PAN: Account("c", 10**12)}, mac_key=MAC_KEY)
    requests = [sale_request(n) for n in range(1, DISTINCT + 1)]
    frames = [message.encode(r, MAC_KEY) for r in requests]
    replies = [bank.handle(f, START + timedelta(seconds=n)) for n, f in enumerate(frames)]
    answers = [r.response_fields for r in replies]
    responses = [r.response for r in replies]
    assert all(a is not None for a in answers)
    assert all(r is not None for r in responses)

    def encode(fields: Callable[[], dict[str, str]]) -> Callable[[], bytes]:
        return lambda: message.encode(fields(), MAC_KEY)

    def check(frame: Callable[[], bytes]) -> Callable[[], bool]:
        def decode_and_check() -> bool:
            data = frame()
            message.decode(data)
            return message.mac_ok(data, MAC_KEY)
        return decode_and_check

    receipts = [receipt(n) for n in range(1, DISTINCT + 1)]
    next_receipt = cycling(receipts)
    slips = [render(r) for r in receipts]
    core = PrinterCore(paper_m=1e9)  # paper for every feed of every repeat
    next_slip = cycling(slips)

    result = run_scenario(scenario_from_dict(back_to_back(3)))
    events: list[Event] = list(result.trace)
    per_sale = len(events) / 3
    kept = Trace(_Clock())

    def emit_all() -> None:
        for event in events:
            kept.emit(event.name, **event.fields)
        kept.events.clear()  # a run keeps a sale's events once; so does this

    def lines_all() -> None:  # as Trace.sha256 reads them
        digest = hashlib.sha256()
        for event in events:
            digest.update(event.to_line() + b"\n")

    return {
        "0200 encoded with its MAC": best_us(encode(cycling(requests)), calls, repeat),
        "0210 encoded with its MAC": best_us(encode(cycling(answers)), calls, repeat),
        "0200 decoded, MAC checked": best_us(check(cycling(frames)), calls, repeat),
        "0210 decoded, MAC checked": best_us(check(cycling(responses)), calls, repeat),
        "receipt rendered to ESC/POS": best_us(lambda: render(next_receipt()), calls, repeat),
        "receipt through the printer core": best_us(lambda: core.feed(next_slip()), calls,
                                                    repeat),
        f"{per_sale:.0f} trace events kept": best_us(emit_all, calls // 10, repeat) / 3,
        f"{per_sale:.0f} hash lines written and hashed": best_us(lines_all, calls // 10,
                                                                 repeat) / 3,
    }


def whole_sale_us(sales: int, runs: int) -> float:
    """µs a posemu sale, back to back, trace hashed: the median of ``runs``."""
    scenario = scenario_from_dict(back_to_back(sales))
    run_scenario(scenario)  # warm up: lazy imports, caches
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        digest = run_scenario(scenario).trace_sha256
        times.append(time.perf_counter() - started)
        assert len(digest) == 64
    return statistics.median(times) / sales * 1e6


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timings per part (best kept)")
    parser.add_argument("--calls", type=int, default=10_000,
                        help="calls per timing (a sale's trace events: a tenth)")
    parser.add_argument("--sales", type=int, default=2000,
                        help="sales per run of the whole sale and of the reference")
    args = parser.parse_args(argv)
    if min(args.runs, args.calls // 10, args.sales) < 1:
        parser.error("--runs, --sales and a tenth of --calls must be at least 1")
    print(machine())
    reference_rates(args.sales, 1)  # warm up
    reference_us = 1e6 / statistics.median(reference_rates(args.sales, 7))
    costs = parts(args.calls, args.runs)
    sale_us = whole_sale_us(args.sales, 3)
    rows = {**costs, "the fidelity parts together": sum(costs.values()),
            f"a whole posemu sale (median of 3 x {args.sales:,})": sale_us,
            f"the reference sale (median of 7 x {args.sales:,})": reference_us}
    width = max(len(name) for name in rows)
    print(f"{'one sale: part':<{width}}  {'µs':>7}")
    for name, us in rows.items():
        print(f"{name:<{width}}  {us:>7.2f}")
    total = rows["the fidelity parts together"]
    budget = reference_us / RATIO_TARGET
    print(f"budget of target (2), {1 / RATIO_TARGET:g} reference sales: {budget:.1f} µs; the "
          f"fidelity parts take {total / budget:.0%} of it")
    print(f"ratio now: {reference_us / sale_us:.3f}; with nothing but the fidelity parts "
          f"costing anything: {reference_us / total:.3f} (target >= {RATIO_TARGET})")


if __name__ == "__main__":
    main()

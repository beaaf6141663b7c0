"""A fleet judges each step once nothing can change it and keeps only counts: the
same verdict as judging everything at the end, with a record that stays small however
long the run."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.engine.fleet import Fleet, FleetResult
from emulator.engine.trace import Event
from emulator.judge.oracle import UNATTRIBUTED, Verdict
from emulator.scenario.load import scenario_from_dict
from tests.support import fleet_files, sale

DAY_S = 86_400.0


def both(raw: dict[str, Any], terminals: int = 3) -> tuple[FleetResult, FleetResult]:
    """The fleet judged step by step (counts only) and judged at the end (verdicts)."""
    early = Fleet(scenario_from_dict(raw), terminals).run()
    verdicts: dict[str, Verdict] = {}
    late = Fleet(scenario_from_dict(raw), terminals).run(verdicts.__setitem__)
    assert len(verdicts) == terminals
    return early, late


def same(early: FleetResult, late: FleetResult) -> None:
    assert early.trace_sha256 == late.trace_sha256
    assert early.end_states == late.end_states
    assert early.anomaly_counts == late.anomaly_counts
    assert early.anomalies == late.anomalies


def over_days(raw: dict[str, Any], count: int) -> dict[str, Any]:
    """``raw``'s steps once a day for ``count`` days, each day ending in a settlement
    (targets point into the same day); its faults as they are."""
    steps = raw.get("steps", [])
    ids = [s.get("id", f"t{i + 1}") for i, s in enumerate(steps)]
    last = max((float(s.get("at_s", 0)) for s in steps), default=0.0)
    days = []
    for day in range(count):
        for step_id, step in zip(ids, steps, strict=True):
            copy = dict(step, id=f"{step_id}.{day}", at_s=float(step.get("at_s", 0)) + day * DAY_S)
            if "target" in step:
                copy["target"] = f"{step['target']}.{day}"
            days.append(copy)
        days.append({"id": f"settle.{day}", "do": "settle", "at_s": day * DAY_S + last + 3600})
    expect = {k: v for k, v in raw.get("expect", {}).items() if k == "balances"}
    return {**raw, "steps": days, "expect": expect, "until_s": count * DAY_S}


def test_every_library_scenario_over_days_gets_the_end_verdict() -> None:
    for path in fleet_files():
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        raw.pop("expect", None)
        early, late = both(over_days(raw, 3))
        same(early, late)
        assert late.anomaly_counts[UNATTRIBUTED] == 0, path.name


STEP = st.sampled_from(["sale", "sale", "sale", "refund", "void", "reprint", "reprint_last"])
FAULT = st.one_of(
    st.builds(lambda nth, for_s: {"fault": "printer.paper_jam", "on": "printer.job_started",
                                  "nth": nth, "for_s": for_s},
              st.integers(1, 6), st.sampled_from([5, 60, 4000])),
    st.builds(lambda nth: {"fault": "network.duplicate", "on": "terminal.request_sent",
                           "nth": nth, "direction": "to_bank"}, st.integers(1, 6)),
    st.builds(lambda nth, for_s: {"fault": "terminal.power_loss", "on": "printer.job_started",
                                  "nth": nth, "for_s": for_s},
              st.integers(1, 6), st.sampled_from([1, 30])),
    st.builds(lambda at_s: {"fault": "bank.timeout", "at_s": at_s, "for_s": 20},
              st.sampled_from([0.0, 300.0, DAY_S])),
    st.builds(lambda at_s: {"fault": "network.down", "at_s": at_s, "for_s": 40},
              st.sampled_from([2.0, 310.0, DAY_S + 5])),
    st.builds(lambda on, nth, delay_s: {"fault": "network.latency", "on": on, "nth": nth,
                                        "delay_s": delay_s, "for_s": 1,
                                        "direction": "to_bank"},
              st.sampled_from(["terminal.request_sent", "terminal.reversal_sent"]),
              st.integers(1, 6), st.sampled_from([40, 1000, 7200])),
    st.builds(lambda nth: {"fault": "network.duplicate", "on": "terminal.request_sent",
                           "nth": nth, "direction": "to_terminal", "for_s": 30},
              st.integers(1, 6)),
)
KNOB = st.sampled_from(["retry_as_repeat", "ignore_unmatched_responses", "reverse_on_timeout",
                        "block_sale_while_reversal_pending", "repeat_reversal"])


@st.composite
def workloads(draw: st.DrawFn) -> dict[str, Any]:
    """A few days of sales, refunds, voids and reprints, each day settled, under faults."""
    steps: list[dict[str, Any]] = []
    sales: list[str] = []
    for day in range(draw(st.integers(2, 3))):
        for i, do in enumerate(draw(st.lists(STEP, min_size=1, max_size=4))):
            step: dict[str, Any] = {"id": f"d{day}s{i}", "at_s": day * DAY_S + 100 * i}
            if do in ("sale", "refund"):
                step.update(do=do, card="c", amount="2.00")
                sales += [step["id"]] if do == "sale" else []
            elif do == "void" and sales:
                step.update(do="void", target=draw(st.sampled_from(sales)))
            elif do == "reprint" and sales:
                step.update(do="reprint", target=draw(st.sampled_from(sales)))
            else:
                step.update(do="reprint")
            steps.append(step)
        steps.append({"id": f"d{day}st", "do": "settle", "at_s": day * DAY_S + 1000})
    return {
        "format": 1, "name": "days", "seed": draw(st.integers(0, 9)),
        "terminal": {"profile": draw(st.sampled_from(["robust", "naive"])),
                     **{knob: draw(st.booleans()) for knob in draw(st.sets(KNOB, max_size=2))}},
        "bank": {"duplicate_check": draw(st.booleans()),
                 "retention_s": draw(st.sampled_from([60, DAY_S]))},
        "cards": [{"id": "c", "pan": "4111111111111111", "balance": "1000.00"}],
        "steps": steps, "faults": draw(st.lists(FAULT, max_size=3)),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads())
def test_judging_at_settlements_gives_the_end_verdict(raw: dict[str, Any]) -> None:
    early, late = both(raw)
    same(early, late)
    assert early.end_states.total() == early.transactions


def days_of_sales(count: int, sales: int = 4) -> dict[str, Any]:
    """Each day: ``sales`` sales, the first lost on its way to the bank with its repeat
    (so the bank sees only its reversal), a paper jam, and the settlement."""
    steps: list[dict[str, Any]] = []
    for day in range(count):
        steps += [{"id": f"d{day}s{i}", "do": "sale", "card": "c", "amount": "1.00",
                   "at_s": day * DAY_S + 60 * i} for i in range(sales)]
        steps.append({"id": f"d{day}st", "do": "settle", "at_s": day * DAY_S + 3600})
    return {"format": 1, "name": "days", "steps": steps,
            "cards": [{"id": "c", "pan": "4111111111111111", "balance": "1000.00"}],
            "faults": [{"fault": "printer.paper_jam", "on": "printer.job_started", "nth": 2,
                        "for_s": 30}]
            + [{"fault": "network.drop", "at_s": day * DAY_S, "direction": "to_bank",
                "count": 2} for day in range(count)]}


def most_held(count: int) -> tuple[int, ...]:
    """The most step records, request keys and held steps any terminal's oracle holds, and
    the most transactions, batch closes and reversals without original the bank
    remembers, right after a settlement, over ``count`` days."""
    fleet = Fleet(scenario_from_dict(days_of_sales(count)), 3)
    most = [0] * 6

    def probe(event: Event) -> None:
        if event.fields["result"] == "settled":
            bank = fleet.acquirer.remembered()  # one bank for every terminal
            for unit in fleet.units:
                assert unit.observer is not None
                held = (len(unit.observer), unit.observer.keys, len(unit.held), *bank)
                most[:] = [max(a, b) for a, b in zip(most, held, strict=True)]

    fleet.trace.subscribe("terminal.txn_done", probe)
    result = fleet.run()
    assert result.end_states.total() == 3 * 5 * count
    assert result.end_states["declined"] == 3 * count  # the lost sale, reversed
    return tuple(most)


def test_the_oracles_and_the_banks_record_do_not_grow_with_the_run() -> None:
    short, long = most_held(2), most_held(8)
    assert short == long
    records, keys, held, bank_records, bank_closes, bank_orphans = long
    # another terminal may not have settled yet: at most a day's five steps, and the
    # last receipt's step held from the day before
    assert records <= 5 + 1
    assert keys <= 4 + 1
    assert held <= 1  # the last receipt: a reprint can still copy it
    # the bank (retention: a day) forgets yesterday's sales at today's settlement, and
    # yesterday's close about then: the day's sales of 3 terminals, two closes each
    assert bank_records <= 3 * 3  # the lost sale never reached it
    assert bank_closes <= 3 * 2
    assert bank_orphans <= 3 * 1  # the reversal of the day's lost sale

def late_copy(retention_s: float) -> dict[str, Any]:
    """A sale whose host never answers; its repeat (same key) is held up on the way for
    two hours, while the terminal reverses, shows it failed and settles."""
    return {
        "format": 1, "name": "late copy", "bank": {"retention_s": retention_s},
        "cards": [{"id": "alice", "pan": "4111111111111111", "balance": "1000.00"}],
        "steps": [
            {"id": "s1", "do": "sale", "card": "alice", "amount": "10.00", "at_s": 0},
            {"id": "st", "do": "settle", "at_s": 600},
            {"id": "s2", "do": "sale", "card": "alice", "amount": "10.00", "at_s": 9000},
        ],
        "faults": [
            {"fault": "bank.timeout", "at_s": 0, "for_s": 20},
            {"fault": "network.latency", "direction": "to_bank", "delay_s": 7200,
             "at_s": 25, "for_s": 10},
        ],
    }


CARD = {"id": "c", "pan": "4111111111111111", "balance": "1000.00"}


def test_a_request_still_on_its_way_holds_the_settlement() -> None:
    """The repeat reaches the bank two hours after the settlement, which the bank has
    forgotten by then: it posts, and the money is the step's in both modes."""
    early, late = both(late_copy(retention_s=60), terminals=2)
    same(early, late)
    assert early.anomaly_counts == {"charged_shown_unpaid": 2}
    assert early.end_states == {"charged_shown_unpaid": 2, "settled": 2, "approved": 2}


@pytest.mark.parametrize("delay_s", [
    7200.0,  # on its way for two hours
    595.54,  # at the bank just after the close: weighed after the terminal hears 00
])
def test_a_request_retried_as_new_and_posted_after_the_settlement_is_a_duplicate(
    delay_s: float,
) -> None:
    """The first request of ``s1`` is held up on its way; the terminal retries it as a
    new one (approved), sells again and settles before the first one posts."""
    early, late = both({
        "format": 1, "name": "retried as new",
        "terminal": {"retry_as_repeat": False},
        "network": {"latency_s": 0.01}, "bank": {"processing_s": 0.2},
        "cards": [CARD],
        "steps": [
            sale("s1", card="c", amount="2.00", at_s=0),
            sale("s2", card="c", amount="1.00", at_s=300),
            {"id": "st", "do": "settle", "at_s": 600},
            sale("s3", card="c", amount="3.00", at_s=DAY_S),
        ],
        "faults": [{"fault": "network.latency", "direction": "to_bank", "delay_s": delay_s,
                    "on": "terminal.request_sent", "nth": 1, "for_s": 1}],
    })
    same(early, late)
    assert early.anomaly_counts == {"duplicate_charge": 3}
    assert all(a.step == "s1" for a in early.anomalies)
    assert early.end_states["settled"] == 3


def test_a_reprint_queued_behind_a_job_holds_the_settlement() -> None:
    """``p1``'s copy fails at once on a jammed printer but holds it for its last line;
    power losses free the terminal from waiting, ``p2``'s copy of ``s1`` queues behind
    it, and the settlement is answered before that copy (which completes ``s1``) has
    started."""
    early, late = both({
        "format": 1, "name": "queued reprint", "terminal": {"on_receipt_failure": "ignore"},
        "cards": [{"id": "c", "pan": "4111111111111111", "balance": "100.00"}],
        "steps": [
            sale("s1", card="c", amount="10.00", at_s=0),
            sale("s2", card="c", amount="10.00", at_s=500),
            {"id": "p1", "do": "reprint", "at_s": 1000},
            {"id": "p2", "do": "reprint", "target": "s1", "at_s": 1000.2},
            {"id": "st", "do": "settle", "at_s": 1000.3},
        ],
        "faults": [
            {"fault": "printer.paper_jam", "on": "printer.job_started", "nth": 1, "for_s": 5},
            {"fault": "printer.paper_jam", "at_s": 999, "for_s": 1.5},
            {"fault": "terminal.power_loss", "on": "printer.job_started", "nth": 3,
             "for_s": 0.1},
            {"fault": "terminal.power_loss", "on": "terminal.txn_started", "step": "p2",
             "for_s": 0.1},
        ],
    }, terminals=1)
    same(early, late)
    assert early.anomaly_total == 0
    assert early.end_states == {"approved": 2, "reprint_failed": 2, "settled": 1}


def test_a_mangled_key_is_unattributed_in_both_modes() -> None:
    """A STAN flipped on the way to a bank that checks no MAC: the bank posts under a key
    no request carried, and a terminal that checks nothing takes the answer."""
    early, late = both({
        "format": 1, "name": "mangled", "bank": {"verify_mac": False},
        "terminal": {"ignore_unmatched_responses": False, "verify_mac": False},
        "cards": [CARD],
        "steps": [
            sale("s1", card="c", amount="10.00", at_s=0),
            sale("s2", card="c", amount="10.00", at_s=100),
            {"id": "st", "do": "settle", "at_s": 600},
        ],
        "faults": [{"fault": "network.corrupt", "direction": "to_bank", "field": 11,
                    "on": "terminal.request_sent", "nth": 1, "for_s": 1}],
    }, terminals=2)
    same(early, late)
    assert early.end_states["settled"] == 2  # early judging did take place
    assert early.anomaly_counts == {"paid_not_charged": 2, UNATTRIBUTED: 2}
    assert [(a.terminal, a.step) for a in early.anomalies if a.kind == UNATTRIBUTED] == [
        ("T0000001", ""), ("T0000002", "")]
    assert all("10.00 (sale)" in a.detail for a in early.anomalies if a.kind == UNATTRIBUTED)


def test_a_late_copy_the_bank_still_remembers_moves_nothing() -> None:
    early, late = both(late_copy(retention_s=86_400), terminals=2)
    same(early, late)
    assert early.anomaly_total == 0
    assert early.end_states == {"declined": 2, "settled": 2, "approved": 2}


def test_a_key_mangled_into_a_judged_steps_key_is_that_steps_only_at_the_end() -> None:
    """The one documented difference: ``x``'s advice, given a new STAN at the reboot,
    is mangled on the way (no MACs checked) into the key of ``y``, judged at the
    settlement; the bank posts it."""
    raw = {
        "format": 1, "name": "collision", "seed": 116,
        "terminal": {"dedupe_saf_after_reboot": False,
                     "block_sale_while_reversal_pending": False,
                     "drain_saf_before_settle": False,
                     "offline_floor": "5.00", "verify_mac": False},
        "bank": {"verify_mac": False, "retention_s": 60},
        "printer": {"lines_per_s": 100000.0},
        "cards": [{"id": "c", "pan": "4111111111111111", "balance": "100.00"}],
        "steps": [
            sale("x", card="c", amount="2.00", at_s=0),
            sale("y", card="c", amount="500.00", at_s=995.5),
            {"id": "st", "do": "settle", "at_s": 1040},
        ],
        "faults": [
            {"fault": "bank.down", "at_s": 0, "for_s": 10},
            {"fault": "terminal.power_loss", "on": "terminal.txn_done", "step": "y",
             "for_s": 0.01},
            {"fault": "network.drop", "on": "terminal.rebooted", "direction": "to_bank",
             "count": 1},
            {"fault": "network.corrupt", "at_s": 1045, "for_s": 200, "direction": "to_bank",
             "field": 11, "count": 1},
        ],
    }
    early, late = both(raw, terminals=1)
    assert early.trace_sha256 == late.trace_sha256
    assert late.anomaly_counts == {"duplicate_charge": 1, "charged_shown_unpaid": 1}
    assert early.anomaly_counts == {"duplicate_charge": 1, UNATTRIBUTED: 1}
    assert [a.step for a in late.anomalies] == ["x", "y"]


def test_another_terminals_frame_on_its_way_holds_the_settlement_without_bank_macs() -> None:
    """T0000002's first 0200 has field 41 mangled into T0000004 and is slowed on the way;
    as every terminal sends the same steps, it carries T0000004's STAN and field 7 for
    ``s1``. It posts under T0000004 after T0000004 settled: with the bank checking no
    MAC, any terminal's frame on its way holds a settlement."""
    early, late = both({
        "format": 1, "name": "mangled into another terminal", "seed": 44,
        "bank": {"verify_mac": False, "duplicate_check": False},
        "terminal": {"verify_mac": False},
        "network": {"latency_s": 0.01}, "printer": {"lines_per_s": 1000.0},
        "cards": [CARD],
        "steps": [
            sale("s1", card="c", amount="5.00", at_s=0),
            sale("s2", card="c", amount="1.00", at_s=35),
            {"id": "st", "do": "settle", "at_s": 45},
        ],
        "faults": [
            {"fault": "network.corrupt", "direction": "to_bank", "field": 41, "count": 1,
             "on": "terminal.request_sent", "nth": 1, "for_s": 0.001},
            {"fault": "network.latency", "direction": "to_bank", "delay_s": 0,
             "jitter_s": 300, "on": "terminal.request_sent", "nth": 1, "for_s": 0.001},
        ],
    }, terminals=4)
    same(early, late)
    assert early.anomaly_counts == {"duplicate_charge": 3}
    assert [(a.terminal, a.step) for a in early.anomalies] == [
        ("T0000001", "s1"), ("T0000003", "s1"), ("T0000004", "s1")]

"""What the terminal and the host forget once a batch is settled, and what the oracle
still judges: memory that does not grow with the length of a run."""

from __future__ import annotations

from typing import Any

from emulator.engine.fleet import Fleet
from emulator.engine.world import World
from emulator.scenario.load import scenario_from_dict
from tests.support import end_states, sale

DAY_S = 86_400.0


def scenario(steps: list[dict[str, Any]], **bank: Any) -> dict[str, Any]:
    return {
        "format": 1, "name": "retention", "bank": bank, "steps": steps,
        "cards": [{"id": "alice", "pan": "4111111111111111", "balance": "1000.00"}],
    }


def days(count: int, sales: int) -> list[dict[str, Any]]:
    """``sales`` sales a day, then the day's settlement, ``count`` days."""
    steps = []
    for day in range(count):
        start = day * DAY_S
        steps += [sale(f"d{day}s{i}", at_s=start + 60 * i) for i in range(sales)]
        steps.append({"id": f"d{day}st", "do": "settle", "at_s": start + 3600})
    return steps


def test_settling_clears_the_terminals_journal() -> None:
    world = World(scenario_from_dict(scenario([
        sale("s1", at_s=0), sale("s2", at_s=30), {"id": "st", "do": "settle", "at_s": 60},
        sale("s3", at_s=90),
        {"id": "p1", "do": "reprint", "target": "s1", "at_s": 120},  # settled: gone
        {"id": "p2", "do": "reprint", "at_s": 150},  # the last receipt: still there
    ])))
    result = world.run()
    assert end_states(result) == {
        "s1": "approved", "s2": "approved", "st": "settled", "s3": "approved",
        "p1": "reprint_failed", "p2": "reprinted"}
    disk = world.terminal.journal.disk
    assert list(disk.txns) == ["s3"]
    assert list(disk.receipts) == ["s3"]


def test_the_oracle_judges_what_the_bank_forgot() -> None:
    world = World(scenario_from_dict(scenario(
        [sale("s1", at_s=0), {"id": "st", "do": "settle", "at_s": 30}, sale("s2", at_s=4000)],
        retention_s=3600)))
    result = world.run()
    assert end_states(result) == {
        "s1": "approved", "st": "settled", "s2": "approved"}
    assert result.anomalies == ()
    assert [p.stan for p in world.retired] == ["000001"]
    assert [p.stan for p in world.acquirer.ledger.postings] == ["000003"]
    assert [s.rrn for s in result.steps if s.do == "sale"] == [
        "000000000001", "000000000002"]
    assert result.balances_minor["alice"] == 980_00


def test_a_settling_fleet_holds_about_a_day_however_many_days_run() -> None:
    held = {}
    for count in (2, 5):
        fleet = Fleet(scenario_from_dict(scenario(days(count, 4))), 3)
        result = fleet.run()
        assert result.end_states == {"approved": 3 * 4 * count, "settled": 3 * count}
        assert result.anomaly_total == 0
        assert result.postings == 3 * 4 * count
        held[count] = (
            len(fleet.acquirer.ledger.postings),
            sum(len(u.terminal.journal.disk.txns) for u in fleet.units),
        )
    assert held[5] == held[2]
    postings, records = held[5]
    assert postings <= 3 * 4 * 2  # the last day, and the day before until it ages out
    assert records == 0  # every day ends settled

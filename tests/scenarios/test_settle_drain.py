"""A settlement delivers the store-and-forward queue before its totals
(``drain_saf_before_settle``), within ``settle_drain_s``, or fails cleanly."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from emulator.engine.world import run_scenario
from emulator.judge.result import Result
from emulator.scenario.load import scenario_from_dict
from tests.support import LIBRARY, end_states, sale

ALICE = {"id": "alice", "pan": "4111111111111111", "balance": "100.00"}
SETTLE = {"id": "st", "do": "settle", "at_s": 100}


def run(steps: list[dict[str, Any]], faults: list[dict[str, Any]],
        **terminal: Any) -> Result:
    return run_scenario(scenario_from_dict({
        "format": 1, "name": "drain", "cards": [ALICE], "steps": steps, "faults": faults,
        "terminal": terminal,
    }))


def timed(result: Result, name: str) -> list[dict[str, Any]]:
    """The fields of every event called ``name``, with its time as ``t`` and its place in
    the trace as ``i``."""
    return [{**e.fields, "t": e.t, "i": i} for i, e in enumerate(result.trace) if e.name == name]


def sent(result: Result, step: str) -> list[dict[str, Any]]:
    """The requests of ``step``, in order."""
    return [e for e in timed(result, "terminal.request_sent") if e["step"] == step]


def of_settle(result: Result, name: str) -> dict[str, Any]:
    return next(e for e in timed(result, name) if e["step"] == "st")


@pytest.mark.parametrize(("name", "count"), [
    ("settle_advice_dropped_prevented.toml", 3),
    ("settle_advice_unanswered_prevented.toml", 2),
])
def test_the_campaigns_reproducers_settle_after_a_second_pass(name: str, count: int) -> None:
    """The faults exactly as the seed-777 campaign shrank them: the copy of s1's advice
    sent as the settlement starts is lost too, so the queue needs a second pass, one
    ``saf_retry_s`` after the first; only then do the totals leave, and they agree."""
    data = tomllib.loads((LIBRARY / name).read_text())
    fault = next(f for f in data["faults"] if "count" in f)
    fault["count"] = count
    del data["expect"]
    result = run_scenario(scenario_from_dict(data))
    assert result.anomalies == ()
    assert end_states(result)["st"] == "settled"
    started = of_settle(result, "terminal.txn_started")
    passes = [e for e in sent(result, "s1")
              if started["t"] <= e["t"] < of_settle(result, "terminal.txn_done")["t"]]
    assert [round(e["t"] - started["t"], 2) for e in passes] == [0, 60]
    done = {e["step"]: e["i"] for e in timed(result, "terminal.advice_done")}
    totals = sent(result, "st")
    assert [e["mti"] for e in totals] == ["0500"]
    assert totals[0]["i"] > max(done["s1"], done["s4"])


def test_a_bank_down_through_the_bound_fails_the_settlement_and_sends_no_totals() -> None:
    """The host refuses every pass (at 100, 160 and 220 s); the next would start after
    ``settle_drain_s``, so the settlement fails without a 0500; the advice goes later."""
    result = run([sale(amount="20.00"), SETTLE],
                 [{"fault": "bank.down", "at_s": 0, "for_s": 250}], offline_floor="50.00")
    assert result.anomalies == ()
    assert end_states(result) == {"s1": "approved", "st": "settle_failed"}
    assert of_settle(result, "terminal.txn_done")["reason"] == "queue not delivered"
    assert [e["mti"] for e in sent(result, "st")] == []
    during = [round(e["t"]) for e in sent(result, "s1") if 100 <= e["t"] <= 230]
    assert during == [100, 160, 220]
    assert result.balances_minor == {"alice": 80_00, "merchant": 20_00}


def test_a_longer_bound_waits_for_the_host() -> None:
    result = run([sale(amount="20.00"), SETTLE],
                 [{"fault": "bank.down", "at_s": 0, "for_s": 250}], offline_floor="50.00",
                 settle_drain_s=200)
    assert result.anomalies == ()
    assert end_states(result)["st"] == "settled"
    assert sent(result, "st")[0]["t"] > 280


# The sale's two answers are dropped; when it times out the link goes down for 100 s, so
# its reversal (0400 and both 0401 repeats) is lost and stays queued past the link's return.
REVERSAL_OWED = [
    {"fault": "network.drop", "at_s": 0, "direction": "to_terminal", "count": 2},
    {"fault": "network.down", "on": "terminal.timeout", "for_s": 100},
]


@pytest.mark.parametrize("drain", [True, False])
def test_a_reversal_owed_is_delivered_before_the_totals(drain: bool) -> None:
    result = run([sale(amount="30.00"), {"id": "st", "do": "settle", "at_s": 170}],
                 REVERSAL_OWED, drain_saf_before_settle=drain)
    if drain:
        assert result.anomalies == ()
        assert end_states(result) == {"s1": "declined", "st": "settled"}
        reversed_at = timed(result, "terminal.reversal_done")[0]["i"]
        assert sent(result, "st")[0]["i"] > reversed_at
    else:  # the 0500 counts no sale while the host still holds s1's 30.00
        assert [a.kind for a in result.anomalies] == ["batch_out_of_balance"]
    assert result.balances_minor == {"alice": 100_00, "merchant": 0}

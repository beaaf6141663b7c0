"""Every guard knob: set naive alone it lets its anomaly happen; robust prevents it."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.engine.world import run_scenario
from emulator.scenario.load import scenario_from_dict
from emulator.scenario.profiles import KNOBS

ALICE = {"id": "alice", "pan": "4111111111111111", "balance": "100.00"}


def world(steps: list[dict[str, Any]], faults: list[dict[str, Any]],
          **terminal: Any) -> dict[str, Any]:
    return {
        "format": 1, "name": "knob", "cards": [ALICE], "steps": steps, "faults": faults,
        "terminal": terminal,
    }


SALE = {"id": "s1", "do": "sale", "card": "alice", "amount": "30.00"}
REFUND = {"id": "r1", "do": "refund", "card": "alice", "amount": "20.00"}

# knob -> (scenario, the anomaly its naive value lets happen)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "reverse_on_timeout": (
        world([SALE], [{"fault": "bank.timeout", "at_s": 0, "for_s": 200}]),
        "charged_shown_unpaid",
    ),
    "persist_reversal_first": (
        world([SALE], [{"fault": "terminal.power_loss", "on": "bank.request_received",
                        "for_s": 60}]),
        "charged_shown_unpaid",
    ),
    "retry_as_repeat": (
        world([SALE], [{"fault": "bank.timeout", "on": "bank.request_received",
                        "delay_s": 45, "count": 1}]),
        "duplicate_charge",
    ),
    "block_sale_while_reversal_pending": (
        world(
            [SALE, {"id": "s2", "do": "sale", "card": "alice", "amount": "30.00",
                    "at_s": 170}],
            [{"fault": "network.drop", "at_s": 0, "direction": "to_terminal", "count": 2},
             {"fault": "network.down", "on": "terminal.timeout", "for_s": 100}],
        ),
        "charged_shown_unpaid",
    ),
    "on_receipt_failure": (
        world([SALE], [{"fault": "printer.paper_jam", "on": "printer.job_started",
                        "for_s": 120}]),
        "charged_no_receipt",
    ),
    "confirm_print": (
        world([SALE], [{"fault": "printer.paper_out", "on": "printer.job_started",
                        "for_s": 60}]),
        "charged_no_receipt",
    ),
    "check_response_amount": (
        world([SALE], [{"fault": "bank.respond", "at_s": 0, "code": "10", "amount": "10.00",
                        "count": 1}]),
        "wrong_amount",
    ),
    "verify_mac": (
        world([SALE], [{"fault": "network.corrupt", "on": "bank.response_sent",
                        "direction": "to_terminal", "field": 39}]),
        "charged_shown_unpaid",
    ),
    "ignore_unmatched_responses": (
        world(
            [SALE, {"id": "s2", "do": "sale", "card": "alice", "amount": "30.00",
                    "at_s": 45}],
            [{"fault": "bank.timeout", "on": "bank.request_received", "delay_s": 45,
              "count": 1},
             {"fault": "bank.respond", "at_s": 44, "code": "05", "count": 1}],
            request_retries=0,
        ),
        "paid_not_charged",
    ),
    "query_status_before_retry": (
        world([REFUND], [{"fault": "bank.respond", "at_s": 0, "code": "96", "posted": True,
                          "count": 1}]),
        "duplicate_refund",
    ),
    "dedupe_saf_after_reboot": (
        world(
            [{"id": "s1", "do": "sale", "card": "alice", "amount": "20.00"}],
            [{"fault": "bank.down", "at_s": 0, "for_s": 30},
             {"fault": "terminal.power_loss", "at_s": 200, "for_s": 10}],
            offline_floor="50.00",
        ),
        "duplicate_charge",
    ),
    "repeat_reversal": (
        world([SALE], [{"fault": "bank.timeout", "on": "bank.request_received", "count": 1},
                       {"fault": "network.drop", "on": "terminal.reversal_sent",
                        "direction": "to_bank"}], request_retries=0),
        "charged_shown_unpaid",
    ),
    "reverse_on_card_removed": (
        world([SALE], [{"fault": "card.removed_early", "on": "terminal.request_sent"}]),
        "charged_shown_unpaid",
    ),
    "drain_saf_before_settle": (
        world(
            [{"id": "s1", "do": "sale", "card": "alice", "amount": "20.00"},
             {"id": "st", "do": "settle", "at_s": 40}],
            [{"fault": "bank.down", "at_s": 0, "for_s": 30}],
            offline_floor="50.00",
        ),
        "batch_out_of_balance",
    ),
    "repeat_lost_settlement": (
        world(
            [{"id": "s1", "do": "sale", "card": "alice", "amount": "20.00"},
             {"id": "st1", "do": "settle", "at_s": 40},
             {"id": "s2", "do": "sale", "card": "alice", "amount": "5.00", "at_s": 100},
             {"id": "st2", "do": "settle", "at_s": 160}],
            [{"fault": "network.drop", "on": "terminal.request_sent", "step": "st1",
              "direction": "to_terminal"}],
        ),
        "batch_out_of_balance",
    ),
    "reverse_refused": (  # the first copy refused at 1.62 s, the host back at 1.68 s
        world([REFUND], [{"fault": "bank.down", "at_s": 0, "for_s": 1.68},
                         {"fault": "network.duplicate", "at_s": 0, "for_s": 10}]),
        "refund_shown_failed_but_credited",
    ),
}


def test_every_knob_has_a_case() -> None:
    assert set(CASES) == set(KNOBS)


def test_every_knob_guards_a_known_anomaly() -> None:
    for name, (_, anomaly) in CASES.items():
        assert KNOBS[name].guards == anomaly, name


def _run(data: dict[str, Any], knob: str | None) -> tuple[list[str], dict[str, int]]:
    data = {**data, "terminal": dict(data["terminal"])}
    if knob is not None:
        data["terminal"][knob] = KNOBS[knob].naive
    result = run_scenario(scenario_from_dict(data))
    return sorted(a.kind for a in result.anomalies), result.balances_minor


@pytest.mark.parametrize("knob", sorted(CASES))
def test_naive_value_alone_lets_its_anomaly_happen(knob: str) -> None:
    data, anomaly = CASES[knob]
    kinds, _ = _run(data, knob)
    assert anomaly in kinds


@pytest.mark.parametrize("knob", sorted(CASES))
def test_robust_profile_prevents_it(knob: str) -> None:
    data, _ = CASES[knob]
    kinds, balances = _run(data, None)
    assert kinds == []
    total = balances["alice"] + balances["merchant"]
    assert total == 100_00

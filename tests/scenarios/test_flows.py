"""Clean flows and the firmware's everyday duties, end to end through every device."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.engine.world import run_scenario
from emulator.judge.result import Result
from emulator.scenario.load import scenario_from_dict
from tests.support import end_states, fields_of, sale

CARDS = [
    {"id": "alice", "pan": "4111111111111111", "balance": "100.00"},
    {"id": "old", "pan": "4000000000000002", "balance": "100.00", "expiry": "2025-12"},
    {"id": "frozen", "pan": "4000000000000010", "balance": "100.00", "blocked": True},
]


def run(steps: list[dict[str, Any]], faults: list[dict[str, Any]] | None = None,
        **terminal: Any) -> Result:
    return run_scenario(scenario_from_dict({
        "format": 1, "name": "flow", "cards": CARDS, "steps": steps,
        "faults": faults or [], "terminal": terminal,
    }))


def events(result: Result, name: str) -> list[dict[str, Any]]:
    return fields_of(result.trace, name)


def test_approved_sale_debits_once_and_prints_the_receipt() -> None:
    result = run([sale()])
    assert end_states(result) == {"s1": "approved"}
    assert result.balances_minor == {"alice": 90_00, "old": 100_00, "frozen": 100_00,
                                     "merchant": 10_00}
    receipt = result.steps[0].receipt
    assert receipt is not None
    for text in ("POSEMU DEMO SHOP", "TERM0001", "**** **** **** 1111", "EUR 10.00",
                 "APPROVED", "STAN", "000001", "RRN", "AUTH", "2026-11-22 09:00"):
        assert text in receipt
    assert "4111111111111111" not in receipt


@pytest.mark.parametrize(("card", "amount", "code"), [
    ("alice", "500.00", "51"), ("old", "10.00", "54"), ("frozen", "10.00", "05"),
])
def test_declined_sale_moves_nothing_and_prints_a_declined_slip(
    card: str, amount: str, code: str,
) -> None:
    result = run([sale(card=card, amount=amount)])
    assert end_states(result) == {"s1": "declined"}
    assert result.balances_minor["merchant"] == 0
    done = events(result, "terminal.txn_done")
    assert done[-1]["code"] == code
    assert "DECLINED" in (result.steps[0].receipt or "")


@pytest.mark.parametrize("code", ["05", "51", "54", "91", "96"])
def test_forced_decline_codes_leave_no_anomaly(code: str) -> None:
    result = run([sale()], [{"fault": "bank.respond", "at_s": 0, "code": code, "count": 1}])
    assert end_states(result) == {"s1": "declined"}
    assert result.anomalies == ()


def test_refund_credits_the_card() -> None:
    result = run([{"id": "r1", "do": "refund", "card": "alice", "amount": "7.25"}])
    assert end_states(result) == {"r1": "refunded"}
    assert result.balances_minor["alice"] == 107_25


def test_void_cancels_the_sale_in_the_open_batch() -> None:
    result = run([sale(), {"id": "v1", "do": "void", "target": "s1", "at_s": 60}])
    assert end_states(result) == {"s1": "voided", "v1": "voided"}
    assert result.balances_minor["alice"] == 100_00


def test_void_after_settle_is_refused_by_the_host() -> None:
    result = run([sale(), {"id": "st", "do": "settle", "at_s": 30},
                  {"id": "v1", "do": "void", "target": "s1", "at_s": 60}])
    assert end_states(result) == {"s1": "approved", "st": "settled", "v1": "declined"}
    assert result.balances_minor["alice"] == 90_00


def test_void_of_a_declined_sale_is_refused_locally() -> None:
    result = run([sale(amount="500.00"), {"id": "v1", "do": "void", "target": "s1",
                                           "at_s": 60}])
    assert end_states(result)["v1"] == "declined"
    assert not [e for e in events(result, "terminal.reversal_sent") if e["step"] == "v1"]


def test_reprint_after_a_jam_gives_the_customer_the_receipt() -> None:
    result = run(
        [sale(), {"id": "p1", "do": "reprint", "target": "s1", "at_s": 200}],
        [{"fault": "printer.paper_jam", "on": "printer.job_started", "for_s": 100}],
        profile="naive",
    )
    assert end_states(result) == {"s1": "approved", "p1": "reprinted"}
    assert result.anomalies == ()
    assert "COPY" in (result.steps[1].receipt or "")


def test_settle_in_balance() -> None:
    result = run([sale(), sale("s2", amount="5.00", at_s=20),
                  {"id": "r1", "do": "refund", "card": "alice", "amount": "2.00", "at_s": 40},
                  {"id": "st", "do": "settle", "at_s": 60}])
    assert end_states(result)["st"] == "settled"
    sent = [e for e in events(result, "terminal.request_sent") if e["mti"] == "0500"]
    assert sent[0]["debits"] == 2
    assert sent[0]["debits_minor"] == 15_00
    assert sent[0]["credits_minor"] == 2_00


def test_settle_out_of_balance_when_terminal_and_bank_disagree() -> None:
    result = run(
        [sale(amount="12.50"), {"id": "st", "do": "settle", "at_s": 60}],
        [{"fault": "bank.respond", "at_s": 0, "code": "10", "amount": "7.50", "count": 1}],
        profile="naive",
    )
    assert end_states(result) == {"s1": "wrong_amount", "st": "batch_out_of_balance"}


def test_card_read_error_cancels_before_going_online() -> None:
    result = run([sale()], [{"fault": "card.read_error", "at_s": 0, "for_s": 5}])
    assert end_states(result) == {"s1": "cancelled"}
    assert events(result, "terminal.request_sent") == []


def test_network_down_while_host_refuses_declines_cleanly() -> None:
    result = run([sale()], [{"fault": "bank.down", "at_s": 0, "for_s": 60}])
    assert end_states(result) == {"s1": "declined"}
    assert result.anomalies == ()


def test_stan_survives_power_loss_and_is_never_reused() -> None:
    result = run([sale(), sale("s2", at_s=100)],
                 [{"fault": "terminal.power_loss", "at_s": 50, "for_s": 10}])
    stans = [e["stan"] for e in events(result, "terminal.request_sent")]
    assert stans == sorted(set(stans))
    assert events(result, "terminal.rebooted")


def _lost_reversal(**extra: Any) -> Result:
    return run_scenario(scenario_from_dict({
        "format": 1, "name": "lost reversal", "cards": CARDS, "steps": [sale()],
        "faults": [
            {"fault": "network.drop", "at_s": 0, "direction": "to_terminal", "count": 2},
            {"fault": "network.down", "on": "terminal.timeout"},
        ], **extra,
    }))


def test_reversal_still_queued_at_the_horizon_is_in_doubt() -> None:
    result = _lost_reversal(until_s=3600)
    assert end_states(result) == {"s1": "in_doubt"}
    assert [a.kind for a in result.anomalies] == ["in_doubt"]


def test_reversal_dropped_from_the_queue_leaves_the_customer_charged() -> None:
    result = _lost_reversal(terminal={"saf_expiry_s": 600})
    assert end_states(result) == {"s1": "charged_shown_unpaid"}
    assert events(result, "terminal.queue_expired")


def test_pending_reversal_blocks_the_next_sale() -> None:
    result = run([sale(), sale("s2", at_s=120)], [
        {"fault": "network.drop", "at_s": 0, "direction": "to_terminal", "count": 2},
        {"fault": "network.down", "on": "terminal.timeout", "for_s": 3600},
    ])
    done = {e["step"]: e["result"] for e in events(result, "terminal.txn_done")}
    assert done["s2"] == "refused"
    assert end_states(result) == {"s1": "declined", "s2": "cancelled"}
    assert result.balances_minor["alice"] == 100_00


def test_duplicate_check_off_lets_a_repeat_debit_twice() -> None:
    data = {
        "format": 1, "name": "no dup check", "cards": CARDS, "steps": [sale()],
        "faults": [{"fault": "bank.timeout", "on": "bank.request_received", "delay_s": 45,
                    "count": 1}],
        "bank": {"duplicate_check": False},
    }
    result = run_scenario(scenario_from_dict(data))
    assert [a.kind for a in result.anomalies] == ["duplicate_charge"]


def test_corrupted_request_gets_format_error_and_no_money_moves() -> None:
    result = run([sale()], [{"fault": "network.corrupt", "on": "terminal.request_sent",
                             "direction": "to_bank", "count": 2, "bytes": 3}])
    assert result.anomalies == ()
    assert result.balances_minor["alice"] == 100_00


def test_duplicated_request_is_charged_once() -> None:
    result = run([sale()], [{"fault": "network.duplicate", "at_s": 0, "count": 2}])
    assert end_states(result) == {"s1": "approved"}
    assert result.balances_minor["alice"] == 90_00


def test_latency_beyond_the_timeout_is_absorbed_by_the_robust_firmware() -> None:
    result = run([sale()], [{"fault": "network.latency", "at_s": 0, "delay_s": 40,
                             "for_s": 30}])
    assert result.anomalies == ()


def test_printer_offline_with_naive_confirmation_is_a_silent_loss() -> None:
    result = run([sale()], [{"fault": "printer.offline", "at_s": 0}], confirm_print=False,
                 on_receipt_failure="ignore")
    assert end_states(result) == {"s1": "charged_no_receipt"}


def test_cover_open_forever_makes_the_robust_firmware_undo_the_sale() -> None:
    result = run([sale()], [{"fault": "printer.cover_open", "at_s": 0}])
    assert end_states(result) == {"s1": "cancelled"}
    assert result.balances_minor["alice"] == 100_00
    assert events(result, "terminal.receipt_held")


def test_undo_policy_reverses_at_once() -> None:
    result = run([sale()], [{"fault": "printer.paper_out", "at_s": 0}],
                 on_receipt_failure="undo")
    assert end_states(result) == {"s1": "cancelled"}
    assert not events(result, "terminal.receipt_held")


def test_offline_approval_is_forwarded_as_an_advice() -> None:
    result = run([sale()], [{"fault": "bank.down", "at_s": 0, "for_s": 30}],
                 offline_floor="50.00")
    assert end_states(result) == {"s1": "approved"}
    assert result.balances_minor["alice"] == 90_00
    assert [e["mti"] for e in events(result, "terminal.request_sent")] == ["0200", "0220"]


def test_a_reversal_answered_with_a_format_error_is_repeated() -> None:
    result = run([sale()], [
        {"fault": "network.corrupt", "on": "bank.response_sent", "direction": "to_terminal",
         "field": 39, "count": 2},
        {"fault": "network.corrupt", "on": "terminal.reversal_sent", "direction": "to_bank",
         "bytes": 3},
    ])
    assert result.anomalies == ()
    assert events(result, "terminal.reversal_unsettled")
    assert result.balances_minor["alice"] == 100_00


def test_a_duplicated_settle_whose_first_answer_is_lost_still_settles() -> None:
    result = run([sale(), {"id": "st", "do": "settle", "at_s": 60}], [
        {"fault": "network.duplicate", "at_s": 55, "for_s": 10},
        {"fault": "network.drop", "at_s": 55, "for_s": 10, "direction": "to_terminal"},
    ])
    assert end_states(result) == {"s1": "approved", "st": "settled"}
    assert result.anomalies == ()

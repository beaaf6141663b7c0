"""The pure oracle: hand-built trace events in (the bank's among them), end states and
anomalies out."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from emulator.engine.trace import Event
from emulator.judge import oracle
from emulator.judge.oracle import StepView, Verdict
from tests.support import ROOT

F7 = "0101120000"

SALE = StepView("s1", "sale", 1250)
REFUND = StepView("r1", "refund", 500)


def ev(name: str, **fields: Any) -> Event:
    return Event(0.0, name, fields)


def sent(step: str, stan: str, mti: str = "0200", f7: str = F7) -> Event:
    return ev("terminal.request_sent", step=step, mti=mti, stan=stan, f7=f7)


def shown(step: str, result: str, **fields: Any) -> Event:
    return ev("terminal.txn_done", step=step, result=result, **fields)


def printed(step: str, text: str = "APPROVED", slip: str = "approved",
            receipt_of: str | None = None) -> Event:
    return ev("printer.job_done", step=step, text=text, slip=slip,
              receipt_of=receipt_of or step)


def posting(stan: str, amount: int, *, standing: bool = True, kind: str = "sale",
            f7: str = F7) -> list[Event]:
    """The bank's events of one posting: posted, and reversed unless it still stands."""
    fields = {"kind": kind, "stan": stan, "f7": f7, "amount_minor": amount}
    made = [ev("bank.posted", **fields)]
    return made if standing else [*made, ev("bank.reversed", **fields)]


def judge(steps: list[StepView], events: list[Event], postings: list[list[Event]]) -> Verdict:
    """The oracle on ``events``, then the bank's events of ``postings``."""
    return oracle.judge(steps, [*events, *(e for made in postings for e in made)])


def approved_sale(amount: int = 1250) -> list[Event]:
    """A sale sent once and shown approved for ``amount``, no receipt yet."""
    return [sent("s1", "000001"), shown("s1", "approved", amount_minor=amount)]


def kinds(verdict: Verdict) -> list[str]:
    return [f.kind for f in verdict.anomalies]


# ------------------------------------------------------------------- sales


def test_approved_sale_with_receipt_and_one_posting_is_approved() -> None:
    verdict = judge([SALE], [*approved_sale(), printed("s1")], [posting("000001", 1250)])
    assert verdict.end_states == {"s1": "approved"}
    assert verdict.anomalies == ()
    assert verdict.stans == {"s1": "000001"}


def test_two_standing_postings_are_a_duplicate_charge() -> None:
    events = [sent("s1", "000001"), sent("s1", "000002", mti="0201"),
              shown("s1", "approved", amount_minor=1250), printed("s1")]
    verdict = judge([SALE], events, [posting("000001", 1250), posting("000002", 1250)])
    assert verdict.end_states["s1"] == "duplicate_charge"
    assert kinds(verdict) == ["duplicate_charge"]
    assert "2 postings" in verdict.anomalies[0].detail


def test_two_postings_under_one_key_are_a_duplicate_charge() -> None:
    events = [*approved_sale(), printed("s1")]
    verdict = judge([SALE], events, [posting("000001", 1250), posting("000001", 1250)])
    assert kinds(verdict) == ["duplicate_charge"]


def test_shown_approved_with_nothing_standing_is_paid_not_charged() -> None:
    verdict = judge([SALE], [*approved_sale(), printed("s1")], [])
    assert verdict.end_states["s1"] == "paid_not_charged"
    assert kinds(verdict) == ["paid_not_charged"]
    assert verdict.anomalies[0].step == "s1"


def test_approved_sale_voided_by_a_void_step_is_voided() -> None:
    void = StepView("v1", "void", None, target="s1")
    events = [*approved_sale(), printed("s1"), sent("v1", "000002", mti="0400"),
              shown("v1", "voided", target="s1")]
    verdict = judge([SALE, void], events, [posting("000001", 1250, standing=False)])
    assert verdict.end_states == {"s1": "voided", "v1": "voided"}
    assert verdict.anomalies == ()


def test_void_shown_failed_leaves_the_unbooked_sale_paid_not_charged() -> None:
    void = StepView("v1", "void", None, target="s1")
    events = [*approved_sale(), printed("s1"), shown("v1", "void_failed", target="s1")]
    verdict = judge([SALE, void], events, [])
    assert verdict.end_states == {"s1": "paid_not_charged", "v1": "declined"}


def test_a_different_amount_standing_is_wrong_amount() -> None:
    verdict = judge([SALE], [*approved_sale(1250), printed("s1")], [posting("000001", 1000)])
    assert verdict.end_states["s1"] == "wrong_amount"
    assert kinds(verdict) == ["wrong_amount"]
    assert verdict.anomalies[0].detail == "shown 12.50, bank moved 10.00"


def test_shown_amount_defaults_to_the_step_amount() -> None:
    events = [sent("s1", "000001"), shown("s1", "approved"), printed("s1")]
    assert judge([SALE], events, [posting("000001", 1250)]).end_states["s1"] == "approved"
    assert kinds(judge([SALE], events, [posting("000001", 999)])) == ["wrong_amount"]


def test_charged_without_an_approved_receipt_is_charged_no_receipt() -> None:
    events = [*approved_sale(), ev("printer.job_failed", step="s1", text="SALE\nAMO",
                                   reason="jam", slip="approved", receipt_of="s1")]
    verdict = judge([SALE], events, [posting("000001", 1250)])
    assert verdict.end_states["s1"] == "charged_no_receipt"
    assert kinds(verdict) == ["charged_no_receipt"]
    assert verdict.receipts["s1"] == "SALE\nAMO"


def test_a_completed_reprint_clears_charged_no_receipt() -> None:
    reprint = StepView("p1", "reprint", None, target="s1")
    events = [*approved_sale(), printed("p1", "COPY", slip="copy", receipt_of="s1"),
              shown("p1", "reprinted", target="s1")]
    verdict = judge([SALE, reprint], events, [posting("000001", 1250)])
    assert verdict.end_states == {"s1": "approved", "p1": "reprinted"}
    assert verdict.anomalies == ()
    assert verdict.receipts == {"s1": None, "p1": "COPY"}


def test_a_failed_reprint_does_not_clear_charged_no_receipt() -> None:
    reprint = StepView("p1", "reprint", None, target="s1")
    events = [*approved_sale(),
              ev("printer.job_failed", step="p1", text="", reason="paper_out",
                 slip="copy", receipt_of="s1"),
              shown("p1", "reprint_failed", target="s1")]
    verdict = judge([SALE, reprint], events, [posting("000001", 1250)])
    assert verdict.end_states == {"s1": "charged_no_receipt", "p1": "reprint_failed"}


def test_a_declined_slip_is_not_an_approved_receipt() -> None:
    events = [*approved_sale(), printed("s1", "DECLINED", slip="declined")]
    verdict = judge([SALE], events, [posting("000001", 1250)])
    assert kinds(verdict) == ["charged_no_receipt"]


def test_shown_failed_with_money_standing_is_charged_shown_unpaid() -> None:
    events = [sent("s1", "000001"), shown("s1", "declined", code="91")]
    verdict = judge([SALE], events, [posting("000001", 1250)])
    assert verdict.end_states["s1"] == "charged_shown_unpaid"
    assert kinds(verdict) == ["charged_shown_unpaid"]


def test_nothing_shown_with_money_standing_is_charged_shown_unpaid() -> None:
    verdict = judge([SALE], [sent("s1", "000001")], [posting("000001", 1250)])
    assert verdict.end_states["s1"] == "charged_shown_unpaid"
    assert "terminal lost it" in verdict.anomalies[0].detail


def test_money_standing_while_a_message_is_owed_is_in_doubt() -> None:
    events = [sent("s1", "000001"), shown("s1", "failed"),
              ev("terminal.unresolved", step="s1", what="reversal")]
    verdict = judge([SALE], events, [posting("000001", 1250)])
    assert verdict.end_states["s1"] == "in_doubt"
    assert kinds(verdict) == ["in_doubt"]


def test_no_money_while_a_message_is_owed_is_in_doubt() -> None:
    events = [sent("s1", "000001"), shown("s1", "failed"),
              ev("terminal.unresolved", step="s1", what="reversal")]
    assert judge([SALE], events, []).end_states["s1"] == "in_doubt"


def test_unresolved_for_another_step_does_not_make_this_one_in_doubt() -> None:
    events = [sent("s1", "000001"), shown("s1", "failed"),
              ev("terminal.unresolved", step="s9", what="reversal")]
    verdict = judge([SALE], events, [posting("000001", 1250)])
    assert verdict.end_states["s1"] == "charged_shown_unpaid"


def test_shown_failed_without_money_after_going_online_is_declined() -> None:
    events = [sent("s1", "000001"), shown("s1", "declined", code="05")]
    verdict = judge([SALE], events, [])
    assert verdict.end_states["s1"] == "declined"
    assert verdict.anomalies == ()


def test_a_reversal_alone_counts_as_going_online() -> None:
    events = [ev("terminal.reversal_sent", step="s1", stan="000002"),
              shown("s1", "failed")]
    assert judge([SALE], events, []).end_states["s1"] == "declined"


def test_shown_failed_without_ever_going_online_is_cancelled() -> None:
    verdict = judge([SALE], [shown("s1", "cancelled", reason="card removed")], [])
    assert verdict.end_states["s1"] == "cancelled"
    assert verdict.anomalies == ()
    assert verdict.stans == {"s1": ""}


def test_a_reversed_booking_does_not_count() -> None:
    events = [sent("s1", "000001"), sent("s1", "000002", mti="0201"),
              shown("s1", "approved", amount_minor=1250), printed("s1")]
    bookings = [posting("000001", 1250, standing=False), posting("000002", 1250)]
    verdict = judge([SALE], events, bookings)
    assert verdict.end_states["s1"] == "approved"
    assert verdict.anomalies == ()


def test_non_financial_requests_add_no_money_keys() -> None:
    settle = StepView("b1", "settle", None)
    events = [sent("b1", "000001", mti="0500"), shown("b1", "settled", code="00")]
    verdict = judge([settle], events, [posting("000001", 1250)])
    assert verdict.end_states == {"b1": "settled"}
    assert verdict.stans == {"b1": ""}


# ----------------------------------------------------------------- refunds


def test_refund_shown_refunded_with_one_credit_is_refunded_without_a_receipt() -> None:
    events = [sent("r1", "000001"), shown("r1", "refunded", amount_minor=500)]
    verdict = judge([REFUND], events, [posting("000001", 500, kind="refund")])
    assert verdict.end_states["r1"] == "refunded"
    assert verdict.anomalies == ()


def test_refund_shown_failed_without_credit_is_refund_failed() -> None:
    events = [sent("r1", "000001"), shown("r1", "refund_failed", code="05")]
    verdict = judge([REFUND], events, [])
    assert verdict.end_states["r1"] == "refund_failed"
    assert verdict.anomalies == ()


def test_refund_shown_failed_but_credited() -> None:
    events = [sent("r1", "000001"), shown("r1", "refund_failed", code="96")]
    verdict = judge([REFUND], events, [posting("000001", 500, kind="refund")])
    assert verdict.end_states["r1"] == "refund_shown_failed_but_credited"
    assert kinds(verdict) == ["refund_shown_failed_but_credited"]


def test_two_standing_credits_are_a_duplicate_refund() -> None:
    events = [sent("r1", "000001"), sent("r1", "000002"), shown("r1", "refund_failed")]
    bookings = [posting("000001", 500, kind="refund"), posting("000002", 500, kind="refund")]
    verdict = judge([REFUND], events, bookings)
    assert verdict.end_states["r1"] == "duplicate_refund"
    assert kinds(verdict) == ["duplicate_refund", "refund_shown_failed_but_credited"]


# ------------------------------------------------------------ void, settle


def test_void_shown_voided_while_the_sale_still_stands_is_charged_shown_unpaid() -> None:
    void = StepView("v1", "void", None, target="s1")
    events = [*approved_sale(), printed("s1"), shown("v1", "voided", target="s1")]
    verdict = judge([SALE, void], events, [posting("000001", 1250)])
    assert verdict.end_states == {"s1": "approved", "v1": "charged_shown_unpaid"}
    assert [(f.kind, f.step) for f in verdict.anomalies] == [("charged_shown_unpaid", "v1")]
    assert "12.50 of s1 still stands" in verdict.anomalies[0].detail


def test_settle_out_of_balance_is_batch_out_of_balance() -> None:
    settle = StepView("b1", "settle", None)
    events = [sent("b1", "000009", mti="0500"), shown("b1", "out_of_balance", code="95")]
    verdict = judge([settle], events, [])
    assert verdict.end_states["b1"] == "batch_out_of_balance"
    assert kinds(verdict) == ["batch_out_of_balance"]
    assert "95" in verdict.anomalies[0].detail


# ---------------------------------------------------------------- receipts


def test_the_receipt_reported_is_the_last_printed_for_the_step() -> None:
    events = [*approved_sale(), printed("s1", "FIRST"), printed("s1", "SECOND")]
    verdict = judge([SALE], events, [posting("000001", 1250)])
    assert verdict.receipts == {"s1": "SECOND"}


def test_end_states_follow_step_order() -> None:
    steps = [StepView("b", "sale", 100), StepView("a", "sale", 200)]
    verdict = judge(steps, [], [])
    assert list(verdict.end_states) == ["b", "a"]
    assert verdict.end_states == {"b": "cancelled", "a": "cancelled"}


# ------------------------------------------------------------------ purity


def test_oracle_imports_neither_simpy_nor_devices() -> None:
    """Of ``devices``, only the error tree (a leaf module) comes with the oracle."""
    code = ("import emulator.judge.oracle, sys; print(any(m == 'simpy' or "
            "m.startswith('devices') and m not in ('devices', 'devices.errors') "
            "for m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"

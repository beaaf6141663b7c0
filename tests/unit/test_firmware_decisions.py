"""The firmware's decisions, one by one, without running anything: no simpy, no world."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devices.iso8583.message import encode
from emulator.firmware import decisions as d
from emulator.firmware.journal import QueueEntry, TxnRecord
from emulator.scenario.profiles import PROFILES, Policy, make_policy

ROBUST = PROFILES["robust"]
NAIVE = PROFILES["naive"]
KEY = b"decisions-test-key"


def record(do: str = "sale", state: str = "sent", code: str = "") -> TxnRecord:
    return TxnRecord(step="s1", do=do, mti="0200", stan="000007", f7="1122090000",
                     amount_minor=1000, card="c", state=state, code=code)


def entry(kind: str = "reversal", *, sent: int = 0, armed: bool = False,
          queued_s: float = 0.0) -> QueueEntry:
    return QueueEntry(kind=kind, step="s1", orig_mti="0220", orig_stan="000007",
                      orig_f7="1122090000", amount_minor=1000, reason="68",
                      queued_s=queued_s, sent=sent, armed=armed)


def test_the_core_imports_no_simpy() -> None:
    code = ("import sys, emulator.firmware.decisions, emulator.firmware.books; "
            "print('simpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


# -- the host's answers -------------------------------------------------------------


def response(stan: str = "000007", tid: str = "TERM0001", mti: str = "0210",
             key: bytes = KEY) -> tuple[dict[str, object], bytes]:
    fields: dict[str, str | bytes] = {"t": mti, "11": stan, "39": "00", "41": tid}
    return dict(fields), encode(fields, key)


def verdict(fields: dict[str, object], frame: bytes, policy: Policy) -> str:
    return d.response_verdict(fields, frame, "0210", "000007", "TERM0001", KEY, policy)


def test_the_response_waited_for_is_taken() -> None:
    assert verdict(*response(), ROBUST) == d.OK
    assert verdict(*response(), NAIVE) == d.OK


@pytest.mark.parametrize("other", [{"stan": "000006"}, {"tid": "TERM0002"}, {"mti": "0410"}])
def test_an_unmatched_response_is_ignored_by_the_robust_firmware_only(
    other: dict[str, str],
) -> None:
    fields, frame = response(**other)
    assert verdict(fields, frame, ROBUST) == d.IGNORE
    assert verdict(fields, frame, NAIVE) == d.OK


def test_a_response_whose_mac_fails_is_invalid_unless_macs_are_not_checked() -> None:
    fields, frame = response(key=b"another-key")
    assert verdict(fields, frame, ROBUST) == d.INVALID
    assert verdict(fields, frame, NAIVE) == d.OK


def test_code_of_tells_no_answer_from_an_answer_without_code() -> None:
    assert d.code_of(None) is None
    assert d.code_of({"t": "0210"}) == ""
    assert d.code_of({"39": "05"}) == "05"


@pytest.mark.parametrize(("outcome", "response", "left", "again"), [
    (d.TIMEOUT, None, 1, True),
    (d.INVALID, None, 1, True),
    (d.TIMEOUT, None, 0, False),
    (d.REFUSED, None, 1, False),
    (d.OK, {"39": "00"}, 1, False),
])
def test_a_request_is_retried_only_without_answer_or_refusal_and_with_tries_left(
    outcome: str, response: object, left: int, again: bool,
) -> None:
    assert d.retries(outcome, response, left) is again


def test_a_retry_is_a_repeat_for_the_robust_firmware_and_a_new_request_for_the_naive() -> None:
    assert d.retry_kind(ROBUST) == d.REPEAT
    assert d.retry_kind(NAIVE) == d.NEW


def test_a_refused_retry_counts_as_no_answer() -> None:
    assert d.retry_outcome(d.REFUSED) == d.TIMEOUT
    assert d.retry_outcome(d.INVALID) == d.INVALID
    assert d.retry_outcome(d.OK) == d.OK


@pytest.mark.parametrize(("outcome", "code", "robust", "naive"), [
    (d.OK, "00", d.ACCEPT, d.ACCEPT),
    (d.OK, "10", d.ACCEPT, d.ACCEPT),
    (d.OK, "51", d.DECLINE, d.DECLINE),
    (d.OK, "", d.DECLINE, d.DECLINE),
    (d.OK, "96", d.GIVE_UP, d.DECLINE),
    (d.OK, "30", d.GIVE_UP, d.DECLINE),
    (d.TIMEOUT, None, d.GIVE_UP, d.GIVE_UP),
    (d.INVALID, None, d.GIVE_UP, d.GIVE_UP),
    (d.REFUSED, None, d.UNREACHABLE, d.UNREACHABLE),
])
def test_what_a_sale_does_with_its_answer(outcome: str, code: str | None, robust: str,
                                          naive: str) -> None:
    assert d.sale_action(outcome, code, 1000, ROBUST) == robust
    assert d.sale_action(outcome, code, 1000, NAIVE) == naive


@pytest.mark.parametrize(("amount", "action"), [(500, d.OFFLINE), (501, d.UNREACHABLE)])
def test_a_refused_sale_up_to_the_floor_is_approved_offline(amount: int, action: str) -> None:
    policy = make_policy("robust", {"offline_floor": 500})
    assert d.sale_action(d.REFUSED, None, amount, policy) == action


@pytest.mark.parametrize(("outcome", "code", "robust", "naive"), [
    (d.OK, "00", d.ACCEPT, d.ACCEPT),
    (d.OK, "05", d.DECLINE, d.DECLINE),
    (d.OK, "96", d.QUERY, d.RETRY_NEW),
    (d.TIMEOUT, None, d.QUERY, d.RETRY_NEW),
    (d.REFUSED, None, d.UNREACHABLE, d.UNREACHABLE),
])
def test_what_a_refund_does_with_its_first_answer(outcome: str, code: str | None, robust: str,
                                                  naive: str) -> None:
    assert d.refund_action(outcome, code, ROBUST) == robust
    assert d.refund_action(outcome, code, NAIVE) == naive


@pytest.mark.parametrize(("code", "action"), [
    (None, d.GIVE_UP), ("91", d.GIVE_UP), ("63", d.GIVE_UP), ("05", d.DECLINE),
    ("00", d.ACCEPT), ("10", d.ACCEPT),
])
def test_what_a_final_answer_says(code: str | None, action: str) -> None:
    assert d.answer_action(code) == action


def test_only_a_status_answer_of_00_says_the_original_stands() -> None:
    assert d.status_stands({"39": "00"})
    assert not d.status_stands({"39": "25"})
    assert not d.status_stands(None)


@pytest.mark.parametrize(("field4", "robust"), [
    ("000000000600", 600), (None, 1000), ("12ab", 1000),
])
def test_the_amount_shown_is_the_approved_one_when_the_policy_reads_it(
    field4: str | None, robust: int,
) -> None:
    fields = {} if field4 is None else {"4": field4}
    assert d.approved_minor(fields, 1000, ROBUST) == robust
    assert d.approved_minor(fields, 1000, NAIVE) == 1000


def test_only_a_full_approval_of_another_amount_is_a_changed_amount() -> None:
    assert d.amount_changed("00", 600, 1000)
    assert not d.amount_changed("10", 600, 1000)
    assert not d.amount_changed("00", 1000, 1000)


def test_giving_up_reverses_with_the_reason_of_what_went_wrong_or_forgets() -> None:
    assert d.give_up_reason(d.TIMEOUT, ROBUST) == d.REASON_TIMEOUT
    assert d.give_up_reason(d.INVALID, ROBUST) == d.REASON_INVALID
    assert d.give_up_reason(d.REFUSED, ROBUST) == d.REASON_INVALID
    assert d.give_up_reason(d.TIMEOUT, NAIVE) is None


def test_a_pulled_card_is_reversed_as_a_cancellation_or_forgotten() -> None:
    assert d.card_removed_reason(ROBUST) == d.REASON_CANCEL
    assert d.card_removed_reason(NAIVE) is None


# -- completion and receipts ----------------------------------------------------------


def test_a_sale_completes_in_two_phases_a_refund_in_one() -> None:
    assert d.two_phase(record("sale"))
    assert not d.two_phase(record("refund"))


@pytest.mark.parametrize(("do", "code", "receipt"), [
    ("sale", "00", ("APPROVED", "approved")),
    ("sale", "10", ("PARTIAL APPROVAL", "approved")),
    ("sale", "Y1", ("APPROVED", "approved")),
    ("refund", "00", ("APPROVED", "approved")),
    ("refund", "10", ("APPROVED", "declined")),
])
def test_an_approvals_receipt(do: str, code: str, receipt: tuple[str, str]) -> None:
    assert d.approval_receipt(record(do, code=code)) == receipt


@pytest.mark.parametrize(("first", "roll", "ready"), [
    (0x12, 0x12, True),
    (0x1A, 0x12, False),  # offline
    (0x12, 0x72, False),  # paper end
    (0x12, 0x1E, True),  # paper near end: still prints
    (None, 0x12, False),
    (0x12, None, False),
])
def test_the_printer_is_ready_when_online_with_paper(first: int | None, roll: int | None,
                                                     ready: bool) -> None:
    assert d.printer_ready(first, roll) is ready


@pytest.mark.parametrize(("on_failure", "holds", "undoes"), [
    ("reprint", True, True), ("undo", False, True), ("ignore", False, False),
])
def test_a_receipt_that_did_not_come_out(on_failure: str, holds: bool, undoes: bool) -> None:
    policy = make_policy("robust", {"on_receipt_failure": on_failure})
    assert d.holds_receipt(False, policy) is holds
    assert d.undoes_sale(False, policy) is undoes
    assert not d.holds_receipt(True, policy)
    assert not d.undoes_sale(True, policy)


# -- the store-and-forward queue --------------------------------------------------------


def test_the_robust_firmware_waits_for_the_queue_and_repeats_reversals() -> None:
    assert d.waits_for_queue(ROBUST)
    assert not d.waits_for_queue(NAIVE)
    assert d.reversal_sends(ROBUST) == ROBUST.reversal_tries == 3
    assert d.reversal_sends(NAIVE) == 1


def test_a_reversal_is_a_0400_then_0401_repeats() -> None:
    assert d.reversal_mti(entry(sent=0)) == "0400"
    assert d.reversal_mti(entry(sent=1)) == "0401"


def test_an_advice_sent_again_is_a_0221_only_when_acknowledgements_are_journalled() -> None:
    assert d.advice_mti(entry("advice"), ROBUST) == "0220"
    assert d.advice_mti(entry("advice", sent=1), ROBUST) == "0221"
    assert d.advice_mti(entry("advice", sent=1), NAIVE) == "0220"


def test_an_uncertain_answer_leaves_a_reversal_or_advice_owed() -> None:
    assert d.unsettled("96")
    assert not d.unsettled("00")
    assert not d.unsettled("")


def test_an_unanswered_reversal_is_abandoned_only_when_not_repeated() -> None:
    assert d.abandons(None, NAIVE)
    assert not d.abandons(None, ROBUST)
    assert not d.abandons("00", NAIVE)


def test_a_queued_entry_expires_after_saf_expiry_s() -> None:
    old = entry(queued_s=10.0)
    assert not d.expired(old, 10.0 + ROBUST.saf_expiry_s, ROBUST)
    assert d.expired(old, 10.5 + ROBUST.saf_expiry_s, ROBUST)


@pytest.mark.parametrize(("code", "result"), [
    (None, "void_pending"), ("00", "voided"), ("25", "voided"), ("05", "void_failed"),
])
def test_a_voids_result(code: str | None, result: str) -> None:
    assert d.void_result(code) == result


def test_only_a_standing_sale_can_be_voided() -> None:
    assert d.voidable(record("sale", "completed"))
    assert d.voidable(record("sale", "approved"))
    assert not d.voidable(record("sale", "reversed"))
    assert not d.voidable(record("refund", "completed"))
    assert not d.voidable(None)


@pytest.mark.parametrize(("code", "result"), [
    ("00", "settled"), ("95", "out_of_balance"), ("96", "settle_failed"), ("", "settle_failed"),
])
def test_a_settlements_result(code: str, result: str) -> None:
    assert d.settle_result(code) == result


def test_a_settlement_drains_the_queue_only_when_robust() -> None:
    assert d.drains_before_settle(ROBUST)
    assert not d.drains_before_settle(NAIVE)


@pytest.mark.parametrize(("began", "deadline", "retry", "at"), [
    (100.0, 220.0, 60.0, 160.0),  # a pass every saf_retry_s after the last began
    (160.0, 220.0, 60.0, 220.0),  # the last pass may start right at the deadline
    (220.0, 220.0, 60.0, None),  # the next would be late: the settlement fails
    (100.0, 220.0, 200.0, None),
])
def test_the_next_pass_over_the_queue(began: float, deadline: float, retry: float,
                                      at: float | None) -> None:
    policy = make_policy("robust", {"saf_retry_s": retry})
    assert d.next_drain_pass(began, deadline, policy) == at


def test_a_batch_counts_completed_sales_and_refunds_in_journal_order() -> None:
    records = [record("sale", "completed"), record("refund", "completed"),
               record("sale", "declined"), record("sale", "completed"),
               record("refund", "reversed")]
    debits, credits = d.batch(records)
    assert debits == [records[0], records[3]]
    assert credits == [records[1]]


# -- after power returns --------------------------------------------------------------


def test_at_boot_an_armed_reversal_is_due_only_while_its_request_is_unanswered() -> None:
    assert d.due_at_boot(entry(armed=True), record(state="sent"))
    assert not d.due_at_boot(entry(armed=True), record(state="completed"))
    assert not d.due_at_boot(entry(armed=False), record(state="sent"))
    assert not d.due_at_boot(entry(armed=True), None)


def test_advices_are_reissued_at_boot_only_without_journalled_acknowledgements() -> None:
    assert not d.reissues_advices(ROBUST)
    assert d.reissues_advices(NAIVE)


@pytest.mark.parametrize(("state", "shown", "action"), [
    ("approved", False, d.FINISH), ("approved", True, d.FINISH),
    ("completed", False, d.SHOW), ("completed", True, None),
    ("sent", False, None), ("reversed", False, None),
])
def test_what_a_reboot_does_with_a_record(state: str, shown: bool, action: str | None) -> None:
    assert d.boot_action(record(state=state), shown) == action


def test_only_the_robust_profile_repeats_a_lost_close() -> None:
    assert d.repeats_close(ROBUST)
    assert not d.repeats_close(NAIVE)


@pytest.mark.parametrize(("outcome", "retries", "repeats"), [
    (d.TIMEOUT, 1, 1), (d.INVALID, 1, 1), (d.TIMEOUT, 3, 3), (d.REFUSED, 1, 0),
    (d.TIMEOUT, 0, 0),
])
def test_close_repeats_follow_request_retries_unless_refused(
    outcome: str, retries: int, repeats: int,
) -> None:
    policy = make_policy("robust", {"request_retries": retries})
    assert d.close_repeats(outcome, policy) == repeats
    assert d.close_repeats(outcome, make_policy("naive", {"request_retries": retries})) == 0


@pytest.mark.parametrize(("code", "took"), [("00", True), ("95", False), ("96", False),
                                            (None, False)])
def test_a_repeated_close_settles_its_batch_only_on_00(code: str | None, took: bool) -> None:
    assert d.lost_close_settled(code) is took


@pytest.mark.parametrize(("code", "final"), [("00", True), ("95", True), ("30", False),
                                             ("96", False), ("12", False)])
def test_only_00_and_95_settle_what_the_host_did_with_a_close(code: str, final: bool) -> None:
    assert d.close_answered(code) is final

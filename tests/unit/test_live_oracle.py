"""The outside oracle's rules, on hand-made observations (docs/live.md, rule by rule)."""

from __future__ import annotations

from typing import Any

from emulator.live.oracle import Answered, Posted, judge

TID, F7 = "TERM0001", "1122090000"
ORIGINAL = "0200{stan}" + F7 + "0" * 22


def posted(stan: str, t: float = 1.0, *, amount: int = 1000, kind: str = "sale",
           standing: bool = True, reversed_t: float | None = None) -> Posted:
    return Posted(t, (TID, stan, F7), kind, amount, "alice", standing, reversed_t)


def answer(mti: str, stan: str, t: float, code: str = "00", written: bool = True,
           **extra: Any) -> Answered:
    return Answered(t, {"t": mti, "11": stan, "7": F7, "41": TID, "39": code, **extra}, written)


def kinds(postings: list[Posted], answers: list[Answered], window_s: float = 10.0) -> list[str]:
    return [a.kind for a in judge(postings, answers, window_s)[0]]


def test_an_answer_written_in_time_resolves_a_posting():
    assert kinds([posted("000001")], [answer("0210", "000001", 1.0)]) == []


def test_an_answer_never_written_leaves_the_posting_in_doubt():
    assert kinds([posted("000001")], [answer("0210", "000001", 1.0, written=False)]) == [
        "in_doubt"]
    assert kinds([posted("000001")], []) == ["in_doubt"]


def test_a_reversal_within_the_window_resolves_it_and_a_late_one_does_not():
    assert kinds([posted("000001", standing=False, reversed_t=5.0)], []) == []
    assert kinds([posted("000001", standing=False, reversed_t=50.0)], []) == ["in_doubt"]


def test_an_answer_to_a_repeat_or_a_status_query_confirms_it():
    assert kinds([posted("000001")], [answer("0210", "000001", 3.0)]) == []
    status = answer("0610", "000002", 4.0, **{"90": ORIGINAL.format(stan="000001")})
    assert kinds([posted("000001")], [status]) == []


def test_an_accepted_batch_close_confirms_what_it_counted():
    assert kinds([posted("000001")], [answer("0510", "000009", 2.0)]) == []
    assert kinds([posted("000001")], [answer("0510", "000009", 2.0, code="95")]) == [
        "in_doubt", "batch_out_of_balance"]


def test_a_purchase_charged_again_after_a_lost_answer_is_a_duplicate_charge():
    found = judge([posted("000001"), posted("000002", t=3.0)],
                  [answer("0210", "000002", 3.0)], 10.0)[0]
    assert [(a.kind, a.stan) for a in found] == [("duplicate_charge", "000002")]
    assert "000001" in found[0].detail


def test_a_second_purchase_after_the_first_was_answered_is_not_a_duplicate():
    assert kinds([posted("000001"), posted("000002", t=3.0)],
                 [answer("0210", "000001", 1.0), answer("0210", "000002", 3.0)]) == []


def test_a_reversed_first_attempt_leaves_no_duplicate():
    assert kinds([posted("000001", standing=False, reversed_t=2.0), posted("000002", t=3.0)],
                 [answer("0210", "000002", 3.0)]) == []


def test_one_request_posted_twice_is_a_duplicate_charge_and_a_refund_a_duplicate_refund():
    assert kinds([posted("000001"), posted("000001", t=2.0)],
                 [answer("0210", "000001", 1.0)]) == ["duplicate_charge"]
    assert kinds([posted("000001", kind="refund"), posted("000002", t=2.0, kind="refund")],
                 [answer("0210", "000002", 2.0)]) == ["duplicate_refund"]


def test_money_that_stands_behind_a_failed_answer_is_charged_shown_unpaid():
    assert kinds([posted("000001")], [answer("0210", "000001", 1.0, code="96")]) == [
        "charged_shown_unpaid"]
    assert kinds([posted("000001", kind="refund")], [answer("0210", "000001", 1.0, code="96")]
                 ) == ["refund_shown_failed_but_credited"]


def test_reversals_of_nothing_or_twice_are_noted_not_failed():
    f90 = {"90": ORIGINAL.format(stan="000007")}
    anomalies, notes = judge([], [answer("0410", "000008", 1.0, code="25", **f90),
                                  answer("0410", "000009", 2.0, **f90),
                                  answer("0410", "000009", 3.0, **f90)], 10.0)
    assert anomalies == []
    assert [(n.kind, n.stan) for n in notes] == [("reversal_of_unknown", "000007"),
                                                 ("reversal_repeated", "000007")]


def test_a_status_answer_that_it_stands_tells_the_terminal_the_truth():
    status = answer("0610", "000002", 2.0, **{"90": ORIGINAL.format(stan="000001")})
    assert kinds([posted("000001", kind="refund")],
                 [answer("0210", "000001", 1.0, code="96"), status]) == []


def receipt(stan: str, result: str, amount: str = "10.00") -> str:
    return f"TID {TID}\nSALE\nAMOUNT EUR {amount}\n{result}\nSTAN {stan}\nRRN 000000000001\n"


def with_receipts(receipts: list[str], code: str = "00") -> list[str]:
    found = judge([posted("000001")], [answer("0210", "000001", 1.0, code=code, **{
        "37": "000000000001"})], 10.0, receipts)[0]
    return [a.kind for a in found]


def test_receipts_judge_what_the_terminal_printed():
    assert with_receipts([receipt("000001", "APPROVED")]) == []
    assert with_receipts([]) == ["charged_no_receipt"]
    assert with_receipts([receipt("000001", "DECLINED")]) == ["charged_shown_unpaid"]
    assert with_receipts([receipt("000001", "APPROVED", "30.00")]) == ["wrong_amount"]
    assert with_receipts([receipt("000099", "APPROVED").replace("RRN 000000000001", "")]) == [
        "charged_no_receipt"]  # another sale's receipt


def test_without_a_printer_receipts_are_not_judged():
    assert kinds([posted("000001")], [answer("0210", "000001", 1.0)]) == []

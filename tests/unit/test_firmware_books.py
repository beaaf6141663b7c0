"""The firmware's bookkeeping in its journal, without running anything: a fake clock and a
trace that records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from emulator.firmware.books import Books
from emulator.firmware.clock import WallClock
from emulator.firmware.journal import Journal
from emulator.scenario.profiles import PROFILES, Policy

START = datetime(2026, 11, 22, 9, 0, 0)


class Time:
    now = 12.0


class Trace:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, name: str, **fields: Any) -> None:
        self.events.append((name, fields))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


def books(profile: str = "robust") -> tuple[Books, Journal, Trace]:
    journal, trace = Journal(), Trace()
    policy: Policy = PROFILES[profile]
    return Books(journal, trace, policy, WallClock(Time(), START)), journal, trace


def test_a_new_record_takes_a_stan_and_the_clock_and_arms_its_reversal() -> None:
    book, journal, _ = books()
    record = book.open("s1", "sale", "c", 1250)
    assert (record.stan, record.f7, record.state) == ("000001", "1122090012", "sent")
    assert journal.txn("s1") is record
    armed = book.armed(record)
    assert armed is not None
    assert (armed.armed, armed.reason, armed.queued_s, armed.refund) == (True, "68", 12.0, False)
    assert journal.pending() == []  # armed: not due


def test_the_robust_firmware_arms_the_reversal_on_disk_the_naive_one_in_ram() -> None:
    robust, robust_journal, _ = books("robust")
    naive, naive_journal, _ = books("naive")
    robust.open("s1", "refund", "c", 100)
    naive.open("s1", "refund", "c", 100)
    robust_journal.power_loss()
    naive_journal.power_loss()
    assert [e.refund for e in robust_journal.queue()] == [True]
    assert naive_journal.queue() == []


def test_the_naive_firmware_overwrites_the_pending_reversal_with_the_new_one() -> None:
    book, journal, trace = books("naive")
    first = book.open("s1", "sale", "c", 100)
    book.reversal(first, "68")
    book.open("s2", "sale", "c", 200)
    assert [e.step for e in journal.queue()] == ["s2"]
    assert ("terminal.reversal_overwritten", {"step": "s1"}) in trace.events


def test_the_robust_firmware_keeps_the_pending_reversal_beside_the_new_one() -> None:
    book, journal, trace = books("robust")
    first = book.open("s1", "sale", "c", 100)
    book.reversal(first, "68")
    book.open("s2", "sale", "c", 200)
    assert [e.step for e in journal.queue()] == ["s1", "s2"]
    assert "terminal.reversal_overwritten" not in trace.names()


def test_a_reversal_makes_the_armed_entry_due_with_its_reason() -> None:
    book, journal, trace = books()
    record = book.open("s1", "sale", "c", 100)
    entry = book.reversal(record, "21")
    assert entry is book.armed(record)
    assert (entry.armed, entry.reason, record.state) == (False, "21", "reversed")
    assert journal.pending() == [entry]
    assert trace.events[-1] == ("terminal.reversal_queued",
                                {"step": "s1", "orig_stan": "000001", "reason": "21"})


def test_a_reversal_without_an_armed_entry_queues_one() -> None:
    book, journal, _ = books()
    record = book.open("s1", "sale", "c", 100)
    book.disarm(record)
    assert journal.queue() == []
    entry = book.reversal(record, "17")
    assert journal.pending() == [entry]
    assert (entry.orig_stan, entry.orig_f7, entry.reason) == (record.stan, record.f7, "17")


def test_an_approved_sale_waits_for_its_receipt_a_refund_completes() -> None:
    book, _, _ = books()
    sale = book.open("s1", "sale", "c", 1000)
    refund = book.open("r1", "refund", "c", 1000)
    fields = {"37": "RRN000000001", "38": "AUTH01"}
    book.accept(sale, "10", fields, 600)
    book.accept(refund, "00", fields, 1000)
    assert (sale.state, sale.code, sale.rrn, sale.auth, sale.shown_minor) == (
        "approved", "10", "RRN000000001", "AUTH01", 600)
    assert refund.state == "completed"


def test_an_offline_approval_queues_its_advice_durably() -> None:
    book, journal, trace = books()
    record = book.open("s1", "sale", "c", 400)
    book.disarm(record)
    book.accept_offline(record)
    assert (record.state, record.code, record.offline, record.shown_minor) == (
        "approved", "Y1", True, 400)
    journal.power_loss()
    [advice] = journal.pending()
    assert (advice.kind, advice.orig_mti, advice.orig_stan) == ("advice", "0220", record.stan)
    assert trace.names()[-1] == "terminal.offline_approved"


def test_a_reissued_advice_is_new() -> None:
    book, journal, _ = books()
    record = book.open("s1", "sale", "c", 400)
    book.disarm(record)
    book.accept_offline(record)
    [advice] = journal.pending()
    advice.sent, advice.orig_mti = 2, "0221"
    book.reissue(advice)
    assert (advice.orig_stan, advice.orig_mti, advice.sent) == ("000002", "0220", 0)


def test_what_is_shown_is_noted_and_traced() -> None:
    book, journal, trace = books()
    record = book.open("r1", "refund", "c", 700)
    book.accept(record, "00", {}, 700)
    book.show(record, recovered=True)
    assert "r1" in journal.disk.shown
    assert trace.events[-1] == ("terminal.txn_done", {
        "step": "r1", "do": "refund", "result": "refunded", "code": "00",
        "amount_minor": 700, "recovered": True,
    })


def test_a_void_is_queued_durably_against_its_sale() -> None:
    book, journal, _ = books()
    sale = book.open("s1", "sale", "c", 900)
    book.disarm(sale)
    entry = book.queue_void("v1", sale)
    journal.power_loss()
    assert journal.pending() == [entry]
    assert (entry.kind, entry.target, entry.orig_stan, entry.reason) == (
        "void", "s1", sale.stan, "17")


def test_a_completed_sale_no_longer_needs_its_reversal() -> None:
    book, journal, _ = books()
    sale = book.open("s1", "sale", "c", 900)
    book.accept(sale, "00", {}, 900)
    book.complete(sale)
    assert sale.state == "completed"
    assert journal.queue() == []


def test_a_settled_batch_is_closed_and_a_voided_sale_shown() -> None:
    book, journal, trace = books()
    kept, voided = book.open("s1", "sale", "c", 900), book.open("s2", "sale", "c", 100)
    book.complete(kept)
    book.complete(voided)
    book.voided("v1", voided, "00", late=True)
    assert trace.events[-1] == ("terminal.txn_done", {
        "step": "v1", "do": "void", "result": "voided", "code": "00", "target": "s2",
        "late": True})
    book.settle([kept])
    assert kept.state == "settled"
    assert journal.disk.txns == {}  # settled and voided records leave the batch journal

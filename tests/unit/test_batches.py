"""The host's batches and memory: open batch totals, closes, and forgetting after retention."""

from __future__ import annotations

from datetime import datetime, timedelta

from devices.bank.acquirer import Reply
from devices.bank.batches import Batches
from devices.bank.ledger import Account, Kind, Ledger, Posting, TxnKey
from devices.iso8583.message import Fields

NOW = datetime(2026, 11, 22, 9, 0)
HOUR = timedelta(hours=1)
TID = "TERM0001"
PAN = "4111111111111111"


def books(retention_s: float | None = None) -> tuple[Ledger, Batches, list[list[Posting]]]:
    ledger = Ledger({PAN: Account("alice", 10_000)}, 100_000)
    told: list[list[Posting]] = []
    return ledger, Batches(ledger, retention_s=retention_s, on_retire=told.append), told


def answer(f: Fields, code: str, extra: Fields) -> Reply:
    return Reply(None, f, code, {**extra, "39": code})


def close(stan: int, *totals: int, tid: str = TID) -> Fields:
    fields: Fields = {"t": "0500", "7": "1122090000", "11": f"{stan:06d}", "41": tid}
    fields.update(zip(("74", "76", "86", "88"), (str(t) for t in totals), strict=False))
    return fields


def request(batches: Batches, now: datetime, tid: str = TID) -> None:
    """What the acquirer does first with a request from ``tid`` at ``now``."""
    assert batches.retention is not None
    batches.retire(tid, now - batches.retention)


def key(stan: int, tid: str = TID) -> TxnKey:
    return (tid, f"{stan:06d}", "1122090000")


def sale(ledger: Ledger, batches: Batches, stan: int, amount: int, now: datetime,
         kind: Kind = "sale", tid: str = TID) -> Posting:
    """Post, count and remember a sale (or refund) as the acquirer does."""
    posting = ledger.post(key(stan, tid), kind, PAN, amount, rrn=f"{stan:012d}",
                          batch=batches.open_batch(tid))
    batches.tally(posting, 1)
    batches.remember(key(stan, tid), "0200", kind, PAN, amount, "00", b"", now)
    return posting


def test_the_open_batch_totals_follow_postings_and_reversals() -> None:
    ledger, batches, _ = books()
    assert (batches.open_batch(TID), batches.host_totals(TID)) == (1, (0, 0, 0, 0))
    sold = sale(ledger, batches, 1, 1250, NOW)
    sale(ledger, batches, 2, 300, NOW)
    sale(ledger, batches, 3, 200, NOW, kind="refund")
    sale(ledger, batches, 4, 70, NOW, tid="TERM0002")
    assert batches.host_totals(TID) == (1, 2, 200, 1550)
    assert ledger.reverse(sold)
    batches.tally(sold, -1)
    assert batches.host_totals(TID) == (1, 1, 200, 300)
    assert batches.host_totals("TERM0002") == (0, 1, 0, 70)


def test_a_close_that_matches_closes_the_batch_and_one_that_does_not_stays_open() -> None:
    ledger, batches, _ = books()
    sale(ledger, batches, 1, 500, NOW)
    short = batches.close(close(2, 0, 1, 0, 400), NOW, answer)
    assert (short.code, batches.open_batch(TID)) == ("95", 1)
    assert short.response_fields == {"74": "0000000000", "76": "0000000001",
                                      "86": "0000000000000000", "88": "0000000000000500",
                                      "39": "95"}
    done = batches.close(close(3, 0, 1, 0, 500), NOW, answer)
    assert (done.code, batches.open_batch(TID), batches.host_totals(TID)) == (
        "00", 2, (0, 0, 0, 0))
    empty = batches.close(close(4), NOW, answer)  # missing totals count as 0
    assert (empty.code, batches.open_batch(TID)) == ("00", 3)
    assert batches.close({"t": "0500"}, NOW, answer).code == "30"  # no terminal id


def test_a_close_is_answered_the_same_from_memory() -> None:
    ledger, batches, _ = books()
    sale(ledger, batches, 1, 500, NOW)
    first = batches.close(close(2, 0, 1, 0, 500), NOW, answer)
    sale(ledger, batches, 3, 100, NOW)  # the open batch moves on
    copy = batches.close(close(2, 0, 1, 0, 500), NOW + 10 * HOUR, answer)
    assert copy is first
    assert (batches.open_batch(TID), batches.host_totals(TID)) == (2, (0, 1, 0, 100))
    assert batches.remembered() == (2, 1, 0)


def test_a_close_is_forgotten_after_retention_and_a_copy_weighed_anew() -> None:
    _, batches, _ = books(retention_s=3600)
    first = batches.close(close(1, 0, 0, 0, 0), NOW, answer)
    request(batches, NOW + HOUR)  # exactly retention_s on: still kept
    assert batches.close(close(1, 0, 0, 0, 0), NOW + HOUR, answer) is first
    assert batches.remembered() == (0, 1, 0)
    request(batches, NOW + HOUR + timedelta(seconds=1))
    assert batches.remembered() == (0, 0, 0)
    again = batches.close(close(1, 0, 0, 0, 0), NOW + HOUR, answer)
    assert again is not first
    assert (again.code, batches.open_batch(TID)) == ("00", 3)


def test_a_closed_batch_is_retired_after_retention_and_on_retire_told() -> None:
    ledger, batches, told = books(retention_s=3600)
    sale(ledger, batches, 1, 100, NOW)
    sale(ledger, batches, 2, 200, NOW + HOUR)
    request(batches, NOW + 10 * HOUR)
    assert batches.remembered() == (2, 0, 0)  # the open batch is kept however old
    batches.close(close(3, 0, 2, 0, 300), NOW + HOUR, answer)
    sale(ledger, batches, 4, 400, NOW + HOUR)
    request(batches, NOW + timedelta(minutes=90))  # only the first is an hour old
    assert [[p.stan for p in gone] for gone in told] == [["000001"]]
    assert batches.remembered() == (2, 1, 0)
    assert ledger.postings_for(key(1)) == []
    request(batches, NOW + 3 * HOUR)  # the open batch's sale 4 stays
    assert [[p.stan for p in gone] for gone in told] == [["000001"], ["000002"]]
    assert batches.remembered() == (1, 0, 0)
    assert [p.stan for p in ledger.postings] == ["000004"]
    assert ledger.accounts[PAN].balance_minor == 10_000 - 700  # the money stays moved


def test_retire_looks_only_at_its_terminal() -> None:
    ledger, batches, told = books(retention_s=0)
    sale(ledger, batches, 1, 100, NOW, tid="TERM0002")
    batches.close(close(2, 0, 1, 0, 100, tid="TERM0002"), NOW, answer)
    request(batches, NOW + HOUR)
    assert (batches.remembered(), told) == ((1, 1, 0), [])
    request(batches, NOW + HOUR, tid="TERM0002")
    assert batches.remembered() == (0, 0, 0)
    assert [p.stan for gone in told for p in gone] == ["000001"]


def test_a_reversal_without_original_is_remembered_until_retention() -> None:
    _, batches, _ = books(retention_s=3600)
    batches.orphan(key(1), NOW)
    batches.orphan(key(1), NOW + HOUR)  # kept already: still from the first
    assert key(1) in batches.orphans
    request(batches, NOW + HOUR)
    assert batches.remembered() == (0, 0, 1)
    request(batches, NOW + HOUR + timedelta(seconds=1))
    assert batches.remembered() == (0, 0, 0)


def test_remembered_again_a_record_holds_the_latest_answer() -> None:
    ledger, batches, _ = books()
    sale(ledger, batches, 1, 100, NOW)
    batches.remember(key(1), "0201", "sale", PAN, 100, "05", b"again", NOW + HOUR)
    record = batches.records[key(1)]
    assert (record.mti_class, record.code, record.response, record.at, record.batch) == (
        "020", "05", b"again", NOW + HOUR, 1)
    batches.remember(key(2), "0220", "advice", PAN, 100, "51", None, NOW)
    assert batches.records[key(2)].response == b""

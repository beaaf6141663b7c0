"""The terminal's journal: the STAN counter, what a power loss keeps, what is still owed."""

from __future__ import annotations

from emulator.firmware.journal import Journal, QueueEntry, TxnRecord


def entry(kind: str = "reversal", stan: str = "000001", *, armed: bool = False,
          step: str = "s1") -> QueueEntry:
    return QueueEntry(kind=kind, step=step, orig_mti="0200", orig_stan=stan,
                      orig_f7="0101120000", amount_minor=1250, reason="4021",
                      queued_s=0.0, armed=armed)


def record(step: str = "s1", stan: str = "000001") -> TxnRecord:
    return TxnRecord(step=step, do="sale", mti="0200", stan=stan, f7="0101120000",
                     amount_minor=1250, card="visa")


# ------------------------------------------------------------------- STAN


def test_stan_counts_up_from_000001() -> None:
    journal = Journal()
    assert [journal.next_stan() for _ in range(3)] == ["000001", "000002", "000003"]


def test_stan_wraps_from_999999_to_000001() -> None:
    journal = Journal()
    for _ in range(999998):
        journal.next_stan()
    assert journal.next_stan() == "999999"
    assert journal.next_stan() == "000001"
    assert journal.next_stan() == "000002"


def test_stan_survives_power_loss() -> None:
    journal = Journal()
    journal.next_stan()
    journal.next_stan()
    journal.power_loss()
    assert journal.next_stan() == "000003"


# ---------------------------------------------------------- power loss


def test_transaction_records_survive_power_loss() -> None:
    journal = Journal()
    journal.put_txn(record())
    journal.power_loss()
    kept = journal.txn("s1")
    assert kept is not None
    assert kept.stan == "000001"
    assert journal.txn("s2") is None


def test_durable_queue_entries_survive_power_loss_volatile_ones_do_not() -> None:
    journal = Journal()
    on_disk, in_ram = entry(stan="000001"), entry(stan="000002")
    journal.enqueue(on_disk, durable=True)
    journal.enqueue(in_ram, durable=False)
    assert journal.queue() == [on_disk, in_ram]
    journal.power_loss()
    assert journal.queue() == [on_disk]
    assert journal.pending() == [on_disk]


def test_queue_lists_disk_entries_before_ram_entries() -> None:
    journal = Journal()
    in_ram, on_disk = entry(stan="000001"), entry(stan="000002")
    journal.enqueue(in_ram, durable=False)
    journal.enqueue(on_disk, durable=True)
    assert journal.queue() == [on_disk, in_ram]


def test_ram_half_is_emptied_by_power_loss_disk_half_is_not() -> None:
    journal = Journal()
    journal.disk.receipts["s1"] = "disk receipt"
    journal.disk.shown.add("s1")
    journal.ram.receipts["s2"] = "ram receipt"
    journal.ram.shown.add("s2")
    journal.power_loss()
    assert journal.disk.receipts == {"s1": "disk receipt"}
    assert journal.disk.shown == {"s1"}
    assert journal.ram.receipts == {}
    assert journal.ram.shown == set()


def test_dequeue_removes_an_entry_from_either_half() -> None:
    journal = Journal()
    on_disk, in_ram = entry(stan="000001"), entry(stan="000002")
    journal.enqueue(on_disk, durable=True)
    journal.enqueue(in_ram, durable=False)
    journal.dequeue(on_disk)
    journal.dequeue(in_ram)
    assert journal.queue() == []


# -------------------------------------------------------------- pending


def test_pending_excludes_armed_entries() -> None:
    journal = Journal()
    armed, due = entry(stan="000001", armed=True), entry(stan="000002")
    journal.enqueue(armed, durable=True)
    journal.enqueue(due, durable=True)
    assert journal.pending() == [due]
    armed.armed = False
    assert journal.pending() == [armed, due]


def test_pending_filters_by_kind() -> None:
    journal = Journal()
    reversal, advice = entry("reversal", "000001"), entry("advice", "000002")
    journal.enqueue(reversal, durable=True)
    journal.enqueue(advice, durable=True)
    assert journal.pending(("advice",)) == [advice]
    assert journal.pending(("reversal", "void")) == [reversal]


def test_pending_excludes_acked_advices() -> None:
    journal = Journal()
    advice, other = entry("advice", "000001"), entry("advice", "000002")
    journal.enqueue(advice, durable=True)
    journal.enqueue(other, durable=True)
    journal.ram.acked.add(advice.orig_key)
    assert journal.pending() == [other]
    assert journal.queue() == [advice, other]  # acked, yet still queued


def test_acked_advice_is_pending_again_after_power_loss() -> None:
    journal = Journal()
    advice = entry("advice", "000001")
    journal.enqueue(advice, durable=True)
    journal.ram.acked.add(advice.orig_key)
    assert journal.pending() == []
    journal.power_loss()
    assert journal.pending() == [advice]


def test_an_acked_advice_does_not_hide_a_void_of_the_same_sale() -> None:
    journal = Journal()
    advice, void = entry("advice", "000001"), entry("void", "000001", step="v1")
    journal.enqueue(advice, durable=True)
    journal.enqueue(void, durable=True)
    journal.ram.acked.add(advice.orig_key)
    assert journal.pending() == [void]

"""The terminal's bookkeeping in its journal: records opened and booked, reversals armed,
made due and dropped, voids and advices queued, outcomes shown. No simpy: it reads the
time from the wall clock and reports to the trace port.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from devices.ports import TraceSink
from emulator.firmware import decisions
from emulator.firmware.clock import WallClock
from emulator.firmware.journal import Journal, QueueEntry, TxnRecord
from emulator.scenario.profiles import Policy

_NO_FIELDS: Mapping[str, object] = MappingProxyType({})


class Books:
    """Every write the firmware makes to its journal, and the display of outcomes."""

    def __init__(self, journal: Journal, trace: TraceSink, policy: Policy,
                 clock: WallClock) -> None:
        self.journal = journal
        self.trace = trace
        self.policy = policy
        self.clock = clock

    # -- records and their armed reversals -------------------------------------

    def open(self, step: str, do: str, card: str, amount_minor: int) -> TxnRecord:
        """A new record under a new STAN, with its reversal armed before the request
        leaves (written durably when the policy says so). Without the queue guard a
        terminal has one reversal slot: the new one overwrites what was pending."""
        journal = self.journal
        record = TxnRecord(
            step=step, do=do, mti="0200", stan=journal.next_stan(), f7=self.clock.f7(),
            amount_minor=amount_minor, card=card,
        )
        journal.put_txn(record)
        if not decisions.waits_for_queue(self.policy):
            for old in journal.queue():
                if old.kind == "reversal":
                    journal.dequeue(old)
                    self.trace.emit("terminal.reversal_overwritten", step=old.step)
        entry = QueueEntry(
            kind="reversal", step=step, orig_mti="0200", orig_stan=record.stan,
            orig_f7=record.f7, amount_minor=amount_minor, reason=decisions.REASON_TIMEOUT,
            queued_s=self.clock.env.now, armed=True, card=card, refund=do == "refund",
        )
        journal.enqueue(entry, durable=self.policy.persist_reversal_first)
        return record

    def armed(self, record: TxnRecord) -> QueueEntry | None:
        """The queued reversal of ``record`` (armed or due), if any."""
        for entry in self.journal.queue():
            if entry.kind == "reversal" and entry.orig_key == (record.stan, record.f7):
                return entry
        return None

    def disarm(self, record: TxnRecord) -> None:
        """``record`` settled one way or the other: its reversal is not needed."""
        entry = self.armed(record)
        if entry is not None:
            self.journal.dequeue(entry)

    def decline(self, record: TxnRecord, code: str | None = None) -> None:
        """``record`` did not move money (the host said ``code``), or the firmware
        forgets that it may have."""
        self.disarm(record)
        record.state = "declined"
        if code is not None:
            record.code = code

    def reversal(self, record: TxnRecord, reason: str) -> QueueEntry:
        """Make ``record``'s reversal due (queueing one if none is armed): it is reversed."""
        entry = self.armed(record)
        if entry is None:
            entry = QueueEntry(
                kind="reversal", step=record.step, orig_mti=record.mti,
                orig_stan=record.stan, orig_f7=record.f7, amount_minor=record.amount_minor,
                reason=reason, queued_s=self.clock.env.now, card=record.card,
                refund=record.do == "refund",
            )
            self.journal.enqueue(entry, durable=self.policy.persist_reversal_first)
        entry.reason = reason
        record.state = "reversed"
        self.make_due(entry)
        return entry

    def make_due(self, entry: QueueEntry) -> None:
        """An armed reversal is to be sent."""
        entry.armed = False
        self.trace.emit("terminal.reversal_queued", step=entry.step,
                        orig_stan=entry.orig_stan, reason=entry.reason)

    # -- outcomes ----------------------------------------------------------------

    def accept(self, record: TxnRecord, code: str, fields: Mapping[str, object],
               shown_minor: int) -> None:
        """Book an approval: a sale is approved until its receipt is out (two-phase),
        a refund completed."""
        record.state = "approved" if decisions.two_phase(record) else "completed"
        record.code = code
        record.rrn = str(fields.get("37", ""))
        record.auth = str(fields.get("38", ""))
        record.shown_minor = shown_minor

    def complete(self, record: TxnRecord) -> None:
        """A sale's receipt is out: it stands, and its reversal is not needed."""
        record.state = "completed"
        self.disarm(record)

    def accept_offline(self, record: TxnRecord) -> None:
        """Approve a sale offline (Y1) and queue its advice durably."""
        record.offline = True
        self.accept(record, "Y1", _NO_FIELDS, record.amount_minor)
        self.journal.enqueue(QueueEntry(
            kind="advice", step=record.step, orig_mti="0220", orig_stan=record.stan,
            orig_f7=record.f7, amount_minor=record.amount_minor, reason="",
            queued_s=self.clock.env.now, card=record.card,
        ), durable=True)
        self.trace.emit("terminal.offline_approved", step=record.step, stan=record.stan)

    def queue_void(self, step: str, target: TxnRecord) -> QueueEntry:
        """A void (0400, reason 17) of the sale ``target``, queued durably."""
        entry = QueueEntry(
            kind="void", step=step, orig_mti=target.mti, orig_stan=target.stan,
            orig_f7=target.f7, amount_minor=target.amount_minor,
            reason=decisions.REASON_CANCEL, queued_s=self.clock.env.now, card=target.card,
            target=target.step,
        )
        self.journal.enqueue(entry, durable=True)
        return entry

    def settle(self, records: Iterable[TxnRecord]) -> None:
        """The host took the batch of ``records``: they are settled, the batch closed."""
        for record in records:
            record.state = "settled"
        self.journal.close_batch()

    def reissue(self, entry: QueueEntry) -> None:
        """Forward an advice again as new: a new STAN and field 7, a first 0220."""
        entry.orig_stan = self.journal.next_stan()
        entry.orig_f7 = self.clock.f7()
        entry.orig_mti = "0220"
        entry.sent = 0

    def done(self, step: str, do: str, result: str, **fields: Any) -> None:
        """Show a step's outcome (and note that it was shown)."""
        self.journal.disk.shown.add(step)
        self.trace.emit("terminal.txn_done", step=step, do=do, result=result, **fields)

    def voided(self, step: str, target: TxnRecord, code: str, **flags: Any) -> None:
        """The void ``step`` cancelled the sale ``target``: show it."""
        target.state = "voided"
        self.done(step, "void", "voided", code=code, target=target.step, **flags)

    def show(self, record: TxnRecord, **flags: Any) -> None:
        """Show that ``record`` stands: approved or refunded, with the amount booked."""
        self.done(record.step, record.do, decisions.APPROVED_RESULTS[record.do],
                  code=record.code, amount_minor=record.shown_minor, **flags)

"""The terminal's firmware: the system under test.

It runs the operator's steps one at a time (sale, refund, void, reprint,
settle), speaks ISO 8583 to the host over the link, prints receipts, keeps a
journal that survives power loss as far as it was durably written, and
follows its :class:`~emulator.scenario.profiles.Policy` wherever a real terminal has a
choice. Every choice that can turn a fault into an anomaly is a knob.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import simpy

from devices.errors import MessageError
from devices.fault import ActiveFault
from devices.iso8583.message import Fields, decode, encode, mac_ok
from devices.ports import CardReader, Printer, Refused, TraceSink, Transport
from devices.printer.receipt import ReceiptData, render
from devices.simkit.queues import Mailbox, any_of
from emulator.firmware import messages
from emulator.firmware.journal import Journal, QueueEntry, TxnRecord
from emulator.firmware.messages import CardInfo, Identity
from emulator.money import format_minor
from emulator.scenario.profiles import Policy

if TYPE_CHECKING:
    from emulator.scenario.model import StepSpec

Gen = Generator[simpy.Event, Any, Any]

TIMEOUT = "timeout"
INVALID = "invalid"
REFUSED = "refused"

UNCERTAIN = ("30", "63", "91", "96")
"""Codes that do not settle whether money moved: the host could not read this message
(format error, MAC failure: an earlier copy may have been posted), or failed inside
(issuer unavailable, malfunction). The robust firmware reverses or asks."""
REASON_TIMEOUT = "68"
REASON_CANCEL = "17"
REASON_INVALID = "06"
REASON_NOT_COMPLETED = "21"


class Terminal:
    """The payment terminal as a simpy component."""

    def __init__(
        self, env: simpy.Environment, trace: TraceSink, transport: Transport,
        reader: CardReader, printer: Printer, policy: Policy, identity: Identity, start: datetime,
        cards: dict[str, CardInfo], mac_key: bytes,
    ) -> None:
        self.env = env
        self.trace = trace
        self.transport = transport
        self.reader = reader
        self.printer = printer
        self.policy = policy
        self.identity = identity
        self.start = start
        self.cards = cards
        self.mac_key = mac_key
        self.journal = Journal()
        self.steps = Mailbox(env)
        self.powered = True
        self._power_back: simpy.Event | None = None
        self._waits: list[simpy.Event] = []
        self._held: set[str] = set()
        self._last_receipt: tuple[str, ReceiptData] | None = None
        self._clock_at: tuple[float, datetime] | None = None
        self._process = env.process(self._main())

    # -- the outside world -------------------------------------------------

    def submit(self, step: StepSpec) -> None:
        """The operator starts a step (it waits while the terminal is busy)."""
        self.steps.put(step)

    def apply(self, fault: ActiveFault) -> None:
        if fault.kind == "terminal.power_loss" and self.powered:
            self.powered = False
            self._power_back = self.env.event()
            if self._process.is_alive:
                self._process.interrupt("power_loss")

    def clear(self, fault: ActiveFault) -> None:
        if fault.kind == "terminal.power_loss" and not self.powered:
            self.powered = True
            if self._power_back is not None:
                self._power_back.succeed()

    def unresolved(self) -> list[tuple[str, str]]:
        """(step, what) still owed at the end of a run: queued messages, held receipts."""
        owed = [(e.target or e.step, e.kind) for e in self.journal.pending()]
        owed += [(e.step, "reversal") for e in self.journal.queue() if e.armed]
        owed += [(step, "held_receipt") for step in sorted(self._held)]
        return owed

    def open_steps(self) -> set[str]:
        """Steps the terminal may still act on: its journal's records, queued messages and
        the steps they are for, held receipts, and the last receipt (a reprint copies it)."""
        journal = self.journal
        steps = set(journal.disk.txns)
        steps.update(name for e in journal.queue() for name in (e.step, e.target) if name)
        steps.update(self._held)
        if self._last_receipt is not None:
            steps.add(self._last_receipt[0])
        return steps

    # -- main loop ---------------------------------------------------------

    def _main(self) -> Gen:
        booted = False
        while True:
            try:
                while not self.powered:
                    assert self._power_back is not None
                    yield self._power_back
                if booted:
                    yield from self._boot()
                booted = True
                while True:
                    yield from self._idle()
            except simpy.Interrupt:
                self._lose_power()

    def _lose_power(self) -> None:
        """What a power cut takes: pending waits, held receipts, the RAM half."""
        for wait in self._waits:
            if not wait.triggered and hasattr(wait, "cancel"):
                wait.cancel()
        self._waits.clear()
        self._held.clear()
        self.journal.power_loss()
        self.reader.power_off()
        self.trace.emit("terminal.power_lost")

    def _idle(self) -> Gen:
        get = self.steps.get()
        if self.journal.pending():
            self._waits.append(get)
            yield any_of(get, self.env.timeout(self.policy.saf_retry_s))
            self._waits.remove(get)
            if not get.processed:
                get.cancel()
                yield from self._flush_queue()
                return
        else:
            self._waits.append(get)
            yield get
            self._waits.remove(get)
        step: StepSpec = cast("StepSpec", get.value)
        handler = getattr(self, f"_{step.do}")
        self.trace.emit(
            "terminal.txn_started", step=step.id, do=step.do, amount_minor=step.amount_minor,
        )
        yield from handler(step)

    def _boot(self) -> Gen:
        """After power returns: inbox cleared, journal read, owed work resumed."""
        self.transport.discard()
        self.trace.emit("terminal.rebooted")
        for entry in self.journal.queue():
            if entry.armed:
                record = self.journal.txn(entry.step)
                if record is not None and record.state == "sent":
                    entry.armed = False
                    self.trace.emit("terminal.reversal_queued", step=entry.step,
                                    orig_stan=entry.orig_stan, reason=entry.reason)
        if not self.policy.dedupe_saf_after_reboot:
            for entry in self.journal.pending(("advice",)):
                entry.orig_stan = self.journal.next_stan()
                entry.orig_f7 = self._f7()
                entry.orig_mti = "0220"
                entry.sent = 0
        for record in list(self.journal.disk.txns.values()):
            if record.state == "approved":
                yield from self._finish_approved(record, recovered=True)
            elif record.state == "completed" and record.step not in self.journal.disk.shown:
                result = "approved" if record.do == "sale" else "refunded"
                self._done(record.step, record.do, result, code=record.code,
                           amount_minor=record.shown_minor, recovered=True)
        yield from self._flush_queue()

    # -- steps ---------------------------------------------------------------

    def _begin(self, step: StepSpec, failed: str) -> Gen:
        """Clear the way, read the card (PIN for a sale), open the record; None if stopped."""
        if not (yield from self._clear_way(step)):
            return None
        assert step.card is not None
        assert step.amount_minor is not None
        if not (yield from self.reader.read(step.card, pin=step.do == "sale")):
            self._done(step.id, step.do, failed, reason="card read error")
            return None
        return self._new_record(step.id, step.do, step.card, step.amount_minor)

    def _sale(self, step: StepSpec) -> Gen:
        record = yield from self._begin(step, "cancelled")
        if record is None:
            return
        outcome, fields, record = yield from self._online(record)
        if outcome == REFUSED:
            self._disarm(record)
            floor = self.policy.offline_floor
            if floor and record.amount_minor <= floor:
                yield from self._approve_offline(record)
                return
            record.state = "declined"
            self._done(step.id, "sale", "declined", code="91", reason="host refused")
            self.reader.eject()
            return
        if fields is None or (fields.get("39") in UNCERTAIN and self.policy.reverse_on_timeout):
            yield from self._give_up(record, outcome)
            return
        code = str(fields.get("39", ""))
        if code not in ("00", "10"):
            self._disarm(record)
            record.state = "declined"
            record.code = code
            yield from self._print_slip(record, "DECLINED")
            self._done(step.id, "sale", "declined", code=code)
            self.reader.eject()
            return
        shown = self._shown_amount(record, code, fields)
        if shown is None:
            yield from self._reverse_now(record, REASON_INVALID)
            self._done(step.id, "sale", "failed", code=code, reason="amount changed")
            self.reader.eject()
            return
        if not self.reader.card_present:
            if self.policy.reverse_on_card_removed:
                yield from self._reverse_now(record, REASON_CANCEL)
            else:
                self._disarm(record)
            record.state = "reversed" if self.policy.reverse_on_card_removed else "declined"
            self._done(step.id, "sale", "cancelled", reason="card removed")
            return
        record.state = "approved"
        record.code = code
        record.rrn = str(fields.get("37", ""))
        record.auth = str(fields.get("38", ""))
        record.shown_minor = shown
        yield from self._finish_approved(record)

    def _refund(self, step: StepSpec) -> Gen:
        record = yield from self._begin(step, "refund_failed")
        if record is None:
            return
        outcome, fields, record = yield from self._online(record)
        if outcome == REFUSED:
            self._disarm(record)
            self._done(step.id, "refund", "refund_failed", code="91", reason="host refused")
            return
        code = None if fields is None else str(fields.get("39", ""))
        if code is None or code in UNCERTAIN:
            if self.policy.query_status_before_retry:
                status = yield from self._query_status(record)
                if status is not None and status.get("39") == "00":
                    fields, code = status, "00"
                else:  # unknown to the host (so far) or no answer: make sure it never posts
                    yield from self._give_up(record, outcome, do="refund")
                    return
            else:
                self._disarm(record)
                self.trace.emit("terminal.retry_as_new", step=step.id, stan=record.stan)
                record = self._new_record(step.id, "refund", record.card, record.amount_minor)
                outcome, fields, record = yield from self._online(record, retries=0)
                code = None if fields is None else str(fields.get("39", ""))
        if fields is None or code not in ("00", "10"):
            if fields is None or code in UNCERTAIN:
                yield from self._give_up(record, outcome, do="refund")
                return
            self._disarm(record)
            record.state = "declined"
            self._done(step.id, "refund", "refund_failed", code=code or "")
            self.reader.eject()
            return
        shown = self._shown_amount(record, code or "", fields)
        if shown is None:
            yield from self._reverse_now(record, REASON_INVALID)
            self._done(step.id, "refund", "refund_failed", code=code, reason="amount changed")
            self.reader.eject()
            return
        self._disarm(record)
        record.state = "completed"
        record.code = code or "00"
        record.rrn = str(fields.get("37", ""))
        record.auth = str(fields.get("38", ""))
        record.shown_minor = shown
        yield from self._print_slip(record, "APPROVED")
        self._done(step.id, "refund", "refunded", code=record.code, amount_minor=shown)
        self.reader.eject()

    def _void(self, step: StepSpec) -> Gen:
        target = self.journal.txn(step.target or "")
        if target is None or target.do != "sale" or target.state not in ("completed", "approved"):
            self._done(step.id, "void", "void_failed", reason="no approved sale to void",
                       target=step.target)
            return
        if not (yield from self._clear_way(step)):
            return
        entry = QueueEntry(
            kind="void", step=step.id, orig_mti=target.mti, orig_stan=target.stan,
            orig_f7=target.f7, amount_minor=target.amount_minor, reason=REASON_CANCEL,
            queued_s=self.env.now, card=target.card, target=target.step,
        )
        self.journal.enqueue(entry, durable=True)
        code = yield from self._deliver(entry)
        if code is None:
            if not self.policy.repeat_reversal:
                self.journal.dequeue(entry)
            self._done(step.id, "void", "void_pending", target=target.step)
            return
        if code in ("00", "25"):
            target.state = "voided"
            self._done(step.id, "void", "voided", code=code, target=target.step)
        else:
            self._done(step.id, "void", "void_failed", code=code, target=target.step)

    def _reprint(self, step: StepSpec) -> Gen:
        if step.target is not None:
            receipt = self.journal.disk.receipts.get(step.target)
            of = step.target
        elif self._last_receipt is not None:
            of, receipt = self._last_receipt
        else:
            receipt, of = None, ""
        if receipt is None:
            self._done(step.id, "reprint", "reprint_failed", reason="nothing to reprint")
            return
        copy = replace(receipt, title=f"{receipt.title} - COPY")
        printed = yield from self._print(copy, step.id, of, "copy")
        self._done(step.id, "reprint", "reprinted" if printed else "reprint_failed", target=of)

    def _settle(self, step: StepSpec) -> Gen:
        if not (yield from self._clear_way(step)):
            return
        debits = [t for t in self.journal.disk.txns.values()
                  if t.do == "sale" and t.state == "completed"]
        credits = [t for t in self.journal.disk.txns.values()
                   if t.do == "refund" and t.state == "completed"]
        stan = self.journal.next_stan()
        fields = messages.batch_totals(debits, credits, stan, self._f7(), self.identity)
        self.trace.emit("terminal.request_sent", step=step.id, mti="0500", stan=stan,
                        f7=fields["7"], debits=len(debits), credits=len(credits),
                        debits_minor=int(str(fields["88"])),
                        credits_minor=int(str(fields["86"])))
        outcome, response = yield from self._exchange(fields, "0510", stan)
        if response is None:
            self._done(step.id, "settle", "settle_failed", reason=outcome)
            return
        code = str(response.get("39", ""))
        if code == "00":
            for record in (*debits, *credits):
                record.state = "settled"
            self.journal.close_batch()
            self._done(step.id, "settle", "settled", code=code)
        elif code == "95":
            self._done(step.id, "settle", "out_of_balance", code=code)
        else:
            self._done(step.id, "settle", "settle_failed", code=code)

    # -- building blocks -----------------------------------------------------

    def _clear_way(self, step: StepSpec) -> Gen:
        """Deliver what is owed before a new transaction; False when it must wait.

        Without the guard the transaction starts at once (what is owed goes later,
        if its slot survives the new transaction's record).
        """
        if not self.policy.block_sale_while_reversal_pending:
            return True
        yield from self._flush_queue()
        if self.journal.pending(("reversal", "void")):
            self._done(step.id, step.do, "refused", reason="reversal pending")
            return False
        return True

    def _new_record(self, step: str, do: str, card: str, amount_minor: int) -> TxnRecord:
        record = TxnRecord(
            step=step, do=do, mti="0200", stan=self.journal.next_stan(), f7=self._f7(),
            amount_minor=amount_minor, card=card,
        )
        self.journal.put_txn(record)
        if not self.policy.block_sale_while_reversal_pending:
            for old in self.journal.queue():
                if old.kind == "reversal":
                    self.journal.dequeue(old)
                    self.trace.emit("terminal.reversal_overwritten", step=old.step)
        entry = QueueEntry(
            kind="reversal", step=step, orig_mti="0200", orig_stan=record.stan,
            orig_f7=record.f7, amount_minor=amount_minor, reason=REASON_TIMEOUT,
            queued_s=self.env.now, armed=True, card=card, refund=do == "refund",
        )
        self.journal.enqueue(entry, durable=self.policy.persist_reversal_first)
        return record

    def _armed(self, record: TxnRecord) -> QueueEntry | None:
        for entry in self.journal.queue():
            if entry.kind == "reversal" and entry.orig_key == (record.stan, record.f7):
                return entry
        return None

    def _disarm(self, record: TxnRecord) -> None:
        entry = self._armed(record)
        if entry is not None:
            self.journal.dequeue(entry)

    def _online(self, record: TxnRecord, retries: int | None = None) -> Gen:
        """Send the request (and retries); (outcome, response fields or None, record)."""
        fields = self._request(record)
        self.trace.emit("terminal.request_sent", step=record.step, mti=record.mti,
                        stan=record.stan, f7=record.f7, amount_minor=record.amount_minor)
        outcome, response = yield from self._exchange(fields, "0210", record.stan)
        left = self.policy.request_retries if retries is None else retries
        while response is None and outcome != REFUSED and left > 0:
            left -= 1
            if self.policy.retry_as_repeat:
                fields = {**fields, "t": "0201"}
                self.trace.emit("terminal.request_sent", step=record.step, mti="0201",
                                stan=record.stan, f7=record.f7,
                                amount_minor=record.amount_minor)
            else:
                self._disarm(record)
                self.trace.emit("terminal.retry_as_new", step=record.step, stan=record.stan)
                record = self._new_record(record.step, record.do, record.card, record.amount_minor)
                fields = self._request(record)
                self.trace.emit("terminal.request_sent", step=record.step, mti="0200",
                                stan=record.stan, f7=record.f7,
                                amount_minor=record.amount_minor)
            outcome, response = yield from self._exchange(fields, "0210", record.stan)
            if outcome == REFUSED:  # an earlier copy may have been posted: still unknown
                self.trace.emit("terminal.retry_refused", step=record.step, stan=record.stan)
                outcome = TIMEOUT
        if response is None and outcome == TIMEOUT:
            self.trace.emit("terminal.timeout", step=record.step, stan=record.stan)
        return outcome, response, record

    def _request(self, record: TxnRecord) -> Fields:
        return messages.financial(record, self.cards[record.card], self.identity, self._clock())

    def _exchange(self, fields: Mapping[str, str | bytes], expect_mti: str, stan: str) -> Gen:
        """Send one message and wait for its answer: (outcome, fields or None)."""
        frame = encode(fields, self.mac_key)
        transport = self.transport
        transport.send(frame, mti=fields["t"], stan=stan)
        deadline = self.env.now + self.policy.response_timeout_s
        while True:
            left = deadline - self.env.now
            if left <= 0:
                return TIMEOUT, None
            get = transport.receive()
            self._waits.append(get)
            yield any_of(get, self.env.timeout(left))
            self._waits.remove(get)
            if not get.processed:
                get.cancel()
                return TIMEOUT, None
            item = cast("bytes | Refused", get.value)
            if isinstance(item, Refused):
                if item.frame == frame:
                    self.trace.emit("terminal.refused", stan=stan)
                    return REFUSED, None
                continue
            try:
                response: dict[str, Any] = decode(item)
            except MessageError as exc:
                self.trace.emit("terminal.response_invalid", stan=stan, field=exc.field)
                return INVALID, None
            self.trace.emit("terminal.response_received", mti=response.get("t"),
                            stan=response.get("11"), code=response.get("39"))
            matched = (
                response.get("t") == expect_mti and response.get("11") == stan
                and response.get("41") == self.identity.terminal_id
            )
            if not matched and self.policy.ignore_unmatched_responses:
                self.trace.emit("terminal.response_ignored", stan=response.get("11"))
                continue
            if self.policy.verify_mac and not mac_ok(item, self.mac_key):
                self.trace.emit("terminal.response_invalid", stan=stan, field="64")
                return INVALID, None
            return "ok", response

    def _shown_amount(self, record: TxnRecord, code: str, fields: dict[str, Any]) -> int | None:
        """The amount to show for an approval; None when a full approval changed it."""
        if not self.policy.check_response_amount:
            return record.amount_minor
        approved = _amount(fields, record.amount_minor)
        if code != "10" and approved != record.amount_minor:
            self.trace.emit("terminal.amount_mismatch", step=record.step,
                            requested_minor=record.amount_minor, approved_minor=approved)
            return None
        return approved

    def _query_status(self, record: TxnRecord) -> Gen:
        """Ask the host whether ``record`` stands: its 0610 (39 = 00 and field 4 = the
        amount when it does), or None when no answer came."""
        stan = self.journal.next_stan()
        fields = messages.status_query(record, stan, self._f7(), self.identity)
        self.trace.emit("terminal.request_sent", step=record.step, mti="0600", stan=stan,
                        f7=fields["7"], orig_stan=record.stan)
        _, response = yield from self._exchange(fields, "0610", stan)
        return response

    def _give_up(self, record: TxnRecord, outcome: str, do: str = "sale") -> Gen:
        """No valid answer (or a 96): reverse if the policy says so, show the failure."""
        failed = "refund_failed" if do == "refund" else "failed"
        if self.policy.reverse_on_timeout:
            reason = REASON_TIMEOUT if outcome == TIMEOUT else REASON_INVALID
            yield from self._reverse_now(record, reason)
        else:
            self._disarm(record)
            record.state = "declined"
        self._done(record.step, do, failed, reason=outcome)
        self.reader.eject()

    def _reverse_now(self, record: TxnRecord, reason: str) -> Gen:
        """Turn the armed reversal of ``record`` into a due one and deliver it."""
        entry = self._armed(record)
        if entry is None:
            entry = QueueEntry(
                kind="reversal", step=record.step, orig_mti=record.mti,
                orig_stan=record.stan, orig_f7=record.f7, amount_minor=record.amount_minor,
                reason=reason, queued_s=self.env.now, card=record.card,
                refund=record.do == "refund",
            )
            self.journal.enqueue(entry, durable=self.policy.persist_reversal_first)
        entry.armed = False
        entry.reason = reason
        record.state = "reversed"
        self.trace.emit("terminal.reversal_queued", step=record.step,
                        orig_stan=record.stan, reason=reason)
        code = yield from self._deliver(entry)
        if code is None and not self.policy.repeat_reversal:
            self.journal.dequeue(entry)
            self.trace.emit("terminal.reversal_abandoned", step=record.step)

    def _deliver(self, entry: QueueEntry) -> Gen:
        """Send a queued entry (with repeats); its response code, or None."""
        if entry.kind == "advice":
            return (yield from self._deliver_advice(entry))
        if not entry.stan:
            entry.stan = self.journal.next_stan()
            entry.f7 = self._f7()
        tries = self.policy.reversal_tries if self.policy.repeat_reversal else 1
        card = self.cards.get(entry.card)
        for _ in range(tries):
            mti = "0401" if entry.sent else "0400"
            entry.sent += 1
            fields = messages.reversal(entry, mti, card, self.identity)
            self.trace.emit("terminal.reversal_sent", step=entry.step, kind=entry.kind,
                            mti=mti, stan=entry.stan, orig_stan=entry.orig_stan,
                            orig_f7=entry.orig_f7, reason=entry.reason)
            outcome, response = yield from self._exchange(fields, "0410", entry.stan)
            code = "" if response is None else str(response.get("39", ""))
            if code in UNCERTAIN:  # the host could not act on it: repeat
                self.trace.emit("terminal.reversal_unsettled", step=entry.step, code=code)
            elif response is not None:
                self.journal.dequeue(entry)
                self.trace.emit("terminal.reversal_done", step=entry.step, kind=entry.kind,
                                orig_stan=entry.orig_stan, code=code)
                return code
            if outcome == REFUSED:
                break
        return None

    def _deliver_advice(self, entry: QueueEntry) -> Gen:
        mti = "0221" if entry.sent and self.policy.dedupe_saf_after_reboot else entry.orig_mti
        entry.sent += 1
        card = self.cards[entry.card]
        fields = messages.advice(entry, mti, card, self.identity)
        self.trace.emit("terminal.request_sent", step=entry.step, mti=mti,
                        stan=entry.orig_stan, f7=entry.orig_f7,
                        amount_minor=entry.amount_minor)
        _, response = yield from self._exchange(fields, "0230", entry.orig_stan)
        if response is None:
            return None
        code = str(response.get("39", ""))
        if code in UNCERTAIN:  # the host could not act on it: keep it queued
            self.trace.emit("terminal.advice_unsettled", step=entry.step, code=code)
            return None
        if self.policy.dedupe_saf_after_reboot:
            self.journal.dequeue(entry)
        else:
            self.journal.ram.acked.add(entry.orig_key)
        self.trace.emit("terminal.advice_done", step=entry.step, stan=entry.orig_stan, code=code)
        return code

    def _flush_queue(self) -> Gen:
        """Send every due queued entry once (with its repeats); drop expired ones."""
        for entry in self.journal.pending():
            if self.env.now - entry.queued_s > self.policy.saf_expiry_s:
                self.journal.dequeue(entry)
                self.trace.emit("terminal.queue_expired", step=entry.step, kind=entry.kind)
                continue
            code = yield from self._deliver(entry)
            if code is None:
                break
            if entry.kind == "void":
                target = self.journal.txn(entry.target)
                if target is not None and code in ("00", "25"):
                    target.state = "voided"
                    self._done(entry.step, "void", "voided", code=code, target=entry.target,
                               late=True)

    def _approve_offline(self, record: TxnRecord) -> Gen:
        record.offline = True
        record.state = "approved"
        record.code = "Y1"
        record.shown_minor = record.amount_minor
        self.journal.enqueue(QueueEntry(
            kind="advice", step=record.step, orig_mti="0220", orig_stan=record.stan,
            orig_f7=record.f7, amount_minor=record.amount_minor, reason="",
            queued_s=self.env.now, card=record.card,
        ), durable=True)
        self.trace.emit("terminal.offline_approved", step=record.step, stan=record.stan)
        yield from self._finish_approved(record)

    def _finish_approved(self, record: TxnRecord, recovered: bool = False) -> Gen:
        """Two-phase completion: the sale stands only once its receipt is out."""
        receipt = self._receipt(record, "APPROVED" if record.code != "10"
                                else "PARTIAL APPROVAL")
        self.journal.disk.receipts[record.step] = receipt
        self._last_receipt = (record.step, receipt)
        printed = yield from self._print(receipt, record.step, record.step, "approved")
        policy = self.policy.on_receipt_failure
        if not printed and policy == "reprint":
            self._held.add(record.step)
            self.trace.emit("terminal.receipt_held", step=record.step)
            deadline = self.env.now + self.policy.receipt_hold_s
            while not printed and self.env.now < deadline:
                yield self.env.timeout(self.policy.printer_poll_s)
                if self._printer_ready():
                    printed = yield from self._print(receipt, record.step, record.step,
                                                     "approved")
            self._held.discard(record.step)
        if not printed and policy != "ignore":
            yield from self._reverse_now(record, REASON_NOT_COMPLETED)
            self._done(record.step, "sale", "cancelled", reason="receipt not printed",
                       recovered=recovered)
            self.reader.eject()
            return
        record.state = "completed"
        self._disarm(record)
        self._done(record.step, "sale", "approved", code=record.code,
                   amount_minor=record.shown_minor, recovered=recovered)
        self.reader.eject()

    def _print_slip(self, record: TxnRecord, result: str) -> Gen:
        receipt = self._receipt(record, result)
        if record.code == "00":
            self.journal.disk.receipts[record.step] = receipt
            self._last_receipt = (record.step, receipt)
        yield from self._print(receipt, record.step, record.step,
                               "approved" if record.code == "00" else "declined")

    def _print(self, receipt: ReceiptData, step: str, of: str, slip: str) -> Gen:
        """Print a receipt; True when the firmware believes it came out."""
        whole = yield self.printer.print_job(render(receipt), step=step, receipt_of=of,
                                             slip=slip)
        if not self.policy.confirm_print:
            return True
        return bool(whole) and self._printer_ready()

    def _printer_ready(self) -> bool:
        """DLE EOT 1 and 4: online, and not at paper end. Silence is not ready."""
        first = self.printer.status(1)
        roll = self.printer.status(4)
        if first is None or roll is None:
            return False
        return not first & 0x08 and roll & 0x60 != 0x60

    def _receipt(self, record: TxnRecord, result: str) -> ReceiptData:
        card = self.cards[record.card]
        title = "SALE" if record.do == "sale" else "REFUND"
        if record.offline:
            result = "APPROVED OFFLINE"
        amount = record.shown_minor if record.state == "approved" else record.amount_minor
        return ReceiptData(
            merchant=self.identity.merchant, merchant_id=self.identity.merchant_id,
            terminal_id=self.identity.terminal_id,
            when=self._clock().isoformat(" ", "seconds"), title=title,
            pan_last4=card.pan[-4:], amount=format_minor(amount or record.amount_minor),
            result=result, response_code=record.code, stan=record.stan, rrn=record.rrn,
            approval_code=record.auth,
        )

    def _done(self, step: str, do: str, result: str, **fields: Any) -> None:
        self.journal.disk.shown.add(step)
        self.trace.emit("terminal.txn_done", step=step, do=do, result=result, **fields)

    def _clock(self) -> datetime:
        """The simulated wall clock, computed once per instant (a record's field 7 and
        its request read it at the same moment)."""
        now = self.env.now
        if self._clock_at is None or self._clock_at[0] != now:
            self._clock_at = (now, self.start + timedelta(seconds=now))
        return self._clock_at[1]

    def _f7(self) -> str:
        return messages.field7(self._clock())


def _amount(fields: dict[str, Any], default: int) -> int:
    try:
        return int(str(fields.get("4", default)))
    except ValueError:
        return default

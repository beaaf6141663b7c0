"""The operator's steps as the terminal runs them: sale, refund, void, reprint, settle.

Each flow waits on the card reader, the exchange and the printer, asks
:mod:`emulator.firmware.decisions` what to do with what came back, and books it.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import simpy

from devices.iso8583.message import Fields
from devices.ports import CardReader, TraceSink
from emulator.firmware import decisions, messages
from emulator.firmware.books import Books
from emulator.firmware.clock import WallClock
from emulator.firmware.courier import Courier
from emulator.firmware.exchange import Exchange
from emulator.firmware.journal import Journal, LostClose, TxnRecord
from emulator.firmware.messages import CardInfo, Identity
from emulator.firmware.receipts import Receipts
from emulator.scenario.profiles import Policy

if TYPE_CHECKING:
    from emulator.scenario.model import StepSpec

Gen = Generator[simpy.Event, Any, Any]


class Flows:
    """Runs one operator step at a time; ``approve`` also completes what a reboot finds."""

    def __init__(
        self, trace: TraceSink, journal: Journal, books: Books, exchange: Exchange,
        courier: Courier, receipts: Receipts, reader: CardReader, policy: Policy,
        identity: Identity, cards: dict[str, CardInfo], clock: WallClock,
    ) -> None:
        self.trace = trace
        self.journal = journal
        self.books = books
        self.exchange = exchange
        self.courier = courier
        self.receipts = receipts
        self.reader = reader
        self.policy = policy
        self.identity = identity
        self.cards = cards
        self.clock = clock

    # -- the steps -----------------------------------------------------------------

    def sale(self, step: StepSpec) -> Gen:
        record = yield from self._begin(step)
        if record is None:
            return
        outcome, fields, record = yield from self._online(record)
        code = decisions.code_of(fields)
        action = decisions.sale_action(outcome, code, record.amount_minor, self.policy)
        if action == decisions.ACCEPT:
            assert code is not None
            yield from self._accept(record, code, fields)
        elif action == decisions.OFFLINE:
            self.books.disarm(record)
            self.books.accept_offline(record)
            yield from self.approve(record)
        elif action == decisions.UNREACHABLE:
            self._refused(record)
            self.books.done(step.id, "sale", "declined", code="91", reason="host refused")
            self.reader.eject()
        elif action == decisions.GIVE_UP:
            yield from self._give_up(record, outcome)
        else:
            assert code is not None
            self.books.decline(record, code)
            receipt = self.receipts.issue(record, "DECLINED", "declined")
            yield from self.receipts.print(receipt, record.step, record.step, "declined")
            self.books.done(step.id, "sale", "declined", code=code)
            self.reader.eject()

    def refund(self, step: StepSpec) -> Gen:
        record = yield from self._begin(step)
        if record is None:
            return
        outcome, fields, record = yield from self._online(record)
        code = decisions.code_of(fields)
        action = decisions.refund_action(outcome, code, self.policy)
        if action == decisions.UNREACHABLE:
            self._refused(record)
            self.books.done(step.id, "refund", "refund_failed", code="91", reason="host refused")
            return
        if action == decisions.QUERY:
            status = yield from self._query_status(record)
            if decisions.status_stands(status):
                fields, code, action = status, "00", decisions.ACCEPT
            else:  # unknown to the host (so far) or no answer: make sure it never posts
                action = decisions.GIVE_UP
        elif action == decisions.RETRY_NEW:
            record = self._renew(record)
            outcome, fields, record = yield from self._online(record, retries=0)
            code = decisions.code_of(fields)
            action = decisions.answer_action(code)
        if action == decisions.GIVE_UP:
            yield from self._give_up(record, outcome)
            return
        assert code is not None
        if action == decisions.DECLINE:
            self.books.decline(record)
            self.books.done(step.id, "refund", "refund_failed", code=code)
            self.reader.eject()
            return
        yield from self._accept(record, code, fields)

    def void(self, step: StepSpec) -> Gen:
        target = self.journal.txn(step.target or "")
        if not decisions.voidable(target):
            self.books.done(step.id, "void", "void_failed", reason="no approved sale to void",
                            target=step.target)
            return
        assert target is not None
        if not (yield from self._clear_way(step)):
            return
        entry = self.books.queue_void(step.id, target)
        code = yield from self.courier.deliver(entry)
        result = decisions.void_result(code)
        if code is None:
            if decisions.abandons(code, self.policy):
                self.journal.dequeue(entry)
            self.books.done(step.id, "void", result, target=target.step)
            return
        if result == "voided":
            self.books.voided(step.id, target, code)
        else:
            self.books.done(step.id, "void", result, code=code, target=target.step)

    def reprint(self, step: StepSpec) -> Gen:
        receipt, of = self.receipts.kept(step.target)
        if receipt is None:
            self.books.done(step.id, "reprint", "reprint_failed", reason="nothing to reprint")
            return
        copy = replace(receipt, title=f"{receipt.title} - COPY")
        printed = yield from self.receipts.print(copy, step.id, of, "copy")
        self.books.done(step.id, "reprint", "reprinted" if printed else "reprint_failed",
                        target=of)

    def settle(self, step: StepSpec) -> Gen:
        """Close the batch: the queue delivered first (per ``drain_saf_before_settle``),
        a close that got no answer repeated first (per ``repeat_lost_settlement``), then
        the totals of the completed sales and refunds (0500)."""
        if decisions.drains_before_settle(self.policy) and not (
            yield from self.courier.drain(self.policy.settle_drain_s)
        ):
            self.books.done(step.id, "settle", "settle_failed", reason="queue not delivered")
            return
        disk = self.journal.disk
        lost = disk.lost_close if decisions.repeats_close(self.policy) else None
        took = False  # the host answered the lost close's repeat 00
        if lost is not None:
            outcome, response, _ = yield from self._close(step, {**lost.fields, "t": "0501"})
            if response is None:
                self.books.done(step.id, "settle", "settle_failed", reason=outcome,
                                repeat=True)
                return
            code = str(response.get("39", ""))
            if not decisions.close_answered(code):
                self.books.done(step.id, "settle", "settle_failed", code=code, repeat=True)
                return
            disk.lost_close = None
            took = decisions.lost_close_settled(code)
            if took:
                self.books.settle([disk.txns[s] for s in lost.steps if s in disk.txns])
        debits, credits = decisions.batch(disk.txns.values())
        if took and not (debits or credits):
            self.books.done(step.id, "settle", "settled", code="00", repeat=True)
            return
        stan = self.journal.next_stan()
        fields = messages.batch_totals(debits, credits, stan, self.clock.f7(), self.identity)
        if decisions.repeats_close(self.policy):  # on disk before it leaves: a power cut
            disk.lost_close = LostClose(  # cannot lose it either
                {k: str(v) for k, v in fields.items()},
                tuple(r.step for r in (*debits, *credits)),
            )
        outcome, response, tries = yield from self._close(step, fields)
        if response is None:
            if outcome == decisions.REFUSED and tries == 1:  # it never left
                disk.lost_close = None
            self.books.done(step.id, "settle", "settle_failed", reason=outcome)
            return
        code = str(response.get("39", ""))
        if decisions.close_answered(code):
            disk.lost_close = None
        result = decisions.settle_result(code)
        if result == "settled":
            self.books.settle((*debits, *credits))
        self.books.done(step.id, "settle", result, code=code)

    def _close(self, step: StepSpec, fields: Fields) -> Gen:
        """Send the batch close ``fields`` and, when no answer comes, its 0501 repeats
        (per ``repeat_lost_settlement``): (outcome, the 0510's fields or None, how many
        were sent)."""
        about = {
            "debits": int(str(fields["76"])), "credits": int(str(fields["74"])),
            "debits_minor": int(str(fields["88"])), "credits_minor": int(str(fields["86"])),
        }
        stan = str(fields["11"])
        outcome, response = yield from self.exchange.ask(fields, "0510", stan, step.id, **about)
        left, tries = decisions.close_repeats(outcome, self.policy), 1
        while response is None and left > 0:
            left, tries = left - 1, tries + 1
            fields = {**fields, "t": "0501"}
            outcome, response = yield from self.exchange.ask(fields, "0510", stan, step.id,
                                                             **about)
            if outcome == decisions.REFUSED:
                break
        return outcome, response, tries

    # -- completing an approval -----------------------------------------------------

    def approve(self, record: TxnRecord, recovered: bool = False) -> Gen:
        """Complete a booked approval: print its receipt, show it. A sale is two-phase:
        it stands only once its receipt is out; per ``on_receipt_failure`` it is held
        while the printer recovers and undone when its receipt never came out."""
        receipts, step = self.receipts, record.step
        two_phase = decisions.two_phase(record)
        if not two_phase:
            self.books.disarm(record)
        result, slip = decisions.approval_receipt(record)
        receipt = receipts.issue(record, result, slip)
        printed = yield from receipts.print(receipt, step, step, slip)
        if not two_phase:
            self.books.show(record)
            self.reader.eject()
            return
        if decisions.holds_receipt(printed, self.policy):
            printed = yield from receipts.hold(receipt, step)
        if decisions.undoes_sale(printed, self.policy):
            yield from self.courier.reverse_now(record, decisions.REASON_NOT_COMPLETED)
            self.books.done(step, "sale", "cancelled", reason="receipt not printed",
                            recovered=recovered)
        else:
            self.books.complete(record)
            self.books.show(record, recovered=recovered)
        self.reader.eject()

    def _accept(self, record: TxnRecord, code: str, fields: Fields) -> Gen:
        """An approval: undone when a full approval changed the amount or a sale's card
        was pulled out, else booked and completed."""
        shown = decisions.approved_minor(fields, record.amount_minor, self.policy)
        if decisions.amount_changed(code, shown, record.amount_minor):
            self.trace.emit("terminal.amount_mismatch", step=record.step,
                            requested_minor=record.amount_minor, approved_minor=shown)
            yield from self.courier.reverse_now(record, decisions.REASON_INVALID)
            self.books.done(record.step, record.do, decisions.FAILED[record.do], code=code,
                            reason="amount changed")
            self.reader.eject()
            return
        if record.do == "sale" and not self.reader.card_present:
            reason = decisions.card_removed_reason(self.policy)
            if reason is not None:
                yield from self.courier.reverse_now(record, reason)
            else:
                self.books.decline(record)
            self.books.done(record.step, "sale", "cancelled", reason="card removed")
            return
        self.books.accept(record, code, fields, shown)
        yield from self.approve(record)

    # -- building blocks ----------------------------------------------------------

    def _begin(self, step: StepSpec) -> Generator[simpy.Event, Any, TxnRecord | None]:
        """Clear the way, read the card (PIN for a sale), open the record; None if stopped."""
        if not (yield from self._clear_way(step)):
            return None
        assert step.card is not None
        assert step.amount_minor is not None
        if not (yield from self.reader.read(step.card, pin=step.do == "sale")):
            self.books.done(step.id, step.do, decisions.READ_FAILED[step.do],
                            reason="card read error")
            return None
        return self.books.open(step.id, step.do, step.card, step.amount_minor)

    def _clear_way(self, step: StepSpec) -> Generator[simpy.Event, Any, bool]:
        """Deliver what is owed before a new transaction; False when it must wait.

        Without the guard the transaction starts at once (what is owed goes later,
        if its slot survives the new transaction's record).
        """
        if not decisions.waits_for_queue(self.policy):
            return True
        yield from self.courier.flush()
        if decisions.holds_up(self.journal.pending(("reversal", "void"))):
            self.books.done(step.id, step.do, "refused", reason="reversal pending")
            return False
        return True

    def _online(self, record: TxnRecord, retries: int | None = None) -> Gen:
        """Send the request (and retries); (outcome, response fields or None, record)."""
        ask = self.exchange.ask
        fields = self._request(record)
        outcome, response = yield from ask(fields, "0210", record.stan, record.step,
                                           amount_minor=record.amount_minor)
        left = self.policy.request_retries if retries is None else retries
        while decisions.retries(outcome, response, left):
            left -= 1
            if decisions.retry_kind(self.policy) == decisions.REPEAT:
                fields = {**fields, "t": "0201"}
            else:
                record = self._renew(record)
                fields = self._request(record)
            outcome, response = yield from ask(fields, "0210", record.stan, record.step,
                                               amount_minor=record.amount_minor)
            if outcome == decisions.REFUSED:
                self.trace.emit("terminal.retry_refused", step=record.step, stan=record.stan)
            outcome = decisions.retry_outcome(outcome)
        if response is None and outcome == decisions.TIMEOUT:
            self.trace.emit("terminal.timeout", step=record.step, stan=record.stan)
        return outcome, response, record

    def _renew(self, record: TxnRecord) -> TxnRecord:
        """Give up ``record``'s request for a new one under a new STAN."""
        self.books.disarm(record)
        self.trace.emit("terminal.retry_as_new", step=record.step, stan=record.stan)
        return self.books.open(record.step, record.do, record.card, record.amount_minor)

    def _request(self, record: TxnRecord) -> Fields:
        return messages.financial(record, self.cards[record.card], self.identity,
                                  self.clock.now())

    def _query_status(self, record: TxnRecord) -> Gen:
        """Ask the host whether ``record`` stands: its 0610 (39 = 00 and field 4 = the
        amount when it does), or None when no answer came."""
        stan = self.journal.next_stan()
        fields = messages.status_query(record, stan, self.clock.f7(), self.identity)
        _, response = yield from self.exchange.ask(fields, "0610", stan, record.step,
                                                   orig_stan=record.stan)
        return response

    def _refused(self, record: TxnRecord) -> None:
        """The host refused ``record``'s request: it did not move money, unless a copy
        of the request gets through later, which ``reverse_refused`` owes a reversal
        for (sent with the store-and-forward queue, holding up nothing); not when the
        request never left (no connection could be opened)."""
        if decisions.reverses_refused(self.policy, self.exchange.refusal_left):
            self.books.reversal(record, decisions.REASON_TIMEOUT).precaution = True
        elif record.do == "sale":
            self.books.decline(record)
        else:
            self.books.disarm(record)

    def _give_up(self, record: TxnRecord, outcome: str) -> Gen:
        """No valid answer (or an uncertain one): reverse if the policy says so, show the
        failure."""
        reason = decisions.give_up_reason(outcome, self.policy)
        if reason is not None:
            yield from self.courier.reverse_now(record, reason)
        else:
            self.books.decline(record)
        self.books.done(record.step, record.do, decisions.FAILED[record.do], reason=outcome)
        self.reader.eject()

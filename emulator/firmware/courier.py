"""The store-and-forward queue's delivery: reversals, voids and advices the terminal owes
the host, sent with their repeats until answered, dropped when they expire."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from devices.ports import TraceSink
from emulator.firmware import decisions, messages
from emulator.firmware.books import Books
from emulator.firmware.clock import WallClock
from emulator.firmware.exchange import Exchange
from emulator.firmware.journal import Journal, QueueEntry, TxnRecord
from emulator.firmware.messages import CardInfo, Identity
from emulator.scenario.profiles import Policy

Gen = Generator[simpy.Event, Any, Any]


class Courier:
    """Delivers the journal's queued entries through the exchange."""

    def __init__(
        self, env: simpy.Environment, trace: TraceSink, journal: Journal, books: Books,
        exchange: Exchange, policy: Policy, identity: Identity, cards: dict[str, CardInfo],
        clock: WallClock,
    ) -> None:
        self.env = env
        self.trace = trace
        self.journal = journal
        self.books = books
        self.exchange = exchange
        self.policy = policy
        self.identity = identity
        self.cards = cards
        self.clock = clock

    def reverse_now(self, record: TxnRecord, reason: str) -> Gen:
        """Turn the armed reversal of ``record`` into a due one and deliver it."""
        entry = self.books.reversal(record, reason)
        code = yield from self.deliver(entry)
        if decisions.abandons(code, self.policy):
            self.journal.dequeue(entry)
            self.trace.emit("terminal.reversal_abandoned", step=record.step)

    def deliver(self, entry: QueueEntry) -> Gen:
        """Send a queued entry (with repeats); its response code, or None."""
        if entry.kind == "advice":
            return (yield from self._deliver_advice(entry))
        if not entry.stan:
            entry.stan = self.journal.next_stan()
            entry.f7 = self.clock.f7()
        card = self.cards.get(entry.card)
        for _ in range(decisions.reversal_sends(self.policy)):
            mti = decisions.reversal_mti(entry)
            entry.sent += 1
            fields = messages.reversal(entry, mti, card, self.identity)
            self.trace.emit("terminal.reversal_sent", step=entry.step, kind=entry.kind,
                            mti=mti, stan=entry.stan, orig_stan=entry.orig_stan,
                            orig_f7=entry.orig_f7, reason=entry.reason)
            outcome, response = yield from self.exchange.ask(fields, "0410", entry.stan)
            code = decisions.code_of(response)
            if code is not None and decisions.unsettled(code):
                self.trace.emit("terminal.reversal_unsettled", step=entry.step, code=code)
            elif code is not None:
                self.journal.dequeue(entry)
                self.trace.emit("terminal.reversal_done", step=entry.step, kind=entry.kind,
                                orig_stan=entry.orig_stan, code=code)
                return code
            if outcome == decisions.REFUSED:
                break
        return None

    def _deliver_advice(self, entry: QueueEntry) -> Gen:
        mti = decisions.advice_mti(entry, self.policy)
        entry.sent += 1
        card = self.cards[entry.card]
        fields = messages.advice(entry, mti, card, self.identity)
        _, response = yield from self.exchange.ask(fields, "0230", entry.orig_stan, entry.step,
                                                   amount_minor=entry.amount_minor)
        code = decisions.code_of(response)
        if code is None:
            return None
        if decisions.unsettled(code):  # the host could not act on it: keep it queued
            self.trace.emit("terminal.advice_unsettled", step=entry.step, code=code)
            return None
        if self.policy.dedupe_saf_after_reboot:
            self.journal.dequeue(entry)
        else:
            self.journal.ram.acked.add(entry.orig_key)
        self.trace.emit("terminal.advice_done", step=entry.step, stan=entry.orig_stan, code=code)
        return code

    def drain(self, bound_s: float) -> Generator[simpy.Event, Any, bool]:
        """Flush until nothing is due (True), a pass every ``saf_retry_s``; False when the
        next pass would start more than ``bound_s`` after the first."""
        env, journal = self.env, self.journal
        deadline = env.now + bound_s
        while True:
            began = env.now
            yield from self.flush()
            if not journal.pending():
                return True
            at = decisions.next_drain_pass(began, deadline, self.policy)
            if at is None:
                return False
            if at > env.now:
                yield env.timeout(at - env.now)

    def flush(self) -> Gen:
        """Send every due queued entry once (with its repeats); drop expired ones."""
        for entry in self.journal.pending():
            if decisions.expired(entry, self.env.now, self.policy):
                self.journal.dequeue(entry)
                self.trace.emit("terminal.queue_expired", step=entry.step, kind=entry.kind)
                continue
            code = yield from self.deliver(entry)
            if code is None:
                break
            if entry.kind == "void":
                target = self.journal.txn(entry.target)
                if target is not None and decisions.void_result(code) == "voided":
                    self.books.voided(entry.step, target, code, late=True)

"""The terminal's receipts: built from its records, printed through the
:class:`~devices.ports.Printer` port and confirmed by its status, kept for reprints,
held while the printer recovers."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from devices.ports import Printer, TraceSink
from devices.printer.receipt import ReceiptData, render
from emulator.firmware import decisions
from emulator.firmware.clock import WallClock
from emulator.firmware.journal import Journal, TxnRecord
from emulator.firmware.messages import CardInfo, Identity
from emulator.money import format_minor
from emulator.scenario.profiles import Policy

Printed = Generator[simpy.Event, Any, bool]
"""A print: True when the firmware believes the receipt came out."""


class Receipts:
    """Receipts issued, printed and held; ``held`` names the steps waiting on the
    printer, ``last`` is the last receipt kept (a reprint without a target copies it)."""

    def __init__(
        self, env: simpy.Environment, trace: TraceSink, printer: Printer, policy: Policy,
        identity: Identity, cards: dict[str, CardInfo], clock: WallClock, journal: Journal,
    ) -> None:
        self.env = env
        self.trace = trace
        self.printer = printer
        self.policy = policy
        self.identity = identity
        self.cards = cards
        self.clock = clock
        self.journal = journal
        self.last: tuple[str, ReceiptData] | None = None

    @property
    def held(self) -> set[str]:
        """Steps whose receipt waits on the printer (in RAM: a power cut forgets them)."""
        return self.journal.ram.held

    def issue(self, record: TxnRecord, result: str, slip: str) -> ReceiptData:
        """``record``'s receipt reading ``result``; an "approved" slip is kept for
        reprints, a "declined" one is not."""
        receipt = self._build(record, result)
        if slip == "approved":
            self.journal.disk.receipts[record.step] = receipt
            self.last = (record.step, receipt)
        return receipt

    def print(self, receipt: ReceiptData, step: str, of: str, slip: str) -> Printed:
        """Print a receipt; True when the firmware believes it came out."""
        whole = yield self.printer.print_job(render(receipt), step=step, receipt_of=of,
                                             slip=slip)
        if not self.policy.confirm_print:
            return True
        return bool(whole) and self.ready()

    def hold(self, receipt: ReceiptData, step: str) -> Printed:
        """Hold ``step`` whose receipt did not come out: poll the printer and print it
        again once ready, for up to ``receipt_hold_s``; True when it came out."""
        self.held.add(step)
        self.trace.emit("terminal.receipt_held", step=step)
        deadline = self.env.now + self.policy.receipt_hold_s
        printed = False
        while not printed and self.env.now < deadline:
            yield self.env.timeout(self.policy.printer_poll_s)
            if self.ready():
                printed = yield from self.print(receipt, step, step, "approved")
        self.held.discard(step)
        return printed

    def ready(self) -> bool:
        """Ask the printer (DLE EOT 1 and 4) whether it is online with paper."""
        first = self.printer.status(1)
        roll = self.printer.status(4)
        return decisions.printer_ready(first, roll)

    def kept(self, target: str | None) -> tuple[ReceiptData | None, str]:
        """The kept receipt of ``target`` (the last one when None) and whose it is."""
        if target is not None:
            return self.journal.disk.receipts.get(target), target
        if self.last is not None:
            of, receipt = self.last
            return receipt, of
        return None, ""

    def _build(self, record: TxnRecord, result: str) -> ReceiptData:
        card = self.cards[record.card]
        title = "SALE" if record.do == "sale" else "REFUND"
        if record.offline:
            result = "APPROVED OFFLINE"
        amount = record.shown_minor if record.state == "approved" else record.amount_minor
        identity = self.identity
        return ReceiptData(
            merchant=identity.merchant, merchant_id=identity.merchant_id,
            terminal_id=identity.terminal_id,
            when=self.clock.now().isoformat(" ", "seconds"), title=title,
            pan_last4=card.pan[-4:], amount=format_minor(amount or record.amount_minor),
            result=result, response_code=record.code, stan=record.stan, rrn=record.rrn,
            approval_code=record.auth,
        )

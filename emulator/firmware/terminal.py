"""The terminal's firmware: the system under test.

It runs the operator's steps one at a time (sale, refund, void, reprint,
settle), speaks ISO 8583 to the host over the link, prints receipts, keeps a
journal that survives power loss as far as it was durably written, and
follows its :class:`~emulator.scenario.profiles.Policy` wherever a real terminal has a
choice. Every choice that can turn a fault into an anomaly is a knob, read by
:mod:`emulator.firmware.decisions`.

:class:`Terminal` is the simpy component: it wires its parts (the exchange with
the host, the store-and-forward courier, the receipts, the bookkeeping and the
flows), runs the main loop and handles power loss and boot.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import simpy

from devices.fault import ActiveFault
from devices.ports import CardReader, Firmware, Printer, TraceSink, Transport
from devices.simkit.queues import Mailbox, any_of
from emulator.firmware import decisions
from emulator.firmware.books import Books
from emulator.firmware.clock import WallClock
from emulator.firmware.courier import Courier
from emulator.firmware.exchange import Exchange
from emulator.firmware.flows import Flows
from emulator.firmware.journal import Journal
from emulator.firmware.messages import CardInfo, Identity
from emulator.firmware.receipts import Receipts
from emulator.scenario.profiles import Policy

if TYPE_CHECKING:
    from collections.abc import Callable

    from emulator.scenario.model import StepSpec

Gen = Generator[simpy.Event, Any, Any]


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
        self.journal = journal = Journal()
        self.steps = Mailbox(env)
        self.powered = True
        self._power_back: simpy.Event | None = None
        self._waits: list[simpy.Event] = []
        clock = WallClock(env, start)
        self.books = books = Books(journal, trace, policy, clock)
        exchange = Exchange(env, trace, transport, policy, identity.terminal_id, mac_key,
                            self._waits)
        self.courier = Courier(env, trace, journal, books, exchange, policy, identity, cards,
                               clock)
        self.receipts = Receipts(env, trace, printer, policy, identity, cards, clock, journal)
        self.flows = flows = Flows(trace, journal, books, exchange, self.courier,
                                   self.receipts, reader, policy, identity, cards, clock)
        self._handlers: dict[str, Callable[[StepSpec], Gen]] = {
            "sale": flows.sale, "refund": flows.refund, "void": flows.void,
            "reprint": flows.reprint, "settle": flows.settle,
        }
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
        owed += [(step, "held_receipt") for step in sorted(self.receipts.held)]
        return owed

    def open_steps(self) -> set[str]:
        """Steps the terminal may still act on: its journal's records, queued messages and
        the steps they are for, held receipts, and the last receipt (a reprint copies it)."""
        journal = self.journal
        steps = set(journal.disk.txns)
        steps.update(name for e in journal.queue() for name in (e.step, e.target) if name)
        steps.update(self.receipts.held)
        if self.receipts.last is not None:
            steps.add(self.receipts.last[0])
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
        self.receipts.held.clear()
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
                yield from self.courier.flush()
                return
        else:
            self._waits.append(get)
            yield get
            self._waits.remove(get)
        step: StepSpec = cast("StepSpec", get.value)
        handler = self._handlers[step.do]
        self.trace.emit(
            "terminal.txn_started", step=step.id, do=step.do, amount_minor=step.amount_minor,
        )
        yield from handler(step)

    def _boot(self) -> Gen:
        """After power returns: inbox cleared, journal read, owed work resumed."""
        self.transport.discard()
        self.trace.emit("terminal.rebooted")
        journal, books = self.journal, self.books
        for entry in journal.queue():
            if decisions.due_at_boot(entry, journal.txn(entry.step)):
                books.make_due(entry)
        if decisions.reissues_advices(self.policy):
            for entry in journal.pending(("advice",)):
                books.reissue(entry)
        for record in list(journal.disk.txns.values()):
            action = decisions.boot_action(record, record.step in journal.disk.shown)
            if action == decisions.FINISH:
                yield from self.flows.approve(record, recovered=True)
            elif action == decisions.SHOW:
                books.show(record, recovered=True)
        yield from self.courier.flush()


_FIRMWARE: type[Firmware[StepSpec]] = Terminal
"""The terminal is the :class:`~devices.ports.Firmware` port's simulated side (mypy checks)."""

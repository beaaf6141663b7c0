"""The terminal's firmware: the system under test.

It runs the operator's steps one at a time (sale, refund, void, reprint,
settle), speaks ISO 8583 to the host over the link, prints receipts, keeps a
journal that survives power loss as far as it was durably written, and
follows its :class:`~emulator.scenario.profiles.Policy` wherever a real terminal has a
choice. Every choice that can turn a fault into an anomaly is a knob, read by
:mod:`emulator.firmware.decisions`.

:class:`PosemuFirmware` is this firmware as an implementation of the public Firmware
interface (:mod:`emulator.firmware.api`, docs/firmware.md): built from a kit alone, it
wires its parts (the exchange with the host, the store-and-forward courier, the
receipts, the bookkeeping and the flows) and runs steps, boot and idle-time work.
:class:`Terminal` is it in the harness a plug-in runs in (the main loop, power loss,
the contract checks), with its :class:`~emulator.scenario.profiles.Policy`.
"""

from __future__ import annotations

import functools
from collections.abc import Generator, Mapping
from dataclasses import asdict
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, cast

import simpy

from devices.ports import CardReader, Firmware, Printer, TraceSink, Transport
from emulator.firmware import decisions
from emulator.firmware.api import Kit, Setting, TerminalFirmware
from emulator.firmware.books import Books
from emulator.firmware.courier import Courier
from emulator.firmware.exchange import Exchange
from emulator.firmware.flows import Flows
from emulator.firmware.harness import Harness
from emulator.firmware.journal import Journal
from emulator.firmware.messages import CardInfo, Identity
from emulator.firmware.receipts import Receipts
from emulator.scenario.model import MONEY_KNOBS, RECEIPT_FAILURE
from emulator.scenario.profiles import KNOBS, POLICY_FIELDS, SETTINGS, Policy

if TYPE_CHECKING:
    from collections.abc import Callable

    from emulator.scenario.model import StepSpec

Gen = Generator[simpy.Event, Any, Any]


class PosemuFirmware:
    """posemu's terminal firmware, built from a kit (nothing else) and its policy."""

    def __init__(self, kit: Kit, policy: Policy) -> None:
        self.kit = kit
        self.policy = policy
        env, trace, identity, clock = kit.env, kit.trace, kit.identity, kit.clock
        cards = cast("dict[str, CardInfo]", kit.cards)  # read only: shared by a fleet's units
        self.journal = journal = Journal(kit.journal)
        self.books = books = Books(journal, trace, policy, clock)
        exchange = Exchange(env, trace, kit.transport, policy, identity.terminal_id,
                            kit.mac_key, [])  # the harness withdraws the waits a power cut ends
        self.courier = Courier(env, trace, journal, books, exchange, policy, identity, cards,
                               clock)
        self.receipts = Receipts(env, trace, kit.printer, policy, identity, cards, clock,
                                 journal)
        self.flows = flows = Flows(trace, journal, books, exchange, self.courier,
                                   self.receipts, kit.reader, policy, identity, cards, clock)
        self._handlers: dict[str, Callable[[StepSpec], Gen]] = {
            "sale": flows.sale, "refund": flows.refund, "void": flows.void,
            "reprint": flows.reprint, "settle": flows.settle,
        }

    def run(self, step: StepSpec) -> Gen:
        """One operator step: sale, refund, void, reprint or settle (the flow's generator)."""
        return self._handlers[step.do](step)

    def idle_s(self) -> float | None:
        """While messages are owed, deliver them after ``saf_retry_s`` without a step."""
        return self.policy.saf_retry_s if self.journal.pending() else None

    def idle(self) -> Gen:
        yield from self.courier.flush()

    def owed(self) -> list[tuple[str, str]]:
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

    def boot(self) -> Gen:
        """After power returns: the journal read, owed work resumed."""
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


class _AsPlugin:
    """posemu's own terminal as a plug-in factory,
    ``firmware = "emulator.firmware.terminal:posemu_terminal"``: its settings are every knob
    and setting of the policy, robust by default (the same traces as the built-in)."""

    settings: ClassVar[dict[str, Setting]] = {
        name: Setting(
            "money" if name in MONEY_KNOBS else "text" if kind is str
            else {bool: "bool", float: "seconds", int: "count"}[kind],
            getattr(Policy(), name),
            KNOBS[name].help if name in KNOBS else SETTINGS.get(name, ""),
            RECEIPT_FAILURE if kind is str else (),
        )
        for name, kind in POLICY_FIELDS.items()
    }

    def __call__(self, kit: Kit) -> PosemuFirmware:
        return PosemuFirmware(kit, Policy(**dict[str, Any](kit.settings)))


posemu_terminal = _AsPlugin()


class Terminal(Harness):
    """The payment terminal as a simpy component: :class:`PosemuFirmware` with ``policy``
    in the harness (the :class:`~devices.ports.Firmware` port)."""

    def __init__(
        self, env: simpy.Environment, trace: TraceSink, transport: Transport,
        reader: CardReader, printer: Printer, policy: Policy, identity: Identity, start: datetime,
        cards: dict[str, CardInfo], mac_key: bytes,
    ) -> None:
        self.policy = policy
        super().__init__(env, trace, transport, reader, printer, identity, start, cards, mac_key,
                         lambda kit: PosemuFirmware(kit, policy), _settings(policy), "posemu",
                         checked=False)  # its contract is audited by the tests instead

    @property
    def posemu(self) -> PosemuFirmware:
        return self.firmware  # type: ignore[return-value]

    @property
    def journal(self) -> Journal:
        return self.posemu.journal

    @property
    def receipts(self) -> Receipts:
        return self.posemu.receipts


@functools.lru_cache(maxsize=16)
def _settings(policy: Policy) -> Mapping[str, object]:
    """The policy as the kit's settings, one read-only mapping per policy (a fleet's
    terminals share it)."""
    return MappingProxyType(asdict(policy))


_FIRMWARE: type[Firmware[StepSpec]] = Terminal
"""The terminal is the :class:`~devices.ports.Firmware` port's simulated side (mypy checks)."""
_INTERFACE: type[TerminalFirmware] = PosemuFirmware
"""posemu's firmware implements the public interface a plug-in does (mypy checks)."""

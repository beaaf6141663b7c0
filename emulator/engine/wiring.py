"""One wiring: a unit of posemu built from its scenario, one factory per port.

A unit is a terminal (its firmware), a card reader, a receipt printer, a transport
to the acquirer, the acquirer endpoint (the host) and the fault injector on them::

    scenario, Shared (clock, RNG, acquirer core, cards: what a fleet's units share),
    the unit's trace and terminal id, Parts (one factory per port; SIMULATED by default)
      -> wire_unit -> transport, endpoint, reader, printer, firmware, injector

A single run (:class:`~emulator.engine.world.World`), each terminal of a fleet
(:class:`~emulator.engine.fleet.Fleet`) and a bench run (:mod:`emulator.engine.bench`,
a World with a real printer) are built by :func:`wire_unit`, and nothing else builds
these components. Components start their processes as they are built, and simpy runs
events due at the same instant in the order they were made, so the build order is part
of the trace: transport, endpoint, reader, printer, firmware, injector.

It also holds what every run builds from its scenario: the bank, the cards, the MAC
key, and the bank's books (:class:`BankBooks`): the balances, and the checks as a run ends
that money was conserved and that the ledger is what the trace says.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeAlias, TypeVar

from devices.bank.acquirer import Account, Acquirer
from devices.bank.host import Host
from devices.card_reader import SimCardReader
from devices.errors import ConservationError
from devices.net.link import Link
from devices.ports import CardReader, FaultTarget, Firmware, Printer, Transport
from devices.printer.core import PrinterCore
from devices.printer.sim import SimPrinter
from emulator.engine.injector import Injector
from emulator.firmware.messages import CardInfo, Identity
from emulator.firmware.terminal import Terminal
from emulator.judge.reconcile import reconcile

if TYPE_CHECKING:
    import simpy

    from devices.ports import TraceBus, TraceSink
    from emulator.judge.reconcile import BankMoves, Booking
    from emulator.scenario.model import Scenario, StepSpec

MAC_KEY = b"posemu-test-mac-key-0001"
"""The MAC key terminal and host share: a test key, never a real one."""


class Connection(FaultTarget, Protocol):
    """What a transport factory builds: the way between a terminal and its acquirer,
    a :class:`~devices.ports.Transport` at each end (the injector's ``network``)."""

    @property
    def terminal_end(self) -> Transport: ...

    @property
    def bank_end(self) -> Transport: ...


@dataclass(frozen=True)
class Shared:
    """What the units of a run share: the scenario, the clock, the seeded RNG, the
    acquirer core and the cards; in a fleet also each terminal's trace by terminal id
    (where the host traces money a request mangled on the way moved for another)."""

    scenario: Scenario
    env: simpy.Environment
    rng: random.Random
    acquirer: Acquirer
    cards: dict[str, CardInfo]
    traces: Mapping[str, TraceSink] | None = None

    @classmethod
    def of(cls, scenario: Scenario, env: simpy.Environment,
           traces: Mapping[str, TraceSink] | None = None) -> Shared:
        """What a run of ``scenario`` on ``env`` shares: the RNG seeded with the
        scenario's seed, its bank (:func:`make_acquirer`) and its cards."""
        return cls(scenario, env, random.Random(scenario.seed), make_acquirer(scenario),
                   card_infos(scenario), traces)


P = TypeVar("P", bound=Printer)
C = TypeVar("C", bound=Connection)
H = TypeVar("H", bound=FaultTarget)
F = TypeVar("F", bound="Firmware[StepSpec]")
P_co = TypeVar("P_co", bound=Printer, covariant=True)
C_co = TypeVar("C_co", bound=Connection, covariant=True)
H_co = TypeVar("H_co", bound=FaultTarget, covariant=True)
F_co = TypeVar("F_co", bound="Firmware[StepSpec]", covariant=True)

PrinterFactory: TypeAlias = Callable[[Shared, "TraceSink"], P]
TransportFactory: TypeAlias = Callable[[Shared, "TraceSink"], C]
EndpointFactory: TypeAlias = Callable[[Shared, "TraceSink", Transport], H]
"""Builds the acquirer endpoint serving the bank's end of the transport."""
FirmwareFactory: TypeAlias = Callable[
    [Shared, "TraceSink", Transport, CardReader, Printer, Identity], F]
"""Builds the terminal on the terminal's end of the transport, its reader and printer."""


@dataclass(frozen=True)
class Parts(Generic[P_co, C_co, H_co, F_co]):
    """One factory per port: what a unit's printer, transport, acquirer endpoint and
    firmware are built as (:data:`SIMULATED`: the simulated ones)."""

    printer: PrinterFactory[P_co]
    transport: TransportFactory[C_co]
    endpoint: EndpointFactory[H_co]
    firmware: FirmwareFactory[F_co]

    def with_printer(self, printer: PrinterFactory[P]) -> Parts[P, C_co, H_co, F_co]:
        """These parts with another printer (a bench run's real one)."""
        return Parts(printer, self.transport, self.endpoint, self.firmware)


@dataclass(frozen=True)
class Unit(Generic[P_co, C_co, H_co, F_co]):
    """One terminal and what it is wired to."""

    terminal: F_co
    reader: CardReader
    printer: P_co
    link: C_co  # the transport
    host: H_co  # the acquirer endpoint
    injector: Injector


def wire_unit(
    shared: Shared, trace: TraceBus, parts: Parts[P, C, H, F], terminal_id: str | None = None,
) -> Unit[P, C, H, F]:
    """Build one unit of ``shared.scenario`` from ``parts`` on ``trace`` (a fleet
    terminal's view of the fleet's trace), its terminal ``terminal_id`` (the scenario's
    by default) of the scenario's merchant; the scenario's faults are scheduled on it."""
    env = shared.env
    merchant = shared.scenario.merchant
    identity = Identity(merchant.name, merchant.merchant_id,
                        merchant.terminal_id if terminal_id is None else terminal_id)
    link = parts.transport(shared, trace)
    host = parts.endpoint(shared, trace, link.bank_end)
    reader = SimCardReader(env, trace)
    printer = parts.printer(shared, trace)
    terminal = parts.firmware(shared, trace, link.terminal_end, reader, printer, identity)
    targets: dict[str, FaultTarget] = {
        "card": reader, "printer": printer, "network": link, "bank": host, "terminal": terminal,
    }
    injector = Injector(env, trace, targets, shared.scenario.faults)
    return Unit(terminal, reader, printer, link, host, injector)


def sim_link(shared: Shared, trace: TraceSink) -> Link:
    """The simulated network link of the scenario's ``[network]``."""
    network = shared.scenario.network
    return Link(shared.env, shared.rng, trace, network.latency_s, network.jitter_s)


def sim_host(shared: Shared, trace: TraceSink, transport: Transport) -> Host:
    """The simulated acquirer host: the shared core behind ``transport``."""
    scenario = shared.scenario
    return Host(shared.env, trace, transport, shared.acquirer, scenario.start,
                scenario.bank.processing_s, traces=shared.traces)


def sim_printer(shared: Shared, trace: TraceSink) -> SimPrinter:
    """The simulated receipt printer of the scenario's ``[printer]``."""
    return scenario_printer(shared.scenario, shared.env, trace)


def scenario_printer(scenario: Scenario, env: simpy.Environment, trace: TraceSink,
                     kind: type[SimPrinter] | None = None) -> SimPrinter:
    """The simulated printer as the scenario's ``[printer]`` sets it: a SimPrinter, or one
    of its subclasses ``kind`` (the HTML report's also keeps what it is given)."""
    spec = scenario.printer
    core = PrinterCore(paper_m=spec.paper_m, near_end_m=spec.near_end_m)
    if kind is None:
        return SimPrinter(env, trace, core, spec.lines_per_s)
    return kind(env, trace, core, spec.lines_per_s)


def sim_terminal(
    shared: Shared, trace: TraceSink, transport: Transport, reader: CardReader,
    printer: Printer, identity: Identity,
) -> Firmware[StepSpec]:
    """posemu's terminal firmware, with the scenario's policy and clock; or the plug-in
    the scenario names (``[terminal] firmware``) in its harness."""
    scenario = shared.scenario
    if scenario.firmware is not None:
        from emulator.firmware.harness import Harness  # noqa: PLC0415  (plug-ins only)

        return Harness.of(shared.env, trace, transport, reader, printer, identity,
                          scenario.start, shared.cards, MAC_KEY, scenario.firmware)
    return Terminal(shared.env, trace, transport, reader, printer, scenario.policy, identity,
                    scenario.start, shared.cards, mac_key(scenario))


SIMULATED: Parts[SimPrinter, Link, Host, Firmware[StepSpec]] = Parts(
    sim_printer, sim_link, sim_host, sim_terminal)
"""Every part simulated: the default."""


def trace_header(scenario: Scenario, **extra: Any) -> dict[str, Any]:
    """The header of ``scenario``'s trace: what names the run (and ``extra``)."""
    header = {"name": scenario.name, "seed": scenario.seed, "profile": scenario.profile,
              "path": scenario.path, **extra}
    if scenario.firmware is not None:
        header["firmware"] = scenario.firmware.ref
    return header


def make_acquirer(scenario: Scenario) -> Acquirer:
    """The bank of ``scenario``: its cards as accounts, its merchant, its ``[bank]``."""
    accounts = {
        c.pan: Account(c.id, c.balance_minor, _yymm(c.expiry), c.blocked)
        for c in scenario.cards
    }
    return Acquirer(
        accounts, merchant_balance_minor=scenario.bank.merchant_balance_minor,
        merchant_id=scenario.merchant.merchant_id,
        duplicate_check=scenario.bank.duplicate_check,
        mac_key=mac_key(scenario) if scenario.bank.verify_mac else None,
        retention_s=scenario.bank.retention_s,
    )


def mac_key(scenario: Scenario) -> bytes:
    """The MAC key of ``scenario``'s terminal and bank: ``[bank] mac_key``, or :data:`MAC_KEY`."""
    key = scenario.bank.mac_key
    return MAC_KEY if key is None else bytes.fromhex(key)


def card_infos(scenario: Scenario) -> dict[str, CardInfo]:
    """What a terminal reads off each of the scenario's cards, by card id."""
    return {c.id: CardInfo(c.pan, _yymm(c.expiry) or "9912") for c in scenario.cards}


class BankBooks:
    """The bank's books over a run: the balances it opens with, checked as it closes."""

    def __init__(self, scenario: Scenario, acquirer: Acquirer) -> None:
        self.scenario = scenario
        self.acquirer = acquirer
        self.before = self.balances()
        self.total_before = acquirer.total_minor()

    def balances(self) -> dict[str, int]:
        """Each card's balance by card id, and the merchant's."""
        by_pan = self.acquirer.balances()
        balances = {c.id: by_pan[c.pan] for c in self.scenario.cards}
        balances["merchant"] = self.acquirer.ledger.merchant_balance_minor
        return balances

    def close(
        self, moves: BankMoves, bookings: Iterable[Booking] | None, what: str,
    ) -> dict[str, int]:
        """The balances at the end of run ``what``, once money is found conserved
        (else ConservationError) and the ledger as the trace's ``moves`` say (else
        LedgerMismatchError; ``bookings``: every posting made, None if not kept)."""
        acquirer = self.acquirer
        if acquirer.total_minor() != self.total_before:
            raise ConservationError(
                f"{what}: money not conserved: {self.total_before} -> "
                f"{acquirer.total_minor()} minor units"
            )
        balances = self.balances()
        reconcile(moves, made=acquirer.ledger.count, bookings=bookings, what=what,
                  merchant_moved=balances["merchant"] - self.before["merchant"])
        return balances


def _yymm(expiry: str | None) -> str | None:
    """``"2027-08"`` to ``"2708"``."""
    if expiry is None:
        return None
    year, month = expiry.split("-")
    return year[2:] + month

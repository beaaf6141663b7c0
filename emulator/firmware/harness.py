"""The harness a plug-in firmware runs in: posemu's side of the Firmware interface.

:class:`Harness` is the :class:`~devices.ports.Firmware` port for a plug-in built by its
factory from a :class:`~emulator.firmware.api.Kit`. It takes the operator's steps one at a
time, emits ``terminal.txn_started`` and calls the plug-in's ``run``; it cuts the power
(the plug-in's process is interrupted, pending receives withdrawn, the journal's volatile
half wiped, the card reader powered off, ``terminal.power_lost``) and brings it back
(what arrived meanwhile dropped, ``terminal.rebooted``, the plug-in's ``boot``). Every
event the plug-in emits and every print job it starts is checked against the contract
(:mod:`emulator.firmware.contract`); a broken rule or an exception ends the run with a
:class:`~devices.errors.FirmwareError`. posemu's own terminal runs in it unchecked
(``checked=False``): the tests audit its traces against the same contract.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

import simpy

from devices.errors import (
    ConservationError,
    DeviceError,
    FirmwareError,
    LedgerMismatchError,
    MessageError,
    TraceError,
)
from devices.fault import ActiveFault
from devices.iso8583.message import decode
from devices.ports import CardReader, Firmware, Printer, Refused, TraceSink, Transport
from devices.simkit.queues import Mailbox, Take, any_of
from emulator.firmware.api import JournalHalves, Kit, TerminalFirmware
from emulator.firmware.clock import WallClock
from emulator.firmware.contract import FINANCIAL, Contract
from emulator.firmware.messages import CardInfo, Identity
from emulator.firmware.plugin import Factory, load_factory

if TYPE_CHECKING:
    from emulator.scenario.model import FirmwareSpec, StepSpec

Gen = Generator[simpy.Event, Any, Any]

POSEMUS_OWN = (TraceError, DeviceError, ConservationError, LedgerMismatchError)
"""Errors of posemu itself (a trace that cannot be written, a device, the bank's books)
that may surface through a firmware's calls: never the firmware's fault."""
_PASSED = (simpy.Interrupt, FirmwareError, *POSEMUS_OWN)
_FACTORIES: dict[str, Factory] = {}  # by reference, as loaded (the module is cached anyway)


class _Power:
    """Whether the terminal is powered: what the checked ports read before acting."""

    def __init__(self) -> None:
        self.on = True


class CheckedTrace:
    """The plug-in's trace: each event checked against the contract, refused while the
    power is off (a firmware that caught the power loss's interrupt)."""

    def __init__(self, trace: TraceSink, contract: Contract, power: _Power) -> None:
        self._trace = trace
        self._contract = contract
        self._power = power

    def emit(self, name: str, **fields: Any) -> None:
        if not self._power.on:
            raise self._contract.fail("powered off", f"emitted {name} without power (never "
                                      "catch simpy.Interrupt: it is the power going)")
        self._contract.check(name, fields)
        self._trace.emit(name, **fields)


class CheckedTransport:
    """The plug-in's transport: receives it waits on are withdrawn when the power goes."""

    def __init__(self, transport: Transport, contract: Contract, power: _Power,
                 checked: bool = True) -> None:
        self._transport = transport
        self._contract = contract
        self._power = power
        self.waits: list[Take] = []
        if not checked:
            self.send = transport.send  # type: ignore[method-assign]

    def send(self, frame: bytes | Refused, **about: Any) -> None:
        if not self._power.on:
            raise self._contract.fail("powered off", "sent a frame without power")
        if isinstance(frame, bytes) and frame[2:6] in FINANCIAL:
            try:
                fields = decode(frame)  # cached: the host reads the same bytes
            except MessageError:  # the host answers it 30, moving no money
                pass
            else:
                self._contract.check_request(str(fields["t"]), fields.get("11"), fields.get("7"))
        self._transport.send(frame, **about)

    def receive(self) -> Take:
        self.waits = [w for w in self.waits if not w.triggered]
        take = self._transport.receive()
        self.waits.append(take)
        return take

    def discard(self) -> None:
        self._transport.discard()

    def withdraw(self) -> None:
        """The power went: every receive still waiting is withdrawn."""
        for take in self.waits:
            if not take.triggered and take in take.box.get_queue:  # not withdrawn already
                take.cancel()
        self.waits.clear()


class CheckedPrinter:
    """The plug-in's printer: each job's labels (step, receipt_of, slip) checked."""

    def __init__(self, printer: Printer, contract: Contract, power: _Power) -> None:
        self._printer = printer
        self._contract = contract
        self._power = power
        self.status = printer.status  # asked often, checked never

    def print_job(self, data: bytes, **about: Any) -> simpy.Process:
        if not self._power.on:
            raise self._contract.fail("powered off", "printed without power")
        self._contract.check_print(about)
        return self._printer.print_job(data, **about)

    def apply(self, fault: ActiveFault) -> None:  # faults reach the real printer, not this
        raise NotImplementedError

    def clear(self, fault: ActiveFault) -> None:
        raise NotImplementedError


class Harness:
    """A plug-in firmware as the terminal of a unit (the :class:`~devices.ports.Firmware`
    port): its main loop, its power, its contract."""

    def __init__(
        self, env: simpy.Environment, trace: TraceSink, transport: Transport,
        reader: CardReader, printer: Printer, identity: Identity, start: datetime,
        cards: dict[str, CardInfo], mac_key: bytes, factory: Factory,
        settings: Mapping[str, object], name: str, *, checked: bool = True,
    ) -> None:
        self.env = env
        self.trace = trace
        self.reader = reader
        self.identity = identity
        self.name = name
        self.checked = checked  # False: a firmware audited by posemu's tests (its own)
        self.contract = contract = Contract()
        self.power = power = _Power()
        self.transport, self.printer = transport, printer  # what the wiring gave it
        self._transport = CheckedTransport(transport, contract, power, checked)
        self.halves = JournalHalves()
        self.steps = Mailbox(env)
        self._power_back: simpy.Event | None = None
        self._get: Take | None = None
        self.kit = Kit(
            env=env, trace=CheckedTrace(trace, contract, power) if checked else trace,
            transport=self._transport, reader=reader,
            printer=CheckedPrinter(printer, contract, power) if checked else printer,
            journal=self.halves, clock=WallClock(env, start), identity=identity,
            cards=cards, mac_key=mac_key, settings=settings,
        )
        self._process = env.process(self._main(self._build(factory)))

    @classmethod
    def of(cls, env: simpy.Environment, trace: TraceSink, transport: Transport,
           reader: CardReader, printer: Printer, identity: Identity, start: datetime,
           cards: dict[str, CardInfo], mac_key: bytes, spec: FirmwareSpec) -> Harness:
        """The harness of the plug-in a scenario names (its factory loaded once: a fleet
        builds one harness per terminal)."""
        factory = _FACTORIES.get(spec.ref)
        if factory is None:
            factory = _FACTORIES[spec.ref] = load_factory(spec.ref)
        return cls(env, trace, transport, reader, printer, identity, start, cards, mac_key,
                   factory, MappingProxyType(spec.settings), spec.ref)

    @property
    def powered(self) -> bool:
        return self.power.on

    def _build(self, factory: Factory) -> FirmwareError | None:
        """Call the factory; what went wrong ends the run as it starts."""
        try:
            self.firmware = cast("TerminalFirmware", factory(self.kit))
        except Exception as exc:  # the plug-in's own code
            return FirmwareError("factory", f"{self.name} raised {_what(exc)}")
        for method in ("run", "boot", "owed"):
            if not callable(getattr(self.firmware, method, None)):
                return FirmwareError("factory", f"{self.name} built a "
                                     f"{type(self.firmware).__name__} without {method}()")
        return None

    # -- the port ------------------------------------------------------------------

    def submit(self, step: StepSpec) -> None:
        """The operator starts a step (it waits while the terminal is busy)."""
        self.steps.put(step)

    def apply(self, fault: ActiveFault) -> None:
        if fault.kind == "terminal.power_loss" and self.power.on:
            self.power.on = False
            self._power_back = self.env.event()
            if self._process.is_alive:
                self._process.interrupt("power_loss")

    def clear(self, fault: ActiveFault) -> None:
        if fault.kind == "terminal.power_loss" and not self.power.on:
            self.power.on = True
            if self._power_back is not None:
                self._power_back.succeed()

    def unresolved(self) -> list[tuple[str, str]]:
        """What the plug-in still owes (``owed()``); a step it left without an outcome
        when nothing was left to happen breaks the contract."""
        contract = self.contract
        if contract.violation is not None:
            raise contract.violation
        if not hasattr(self, "firmware"):
            return []
        if contract.current is not None and self.power.on and self.env.peek() == float("inf"):
            raise contract.fail("one outcome per step", "the run ended while the step was "
                                "still waiting, without terminal.txn_done")
        owed = self._call("owed", self.firmware.owed)
        if self.checked and (not isinstance(owed, list) or not all(
                isinstance(o, tuple) and len(o) == 2 and o[0] in contract.steps for o in owed)):
            raise contract.fail("owed", f"owed() must list (started step, what) pairs, "
                                f"not {owed!r}", step=None)
        return cast("list[tuple[str, str]]", owed)

    def open_steps(self) -> set[str]:
        """Steps the plug-in may still act on: its ``open_steps()``, else every step started."""
        mine = getattr(self.firmware, "open_steps", None)
        if mine is None:
            return set(self.contract.steps)
        return set(self._call("open_steps", mine))

    # -- the main loop ----------------------------------------------------------------

    def _main(self, broken: FirmwareError | None) -> Gen:
        if broken is not None:
            self.contract.violation = broken
            raise broken
        booted = False
        while True:
            try:
                while not self.power.on:
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
        if self._get is not None and not self._get.triggered:
            self._get.cancel()
        self._get = None
        self._transport.withdraw()
        self.contract.abandon()
        self.halves.power_loss()
        self.reader.power_off()
        self.trace.emit("terminal.power_lost")

    def _boot(self) -> Gen:
        self._transport.discard()
        self.trace.emit("terminal.rebooted")
        yield from self._guarded("boot", self.firmware.boot)

    def _idle(self) -> Gen:
        self._get = get = self.steps.get()
        idle_s = getattr(self.firmware, "idle_s", None)
        wait = None if idle_s is None else self._call("idle_s", idle_s)
        if wait is not None:
            yield any_of(get, self.env.timeout(wait))
            if not get.processed:
                get.cancel()
                self._get = None
                yield from self._guarded("idle", self.firmware.idle)  # type: ignore[attr-defined]
                return
        else:
            yield get
        self._get = None
        step = cast("StepSpec", get.value)
        self.trace.emit("terminal.txn_started", step=step.id, do=step.do,
                        amount_minor=step.amount_minor)
        self.contract.begin(step.id, step.do)
        yield from self._guarded("run", lambda: self.firmware.run(step))
        if not self.checked:
            self.contract.current = None
            return
        if not self.power.on:
            raise self.contract.fail("powered off", "run() went on after the power went "
                                     "(never catch simpy.Interrupt)")
        self.contract.end()

    def _guarded(self, what: str, start: Callable[[], Any]) -> Gen:
        """Run the plug-in's generator ``what`` (``start()`` makes it): its exceptions become
        FirmwareError (the power loss's interrupt passes through)."""
        gen = self._call(what, start)
        if not isinstance(gen, Generator):
            raise self.contract.fail("generators", f"{what}() must be a generator (use "
                                     f"`yield`), it returned {type(gen).__name__}")
        try:
            yield from gen
        except _PASSED:
            raise
        except Exception as exc:  # the plug-in's own code
            raise self.contract.fail("no exceptions", f"{what}() raised {_what(exc)}") from exc
        if self.contract.violation is not None:  # caught by the plug-in: still broken
            raise self.contract.violation

    def _call(self, what: str, method: Any) -> Any:
        try:
            return method()
        except _PASSED:
            raise
        except Exception as exc:
            raise self.contract.fail("no exceptions", f"{what}() raised {_what(exc)}",
                                     step=None) from exc


def _what(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


_FIRMWARE: type[Firmware[StepSpec]] = Harness
"""The harness is a :class:`~devices.ports.Firmware` (mypy checks)."""

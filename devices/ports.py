"""The seams of posemu: what each part of a unit needs of the others, as Protocols.

A unit is a terminal (its firmware), a card reader, a receipt printer, a transport
to the acquirer and the acquirer endpoint, plus the fault injector and the trace.
Each part is typed against these ports, never against another part's class, so any
of them can be simulated or real:

=================  ==========================================  =========================
port               simulated                                   real
=================  ==========================================  =========================
TraceSink          ``emulator.engine.trace.Trace`` (and a      (the same: a trace is
                   fleet terminal's view of the shared one)     always posemu's)
FaultTarget        every device shell, the terminal            --
Printer            ``devices.printer.sim.SimPrinter``          ``devices.printer.serial_port
                                                               .SerialPrinter`` (a serial
                                                               port or pty)
CardReader         ``devices.card_reader.CardReader``          --
Transport          ``devices.net.link.LinkEnd`` (either end    a TCP connection
                   of the simulated link)
Firmware           ``emulator.firmware.terminal.Terminal``     a user's plug-in
=================  ==========================================  =========================

The acquirer endpoint is a :class:`FaultTarget` that serves the bank's end of a
:class:`Transport` (``devices.bank.host.Host`` in the simulation).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import simpy

    from devices.fault import ActiveFault
    from devices.simkit.queues import Take

__all__ = [
    "CardReader", "FaultTarget", "Firmware", "Printer", "Refused", "TraceBus", "TraceSink",
    "Transport",
]

StepT_contra = TypeVar("StepT_contra", contravariant=True)


class TraceSink(Protocol):
    """Where a component records what it did: ``emit("component.event", **fields)``."""

    def emit(self, name: str, **fields: Any) -> None: ...


class TraceBus(TraceSink, Protocol):
    """A trace that also tells listeners of its events (the injector's triggers)."""

    def subscribe(self, name: str | None, listener: Any) -> None: ...
    def unsubscribe(self, name: str | None, listener: Any) -> None: ...


class FaultTarget(Protocol):
    """A part the injector can put a fault on and take it off again."""

    def apply(self, fault: ActiveFault) -> None: ...
    def clear(self, fault: ActiveFault) -> None: ...


class Printer(FaultTarget, Protocol):
    """A receipt printer: one job at a time, and DLE EOT status answered at once."""

    def print_job(self, data: bytes, **about: Any) -> simpy.Process:
        """Print ``data`` (ESC/POS bytes); the process's value is True when it all came out."""
        ...

    def status(self, n: int) -> int | None:
        """The DLE EOT ``n`` status byte, or None when the printer does not answer."""
        ...


class CardReader(FaultTarget, Protocol):
    """A chip reader with a PIN pad."""

    @property
    def card_present(self) -> bool: ...

    def read(self, card: str, pin: bool) -> Generator[simpy.Event, Any, bool]:
        """Insert and read ``card`` (and take the PIN); True when it was read."""
        ...

    def eject(self) -> None: ...

    def power_off(self) -> None:
        """The terminal lost power: the reader forgets the card it held."""
        ...


@dataclass(frozen=True)
class Refused:
    """What a transport reports when the host refuses the connection ``frame`` came on.

    ``left``: the frame reached the far end, which refused it (a host that is down), so
    another copy of it may still be on its way; False when it never left (no connection
    could be opened)."""

    frame: bytes
    left: bool = True


class Transport(Protocol):
    """One end of the connection between a terminal and its acquirer: framed ISO 8583
    messages out, and whatever arrives (a frame, or :class:`Refused`) in."""

    def send(self, frame: bytes | Refused, **about: Any) -> None:
        """Send ``frame``; ``about`` (mti, stan) only labels the trace."""
        ...

    def receive(self) -> Take:
        """An event whose value is the next thing to arrive; ``cancel()`` withdraws it."""
        ...

    def discard(self) -> None:
        """Drop what has arrived and was not taken (the terminal lost power)."""
        ...


class Firmware(FaultTarget, Protocol[StepT_contra]):
    """The terminal under test: takes the operator's steps and says what it still owes."""

    def submit(self, step: StepT_contra) -> None:
        """The operator starts ``step`` (it waits while the terminal is busy)."""
        ...

    def unresolved(self) -> list[tuple[str, str]]:
        """(step, what) still owed at the end of a run."""
        ...

    def open_steps(self) -> set[str]:
        """Steps the firmware may still act on (a fleet judges the others early)."""
        ...

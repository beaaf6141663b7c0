"""The Firmware interface: what a terminal's firmware is given and what it implements.

A plug-in is a factory named ``package.module:factory`` (docs/firmware.md). posemu calls
``factory(kit)`` once per terminal with a :class:`Kit` and gets back an object with the
methods of :class:`TerminalFirmware`: ``run(step)`` and ``boot()`` are simpy generators,
``owed()`` says what it still owes the host at the end. posemu's harness
(:mod:`emulator.firmware.plugin`) takes the operator's steps, emits the events around
them, cuts the power and checks the event contract (:mod:`emulator.firmware.contract`).

A factory may declare its own settings (``factory.settings``: name -> :class:`Setting`);
a scenario sets them under ``[terminal]``, and the firmware reads them, validated and
with their defaults, in ``kit.settings``.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from emulator.firmware.clock import WallClock
from emulator.firmware.messages import CardInfo, Identity

if TYPE_CHECKING:
    import simpy

    from devices.ports import CardReader, Printer, TraceSink, Transport
    from emulator.scenario.model import StepSpec

__all__ = ["CardInfo", "Identity", "JournalHalves", "Kit", "Setting", "Step", "TerminalFirmware",
           "WallClock"]

Step: TypeAlias = "StepSpec"
"""An operator step: ``id``, ``do`` (sale, refund, void, reprint, settle), ``card`` (a card
id, a key of ``kit.cards``), ``amount_minor``, ``target`` (the step a void, refund or
reprint names) and ``at_s``."""

Gen: TypeAlias = "Generator[simpy.Event, Any, None]"

SETTING_KINDS = ("bool", "seconds", "count", "money", "text")
"""What a setting holds: true/false, seconds (>= 0), a count (>= 0), money (a decimal
string in the file, minor units to the firmware), text (or one of ``choices``)."""


@dataclass(frozen=True)
class Setting:
    """A setting a plug-in declares: its kind, its default, one line of help."""

    kind: str
    default: object
    help: str = ""
    choices: tuple[str, ...] = ()


@dataclass
class JournalHalves:
    """The firmware's memory: ``durable`` survives a power loss (what was written to
    flash), ``volatile`` is replaced by an empty dict when the power goes (RAM). Keep
    everything the firmware remembers in one or the other, and always reach the volatile
    half through the journal (it is a new dict after a power loss)."""

    durable: dict[str, Any] = field(default_factory=dict)
    volatile: dict[str, Any] = field(default_factory=dict)

    def power_loss(self) -> None:
        self.volatile = {}


@dataclass(frozen=True)
class Kit:
    """Everything a firmware is given; it reaches the world through nothing else.

    ``env``: simulated time only (``env.now``, ``env.timeout(s)``, ``env.event()``,
    ``simpy.AnyOf``); ``transport``: framed ISO 8583 to the acquirer (``send(frame)``,
    ``receive()``: an event whose value is a frame or :class:`~devices.ports.Refused`);
    ``reader``: ``read(card, pin)`` (a generator: True when read), ``eject()``,
    ``card_present``; ``printer``: ``print_job(data, step=, receipt_of=, slip=)`` (a process:
    True when it all came out), ``status(n)`` (DLE EOT); ``journal``; ``clock``: the
    simulated wall clock (``now()``, ``f7()``); ``trace``: ``emit(name, **fields)``;
    ``identity``: merchant, merchant id (field 42), terminal id (41); ``cards``: what the
    reader reads off each card (PAN, expiry); ``mac_key``: the key of field 64;
    ``settings``: the plug-in's settings, validated, defaults filled in.
    """

    env: simpy.Environment
    trace: TraceSink
    transport: Transport
    reader: CardReader
    printer: Printer
    journal: JournalHalves
    clock: WallClock
    identity: Identity
    cards: Mapping[str, CardInfo]
    mac_key: bytes
    settings: Mapping[str, object]


class TerminalFirmware(Protocol):
    """What a plug-in's factory returns. Optionally also ``idle_s() -> float | None`` and
    ``idle()`` (a generator, run when no step came for ``idle_s()`` seconds: background
    work such as resending a reversal) and ``open_steps() -> set[str]`` (the steps it may
    still act on; by default every step it has started)."""

    def run(self, step: StepSpec) -> Generator[simpy.Event, Any, None]:
        """Carry out one operator step; emit exactly one ``terminal.txn_done`` for it."""
        ...

    def boot(self) -> Generator[simpy.Event, Any, None]:
        """Power came back: the volatile half of the journal is empty; finish what the
        durable half says is unfinished."""
        ...

    def owed(self) -> list[tuple[str, str]]:
        """(step, what) the firmware still owes the host at the end of a run (a reversal
        never delivered): each is judged ``in_doubt`` where money stands."""
        ...

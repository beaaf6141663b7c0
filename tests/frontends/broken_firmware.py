"""Plug-in firmwares that break the contract, one rule each (tests/frontends/test_firmware.py).

Each is named ``tests.frontends.broken_firmware:<Class>`` in a scenario. :class:`Minimal`
keeps the contract with the least code: every step declined without going online.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any

import simpy

from devices.iso8583.message import encode
from emulator.firmware.api import Kit, Setting

Gen = Generator[simpy.Event, Any, None]
FAILED = {"sale": "declined", "refund": "refund_failed", "void": "void_failed",
          "reprint": "reprint_failed", "settle": "settle_failed"}


class Minimal:
    """Keeps the contract: shows every step failed, owes nothing."""

    settings = {"pause_s": Setting("seconds", 1.0, "how long each step takes")}  # noqa: RUF012

    def __init__(self, kit: Kit) -> None:
        self.kit = kit

    def run(self, step: Any) -> Gen:
        yield self.kit.env.timeout(float(self.kit.settings["pause_s"]))  # type: ignore[arg-type]
        self.show(step)

    def show(self, step: Any, **fields: Any) -> None:
        self.kit.trace.emit("terminal.txn_done", step=step.id, do=step.do,
                            result=FAILED[step.do], **fields)

    def boot(self) -> Gen:
        yield self.kit.env.timeout(0)

    def owed(self) -> list[tuple[str, str]]:
        return []


class NoOutcome(Minimal):
    """run() returns without showing anything."""

    def run(self, step: Any) -> Gen:
        yield self.kit.env.timeout(1)


class UnknownEvent(Minimal):
    def run(self, step: Any) -> Gen:
        yield self.kit.env.timeout(1)
        self.kit.trace.emit("terminal.txn_dnoe", step=step.id)
        self.show(step)


class MissingField(Minimal):
    def run(self, step: Any) -> Gen:
        yield self.kit.env.timeout(1)
        self.kit.trace.emit("terminal.request_sent", step=step.id, mti="0200", stan="000001")
        self.show(step)


class Unannounced(Minimal):
    """Sends a sale without terminal.request_sent: its money could not be tied to a step."""

    def run(self, step: Any) -> Gen:
        kit = self.kit
        card = kit.cards[step.card]
        kit.transport.send(encode({
            "t": "0200", "2": card.pan, "3": "000000", "4": f"{step.amount_minor:012d}",
            "7": kit.clock.f7(), "11": "000001", "14": card.expiry,
            "41": kit.identity.terminal_id, "42": kit.identity.merchant_id, "49": "978",
        }, kit.mac_key))
        yield kit.env.timeout(1)
        self.show(step)


class Raises(Minimal):
    def run(self, step: Any) -> Gen:
        yield self.kit.env.timeout(1)
        raise KeyError("no such record")


class ForgesBank(Minimal):
    """Emits the bank's event: the oracle's money must come from the bank alone."""

    def run(self, step: Any) -> Gen:
        yield self.kit.env.timeout(1)
        self.kit.trace.emit("bank.posted", kind="sale", stan="000001", f7="1122090000",
                            amount_minor=100)
        self.show(step)


class WrongResult(Minimal):
    def run(self, step: Any) -> Gen:
        yield self.kit.env.timeout(1)
        self.kit.trace.emit("terminal.txn_done", step=step.id, do=step.do, result="ok")


class SwallowsErrors(Minimal):
    """Catches the contract's error and goes on: still caught."""

    def run(self, step: Any) -> Gen:
        yield self.kit.env.timeout(1)
        with contextlib.suppress(Exception):  # the point of this firmware
            self.kit.trace.emit("terminal.txn_done", step=step.id, do=step.do)
        self.show(step)


class Hangs(Minimal):
    """Waits for an answer it never asked for: the run ends with the step unfinished."""

    def run(self, step: Any) -> Gen:
        yield self.kit.transport.receive()
        self.show(step)


class CatchesPowerLoss(Minimal):
    """Catches the interrupt that is the power going, and goes on as if nothing happened."""

    def run(self, step: Any) -> Gen:
        with contextlib.suppress(simpy.Interrupt):
            yield self.kit.env.timeout(10)
        self.show(step)


class NotAGenerator(Minimal):
    def run(self, step: Any) -> Gen:  # type: ignore[override]
        self.show(step)


class FactoryFails:
    def __init__(self, kit: Kit) -> None:
        raise RuntimeError("cannot open the flash")


not_callable = 42

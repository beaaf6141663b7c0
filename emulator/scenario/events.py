"""The trace events a fault may wait for (``[[faults]] on``), the fields each carries,
and how each is told to belong to a step (``[[faults]] step``).

One source of truth: the loader validates ``on`` and refuses a ``step`` that an event
can never match, the injector attributes events to steps as :data:`STEP_BY` says,
``posemu events`` lists this catalogue and ``posemu check`` describes a fault's
trigger with :func:`describe_trigger`.

How an event belongs to a step (:attr:`TriggerEvent.step_by`):

- ``"field"``: it names its step (its ``step`` field);
- ``"stan"``: it carries a frame's STAN (``stan``): it belongs to the step whose
  request or reversal went out under that STAN from this terminal (a terminal's
  ``terminal.request_sent`` and ``terminal.reversal_sent`` name step and STAN);
- ``"current"``: it happens during the step the terminal is running (from its
  ``terminal.txn_started`` to its ``terminal.txn_done``);
- ``None``: it belongs to no step, so ``step`` cannot filter it.

In a fleet every event also carries ``tid``, its terminal's id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from emulator.scenario.model import FaultSpec

StepBy = Literal["field", "stan", "current"] | None


@dataclass(frozen=True)
class TriggerEvent:
    """A trace event usable as a fault's trigger: its meaning, its fields, its step."""

    name: str
    help: str
    fields: tuple[str, ...]
    step_by: StepBy
    kinds: tuple[str, ...] = ("sale", "refund", "void", "reprint", "settle")
    """The kinds of step that can have one (a void prints nothing, a settle reads no card)."""

    @property
    def has_step(self) -> bool:
        """Whether ``[[faults]] step`` can select some of these events."""
        return self.step_by is not None


_FRAME = ("direction", "mti", "stan")
_CARD = ("sale", "refund")
_ONLINE = ("sale", "refund", "void", "settle")  # what sends frames
_PRINTS = ("sale", "refund", "reprint")

CATALOGUE: dict[str, TriggerEvent] = {
    e.name: e
    for e in (
        TriggerEvent("terminal.txn_started",
                     "the terminal starts a step (sale, refund, void, reprint, settle)",
                     ("step", "do", "amount_minor"), "field"),
        TriggerEvent("card.read", "the card reader has read a card", ("card",), "current", _CARD),
        TriggerEvent("terminal.request_sent",
                     "the terminal sends a request (0200, 0201, 0500, ...)",
                     ("step", "mti", "stan", "f7", "amount_minor", "orig_stan", "debits",
                      "credits", "debits_minor", "credits_minor"), "field",
                     ("sale", "refund", "settle")),
        TriggerEvent("bank.request_received", "the host has decoded a request",
                     ("mti", "stan"), "stan", _ONLINE),
        TriggerEvent("bank.response_sent", "the host sends its response",
                     ("code", "mti", "stan"), "stan", _ONLINE),
        TriggerEvent("terminal.response_received", "a response reaches the terminal",
                     ("mti", "stan", "code"), "stan", _ONLINE),
        TriggerEvent("terminal.timeout", "the terminal gave up waiting for a response",
                     ("step", "stan"), "field", _CARD),
        TriggerEvent("terminal.reversal_sent",
                     "the terminal sends a reversal (0400 or repeat 0401)",
                     ("step", "kind", "mti", "stan", "orig_stan", "orig_f7", "reason"),
                     "field", ("sale", "refund", "void")),
        TriggerEvent("printer.job_started", "the printer starts a receipt",
                     ("job", "step", "receipt_of", "slip"), "field", _PRINTS),
        TriggerEvent("printer.job_done", "the printer completed a receipt (through the cut)",
                     ("job", "text", "step", "receipt_of", "slip"), "field", _PRINTS),
        TriggerEvent("terminal.txn_done", "the terminal shows the outcome of a step",
                     ("step", "do", "result", "code", "reason", "amount_minor", "target",
                      "recovered", "late"),
                     "field"),
        TriggerEvent("printer.job_failed", "a receipt stopped before its cut",
                     ("job", "text", "reason", "step", "receipt_of", "slip"), "field",
                     _PRINTS),
        TriggerEvent("terminal.rebooted", "the terminal came back after a power loss",
                     (), None),
        TriggerEvent("network.sent", "a frame entered the link", ("size", *_FRAME), "stan",
                     _ONLINE),
        TriggerEvent("network.delivered", "a frame reached the other side", _FRAME, "stan",
                     _ONLINE),
    )
}
"""Every trigger event, in the order the docs list them."""

TRIGGER_EVENTS: dict[str, str] = {name: e.help for name, e in CATALOGUE.items()}
"""Trigger event name -> what it means."""

STEP_BY: dict[str, StepBy] = {name: e.step_by for name, e in CATALOGUE.items()}
"""Trigger event name -> how the injector tells its step."""

STAN_SOURCES = ("terminal.request_sent", "terminal.reversal_sent")
"""The terminal's events that tie a STAN it sends to a step."""


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st, ..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe_trigger(fault: FaultSpec) -> str:
    """What ``fault`` waits for, in one line, e.g. ``at 12 s`` or ``the 1st
    bank.response_sent of step s1 (told by its STAN)``; ``optional`` when it may not fire."""
    if fault.on is None:
        text = f"at {fault.at_s:g} s"
    else:
        text = f"the {ordinal(fault.nth)} {fault.on}"
        if fault.step is not None:
            how = {"stan": " (told by its STAN)", "current": " (while the step runs)"}
            text += f" of step {fault.step}{how.get(STEP_BY[fault.on] or '', '')}"
    if fault.for_s is not None:
        text += f", for {fault.for_s:g} s"
    if fault.optional:
        text += " (optional)"
    return text

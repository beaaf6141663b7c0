"""Trigger events, the fields each carries, and what a scheduled fault waits for.

What ``posemu events`` lists and ``posemu check`` explains. The names and their
meanings come from :data:`~emulator.scenario.catalogue.TRIGGER_EVENTS`; the fields
are those the emitting components put on each event. A fault's ``step`` filter
compares the event's ``step`` field, so it can only match an event that carries one.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.scenario.catalogue import TRIGGER_EVENTS
from emulator.scenario.model import FaultSpec

FIELD_HELP: dict[str, str] = {
    "step": "the step id (what a fault's `step` compares)",
    "do": "the step kind: sale, refund, void, reprint, settle",
    "amount_minor": "the amount, in minor units",
    "card": "the card id",
    "mti": "ISO 8583 message type (0200, 0210, 0400, ...)",
    "stan": "ISO 8583 field 11, the system trace audit number",
    "orig_stan": "the STAN of the message it reverses or repeats",
    "f7": "ISO 8583 field 7, transmission date and time",
    "orig_f7": "field 7 of the message it reverses",
    "code": "ISO 8583 field 39, the response code",
    "kind": "reversal kind: first (0400) or repeat (0401)",
    "reason": "why (a timeout, a printer state, ...)",
    "job": "the printer's job number",
    "slip": "the receipt printed: approved, declined, refund, void, ...",
    "receipt_of": "the step whose transaction the receipt is of",
    "text": "the receipt text as printed",
    "result": "the outcome the terminal shows: approved, declined, timeout, ...",
    "recovered": "the outcome was settled after a reboot or an inquiry",
    "target": "the step a void, refund or reprint names",
    "late": "a response that came after the terminal gave up",
    "debits": "settle: the terminal's count of debits",
    "credits": "settle: the terminal's count of credits",
    "debits_minor": "settle: the terminal's total of debits",
    "credits_minor": "settle: the terminal's total of credits",
    "direction": "to_bank or to_terminal",
    "size": "the frame's length in bytes",
}

_FIELDS: dict[str, tuple[str, ...]] = {
    "terminal.txn_started": ("step", "do", "amount_minor"),
    "card.read": ("card",),
    "terminal.request_sent": ("step", "mti", "stan", "f7", "amount_minor", "orig_stan",
                              "debits", "credits", "debits_minor", "credits_minor"),
    "bank.request_received": ("mti", "stan"),
    "bank.response_sent": ("mti", "stan", "code"),
    "terminal.response_received": ("mti", "stan", "code"),
    "terminal.timeout": ("step", "stan"),
    "terminal.reversal_sent": ("step", "kind", "mti", "stan", "orig_stan", "orig_f7", "reason"),
    "printer.job_started": ("step", "job", "receipt_of", "slip"),
    "printer.job_done": ("step", "job", "receipt_of", "slip", "text"),
    "terminal.txn_done": ("step", "do", "result", "code", "amount_minor", "reason",
                          "recovered", "target", "late"),
    "printer.job_failed": ("step", "job", "receipt_of", "slip", "text", "reason"),
    "terminal.rebooted": (),
    "network.sent": ("direction", "size", "mti", "stan"),
    "network.delivered": ("direction", "mti", "stan"),
}


@dataclass(frozen=True)
class TriggerEvent:
    """A trace event a fault can be triggered on, and the fields it carries."""

    name: str
    help: str
    fields: tuple[str, ...]

    @property
    def has_step(self) -> bool:
        """Whether a fault's ``step`` filter can match it."""
        return "step" in self.fields


def trigger_events() -> tuple[TriggerEvent, ...]:
    """Every trigger event, in catalogue order."""
    return tuple(TriggerEvent(name, help_, _FIELDS.get(name, ()))
                 for name, help_ in TRIGGER_EVENTS.items())


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st, ..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def never_matches(spec: FaultSpec) -> str | None:
    """Why ``spec``'s trigger can never match, or None when it can."""
    if spec.on is None or spec.step is None:
        return None
    event = next((e for e in trigger_events() if e.name == spec.on), None)
    if event is not None and not event.has_step:
        return f"{spec.on} carries no step, so `step = {spec.step!r}` never matches"
    return None


def describe_trigger(spec: FaultSpec) -> str:
    """What ``spec`` waits for, in one line: ``at 12 s`` or ``the 1st printer.job_started
    of step s1``, then ``, for 120 s`` when it is cleared."""
    if spec.on is None:
        text = f"at {spec.at_s:g} s"
    else:
        text = f"the {ordinal(spec.nth)} {spec.on}"
        if spec.step is not None:
            text += f" of step {spec.step}"
    if spec.for_s is not None:
        text += f", for {spec.for_s:g} s"
    return text

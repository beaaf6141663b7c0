"""``posemu events``: the trace events a fault can be triggered on, with their fields.

The events come from :data:`emulator.scenario.events.CATALOGUE`. ``--json``:
``{"events": [{"name", "help", "step", "step_by", "kinds", "fields": [{"name",
"help"}]}]}`` where ``step`` says whether a fault's ``step`` can select the event,
``step_by`` how it is told to belong to a step (``field``, ``stan``, ``current`` or
null) and ``kinds`` the kinds of step that can have one.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from emulator.scenario.events import CATALOGUE

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


_STEP_BY = {
    "field": "its step field",
    "stan": "its frame's STAN (the step that sent a request or reversal under it)",
    "current": "the step running when it happens",
    None: "none (a fault's `step` cannot select it)",
}
"""How an event is told to belong to a step, in words."""


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``posemu events``."""
    events = commands.add_parser(
        "events", help="the trace events a fault can be triggered on, with their fields")
    events.add_argument("--json", action="store_true", help="as one JSON object")
    events.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks on errors")


def events_data() -> list[dict[str, Any]]:
    """The trigger events as JSON-ready dicts."""
    return [
        {"name": e.name, "help": e.help, "step": e.has_step, "step_by": e.step_by,
         "kinds": list(e.kinds),
         "fields": [{"name": f, "help": FIELD_HELP.get(f, "")} for f in e.fields]}
        for e in CATALOGUE.values()
    ]


def run_command(args: argparse.Namespace) -> int:
    """Print the trigger events; exit status 0."""
    data = events_data()
    if args.json:
        print(json.dumps({"events": data}), flush=True)
        return 0
    from rich.text import Text  # noqa: PLC0415  (rich only for human output)

    from emulator.cli.report import console  # noqa: PLC0415

    out = console()
    for event in data:
        line = Text(event["name"], "bold")
        line.append(f"  {event['help']}")
        out.print(line, soft_wrap=True)
        fields = " ".join(f["name"] for f in event["fields"]) or "none"
        out.print(f"  fields: {fields}", soft_wrap=True)
        out.print(f"  step: {_STEP_BY[event['step_by']]}", soft_wrap=True)
    return 0

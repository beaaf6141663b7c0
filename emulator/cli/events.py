"""``posemu events``: the trace events a fault can be triggered on, with their fields.

``--json``: ``{"events": [{"name", "help", "step", "fields": [{"name", "help"}]}]}``
where ``step`` says whether a fault's ``step`` filter can match the event.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from emulator.cli.triggers import FIELD_HELP, trigger_events


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
        {"name": e.name, "help": e.help, "step": e.has_step,
         "fields": [{"name": f, "help": FIELD_HELP.get(f, "")} for f in e.fields]}
        for e in trigger_events()
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
    out.print()
    out.print("A fault's `step` matches only the events whose fields include step.",
              soft_wrap=True)
    return 0

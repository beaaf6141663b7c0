"""``posemu check FILE...``: validate scenario files without running them.

Every file is checked (a directory: every ``*.toml`` under it), not only up to the
first bad one. A valid file gets one ``ok`` line and, under it, what each fault
waits for (:func:`~emulator.scenario.events.describe_trigger`); an invalid one
gets, on standard error, the one-line message ``posemu run`` would give (the
loader refuses a fault whose trigger can never match). Exit status 0 when every
file is valid, 2 when one is not. ``--json``: one object per file per line, ``{"path", "valid",
"error", "name", "faults": [{"index", "fault", "waits_for"}]}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from devices.errors import ScenarioError
from emulator.scenario.events import describe_trigger
from emulator.scenario.load import load_scenario
from emulator.scenario.model import Scenario

EXIT_OK, EXIT_INPUT = 0, 2


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``posemu check``."""
    check = commands.add_parser(
        "check", help="validate scenario files without running them; what each fault waits for")
    check.add_argument("paths", nargs="+", metavar="FILE")
    check.add_argument("--json", action="store_true", help="one JSON object per file per line")
    check.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks on errors")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary(scenario: Scenario) -> str:
    """``(naive, seed 7): 1 card, 1 step, 1 fault, [expect]``."""
    parts = [_plural(len(scenario.cards), "card"), _plural(len(scenario.steps), "step"),
             _plural(len(scenario.faults), "fault")]
    parts.append("[expect]" if scenario.expect is not None else "no [expect]: passes "
                 "when no anomaly is found")
    if (live := scenario.liveness) is not None:
        parts.append(f"[liveness]: faults stop at {live.horizon_s:g} s, quiet by "
                     f"{live.end_s:g} s")
    return f"({scenario.runs_as}, seed {scenario.seed}): {', '.join(parts)}"


def check_file(path: str) -> tuple[Scenario | None, str | None]:
    """The scenario of ``path`` and None, or None and the one-line error."""
    try:
        return load_scenario(path), None
    except ScenarioError as exc:
        return None, str(exc)


def _json(path: str, scenario: Scenario | None, error: str | None) -> dict[str, Any]:
    faults = [] if scenario is None else [
        {"index": f.index, "fault": f.fault, "waits_for": describe_trigger(f)}
        for f in scenario.faults
    ]
    return {"path": path, "valid": error is None, "error": error,
            "name": None if scenario is None else scenario.name, "faults": faults}


def run_command(args: argparse.Namespace) -> int:
    """Check every file; print each verdict as it is reached."""
    from emulator.cli.main import scenario_files  # noqa: PLC0415  (main imports this module)

    status = EXIT_OK
    for file in scenario_files(args.paths):
        path = str(file)
        scenario, error = check_file(path)
        if error is not None:
            status = EXIT_INPUT
        if args.json:
            print(json.dumps(_json(path, scenario, error)), flush=True)
        elif scenario is None:
            print(f"posemu: {error}", file=sys.stderr, flush=True)
        else:
            print(f"ok  {path}  {summary(scenario)}")
            for f in scenario.faults:
                print(f"  faults[{f.index}] {f.fault}: {describe_trigger(f)}")
            print(end="", flush=True)
    return status

"""The ``posemu`` command line.

``posemu run PATH... [--json] [--trace-dir DIR] [--seed N] [--profile NAME]``
Exit status: 0 every scenario passed, 1 some failed, 2 bad input, 3 I/O error.
Errors are one line on standard error; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from emulator.errors import DeviceError, PosemuError, ScenarioError, TraceError
from emulator.money import format_minor
from emulator.profiles import PROFILES
from emulator.result import Result
from emulator.scenario import Scenario, load_scenario
from emulator.trace import write_atomic
from emulator.world import run_scenario

EXIT_PASS, EXIT_FAIL, EXIT_INPUT, EXIT_IO = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_INPUT, f"posemu: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="posemu", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="run scenario files (a directory: every *.toml)")
    run.add_argument("paths", nargs="+", metavar="PATH")
    run.add_argument("--json", action="store_true", help="one JSON object per scenario per line")
    run.add_argument("--trace-dir", type=Path, metavar="DIR",
                     help="write each run's full trace as JSON Lines here")
    run.add_argument("--seed", type=int, help="override the scenarios' seed")
    run.add_argument("--profile", choices=sorted(PROFILES), help="override the firmware profile")
    run.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                     help="show tracebacks on errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (ScenarioError, TraceError) as exc:
        return _fail(args, exc, EXIT_INPUT)
    except (DeviceError, OSError) as exc:
        return _fail(args, exc, EXIT_IO)
    except PosemuError as exc:
        return _fail(args, exc, EXIT_IO, "internal error: ")


def _fail(args: argparse.Namespace, exc: BaseException, status: int, prefix: str = "") -> int:
    """One line on standard error (the traceback too with --debug); the exit status."""
    if args.debug:
        traceback.print_exception(exc)
    print(f"posemu: {prefix}{exc}", file=sys.stderr)
    return status


def scenario_files(paths: Sequence[str]) -> list[Path]:
    """Files named, and every ``*.toml`` under directories named, in sorted order."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.toml") if p.is_file())
            if not found:
                raise ScenarioError("directory holds no *.toml scenario", path=name)
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise ScenarioError("no such file or directory", path=name)
    return files


def _run(args: argparse.Namespace) -> int:
    scenarios: list[Scenario] = []
    for path in scenario_files(args.paths):
        scenario = load_scenario(path)
        if args.seed is not None or args.profile is not None:
            scenario = scenario.with_overrides(seed=args.seed, profile=args.profile)
        scenarios.append(scenario)
    if args.trace_dir is not None:
        args.trace_dir.mkdir(parents=True, exist_ok=True)
    names: set[str] = set()
    passed = True
    for scenario in scenarios:
        result = run_scenario(scenario)
        passed &= result.passed
        if args.trace_dir is not None:
            write_atomic(_trace_path(args.trace_dir, scenario, names), result.trace.to_jsonl())
        if args.json:
            print(json.dumps(result.to_json()), flush=True)
        else:
            print(_summary(result), flush=True)
    return EXIT_PASS if passed else EXIT_FAIL


def _trace_path(directory: Path, scenario: Scenario, taken: set[str]) -> Path:
    stem = Path(scenario.path).stem if scenario.path else "scenario"
    name, n = stem, 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}"
    taken.add(name)
    return directory / f"{name}.jsonl"


def _summary(result: Result) -> str:
    lines = [f"{result.verdict.upper()}  {result.scenario.path or result.scenario.name}"
             f"  ({result.scenario.profile}, seed {result.scenario.seed})"]
    for step in result.steps:
        lines.append(f"    {step.id:<6} {step.do:<8} {step.end_state}")
    for step in result.steps:
        if step.receipt:
            lines.append(f"    receipt of {step.id}:")
            lines.extend(f"      | {row}" for row in step.receipt.rstrip("\n").splitlines())
    for anomaly in result.anomalies:
        lines.append(f"    anomaly {anomaly.kind} at {anomaly.step}: {anomaly.detail}")
    if result.balances_minor:
        lines.append("    balances: " + ", ".join(
            f"{k} {format_minor(v)}" for k, v in result.balances_minor.items()))
    for failure in result.failures:
        lines.append(f"    expected: {failure}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

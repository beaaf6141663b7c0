"""The ``posemu`` command line.

``posemu run PATH... [--json] [--verbose] [--trace-dir DIR] [--seed N] [--profile NAME]``
``posemu run FILE --printer serial:<device>[?baudrate=N]`` runs it in real time with a
real (or virtual) printer (:mod:`emulator.engine.bench`).
``posemu replay TRACE`` re-runs a trace's scenario (or fleet) and compares the traces.
``--html DIR`` (run, replay) writes HTML reports (:mod:`emulator.report.html`).
``posemu faults | profiles | explain ANOMALY`` list the catalogue.
``posemu printer --pty`` is a virtual ESC/POS printer on a pseudo-terminal.

Exit status: 0 pass (or identical), 1 fail (or differs), 2 bad input, 3 I/O error.
Errors are one line on standard error; ``--debug`` shows the traceback. Human
output is drawn by :mod:`emulator.cli.report`, imported only when needed so that
``--json`` never loads rich (nor does any command but ``--printer`` and ``printer``
load pyserial or python-escpos).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from importlib import import_module, metadata
from pathlib import Path
from typing import Any

from devices.errors import (
    DeviceError,
    FirmwareError,
    PosemuError,
    PrinterSpecError,
    ScenarioError,
    TraceError,
    UsageError,
    one_line,
)
from devices.printer.limits import (
    MAX_BAUD,
    MAX_LINES_PER_S,
    MAX_PAPER_M,
    MIN_BAUD,
    MIN_LINES_PER_S,
)
from emulator.cli import numbers
from emulator.cli.junit import Case, write_report
from emulator.engine.trace import AtomicFile, Discard, unused_name
from emulator.engine.world import LONG_RUN_STEPS, is_long, run_scenario
from emulator.judge.result import Result
from emulator.scenario.catalogue import (
    ANOMALIES,
    CLEAN_END_STATES,
    EXPECTABLE,
    FAULTS,
    RUN_ANOMALIES,
)
from emulator.scenario.load import load_scenario
from emulator.scenario.model import Scenario
from emulator.scenario.profiles import KNOBS, PROFILES, SETTINGS, Policy
from emulator.scenario.seeds import parse_seed

EXIT_PASS, EXIT_FAIL, EXIT_INPUT, EXIT_IO = 0, 1, 2, 3

Runner = Callable[[Scenario], Result]
Progress = Callable[[str, int, int], object]

_COMMANDS = {"new": "emulator.cli.new", "check": "emulator.cli.check",
             "events": "emulator.cli.events", "proxy": "emulator.live.proxy_command"}
"""Commands in modules of their own: each has ``add_parser`` and ``run_command``."""


def _version() -> str:
    """The installed distribution's version."""
    try:
        return metadata.version("posemu")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_INPUT, f"posemu: {one_line(message)}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="posemu", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"posemu {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="run scenario files (a directory: every *.toml)")
    run.add_argument("paths", nargs="+", metavar="PATH")
    run.add_argument("--json", action="store_true", help="one JSON object per scenario per line")
    how_much = run.add_mutually_exclusive_group()
    how_much.add_argument("-v", "--verbose", action="store_true",
                          help="every scenario in full, network events in the timeline")
    how_much.add_argument("-q", "--quiet", action="store_true",
                          help="one line a passing scenario, a failing one in full, no table")
    run.add_argument("--junit", type=Path, metavar="FILE",
                     help="also write the runs as a JUnit XML report to FILE")
    run.add_argument("--trace-dir", type=Path, metavar="DIR",
                     help="write each run's full trace as JSON Lines here")
    run.add_argument("--seed", type=parse_seed, metavar="N",
                     help="override the scenarios' seed (0 to 2**63-1)")
    run.add_argument("--profile", choices=sorted(PROFILES), help="override the firmware profile")
    run.add_argument("--firmware", metavar="MODULE:FACTORY",
                     help="run a plug-in firmware instead of posemu's own (docs/firmware.md)")
    run.add_argument("--printer", metavar="SPEC",
                     help="run one FILE in real time with the ESC/POS printer at "
                          "serial:<device>[?baudrate=N] in place of the simulated one")
    run.add_argument("--html", type=Path, metavar="DIR",
                     help="write an HTML report per scenario and an index here")
    run.add_argument("--acquirer", metavar="URL",
                     help="run in real time against the acquirer at "
                          "tcp://HOST:PORT[?framing=F&tpdu=1&tls=1] (docs/live.md)")
    run.add_argument("--speed", type=float, metavar="X",
                     help="with --acquirer: simulated seconds per real second (default 1)")

    replay = commands.add_parser("replay", help="re-run a trace's scenario; same trace?")
    replay.add_argument("trace", type=Path, metavar="TRACE")
    replay.add_argument("--scenario", type=Path, metavar="FILE",
                        help="run this file instead of the one the trace header names")
    replay.add_argument("--json", action="store_true", help="the comparison as one JSON object")
    replay.add_argument("--html", type=Path, metavar="DIR",
                        help="write the new run's HTML report (a fleet's: its summary) here")

    fleet = commands.add_parser(
        "fleet", help="one scenario on N terminals served by one acquirer, counted")
    fleet.add_argument("path", metavar="FILE")
    fleet.add_argument("--terminals", type=int, required=True, metavar="N",
                       help="how many terminals run the scenario (1 to 9,999,999)")
    fleet.add_argument("--trace", type=Path, metavar="FILE",
                       help="write the trace here as it happens (JSON Lines)")
    fleet.add_argument("--json", action="store_true", help="the counts as one JSON object")
    fleet.add_argument("--seed", type=parse_seed, metavar="N",
                       help="override the scenario's seed (0 to 2**63-1)")
    fleet.add_argument("--profile", choices=sorted(PROFILES), help="override the firmware profile")
    fleet.add_argument("--firmware", metavar="MODULE:FACTORY",
                       help="run a plug-in firmware instead of posemu's own (docs/firmware.md)")
    from emulator.live.fleet_command import add_arguments as add_live_fleet  # noqa: PLC0415

    add_live_fleet(fleet)

    faults = commands.add_parser("faults", help="the fault catalogue with its parameters")
    faults.add_argument("--json", action="store_true", help="as one JSON object")
    profiles = commands.add_parser("profiles", help="profiles, knobs and settings")
    profiles.add_argument("--json", action="store_true", help="as one JSON object")
    explain = commands.add_parser(
        "explain", help="what an anomaly means, which knobs prevent it (none: list them)")
    explain.add_argument("anomaly", metavar="ANOMALY", nargs="?")
    explain.add_argument("--json", action="store_true", help="as one JSON object")

    printer = commands.add_parser("printer", help="a virtual ESC/POS printer to rehearse with")
    printer.add_argument("--pty", action="store_true", required=True,
                         help="on a pseudo-terminal: prints 'PTY <path>' first, then receipts")
    printer.add_argument("--baudrate", type=numbers.integer(MIN_BAUD, MAX_BAUD), default=9600,
                         metavar="N", help="the line speed clients must use (default 9600)")
    printer.add_argument("--lines-per-s", type=numbers.number(MIN_LINES_PER_S, MAX_LINES_PER_S),
                         default=20.0, metavar="X",
                         help="print speed, 0.01 to 1,000,000 (default 20)")
    printer.add_argument("--paper-m", type=numbers.number(0, MAX_PAPER_M), default=20.0,
                         metavar="M", help="roll length in metres, 0 to 1,000,000 (default 20)")
    printer.add_argument("--raw-log", type=Path, metavar="FILE",
                         help="append every byte received to FILE")
    printer.add_argument("--render", type=Path, metavar="DIR",
                         help="write each receipt as a PNG here when it is cut (or fails)")

    from emulator.fuzz.command import add_parser  # noqa: PLC0415  (see _fuzz)

    add_parser(commands)
    for module in _COMMANDS.values():
        import_module(module).add_parser(commands)
    from emulator.live.command import add_parser as add_live  # noqa: PLC0415  (posemu acquirer)

    add_live(commands)
    for sub in (run, replay, fleet, faults, profiles, explain, printer):
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show tracebacks on errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    words = sys.argv[1:] if argv is None else list(argv)
    words = words[1:] if words[:1] == ["--debug"] else words
    if words[:2] == ["fuzz", "merge"]:  # its own parser: `fuzz` takes a BASE.toml
        from emulator.fuzz.merge import main as merge  # noqa: PLC0415

        return merge(words[2:])
    args = build_parser().parse_args(argv)
    command = {"run": _run, "replay": _replay, "fleet": _fleet, "faults": _faults,
               "profiles": _profiles,
               "explain": _explain, "printer": _printer, "fuzz": _fuzz,
               "acquirer": _acquirer}.get(args.command)
    if command is None:  # a command in its own module (_COMMANDS)
        command = import_module(_COMMANDS[args.command]).run_command
    try:
        return command(args)
    except (ScenarioError, TraceError, UsageError) as exc:
        return _fail(args, exc, EXIT_INPUT)
    except FirmwareError as exc:  # a plug-in broke its contract where no result holds it
        return _fail(args, exc, EXIT_FAIL, f"firmware_error: {exc}")
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly
        _silence_stdout()
        return EXIT_IO
    except DeviceError as exc:
        return _fail(args, exc, EXIT_IO)
    except OSError as exc:
        return _fail(args, exc, EXIT_IO, _os_message(exc))
    except PosemuError as exc:
        return _fail(args, exc, EXIT_IO, f"internal error: {exc}")
    except MemoryError as exc:  # a fleet too large for this machine, say
        return _fail(args, exc, EXIT_IO, "out of memory")
    except KeyboardInterrupt as exc:  # a bench run says where its trace went
        return _fail(args, exc, 130, f"interrupted; {exc}" if str(exc) else "interrupted")


def _fail(args: argparse.Namespace, exc: BaseException, status: int, text: str = "") -> int:
    """One line on standard error (the traceback too with --debug); the exit status."""
    if args.debug:
        traceback.print_exception(exc)
    print(f"posemu: {one_line(text or str(exc))}", file=sys.stderr)
    return status


def _silence_stdout() -> None:
    """Point standard output at /dev/null so the exit-time flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError):  # no real descriptor (tests): fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _os_message(exc: OSError) -> str:
    """``file: reason`` for an OSError that names a file."""
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def _print_json(data: object) -> None:
    print(json.dumps(data), flush=True)


# -------------------------------------------------------------------------- run


def scenario_files(paths: Sequence[str]) -> list[Path]:
    """Files named, and every ``*.toml`` under directories named, in sorted order."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if _unstattable(path):  # a link loop, a name too long: the loader says which
            files.append(path)
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*.toml") if p.is_file())
            if not found:
                raise ScenarioError("directory holds no *.toml scenario", path=name)
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise ScenarioError("no such file or directory", path=name)
    return files


def _unstattable(path: Path) -> bool:
    """Whether ``path`` is there (as a name) but cannot be followed."""
    try:
        path.stat()
    except FileNotFoundError:
        return os.path.lexists(path)  # a symbolic link to nothing
    except OSError:
        return True
    return False


def _run(args: argparse.Namespace) -> int:
    scenarios: list[Scenario] = []
    for path in scenario_files(args.paths):
        scenario = _firmware(load_scenario(path), args)
        if args.seed is not None or args.profile is not None:
            scenario = scenario.with_overrides(seed=args.seed, profile=args.profile)
        scenarios.append(scenario)
    run_one = run_scenario if args.printer is None else _bench_runner(args, scenarios)
    if args.acquirer is not None:
        from emulator.live.client import remote_runner  # noqa: PLC0415  (live mode only)

        run_one = remote_runner(args.acquirer, args.speed, scenarios, args.printer)
    if args.html is not None:  # HTML pages as each run ends (emulator/report/html)
        from emulator.report.html.command import run_reporter  # noqa: PLC0415

        for scenario in scenarios:
            if is_long(scenario):
                raise UsageError(
                    f"--html: {scenario.path or scenario.name} has {len(scenario.steps):,} "
                    f"steps; the HTML report shows runs of at most {LONG_RUN_STEPS:,} (without "
                    "--html a long run streams its trace, and --trace-dir keeps it)")
        run_one = run_reporter(args.html, run_one)
    if args.trace_dir is not None:
        args.trace_dir.mkdir(parents=True, exist_ok=True)
    names: set[str] = set()
    cases: list[Case] = []
    simulated = run_one is run_scenario

    def run(scenario: Scenario) -> Result:
        began = time.perf_counter()
        path = None if args.trace_dir is None else _trace_path(args.trace_dir, scenario, names)
        if simulated and (args.json or is_long(scenario)):  # no report reads its events
            with contextlib.nullcontext(Discard()) if path is None else AtomicFile(path) as sink:
                result = run_scenario(scenario, trace_sink=sink)
        else:
            result = run_one(scenario)
            if path is not None:
                with AtomicFile(path) as out:
                    result.trace.write_to(out)
        _debug_firmware(args, result)
        cases.append(Case(result, time.perf_counter() - began))
        return result

    try:
        if args.json:
            for scenario in scenarios:
                for text in run(scenario).json_text():  # a step at a time: a long run's
                    sys.stdout.write(text)                # object is never held whole
                print(flush=True)
        else:
            from emulator.cli.report import RunReport  # noqa: PLC0415  (rich: human output)

            report = RunReport(len(scenarios), verbose=args.verbose, quiet=args.quiet)
            with report.running():
                for scenario in scenarios:
                    report.starting(scenario.name)
                    report.add(run(scenario))
            report.summary()
    except BrokenPipeError:  # the reader went away (``| head``): the status of those run
        _silence_stdout()
    finally:
        if args.junit is not None:
            write_report(args.junit, cases)
    return EXIT_PASS if all(c.result.passed for c in cases) else EXIT_FAIL


def _fleet(args: argparse.Namespace) -> int:
    """``posemu fleet``: 0 when no terminal shows an anomaly, 1 otherwise."""
    from emulator.engine.fleet import MAX_TERMINALS, run_fleet  # noqa: PLC0415

    if args.acquirer is not None:
        from emulator.live.fleet_command import run_fleet_command  # noqa: PLC0415

        return run_fleet_command(args)
    if not 1 <= args.terminals <= MAX_TERMINALS:
        raise UsageError(f"--terminals must be 1 to {MAX_TERMINALS:,}, not {args.terminals}")
    scenario = _firmware(load_scenario(args.path), args)
    if args.seed is not None or args.profile is not None:
        scenario = scenario.with_overrides(seed=args.seed, profile=args.profile)
    with _fleet_bar() as progress:
        if args.trace is None:
            result = run_fleet(scenario, args.terminals, progress=progress)
        else:
            with AtomicFile(args.trace) as sink:
                result = run_fleet(scenario, args.terminals, trace_sink=sink, progress=progress)
    if args.json:
        _print_json(result.to_json())
    else:
        print(result.summary())
    return EXIT_FAIL if result.anomaly_total else EXIT_PASS


def _debug_firmware(args: argparse.Namespace, result: Result) -> None:
    """With ``--debug``, where a plug-in firmware broke its contract: the traceback."""
    if args.debug and result.firmware_error is not None:
        traceback.print_exception(result.firmware_error, file=sys.stderr)


def _firmware(scenario: Scenario, args: argparse.Namespace) -> Scenario:
    """``--firmware`` (and a plug-in refusing ``--profile``); plug-ins load only if named."""
    if args.firmware is None and scenario.firmware is None:
        return scenario
    from emulator.firmware.plugin import choose_firmware  # noqa: PLC0415

    return choose_firmware(scenario, args.firmware, args.profile)


def _fleet_bar() -> contextlib.AbstractContextManager[Progress | None]:
    """A progress bar on standard error when it is a terminal (rich loads only then)."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext()
    from emulator.cli.report import fleet_bar  # noqa: PLC0415

    return fleet_bar()


def _bench_runner(args: argparse.Namespace, scenarios: list[Scenario]) -> Runner:
    """``--printer``: check everything before anything runs; the real-time runner."""
    from devices.printer.serial_port import parse_spec  # noqa: PLC0415
    from emulator.engine.bench import refuse_printer_faults, run_bench  # noqa: PLC0415

    if len(scenarios) != 1:
        raise UsageError(f"--printer runs one scenario file; {len(scenarios)} given")
    try:
        parse_spec(args.printer)
    except PrinterSpecError as exc:
        raise UsageError(str(exc)) from exc
    [scenario] = scenarios
    refuse_printer_faults(scenario)
    if args.trace_dir is not None:
        partial = _trace_path(args.trace_dir, scenario, set())
    else:
        stem = Path(scenario.path).stem if scenario.path else "scenario"
        partial = Path(f"posemu-bench-{stem}.jsonl")
    return lambda s: run_bench(s, args.printer, partial)


def _trace_path(directory: Path, scenario: Scenario, taken: set[str]) -> Path:
    stem = Path(scenario.path).stem if scenario.path else "scenario"
    return directory / f"{unused_name(stem, taken)}.jsonl"


# ---------------------------------------------------------------------- printer


def _printer(args: argparse.Namespace) -> int:
    """``posemu printer --pty``: serve until ``quit``, end of input or SIGTERM."""
    from devices.printer.virtual import serve  # noqa: PLC0415  (not needed by any other command)

    return serve(baudrate=args.baudrate, lines_per_s=args.lines_per_s, paper_m=args.paper_m,
                 raw_log=args.raw_log, render_dir=args.render)


# ------------------------------------------------------------------------- fuzz


def _fuzz(args: argparse.Namespace) -> int:
    """``posemu fuzz``: the fuzzer is imported by the one command that uses it."""
    from emulator.fuzz.command import run_command  # noqa: PLC0415

    return run_command(args)


def _acquirer(args: argparse.Namespace) -> int:
    """``posemu acquirer``: the live acquirer (:mod:`emulator.live`)."""
    from emulator.live.command import run_command  # noqa: PLC0415

    return run_command(args)


# ----------------------------------------------------------------------- replay


def _replay(args: argparse.Namespace) -> int:
    from emulator.engine.replay import replay  # noqa: PLC0415  (only this command uses it)

    if args.html is None:
        done = replay(args.trace, args.scenario)
    else:  # the new run kept for its HTML report (emulator/report/html)
        from emulator.report.html.command import ReplayReport  # noqa: PLC0415

        report = ReplayReport(args.html)
        done = replay(args.trace, args.scenario, report.run, report.verdict)
        report.write(done, args.trace)
    scenario, first = done.scenario, done.first_difference
    if args.json:
        _print_json({
            "trace": str(args.trace), "scenario": scenario.path, "seed": scenario.seed,
            "profile": scenario.profile, "terminals": done.terminals,
            "identical": done.identical,
            "old": {"events": done.old_events, "trace_sha256": done.old_sha256},
            "new": {"events": done.new_events, "trace_sha256": done.new_sha256},
            "first_difference": None if first is None else {
                "index": first.index, "line": first.line, "old": first.old, "new": first.new},
        })
        return EXIT_PASS if done.identical else EXIT_FAIL
    run = f"{scenario.path} ({scenario.runs_as}, seed {scenario.seed})"
    if done.terminals is not None:
        run += f" on {done.terminals:,} terminals"
    if first is None:
        print(f"identical: {args.trace} = a new run of {run}: {done.new_events} events, "
              f"sha256 {done.old_sha256}")
        return EXIT_PASS
    print(f"differs: {args.trace} != a new run of {run}")
    print(f"first difference at event {first.index} (line {first.line} of {args.trace}):")
    print(f"  old: {first.old or '(no event)'}")
    print(f"  new: {first.new or '(no event)'}")
    print(f"old: {done.old_events} events, sha256 {done.old_sha256}")
    print(f"new: {done.new_events} events, sha256 {done.new_sha256}")
    return EXIT_FAIL


# ------------------------------------------------------- faults, profiles, explain


def faults_data() -> list[dict[str, Any]]:
    """The fault catalogue as JSON-ready dicts."""
    return [
        {"name": f.name, "device": f.device, "help": f.help,
         "params": [{"name": p.name, "kind": p.kind, "default": p.default, "help": p.help}
                    for p in f.params]}
        for f in FAULTS.values()
    ]


def profiles_data() -> dict[str, Any]:
    """Profiles (every value), knobs and settings with their defaults, JSON-ready."""
    default = Policy()
    return {
        "profiles": {name: dataclasses.asdict(policy) for name, policy in PROFILES.items()},
        "knobs": [dataclasses.asdict(k) for k in KNOBS.values()],
        "settings": [{"name": name, "default": getattr(default, name), "help": help_}
                     for name, help_ in SETTINGS.items()],
    }


def explain_data(name: str) -> dict[str, Any]:
    """An anomaly, its seed story and the knobs guarding against it; UsageError if unknown."""
    anomaly = ANOMALIES.get(name) or RUN_ANOMALIES.get(name)
    if anomaly is None:
        if name in CLEAN_END_STATES:
            raise UsageError(f"{name!r} is a clean end state, not an anomaly: "
                             f"{CLEAN_END_STATES[name]}")
        import difflib  # noqa: PLC0415  (only for an unknown name)

        close = difflib.get_close_matches(name, EXPECTABLE, n=3, cutoff=0.5)
        either = " or ".join([", ".join(close[:-1]), close[-1]] if len(close) > 1 else close)
        hint = f"did you mean {either}?" if close else f"one of: {', '.join(EXPECTABLE)}"
        raise UsageError(f"unknown anomaly {name!r}; {hint}")
    return {
        "name": anomaly.name, "meaning": anomaly.meaning, "story": anomaly.story,
        "knobs": [dataclasses.asdict(k) for k in KNOBS.values() if k.guards == name],
    }


def _faults(args: argparse.Namespace) -> int:
    if args.json:
        _print_json({"faults": faults_data()})
    else:
        from emulator.cli.report import show_faults  # noqa: PLC0415

        show_faults(faults_data())
    return EXIT_PASS


def _profiles(args: argparse.Namespace) -> int:
    if args.json:
        _print_json(profiles_data())
    else:
        from emulator.cli.report import show_profiles  # noqa: PLC0415

        show_profiles(profiles_data())
    return EXIT_PASS


def _explain(args: argparse.Namespace) -> int:
    if args.anomaly is None:  # every anomaly, as ``explain NAME`` tells each
        every = [explain_data(name) for name in EXPECTABLE]
        if args.json:
            _print_json({"anomalies": every})
        else:
            from emulator.cli.report import show_anomalies  # noqa: PLC0415

            show_anomalies(every)
        return EXIT_PASS
    data = explain_data(args.anomaly)
    if args.json:
        _print_json(data)
    else:
        from emulator.cli.report import show_explain  # noqa: PLC0415

        show_explain(data)
    return EXIT_PASS


if __name__ == "__main__":
    sys.exit(main())

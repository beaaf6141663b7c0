"""``posemu fuzz``: search the fault space, shrink what breaks to a minimal scenario file.

The command line of the fuzzer: :func:`add_parser` registers it, :func:`run_command`
runs it. The work is done in :mod:`emulator.fuzz.workload` (workload, draws),
:mod:`emulator.fuzz.campaign` (search, shrinking), :mod:`emulator.fuzz.shrink` and
:mod:`emulator.fuzz.findings` (files, report).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devices.errors import ScenarioError, UsageError, one_line
from emulator.cli.numbers import integer, number, shown
from emulator.fuzz import modes
from emulator.scenario.catalogue import EXPECTABLE
from emulator.scenario.profiles import PROFILES

if TYPE_CHECKING:  # the search modules load only when ``posemu fuzz`` runs
    from emulator.fuzz.campaign import Config, Finding, Report
    from emulator.fuzz.workload import Workload

EXIT_INPUT = 2
DEFAULT_BUDGET_S = 60.0
"""Search time without ``--runs`` or ``--budget-s``."""
SUMMARY_FILE = "summary.json"
"""Written beside the findings with ``--out``: the ``--json`` summary."""
MAX_RUNS, MAX_BUDGET_S, MAX_SEED = 10**9, 1e6, 2**63 - 1
MAX_CAUSES, MAX_SHARDS, JOBS_PER_CORE = 100, 1_000_000, 4


def max_jobs() -> int:
    """The most worker processes ``--jobs`` starts: four per core."""
    return JOBS_PER_CORE * (os.cpu_count() or 1)


class _Bar:
    """A rich progress bar on standard error, only when it is a terminal."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.start = time.monotonic()
        self.progress: Any = None
        self.task: Any = None

    def __enter__(self) -> _Bar:
        if sys.stderr.isatty():
            from rich import progress as rp  # noqa: PLC0415 - rich only for a terminal
            from rich.console import Console  # noqa: PLC0415

            self.progress = rp.Progress(
                rp.TextColumn("{task.description}"), rp.BarColumn(),
                rp.TextColumn("{task.completed} runs"),
                rp.TextColumn("{task.fields[rate]:.0f} runs/s"),
                rp.TextColumn("{task.fields[found]} anomaly kinds"), rp.TimeElapsedColumn(),
                console=Console(stderr=True), transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("search", total=self.total, rate=0.0, found=0)
        return self

    def __call__(self, done: int, found: int, phase: str) -> None:
        if self.progress is None:
            return
        if phase == "search":
            rate = done / max(time.monotonic() - self.start, 1e-9)
            self.progress.update(self.task, completed=done, rate=rate, found=found)
        else:
            self.progress.update(self.task, description="shrinking", found=found)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


# ------------------------------------------------------------------ command line


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``posemu fuzz`` (``func=run_command``)."""
    fuzz_cmd = commands.add_parser(
        "fuzz", help="search fault schedules for anomalies, shrink each to a scenario file",
        epilog="posemu fuzz merge DIR... [--out DIR] [--json] combines the --out "
        "directories of a campaign's shards (see docs/fuzzing.md)")
    fuzz_cmd.add_argument("base", nargs="?", metavar="BASE.toml",
                          help="the workload: its cards, steps and profile (default: built in)")
    fuzz_cmd.add_argument("--profile", choices=sorted(PROFILES), help="firmware profile")
    fuzz_cmd.add_argument("--firmware", metavar="MODULE:FACTORY",
                          help="fuzz a plug-in firmware instead of posemu's own (docs/firmware.md)")
    fuzz_cmd.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                          dest="sets", help="override a knob or setting (repeatable)")
    fuzz_cmd.add_argument("--runs", type=integer(1, MAX_RUNS), metavar="N",
                          help="stop after N runs (1 to 1,000,000,000)")
    fuzz_cmd.add_argument("--budget-s", type=number(0, MAX_BUDGET_S, low_open=True),
                          metavar="S", help="stop searching after S seconds, at most "
                          f"1,000,000 (default {DEFAULT_BUDGET_S:g} without --runs)")
    fuzz_cmd.add_argument("--seed", type=integer(0, MAX_SEED), default=0,
                          help="campaign seed, 0 to 2**63-1 (default 0)")
    fuzz_cmd.add_argument("--jobs", type=integer(0, max_jobs()), default=1, metavar="N",
                          help="worker processes, at most 4 per core (0: one per core; "
                          "default 1)")
    fuzz_cmd.add_argument("--shard", default="1/1", metavar="I/N",
                          help="run only shard I of N (runs I-1, I-1+N, ...)")
    fuzz_cmd.add_argument("--until", choices=EXPECTABLE, metavar="ANOMALY",
                          help="stop searching at the first run that shows this anomaly")
    fuzz_cmd.add_argument("--causes", type=integer(1, MAX_CAUSES), default=2, metavar="N",
                          help="distinct minimal causes to shrink per anomaly kind, 1 to 100 "
                          "(default 2)")
    modes.add_arguments(fuzz_cmd)
    fuzz_cmd.add_argument("--out", type=Path, metavar="DIR",
                          help="write one scenario file per finding here")
    fuzz_cmd.add_argument("--json", action="store_true", help="the summary as one JSON object")
    fuzz_cmd.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                          help="show tracebacks on errors")
    fuzz_cmd.set_defaults(func=run_command)


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``knob=value`` pairs; a value is read as TOML (true, 30, 1.5) or else a string."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--set {item!r}: expected KNOB=VALUE")
        try:
            value: Any = tomllib.loads(f"v = {text.strip()}")["v"]
        except (tomllib.TOMLDecodeError, RecursionError):  # not TOML, or nested too deeply
            value = text.strip()
        out[name.strip()] = value
    return out


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` to (2, 4); UsageError unless 1 <= I <= N."""
    i, sep, n = text.partition("/")
    if (sep and i.isascii() and i.isdigit() and n.isascii() and n.isdigit()
            and len(i) < 10 and len(n) < 10 and 1 <= int(i) <= int(n) <= MAX_SHARDS):
        return int(i), int(n)
    raise UsageError(f"--shard {shown(text)}: expected I/N with 1 <= I <= N <= 1,000,000, "
                     "e.g. 2/4")


def config_from(args: argparse.Namespace) -> Config:
    """The campaign settings of the command line; UsageError when one is out of range."""
    if args.runs is not None and args.runs < 1:
        raise UsageError("--runs must be at least 1")
    if args.budget_s is not None and not args.budget_s > 0:
        raise UsageError("--budget-s must be more than 0")
    if args.jobs < 0:
        raise UsageError("--jobs must be 0 (one per core) or more")
    if args.causes < 1:
        raise UsageError("--causes must be at least 1")
    modes.check(args)
    from emulator.fuzz.campaign import Config  # noqa: PLC0415 - only ``posemu fuzz`` needs it

    return Config(seed=args.seed, runs=args.runs, budget_s=args.budget_s,
                  jobs=args.jobs or os.cpu_count() or 1, shard=parse_shard(args.shard),
                  causes=args.causes, until=args.until,
                  check_determinism=args.check_determinism)


def load_workload(base: str | None, profile: str | None, sets: dict[str, Any],
                  firmware: str | None = None, builtin: str = "full") -> Workload:
    """The workload of the command line; ScenarioError or UsageError on bad input."""
    from emulator.fuzz.workload import make_workload  # noqa: PLC0415
    from emulator.scenario.load import load_scenario  # noqa: PLC0415

    scenario = None if base is None else load_scenario(base)
    if firmware is not None or (scenario is not None and scenario.firmware is not None):
        from emulator.firmware.plugin import load_factory  # noqa: PLC0415

        if firmware is not None:
            load_factory(firmware, base)  # one line if it cannot be loaded
        if profile is not None:
            raise UsageError(f"--profile {profile}: a plug-in firmware has no profiles")
    try:
        label = base or ("built-in" if builtin == "basic" else f"built-in {builtin}")
        return make_workload(scenario, label, profile, sets, firmware, builtin)
    except ScenarioError as exc:
        raise UsageError(f"--set: {exc.key or ''}: {exc.message}") from exc


def _command(args: argparse.Namespace, config: Config, runs: int) -> str:
    """The command line that runs the same campaign again."""
    words = ["posemu fuzz", *([args.base] if args.base else []), f"--seed {config.seed}",
             f"--runs {runs}"]
    words += [f"--profile {args.profile}"] if args.profile else []
    words += [f"--firmware {args.firmware}"] if args.firmware else []
    words += [f"--set {s}" for s in args.sets]
    words += modes.words(args)
    if config.shard != (1, 1):
        words.append(f"--shard {args.shard}")
    return " ".join(words)


def run_command(args: argparse.Namespace) -> int:
    """``posemu fuzz``: the exit status (0 none found, 1 found, 2 bad input)."""
    from emulator.engine.trace import write_atomic  # noqa: PLC0415
    from emulator.fuzz.campaign import Runner, fuzz  # noqa: PLC0415
    from emulator.fuzz.findings import (  # noqa: PLC0415
        FindingWriter,
        show,
        summary,
        write_differences,
    )

    try:
        config = config_from(args)
        workload = modes.apply(load_workload(args.base, args.profile, parse_sets(args.sets),
                                             args.firmware, args.workload), args)
    except (UsageError, ScenarioError) as exc:
        print(f"posemu: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_INPUT
    total = None
    if config.runs is not None:
        total = len(range(config.shard[0] - 1, config.runs, config.shard[1]))
    writer = None if args.out is None else FindingWriter(args.out)

    def confirmed(report: Report, finding: Finding) -> None:
        """Write each finding's file as soon as it is shrunk: Ctrl-C loses none."""
        if not report.command:
            report.command = _command(args, config, config.runs or report.runs * config.shard[1])
        if writer is not None:
            writer(report, finding)

    try:
        with Runner(workload, config.jobs) as runner, _Bar(total) as bar:
            report = fuzz(workload, config, bar, runner, confirmed)
    except KeyboardInterrupt:  # while the workers start: nothing done yet
        print("posemu: interrupted", file=sys.stderr)
        return 130
    report.command = _command(args, config, config.runs or report.runs * config.shard[1])
    if args.out is not None:  # what `posemu fuzz merge` reads back
        args.out.mkdir(parents=True, exist_ok=True)
        write_differences(report, args.out)
        write_atomic(args.out / SUMMARY_FILE, json.dumps(summary(report), indent=1).encode())
    if args.json:
        print(json.dumps(summary(report)), flush=True)
    else:
        show(report)
    return report.status

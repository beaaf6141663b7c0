"""The campaign modes of ``posemu fuzz`` beside the search itself: which built-in
workload, fleets (``--terminals``), liveness (``--liveness``) and the determinism
self-check (``--check-determinism``): their options, their checks, the workload they
make and the words that repeat them.

Loaded with the command line, so it imports nothing heavy at module level.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from devices.errors import UsageError
from emulator.cli.numbers import integer, number

if TYPE_CHECKING:
    from emulator.fuzz.workload import Workload

MAX_FUZZ_TERMINALS = 100
"""At most this many terminals per fuzz run (``--terminals``)."""
MAX_LIVENESS_S = 1e9  # --horizon-s and --quiet-s
MAX_CHECKED = 10**9  # --check-determinism: --runs' own bound
BUILTIN_NAMES = ("full", "basic")


def add_arguments(fuzz_cmd: argparse.ArgumentParser) -> None:
    """The modes' options of ``posemu fuzz``."""
    fuzz_cmd.add_argument("--workload", choices=BUILTIN_NAMES, default="full",
                          help="the built-in workload without BASE.toml (default full)")
    fuzz_cmd.add_argument("--terminals", type=integer(1, MAX_FUZZ_TERMINALS), default=1,
                          metavar="N",
                          help="each run a fleet of N terminals on one bank, with a "
                          "swizzle-clog in half the runs (default 1)")
    fuzz_cmd.add_argument("--liveness", action="store_true",
                          help="faults stop at a horizon; then the terminal must go quiet")
    fuzz_cmd.add_argument("--horizon-s", type=number(0, MAX_LIVENESS_S), metavar="S",
                          help="with --liveness: when faults stop (default: the last step's "
                          "at_s)")
    fuzz_cmd.add_argument("--quiet-s", type=number(0, MAX_LIVENESS_S), metavar="S",
                          help="with --liveness: how long the terminal has to go quiet "
                          "(default 600)")
    fuzz_cmd.add_argument("--check-determinism", type=integer(0, MAX_CHECKED), nargs="?",
                          const=100, default=0,
                          metavar="N", help="run N of the runs (default 100) again in two "
                          "fresh processes and compare their traces")


def check(args: argparse.Namespace) -> None:
    """UsageError when a mode's option does not go with another (their ranges are
    checked as they are read, by their argparse types)."""
    if not args.liveness and (args.horizon_s is not None or args.quiet_s is not None):
        raise UsageError("--horizon-s and --quiet-s go with --liveness")


def apply(workload: Workload, args: argparse.Namespace) -> Workload:
    """``workload`` in the modes of the command line (UsageError when the liveness
    horizon and bound end before its last step)."""
    from dataclasses import replace  # noqa: PLC0415

    from emulator.fuzz.liveness import QUIET_S, live  # noqa: PLC0415

    if args.terminals > 1:
        workload = replace(workload, terminals=args.terminals)
    if args.liveness:
        workload = live(workload, args.horizon_s,
                        QUIET_S if args.quiet_s is None else args.quiet_s)
    return workload


def words(args: argparse.Namespace) -> list[str]:
    """The options that repeat the modes of the command line."""
    out = [] if args.base or args.workload == "full" else [f"--workload {args.workload}"]
    out += [f"--terminals {args.terminals}"] if args.terminals > 1 else []
    out += ["--liveness"] if args.liveness else []
    out += [f"--{k}-s {v:g}" for k, v in (("horizon", args.horizon_s),
                                          ("quiet", args.quiet_s)) if v is not None]
    return out

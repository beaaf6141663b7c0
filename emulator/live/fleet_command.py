"""``posemu fleet FILE --terminals N --acquirer URL [--rate R] [--duration S]``: the live
fleet (:mod:`emulator.live.fleet`) from the command line, with a progress bar on standard
error when it is a terminal. Exit status: 0 no host rule broken, 1 some, 2 bad input."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from devices.errors import UsageError

__all__ = ["add_arguments", "run_fleet_command"]


def add_arguments(fleet: argparse.ArgumentParser) -> None:
    """The live fleet's flags on ``posemu fleet``'s parser."""
    fleet.add_argument("--acquirer", metavar="URL",
                       help="live: the terminals sell in real time against the host at "
                            "tcp://HOST:PORT[?framing=F&tpdu=1&tls=1] (docs/live.md)")
    fleet.add_argument("--rate", type=float, metavar="R",
                       help="with --acquirer: sales per second in all (default: one per "
                            "terminal per second; 0: as fast as answers come)")
    fleet.add_argument("--duration", type=float, default=10.0, metavar="S",
                       help="with --acquirer: seconds of selling (default 10)")


def run_fleet_command(args: argparse.Namespace) -> int:
    """Run the live fleet; print its report; the exit status."""
    from emulator.live.client import parse_url  # noqa: PLC0415
    from emulator.live.fleet import run_live_fleet  # noqa: PLC0415
    from emulator.scenario.load import load_scenario  # noqa: PLC0415

    if getattr(args, "firmware", None) is not None:
        raise UsageError("--firmware does not apply with --acquirer: the live fleet's "
                         "terminals are load terminals")
    remote = parse_url(args.acquirer)
    rate = float(args.terminals) if args.rate is None else args.rate
    if rate < 0 or not args.duration > 0:
        raise UsageError("--rate must be 0 or more and --duration more than 0 seconds")
    scenario = load_scenario(args.path)
    if args.seed is not None or args.profile is not None:
        scenario = scenario.with_overrides(seed=args.seed, profile=args.profile)

    async def main() -> Any:
        if not sys.stderr.isatty():
            return await run_live_fleet(scenario, remote, args.terminals, rate, args.duration)
        from rich.progress import Progress  # noqa: PLC0415

        with Progress(transient=True) as bar:
            task = bar.add_task(f"{args.terminals} terminals", total=1.0)

            def show(done: float, report: Any) -> None:
                bar.update(task, completed=done,
                           description=f"{args.terminals} terminals, {report.answered} "
                                       f"answered, {report.timeouts} timeouts")

            return await run_live_fleet(scenario, remote, args.terminals, rate,
                                        args.duration, show)

    report = asyncio.run(main())
    print(json.dumps(report.to_json()) if args.json else report.summary(), flush=True)
    return 0 if report.passed else 1

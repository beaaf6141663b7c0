"""``posemu fleet FILE --terminals N --acquirer URL [--speed X]``: the scenario's terminal
models against a real host (:mod:`emulator.live.model_fleet`); with ``--load-only
[--rate R] [--duration S]`` light load terminals instead (:mod:`emulator.live.fleet`),
with a progress bar on standard error when it is a terminal. Exit status: 0 every
terminal passed (load: no host rule broken), 1 some did not, 2 bad input."""

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
    fleet.add_argument("--speed", type=float, metavar="X",
                       help="with --acquirer: simulated seconds per real second (default 1)")
    fleet.add_argument("--shared-connection", action="store_true",
                       help="with --acquirer: every terminal on one connection, not one each")
    fleet.add_argument("--load-only", action="store_true",
                       help="with --acquirer: light load terminals selling at --rate for "
                            "--duration, not the scenario's terminal model")
    fleet.add_argument("--rate", type=float, metavar="R",
                       help="with --load-only: sales per second in all (default: one per "
                            "terminal per second; 0: as fast as answers come)")
    fleet.add_argument("--duration", type=float, metavar="S",
                       help="with --load-only: seconds of selling (default 10)")


def run_fleet_command(args: argparse.Namespace) -> int:
    """Run the live fleet; print its report; the exit status."""
    from emulator.live.client import parse_url  # noqa: PLC0415
    from emulator.live.fleet import run_live_fleet  # noqa: PLC0415
    from emulator.scenario.load import load_scenario  # noqa: PLC0415

    if not args.load_only:
        return _run_models(args)
    if getattr(args, "firmware", None) is not None or args.speed is not None or (
            args.shared_connection):
        raise UsageError("--firmware, --speed and --shared-connection do not apply with "
                         "--load-only: its terminals are load terminals")
    remote = parse_url(args.acquirer)
    duration = 10.0 if args.duration is None else args.duration
    rate = float(args.terminals) if args.rate is None else args.rate
    if rate < 0 or not duration > 0:
        raise UsageError("--rate must be 0 or more and --duration more than 0 seconds")
    scenario = load_scenario(args.path)
    if args.seed is not None or args.profile is not None:
        scenario = scenario.with_overrides(seed=args.seed, profile=args.profile)

    async def main() -> Any:
        if not sys.stderr.isatty():
            return await run_live_fleet(scenario, remote, args.terminals, rate, duration)
        from rich.progress import Progress  # noqa: PLC0415

        with Progress(transient=True) as bar:
            task = bar.add_task(f"{args.terminals} terminals", total=1.0)

            def show(done: float, report: Any) -> None:
                bar.update(task, completed=done,
                           description=f"{args.terminals} terminals, {report.answered} "
                                       f"answered, {report.timeouts} timeouts")

            return await run_live_fleet(scenario, remote, args.terminals, rate,
                                        duration, show)

    report = asyncio.run(main())
    print(json.dumps(report.to_json()) if args.json else report.summary(), flush=True)
    return 0 if report.passed else 1


def _run_models(args: argparse.Namespace) -> int:
    """The scenario's terminal models against the host: the report; the exit status."""
    from emulator.live.client import parse_url  # noqa: PLC0415
    from emulator.live.model_fleet import check_terminals, run_model_fleet  # noqa: PLC0415
    from emulator.scenario.load import load_scenario  # noqa: PLC0415

    if args.rate is not None or args.duration is not None:
        raise UsageError("--rate and --duration need --load-only: the terminal models run "
                         "the scenario's steps (--speed to run them faster)")
    if args.trace is not None:
        raise UsageError("--trace does not apply with --acquirer: each terminal's trace is "
                         "its own")
    if args.speed is not None and not args.speed > 0:
        raise UsageError(f"--speed must be more than 0, not {args.speed}")
    check_terminals(args.terminals)
    remote = parse_url(args.acquirer)
    scenario = load_scenario(args.path)
    if args.firmware is not None or scenario.firmware is not None:
        from emulator.firmware.plugin import choose_firmware  # noqa: PLC0415

        scenario = choose_firmware(scenario, args.firmware, args.profile)
    if args.seed is not None or args.profile is not None:
        scenario = scenario.with_overrides(seed=args.seed, profile=args.profile)
    report = run_model_fleet(scenario, remote, args.terminals, args.speed or 1.0,
                             args.shared_connection)
    print(json.dumps(report.to_json()) if args.json else report.summary(), flush=True)
    return 0 if report.passed else 1

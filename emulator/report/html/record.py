"""A run that keeps the ESC/POS bytes of every print job, for the report's receipts.

The printer is the scenario's simulated printer, built by the one wiring
(:func:`~emulator.engine.wiring.scenario_printer`), that also keeps what each
``print_job`` was given: the trace is the same as
:func:`~emulator.engine.world.run_scenario`'s, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import simpy

from devices.printer.sim import SimPrinter
from emulator.engine.collector import collection_paused
from emulator.engine.trace import Trace
from emulator.engine.wiring import scenario_printer
from emulator.engine.world import World
from emulator.judge.result import Result
from emulator.scenario.model import Scenario

__all__ = ["RecordedRun", "RecordingPrinter", "run_recorded"]


class RecordingPrinter(SimPrinter):
    """The simulated printer, keeping each job's bytes in ``jobs`` (job n is ``jobs[n-1]``:
    jobs are numbered in the order they are given, as they print in turn)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.jobs: list[bytes] = []

    def print_job(self, data: bytes, **about: Any) -> simpy.Process:
        self.jobs.append(bytes(data))
        return super().print_job(data, **about)


@dataclass(frozen=True)
class RecordedRun:
    """A run's result and the bytes of its print jobs, in job order."""

    result: Result
    jobs: tuple[bytes, ...]


def run_recorded(scenario: Scenario) -> RecordedRun:
    """Run ``scenario`` as :func:`~emulator.engine.world.run_scenario` does, keeping the
    bytes sent to the printer."""
    made: list[RecordingPrinter] = []

    def printer(env: simpy.Environment, trace: Trace) -> RecordingPrinter:
        made.append(cast(RecordingPrinter,
                         scenario_printer(scenario, env, trace, RecordingPrinter)))
        return made[0]

    with collection_paused():
        result = World(scenario, printer=printer).run()
    return RecordedRun(result, tuple(made[0].jobs) if made else ())

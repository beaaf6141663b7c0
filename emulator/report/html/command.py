"""What ``posemu run --html DIR`` and ``posemu replay TRACE --html DIR`` add to those commands.

``run_reporter`` wraps the run command's runner: each run is also written as a page
(the index is rewritten after each page, so it is whole even if the command is stopped).
``ReplayReport`` gives ``replay`` a runner that keeps the printer's bytes (and, for a fleet,
a listener for each terminal's verdict), then writes the page of the new run (a fleet's
trace: its summary page).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from emulator.engine.replay import Replay
from emulator.engine.trace import write_atomic
from emulator.engine.world import run_scenario
from emulator.judge.oracle import Verdict
from emulator.judge.result import Result
from emulator.report.html.fleet import fleet_page
from emulator.report.html.page import IndexEntry
from emulator.report.html.record import run_recorded
from emulator.report.html.writer import HtmlReport
from emulator.scenario.model import Scenario

__all__ = ["ReplayReport", "run_reporter"]

Runner = Callable[[Scenario], Result]


def run_reporter(directory: Path, run_one: Runner) -> Runner:
    """``run_one`` that also writes each run's page into ``directory``. The simulated run
    (``run_scenario``) is replaced by one that keeps the printer's bytes (the same trace);
    another runner (a bench run's) gives pages whose receipts are the trace's text."""
    report = HtmlReport(directory)

    def run(scenario: Scenario) -> Result:
        if run_one is run_scenario:
            recorded = run_recorded(scenario)
            result, jobs = recorded.result, recorded.jobs
        else:
            result, jobs = run_one(scenario), ()
        report.add(result, jobs)
        report.finish()
        return result

    return run


class ReplayReport:
    """The HTML report of a replay: ``run`` is the runner to replay with, ``write`` writes."""

    def __init__(self, directory: Path) -> None:
        self.report = HtmlReport(directory)
        self.jobs: tuple[bytes, ...] = ()
        self.end_states: dict[tuple[str, str], str] = {}  # a fleet's (terminal, step)

    def verdict(self, terminal: str, verdict: Verdict) -> None:
        """A fleet terminal's verdict (``run_fleet``'s ``on_terminal``): its end states."""
        for step, state in verdict.end_states.items():
            self.end_states[(terminal, step)] = state

    def run(self, scenario: Scenario) -> Result:
        recorded = run_recorded(scenario)
        self.jobs = recorded.jobs
        return recorded.result

    def write(self, done: Replay, trace: Path) -> Path:
        """Write the new run's page (or the fleet's summary) and the index; the page."""
        if done.result is not None:
            path = self.report.add(done.result, self.jobs)
        elif done.fleet is not None:
            fleet = done.fleet
            scenario = fleet.scenario
            href = self.report.name_for(trace.stem)
            path = self.report.directory / href
            entry = IndexEntry(
                href, f"{scenario.name} ({fleet.terminals:,} terminals)", scenario.path or "",
                scenario.profile, scenario.seed, "fail" if fleet.anomaly_total else "pass",
                tuple(sorted(fleet.anomaly_counts)), fleet.events)
            write_atomic(path, fleet_page(fleet, trace, entry, self.end_states).encode("utf-8"))
            self.report.add_entry(entry)
        else:  # pragma: no cover - replay returns one or the other
            raise AssertionError("replay returned no run")
        self.report.finish()
        return path

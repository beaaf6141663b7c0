"""What the pytest plugin's ``--posemu-html DIR`` does: a page per failed scenario, then an
index of the pages in DIR (written by the controller once the workers are done)."""

from __future__ import annotations

from pathlib import Path

from emulator.judge.result import Result
from emulator.report.html.record import run_recorded
from emulator.report.html.writer import HtmlReport, safe_stem, write_index
from emulator.scenario.model import Scenario

__all__ = ["finish", "run_reported"]


def run_reported(scenario: Scenario, directory: Path, nodeid: str) -> tuple[Result, Path | None]:
    """Run ``scenario`` (the same trace as ``run_scenario``); when it fails, write its
    page, named after the test's node id. The result, and the page if written."""
    recorded = run_recorded(scenario)
    result = recorded.result
    if result.passed:
        return result, None
    return result, HtmlReport(directory).add(result, recorded.jobs, stem=safe_stem(nodeid))


def finish(directory: Path) -> Path:
    """The index of every report page in ``directory``."""
    return write_index(directory)

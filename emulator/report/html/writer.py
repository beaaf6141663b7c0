"""Writing a report directory: a page per run as it comes, the index at the end."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from emulator.engine.trace import write_atomic
from emulator.judge.result import Result
from emulator.report.html.page import IndexEntry, index_page, scenario_page

__all__ = ["HtmlReport"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class HtmlReport:
    """A report directory being written; ``finish`` writes ``index.html``."""

    def __init__(self, directory: Path, title: str = "posemu report") -> None:
        self.directory = directory
        self.title = title
        self.entries: list[IndexEntry] = []
        self._taken = {"index"}
        directory.mkdir(parents=True, exist_ok=True)

    def name_for(self, stem: str) -> str:
        """A file name for ``stem`` not used yet in this report (``stem-2.html``, ...)."""
        base = _UNSAFE.sub("_", stem).strip("._") or "scenario"
        name, n = base, 1
        while name in self._taken:
            n += 1
            name = f"{base}-{n}"
        self._taken.add(name)
        return f"{name}.html"

    def add(self, result: Result, jobs: Sequence[bytes] = ()) -> Path:
        """Write one run's page; ``jobs``: the bytes of its print jobs, in job order."""
        scenario = result.scenario
        href = self.name_for(Path(scenario.path).stem if scenario.path else scenario.name)
        path = self.directory / href
        write_atomic(path, scenario_page(result, jobs).encode("utf-8"))
        self.add_entry(IndexEntry(
            href, scenario.name, scenario.path or "", scenario.profile, scenario.seed,
            result.verdict, tuple(a.kind for a in result.anomalies), result.events))
        return path

    def add_entry(self, entry: IndexEntry) -> None:
        """List a page written otherwise (a fleet's summary) in the index."""
        self.entries.append(entry)

    def finish(self) -> Path:
        """Write ``index.html``; its path."""
        path = self.directory / "index.html"
        write_atomic(path, index_page(self.entries, self.title).encode("utf-8"))
        return path

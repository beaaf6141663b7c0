"""Writing a report directory: a page per run as it comes, the index after each page.

Each page keeps its index entry in a ``<meta>`` (``ENTRY_META``), so an index can also be
made from the pages found in a directory (:func:`write_index`: the pytest plugin's, whose
pages are written by several worker processes).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from pathlib import Path

from emulator.engine.trace import unused_name, write_atomic
from emulator.judge.result import Result
from emulator.report.html.page import ENTRY_META, IndexEntry, index_page, scenario_page

__all__ = ["HtmlReport", "write_index"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_META = re.compile(rf'<meta name="{ENTRY_META}" content="([^"]*)">')
_HEAD_BYTES = 4096  # the entry is in the head of the page


def safe_stem(text: str) -> str:
    """``text`` as a file name stem: letters, digits, ``.``, ``_`` and ``-`` only."""
    return _UNSAFE.sub("_", text).strip("._") or "scenario"


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
        return f"{unused_name(safe_stem(stem), self._taken)}.html"

    def add(self, result: Result, jobs: Sequence[bytes] = (), stem: str | None = None) -> Path:
        """Write one run's page; ``jobs``: the bytes of its print jobs, in job order;
        ``stem``: the page's file name (default: the scenario file's)."""
        scenario = result.scenario
        href = self.name_for(stem or (Path(scenario.path).stem if scenario.path
                                      else scenario.name))
        entry = IndexEntry(href, scenario.name, scenario.path or "", scenario.profile,
                           scenario.seed, result.verdict,
                           tuple(a.kind for a in result.anomalies), result.events)
        path = self.directory / href
        write_atomic(path, scenario_page(result, jobs, entry).encode("utf-8"))
        self.add_entry(entry)
        return path

    def add_entry(self, entry: IndexEntry) -> None:
        """List a page written otherwise (a fleet's summary) in the index."""
        self.entries.append(entry)

    def finish(self) -> Path:
        """Write ``index.html``; its path."""
        path = self.directory / "index.html"
        write_atomic(path, index_page(self.entries, self.title).encode("utf-8"))
        return path


def write_index(directory: Path, title: str = "posemu report") -> Path:
    """Write ``index.html`` listing every report page in ``directory`` (by file name)."""
    entries = []
    for page in sorted(directory.glob("*.html")):
        if page.name == "index.html":
            continue
        with page.open("rb") as file:
            head = file.read(_HEAD_BYTES).decode("utf-8", "replace")
        found = _META.search(head)
        if found is None:
            continue
        try:
            data = json.loads(html.unescape(found.group(1)))
            data["href"] = page.name
            data["anomalies"] = tuple(data.get("anomalies", ()))
            entries.append(IndexEntry(**data))
        except (ValueError, TypeError, AttributeError):  # not one of ours after all
            continue
    path = directory / "index.html"
    write_atomic(path, index_page(entries, title).encode("utf-8"))
    return path

"""``posemu run --junit FILE``: the runs as a JUnit XML report, for CI.

One ``<testcase>`` per scenario run, in run order: ``classname`` is the file's path
with dots (``scenarios.sale_paper_jam``), ``name`` the scenario's name, ``file``
its path, ``time`` the wall-clock seconds the run took. A failed scenario has one
``<failure>`` whose ``message`` is its first unmet expectation and whose text lists
them all; every case carries ``seed``, ``profile`` and ``trace_sha256`` as
properties (as the pytest plugin records them) and its end states and anomalies
as ``<system-out>``. Built with :mod:`xml.etree.ElementTree`, written atomically.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from emulator.engine.trace import write_atomic
from emulator.judge.result import Result


@dataclass(frozen=True)
class Case:
    """One scenario run and the wall-clock seconds it took."""

    result: Result
    wall_s: float


def _classname(result: Result) -> str:
    s = result.scenario
    if not s.path:
        return "posemu"
    parts = PurePath(s.path).with_suffix("").parts
    return ".".join(p for p in parts if p not in ("/", "..", ".")) or "posemu"


def _outcome(result: Result) -> str:
    """End states and anomalies, one per line, as the report shows them."""
    lines = [f"verdict {result.verdict.upper()}"]
    lines += [f"{step.id}: {step.end_state}" for step in result.steps]
    lines += [f"anomaly {a.kind} at {a.step}: {a.detail}" for a in result.anomalies]
    return "\n".join(lines) + "\n"


def testcase(case: Case) -> ET.Element:
    """The ``<testcase>`` of one run."""
    result, s = case.result, case.result.scenario
    element = ET.Element("testcase", {
        "classname": _classname(result), "name": s.name, "time": f"{case.wall_s:.3f}",
        **({"file": s.path} if s.path else {}),
    })
    properties = ET.SubElement(element, "properties")
    for name, value in (("seed", s.seed), ("profile", s.runs_as),
                        ("trace_sha256", result.trace_sha256)):
        ET.SubElement(properties, "property", {"name": name, "value": str(value)})
    if not result.passed:
        failure = ET.SubElement(element, "failure", {
            "message": result.failures[0] if result.failures else "failed",
            "type": "expectation",
        })
        failure.text = "\n".join(result.failures) + "\n"
    ET.SubElement(element, "system-out").text = _outcome(result)
    return element


def report(cases: Sequence[Case]) -> bytes:
    """The JUnit XML document of ``cases``: one test suite, ``posemu``."""
    failures = sum(not c.result.passed for c in cases)
    total_s = f"{sum(c.wall_s for c in cases):.3f}"
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0",
              "skipped": "0", "time": total_s}
    root = ET.Element("testsuites", {"name": "posemu", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": "posemu", **counts})
    suite.extend(testcase(c) for c in cases)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def write_report(path: Path, cases: Sequence[Case]) -> None:
    """Write the report of ``cases`` to ``path`` atomically (a temporary file, renamed)."""
    write_atomic(path, report(cases))

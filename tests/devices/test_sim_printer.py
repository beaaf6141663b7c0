"""The simulated printer's run-ahead gives exactly the trace of printing segment by segment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.printer import PrinterCore
from devices.sim_printer import SimPrinter
from emulator.catalogue import TRIGGER_EVENTS
from emulator.scenario import Scenario, load_scenario, scenario_from_dict
from emulator.trace import Trace
from emulator.world import World

LIBRARY = sorted((Path(__file__).parents[2] / "scenarios").glob("*.toml"))
PRINTER_FAULTS = ["printer.paper_jam", "printer.paper_out", "printer.cover_open",
                  "printer.offline"]


def run(scenario: Scenario, *, run_ahead: bool) -> tuple[bytes, list[SimPrinter]]:
    made: list[SimPrinter] = []

    def printer(env: simpy.Environment, trace: Trace) -> SimPrinter:
        spec = scenario.printer
        made.append(SimPrinter(env, trace, PrinterCore(paper_m=spec.paper_m,
                                                       near_end_m=spec.near_end_m),
                               spec.lines_per_s, run_ahead=run_ahead))
        return made[-1]

    return World(scenario, printer=printer).run().trace.to_jsonl(), made


@pytest.mark.parametrize("path", LIBRARY, ids=[p.stem for p in LIBRARY])
def test_every_library_scenario_gives_the_same_trace_with_and_without_run_ahead(
    path: Path,
) -> None:
    scenario = load_scenario(path)
    fast, _ = run(scenario, run_ahead=True)
    slow, _ = run(scenario, run_ahead=False)
    assert fast == slow


def test_a_clean_receipt_is_run_ahead_and_a_jam_mid_receipt_is_caught_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feeds: list[int] = []
    real_feed = PrinterCore.feed

    def counting_feed(core: PrinterCore, data: bytes) -> list[Any]:
        feeds.append(len(data))
        return real_feed(core, data)

    monkeypatch.setattr(PrinterCore, "feed", counting_feed)
    clean = scenario_from_dict(document([]))
    jammed = scenario_from_dict(document([{"fault": "printer.paper_jam",
                                            "on": "printer.job_started", "for_s": 30}]))
    fast, printers = run(clean, run_ahead=True)
    assert printers[0].core.paper_m < clean.printer.paper_m  # the receipt used paper
    assert fast.count(b'"job_done"') == 5  # four sales and a reprint
    assert len(feeds) == 5  # each receipt fed to the core once, whole
    feeds.clear()
    slow, _ = run(clean, run_ahead=False)
    assert len(feeds) > 5 * 10  # segment by segment: one feed per paper movement
    assert fast == slow
    fast, _ = run(jammed, run_ahead=True)
    slow, _ = run(jammed, run_ahead=False)
    assert b'"job_failed"' in fast
    assert fast == slow


def document(faults: list[dict[str, Any]], paper_m: float = 20.0,
             lines_per_s: float = 20.0, seed: int = 0) -> dict[str, Any]:
    return {
        "format": 1, "name": "printer", "seed": seed,
        "printer": {"paper_m": paper_m, "near_end_m": min(0.5, paper_m),
                    "lines_per_s": lines_per_s},
        "cards": [{"id": "a", "pan": "4111111111111111", "balance": "500.00"}],
        "steps": [{"id": f"s{i}", "do": "sale", "card": "a", "amount": "1.00", "at_s": i * 4}
                  for i in range(4)] + [{"id": "r", "do": "reprint", "at_s": 40}],
        "faults": faults, "network": {"jitter_s": 0.05},
    }


@st.composite
def printer_fault(draw: st.DrawFn) -> dict[str, Any]:
    fault: dict[str, Any] = {"fault": draw(st.sampled_from(PRINTER_FAULTS))}
    if draw(st.booleans()):
        fault["at_s"] = draw(st.floats(0, 45))
    else:
        fault["on"] = draw(st.sampled_from(sorted(TRIGGER_EVENTS)))
        fault["nth"] = draw(st.integers(1, 3))
    if draw(st.booleans()):
        fault["for_s"] = draw(st.floats(0.01, 20))
    return fault


@settings(max_examples=int(os.environ.get("POSEMU_EXAMPLES", "150")), deadline=None,
          derandomize=os.environ.get("POSEMU_EXAMPLES") is None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(printer_fault(), max_size=3),
       st.sampled_from([20.0, 0.4, 0.3, 0.2, 0.05]),  # paper: some rolls end mid-receipt
       st.sampled_from([20.0, 7.0, 100.0]), st.integers(0, 2**16),
       st.sampled_from(["robust", "naive"]))
def test_run_ahead_never_changes_the_trace(
    faults: list[dict[str, Any]], paper_m: float, lines_per_s: float, seed: int, profile: str,
) -> None:
    doc = document(faults, paper_m, lines_per_s, seed)
    doc["terminal"] = {"profile": profile}
    scenario = scenario_from_dict(doc)
    fast, _ = run(scenario, run_ahead=True)
    slow, _ = run(scenario, run_ahead=False)
    assert fast == slow


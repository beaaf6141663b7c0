"""A long run streams its trace: the oracle and the bank's moves are folded as events
happen, so a run that keeps no events is judged exactly as one that keeps them, and
``posemu run`` keeps none for a scenario of more than LONG_RUN_STEPS steps."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from emulator.engine.trace import Discard, read_trace
from emulator.engine.world import LONG_RUN_STEPS, World, is_long, run_scenario
from emulator.judge.result import Result
from emulator.scenario.load import load_scenario, scenario_from_dict
from tests.support import LIBRARY, cli, sale


def judged(result: Result) -> dict[str, Any]:
    """Everything a run reports, but how long it took."""
    out = result.to_json()
    out.pop("sim_time_s")
    return out


@pytest.mark.parametrize("profile", ["robust", "naive"])
def test_every_library_scenario_streamed_is_judged_as_kept(profile: str) -> None:
    for path in sorted(LIBRARY.glob("*.toml")):
        scenario = load_scenario(path).with_overrides(profile=profile)
        kept = run_scenario(scenario)
        sink = io.BytesIO()
        streamed = run_scenario(scenario, trace_sink=sink)
        assert judged(streamed) == judged(kept), path.name
        assert sink.getvalue() == kept.trace.to_jsonl(), path.name
        assert streamed.trace.events == [], path.name  # nothing kept
        assert len(streamed.trace) == len(kept.trace) > 0


def long_raw(sales: int) -> dict[str, Any]:
    """``sales`` sales one minute apart, a settlement after each 100th."""
    steps: list[dict[str, Any]] = []
    for i in range(sales):
        steps.append(sale(f"s{i}", at_s=60.0 * i, amount="1.00"))
        if i % 100 == 99:
            steps.append({"id": f"st{i}", "do": "settle", "at_s": 60.0 * i + 30})
    return {"format": 1, "printer": {"paper_m": 1000.0},
            "cards": [{"id": "alice", "pan": "4111111111111111", "balance": "5000.00"}],
            "steps": steps}


@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scenario file just over the long-run limit (LONG_RUN_STEPS + 1 steps)."""
    sales = next(n for n in range(LONG_RUN_STEPS) if n + n // 100 > LONG_RUN_STEPS)
    raw = long_raw(sales)
    assert len(raw["steps"]) == LONG_RUN_STEPS + 1
    path = tmp_path_factory.mktemp("long") / "long.toml"
    lines = ['format = 1\n[printer]\npaper_m = 1000.0\n[[cards]]\nid = "alice"\n'
             'pan = "4111111111111111"\nbalance = "5000.00"\n']
    for step in raw["steps"]:
        lines.append("[[steps]]\n" + "".join(f"{k} = {json.dumps(v)}\n"
                                               for k, v in step.items()))
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_a_settling_long_run_is_judged_as_kept_without_keeping_events() -> None:
    scenario = scenario_from_dict(long_raw(300))
    kept = World(scenario).run()
    streamed = World(scenario, trace_sink=Discard()).run()
    assert judged(streamed) == judged(kept)
    assert streamed.trace.events == []
    assert {s.end_state for s in streamed.steps} == {"approved", "settled"}  # paper enough


def test_run_streams_a_long_scenarios_trace_to_the_trace_dir(
        long_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = load_scenario(long_file)
    assert is_long(scenario)
    kept = run_scenario(scenario)
    code, out, err = cli(capsys, "run", long_file, "--trace-dir", tmp_path)
    assert (code, err) == (0, "")
    assert f"{len(kept.trace):,} events, not kept" in out  # no timeline, no receipts
    assert "SALE" not in out
    written = tmp_path / "long.jsonl"
    assert written.read_bytes() == kept.trace.to_jsonl()
    header, events = read_trace(written)
    assert header["path"] == str(long_file)
    assert len(events) == len(kept.trace)
    code, out, _ = cli(capsys, "replay", written)
    assert code == 0
    assert out.startswith("identical:")


def test_run_json_streams_and_reports_as_kept(
        long_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kept = run_scenario(load_scenario(long_file))
    code, out, _ = cli(capsys, "run", long_file, "--json")
    assert code == 0
    assert json.loads(out) == json.loads(json.dumps(kept.to_json()))


def test_html_refuses_a_long_run_with_one_line(
        long_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "run", long_file, "--html", tmp_path / "html")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert f"has {LONG_RUN_STEPS + 1:,} steps" in err
    assert "--trace-dir" in err
    assert not (tmp_path / "html").exists()


def test_json_text_in_pieces_is_the_whole_object_even_with_odd_names() -> None:
    raw = long_raw(3)
    raw["name"] = 'x "steps": [] y'  # the marker json_text splits at, in a user's string
    raw["steps"][0]["id"] = '"steps": []'
    result = run_scenario(scenario_from_dict(raw))
    pieces = list(result.json_text())
    assert len(pieces) == len(result.steps) + 2  # head, a piece a step, tail
    assert "".join(pieces) == json.dumps(result.to_json())

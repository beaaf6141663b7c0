"""The complete example of docs/scenario-format.md loads, runs and passes."""

from __future__ import annotations

import re
from pathlib import Path

from emulator.engine.world import run_scenario
from emulator.scenario.load import parse_scenario

DOC = Path(__file__).resolve().parents[2] / "docs" / "scenario-format.md"


def test_the_complete_example_runs_and_meets_its_expectations() -> None:
    found = re.search(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert found is not None
    scenario = parse_scenario(found.group(1), str(DOC))
    result = run_scenario(scenario)
    assert result.passed, result.failures
    assert scenario.expect is not None
    assert scenario.expect.end_states == {"s1": "approved", "p1": "reprinted"}


def test_every_top_level_table_of_the_format_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for table in ("[terminal]", "[bank]", "[network]", "[printer]", "[merchant]",
                  "[[cards]]", "[[steps]]", "[[faults]]", "[expect]", "[liveness]"):
        assert f"## `{table}`" in text, table


def test_the_liveness_example_is_not_quiet_as_it_expects() -> None:
    section = DOC.read_text(encoding="utf-8").split("## `[liveness]`", 1)[1]
    found = re.search(r"```toml\n(.*?)```", section, re.S)
    assert found is not None
    result = run_scenario(parse_scenario(found.group(1), str(DOC)))
    assert result.passed, result.failures
    assert [a.detail for a in result.anomalies if a.kind == "not_quiet"] == [
        "owes reversal for s1; owes held_receipt for s1; step s1 still running"]

"""The five field stories (and story 5 as the customer tells it): reproduced with the naive
firmware, prevented by the robust one."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.engine.world import run_scenario
from emulator.scenario.load import load_scenario
from tests.support import LIBRARY

# story file stem -> the anomalies its naive run must show
STORIES = {
    "sale_paper_jam": ["charged_no_receipt"],
    "sale_partial_approval": ["wrong_amount"],
    "refund_system_error": ["duplicate_refund", "refund_shown_failed_but_credited"],
    "sale_bank_timeout": ["charged_shown_unpaid"],
    "sale_network_delay_retry": ["duplicate_charge"],
    # story 5 as the customer tells it: a timeout shown, the cashier's retry charged again
    "sale_bank_timeout_cashier_retry": ["charged_shown_unpaid", "duplicate_charge"],
}


@pytest.mark.parametrize("story", sorted(STORIES))
def test_naive_firmware_reproduces_the_story(story: str) -> None:
    result = run_scenario(load_scenario(LIBRARY / f"{story}.toml"))
    assert sorted(a.kind for a in result.anomalies) == STORIES[story]


@pytest.mark.parametrize("story", sorted(STORIES))
def test_robust_firmware_prevents_the_story(story: str) -> None:
    scenario = load_scenario(LIBRARY / f"{story}_prevented.toml")
    assert scenario.profile == "robust"
    result = run_scenario(scenario)
    assert result.anomalies == ()
    assert result.passed, result.failures


@pytest.mark.parametrize("story", sorted(STORIES))
def test_same_faults_on_both_sides_of_a_story(story: str) -> None:
    naive = load_scenario(LIBRARY / f"{story}.toml")
    robust = load_scenario(LIBRARY / f"{story}_prevented.toml")
    assert naive.profile == "naive"
    assert naive.faults == robust.faults
    assert naive.steps == robust.steps


def test_robust_profile_turns_each_reproduction_clean() -> None:
    for story in STORIES:
        scenario = load_scenario(LIBRARY / f"{story}.toml").with_overrides(profile="robust")
        assert run_scenario(scenario).anomalies == (), story


@pytest.mark.parametrize("path", sorted(LIBRARY.glob("*.toml")), ids=lambda p: p.stem)
def test_library_scenario_passes(path: Path) -> None:
    result = run_scenario(load_scenario(path))
    assert result.passed, result.failures

"""The scenario library covers the catalogue: every fault, anomaly and knob, the clean flows.

Running each file is test_stories.py::test_library_scenario_passes; here only what the
files declare is checked (loaded, never run).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from emulator.scenario.catalogue import ANOMALIES, FAULTS
from emulator.scenario.load import load_scenario
from emulator.scenario.model import Scenario
from emulator.scenario.profiles import KNOBS
from tests.support import LIBRARY

PATHS = sorted(LIBRARY.glob("*.toml"))
FILE_NAME = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+\.toml$")


def _load_all() -> dict[str, Scenario]:
    return {p.name: load_scenario(p) for p in PATHS}


LOADED = _load_all()


def _anomalies(scenario: Scenario) -> tuple[str, ...]:
    if scenario.expect is None or scenario.expect.anomalies is None:
        return ()
    return scenario.expect.anomalies


def _sentences(text: str) -> int:
    return len([s for s in re.split(r"[.!?](?:\s|$)", text.strip()) if s.strip()])


def test_library_has_at_least_30_files() -> None:
    assert len(PATHS) >= 30


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_file_is_named_flow_fault(path: Path) -> None:
    assert FILE_NAME.match(path.name), path.name


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_file_tells_its_story_and_states_its_expectations(path: Path) -> None:
    scenario = LOADED[path.name]
    assert _sentences(scenario.description) >= 2, scenario.description
    assert scenario.expect is not None
    assert scenario.expect.anomalies is not None


def test_names_are_unique() -> None:
    names = Counter(s.name for s in LOADED.values())
    assert [n for n, count in names.items() if count > 1] == []


def test_every_fault_is_used() -> None:
    used = {f.fault for s in LOADED.values() for f in s.faults}
    assert set(FAULTS) - used == set()


def test_every_anomaly_is_expected_somewhere() -> None:
    expected = {a for s in LOADED.values() for a in _anomalies(s)}
    assert set(ANOMALIES) - expected == set()


@pytest.mark.parametrize("knob", sorted(KNOBS))
def test_every_knob_set_naive_reproduces_its_anomaly(knob: str) -> None:
    spec = KNOBS[knob]
    files = [
        name for name, s in LOADED.items()
        if s.profile == "robust" and s.overrides.get(knob) == spec.naive
        and spec.guards in _anomalies(s)
    ]
    assert files, f"no robust file sets {knob} = {spec.naive!r} and expects {spec.guards}"


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("sale_approved.toml", "approved"),
        ("refund_approved.toml", "refunded"),
        ("void_sale.toml", "voided"),
        ("reprint_paper_jam.toml", "reprinted"),
        ("settle_in_balance.toml", "settled"),
        ("settle_partial_approval.toml", "batch_out_of_balance"),
    ],
)
def test_clean_flow_is_in_the_library(name: str, state: str) -> None:
    scenario = LOADED[name]
    assert scenario.expect is not None
    assert scenario.expect.end_states is not None
    assert state in scenario.expect.end_states.values()


def _declines() -> set[str]:
    """The decline codes the library provokes: by the card's state or forced by the host."""
    codes: set[str] = set()
    for s in LOADED.values():
        if s.expect is None or s.expect.end_states is None:
            continue
        if "declined" not in s.expect.end_states.values():
            continue
        for card in s.cards:
            if card.blocked:
                codes.add("05")
            if card.expiry is not None and card.expiry < s.start.strftime("%Y-%m"):
                codes.add("54")
            sales = [t for t in s.steps if t.do == "sale" and t.card == card.id]
            if any((t.amount_minor or 0) > card.balance_minor for t in sales):
                codes.add("51")
        for f in s.faults:
            if f.fault == "bank.respond" and not f.params.get("posted"):
                codes.add(str(f.params.get("code")))
    return codes


def test_every_decline_code_has_a_clean_flow() -> None:
    assert {"05", "51", "54", "91", "96"} <= _declines()


def test_every_expectation_names_every_step_and_card() -> None:
    for name, s in LOADED.items():
        assert s.expect is not None, name
        assert s.expect.end_states is not None, name
        assert s.expect.balances is not None, name
        assert set(s.expect.end_states) == {t.id for t in s.steps}, name
        assert {c.id for c in s.cards} <= set(s.expect.balances), name

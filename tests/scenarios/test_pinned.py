"""Pinned behaviour: every run's trace and JSON result are those of pinned.json.

A refactor keeps them all; a change of behaviour writes them anew on purpose
(``python tests/scenarios/pins.py``) and says why (docs/architecture.md).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.scenarios import pins

PINNED: dict[str, Any] = json.loads(pins.PINS.read_text())


def test_every_library_scenario_is_pinned() -> None:
    assert sorted(PINNED["library"]) == sorted(p.name for p in pins.LIBRARY.glob("*.toml"))


@pytest.mark.parametrize("name", sorted(PINNED["library"]))
def test_library_scenario_runs_as_pinned(name: str) -> None:
    assert pins.library_pin(name) == PINNED["library"][name]


@pytest.mark.parametrize("profile", sorted(pins.FUZZ_SEEDS))
@pytest.mark.parametrize("start", range(0, pins.FUZZ_RUNS, pins.FUZZ_CHUNK))
def test_generated_scenarios_run_as_pinned(profile: str, start: int) -> None:
    stop = start + pins.FUZZ_CHUNK
    got = list(pins.fuzz_pins(profile, start, stop))
    differ = [start + i for i, (a, b) in enumerate(zip(got, PINNED["fuzz"][profile][start:stop],
                                                      strict=True)) if a != b]
    assert not differ, f"{profile} campaign runs {differ} differ from their pins"


@pytest.mark.parametrize(("name", "terminals"), pins.FLEETS)
def test_fleet_runs_as_pinned(name: str, terminals: int) -> None:
    assert pins.fleet_pin(name, terminals) == PINNED["fleet"][f"{name}x{terminals}"]


def test_pinned_runs_are_not_all_alike() -> None:
    """The pins cover runs that differ (a generated fault may never fire, and without
    jitter the seed alone changes nothing, so a few generated traces coincide)."""
    fuzz = [pin for runs in PINNED["fuzz"].values() for pin in runs]
    assert len({trace for trace, _ in fuzz}) > 0.8 * len(fuzz)
    assert len({trace for trace, _ in PINNED["library"].values()}) == len(PINNED["library"])

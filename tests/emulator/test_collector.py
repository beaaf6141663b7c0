"""The collector policy of a run: young collections are rarer while it runs, then as before."""

from __future__ import annotations

import gc

import pytest

from emulator.collector import YOUNG_COLLECTION, young_collections
from emulator.scenario import scenario_from_dict
from emulator.trace import Event
from emulator.world import World


def one_sale() -> World:
    return World(scenario_from_dict({
        "format": 1, "name": "one sale",
        "cards": [{"id": "c", "pan": "4111111111111111", "balance": "10.00"}],
        "steps": [{"do": "sale", "card": "c", "amount": "1.00"}],
    }))


def test_a_run_raises_the_young_threshold_while_it_runs_and_restores_it() -> None:
    before = gc.get_threshold()
    world = one_sale()
    seen: list[tuple[int, ...]] = []
    world.trace.subscribe("card.read", lambda _event: seen.append(gc.get_threshold()))
    world.run()
    assert seen == [(YOUNG_COLLECTION, *before[1:])]
    assert gc.get_threshold() == before


def test_the_threshold_is_restored_when_the_run_fails() -> None:
    before = gc.get_threshold()
    world = one_sale()

    def boom(_event: Event) -> None:
        raise RuntimeError("listener failed")

    world.trace.subscribe("card.read", boom)
    with pytest.raises(RuntimeError):
        world.run()
    assert gc.get_threshold() == before


def test_a_higher_threshold_already_set_is_kept() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(YOUNG_COLLECTION * 2, *before[1:])
        with young_collections():
            assert gc.get_threshold()[0] == YOUNG_COLLECTION * 2
    finally:
        gc.set_threshold(*before)

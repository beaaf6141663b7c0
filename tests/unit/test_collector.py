"""The collector policy of a run: no automatic collection while it runs, then as before;
safe because a run leaves no cyclic garbage that grows with its length."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from emulator.engine.collector import collection_paused
from emulator.engine.fleet import Fleet, run_fleet
from emulator.engine.trace import Event
from emulator.engine.world import World, run_scenario
from emulator.scenario.load import scenario_from_dict


def one_sale() -> World:
    return World(scenario_from_dict({
        "format": 1, "name": "one sale",
        "cards": [{"id": "c", "pan": "4111111111111111", "balance": "10.00"}],
        "steps": [{"do": "sale", "card": "c", "amount": "1.00"}],
    }))


def test_a_run_pauses_the_collector_while_it_runs_and_restores_it() -> None:
    assert gc.isenabled()
    world = one_sale()
    seen: list[bool] = []
    world.trace.subscribe("card.read", lambda _event: seen.append(gc.isenabled()))
    world.run()
    assert seen == [False]
    assert gc.isenabled()


def test_the_collector_is_restored_when_the_run_fails() -> None:
    world = one_sale()

    def boom(_event: Event) -> None:
        raise RuntimeError("listener failed")

    world.trace.subscribe("card.read", boom)
    with pytest.raises(RuntimeError):
        world.run()
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    try:
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
        one_sale().run()
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("fleet", [False, True], ids=["run_scenario", "run_fleet"])
def test_a_run_resumes_collection_only_once_its_world_is_garbage(
        monkeypatch: pytest.MonkeyPatch, fleet: bool) -> None:
    """Then the next young collection frees the world instead of promoting it alive."""
    kind: type[World] | type[Fleet] = Fleet if fleet else World
    worlds: list[weakref.ref[World | Fleet]] = []
    built = kind.__init__

    def init(self: World | Fleet, *args: Any, **kwargs: Any) -> None:
        built(self, *args, **kwargs)  # type: ignore[arg-type]
        worlds.append(weakref.ref(self))

    scenario = one_sale().scenario
    depth: list[None] = []
    resumed: list[bool] = []  # after the outermost pause: is the world still reachable?

    @contextmanager
    def paused() -> Iterator[None]:
        depth.append(None)
        with collection_paused():
            yield
        depth.pop()
        if not depth:
            gc.collect(0)  # the young collection that follows the resumption
            resumed.append(worlds[0]() is not None)

    monkeypatch.setattr(kind, "__init__", init)
    monkeypatch.setattr(f"{kind.__module__}.collection_paused", paused)
    gc.collect()
    if fleet:
        assert run_fleet(scenario, 2).end_states == {"approved": 2}
    else:
        assert run_scenario(scenario).steps[0].end_state == "approved"
    assert resumed == [False]  # the world was dropped before collection resumed
    assert len(worlds) == 1
    assert worlds[0]() is None


def faulty_sales(count: int) -> dict[str, Any]:
    """``count`` sales five minutes apart, each hit by faults: every other one's
    answer lost and the bank slow on its repeat (timeout, reversal), the others'
    receipts jammed; then the cover opened, and a power loss."""
    steps: list[dict[str, Any]] = []
    faults: list[dict[str, Any]] = []
    for i in range(count):
        at = i * 300.0
        steps.append({"do": "sale", "card": "c", "amount": "1.00", "at_s": at})
        faults += [
            {"fault": "network.drop", "at_s": at, "direction": "to_terminal", "count": 1},
            {"fault": "bank.timeout", "at_s": at + 2, "count": 1},
        ] if i % 2 else [{"fault": "printer.paper_jam", "at_s": at + 1, "for_s": 100}]
        faults += [
            {"fault": "printer.cover_open", "at_s": at + 150, "for_s": 5},
            {"fault": "terminal.power_loss", "at_s": at + 200, "for_s": 20},
        ]
    return {
        "format": 1, "name": f"{count} faulty sales", "until_s": count * 300.0,
        "cards": [{"id": "c", "pan": "4111111111111111", "balance": "1000.00"}],
        "steps": steps, "faults": faults,
    }


def garbage_of(world: World | Fleet) -> int:
    """How many unreachable objects running ``world`` leaves while the world itself is
    still held (what it holds at its end is not garbage yet)."""
    gc.collect()
    with collection_paused():  # else the first allocation after the run may collect
        world.run()
        return gc.collect()


def test_a_run_leaves_no_more_cyclic_garbage_when_it_runs_longer() -> None:
    short, long = (scenario_from_dict(faulty_sales(n)) for n in (3, 48))
    World(short).run()  # warm up: lazy imports, caches
    # one object a sale in a cycle would be 45 more
    assert garbage_of(World(long)) <= garbage_of(World(short)) + 5


def test_a_fleet_leaves_no_more_cyclic_garbage_when_it_runs_longer() -> None:
    def days(count: int) -> dict[str, Any]:
        steps = [{"do": "sale", "card": "c", "amount": "1.00", "at_s": day * 86_400.0 + i * 600}
                 for day in range(count) for i in range(5)]
        steps += [{"do": "settle", "at_s": day * 86_400.0 + 80_000} for day in range(count)]
        return {"format": 1, "name": f"{count} days", "until_s": count * 86_400.0,
                "cards": [{"id": "c", "pan": "4111111111111111", "balance": "1000.00"}],
                "steps": sorted(steps, key=lambda s: float(s["at_s"]))}

    short, long = (scenario_from_dict(days(n)) for n in (1, 6))
    Fleet(short, 3).run()
    # one object a sale in a cycle would be 75 more
    assert garbage_of(Fleet(long, 3)) <= garbage_of(Fleet(short, 3)) + 5


def test_a_live_acquirer_leaves_its_startup_out_of_collections_only_while_it_serves() -> None:
    from emulator.live.command import startup_frozen  # noqa: PLC0415

    before = gc.get_freeze_count()
    kept: list[list[int]] = [[] for _ in range(10)]  # lists: tracked by the collector
    with startup_frozen():
        assert gc.get_freeze_count() >= before + len(kept)  # held before: not scanned
    assert gc.get_freeze_count() == before  # back to the collector after

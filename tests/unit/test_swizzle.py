"""``network.clog`` holds frames without losing them; ``fleet.swizzle_clog`` clogs a
random subset of a fleet's links one by one and unclogs them in another order."""

from __future__ import annotations

import random
from typing import Any

import simpy

from devices.fault import ActiveFault
from devices.net.link import TO_BANK, TO_TERMINAL, Link
from emulator.engine.fleet import run_fleet
from emulator.engine.trace import Trace
from emulator.engine.world import run_scenario
from emulator.scenario.load import scenario_from_dict


def link() -> tuple[simpy.Environment, Trace, Link]:
    env = simpy.Environment()
    trace = Trace(env)
    return env, trace, Link(env, random.Random(0), trace, latency_s=1.0)


def test_a_clogged_link_holds_frames_and_delivers_them_in_order_when_unclogged() -> None:
    env, _, wire = link()
    clog = ActiveFault("network.clog")
    wire.apply(clog)
    wire.send(b"one", TO_BANK)
    wire.send(b"two", TO_BANK)
    wire.send(b"back", TO_TERMINAL)
    env.run(until=50)
    assert not wire.inbox[TO_BANK].items
    assert not wire.inbox[TO_TERMINAL].items
    assert wire.in_flight == {TO_BANK: 2, TO_TERMINAL: 1}  # held frames are on their way
    wire.clear(clog)
    assert wire.inbox[TO_BANK].items == [b"one", b"two"]
    assert wire.inbox[TO_TERMINAL].items == [b"back"]
    assert wire.in_flight == {TO_BANK: 0, TO_TERMINAL: 0}


def test_frames_held_through_a_network_down_are_lost() -> None:
    env, trace, wire = link()
    clog = ActiveFault("network.clog")
    wire.apply(clog)
    wire.send(b"one", TO_BANK)
    env.run(until=5)
    down = ActiveFault("network.down")
    wire.apply(down)
    wire.clear(down)
    wire.clear(clog)
    assert not wire.inbox[TO_BANK].items
    assert [e.name for e in trace.events][-1] == "network.lost"


def swizzled(terminals: int | None = None, for_s: float | None = 20.0) -> dict[str, Any]:
    fault: dict[str, Any] = {"fault": "fleet.swizzle_clog", "at_s": 3, "interval_s": 2}
    if terminals is not None:
        fault["terminals"] = terminals
    if for_s is not None:
        fault["for_s"] = for_s
    return {
        "format": 1, "name": "swizzle", "seed": 7,
        "cards": [{"id": "erin", "pan": "5555555555554444", "balance": "1000.00"}],
        "steps": [{"id": "s1", "do": "sale", "card": "erin", "amount": "12.50"}],
        "faults": [fault],
    }


def fleet_events(doc: dict[str, Any], size: int) -> list[tuple[float, str, str]]:
    import io  # noqa: PLC0415
    import json  # noqa: PLC0415

    sink = io.BytesIO()
    result = run_fleet(scenario_from_dict(doc), size, trace_sink=sink)
    assert result.end_states == {"approved": size}
    assert not result.anomaly_counts
    lines = [json.loads(line) for line in sink.getvalue().splitlines()[1:]]
    return [(e["t"], f"{e['component']}.{e['event']}", e["fields"].get("tid", ""))
            for e in lines if e["event"] in ("clogged", "unclogged", "started", "cleared",
                                             "lost")]


def test_a_swizzle_clogs_a_subset_one_by_one_and_unclogs_it_in_another_order() -> None:
    events = fleet_events(swizzled(terminals=4), 8)
    clogged = [(t, tid) for t, name, tid in events if name == "network.clogged"]
    unclogged = [(t, tid) for t, name, tid in events if name == "network.unclogged"]
    assert [t for t, _ in clogged] == [3.0, 5.0, 7.0, 9.0]
    assert [t for t, _ in unclogged] == [23.0, 25.0, 27.0, 29.0]
    assert sorted(tid for _, tid in clogged) == sorted(tid for _, tid in unclogged)
    assert len({tid for _, tid in clogged}) == 4
    assert [tid for _, tid in clogged] != [tid for _, tid in unclogged]  # seed 7's orders
    assert events[0][1] == "fault.started"
    assert events[-1][1] == "fault.cleared"
    assert not [e for e in events if e[1] == "network.lost"]  # a clog loses nothing


def test_a_swizzle_is_the_same_for_the_same_seed_and_half_the_fleet_by_default() -> None:
    first = fleet_events(swizzled(), 6)
    assert first == fleet_events(swizzled(), 6)
    assert len([e for e in first if e[1] == "network.clogged"]) == 3


def test_a_single_run_is_a_fleet_of_one() -> None:
    result = run_scenario(scenario_from_dict(swizzled(for_s=20.0)))
    names = [e.name for e in result.trace.events]
    assert names.count("network.clogged") == 1
    assert names.count("network.unclogged") == 1
    assert [s.end_state for s in result.steps] == ["approved"]
    request = next(e for e in result.trace.events if e.name == "bank.request_received")
    assert request.t > 23.0  # held on the clogged link until it was unclogged


def test_a_swizzle_on_an_event_counts_the_events_of_every_terminal() -> None:
    doc = swizzled(terminals=2)
    del doc["faults"][0]["at_s"]
    doc["faults"][0].update({"on": "terminal.request_sent", "nth": 3})
    events = fleet_events(doc, 4)
    started = next(t for t, name, _ in events if name == "fault.started")
    assert started == 4.5  # every terminal sends its 0200 at 4.5 s: the third one
    assert len([e for e in events if e[1] == "network.clogged"]) == 2


def test_unclogging_waits_until_every_link_is_clogged() -> None:
    doc = swizzled(terminals=4, for_s=3.0)  # shorter than the 6 s the clogs take
    events = fleet_events(doc, 4)
    clogged = [t for t, name, _ in events if name == "network.clogged"]
    unclogged = [t for t, name, _ in events if name == "network.unclogged"]
    assert clogged == [3.0, 5.0, 7.0, 9.0]
    assert unclogged == [9.0, 11.0, 13.0, 15.0]

"""One wiring: every unit (a single run, each terminal of a fleet, a bench run) is built
by emulator/engine/wiring.py, and nothing else builds its components."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from devices.bank.host import Host
from devices.card_reader import SimCardReader
from devices.net.link import Link
from devices.ports import TraceSink
from devices.printer.sim import SimPrinter
from emulator.engine import wiring
from emulator.engine.fleet import Fleet
from emulator.engine.injector import Injector
from emulator.engine.world import World
from emulator.firmware.terminal import Terminal
from emulator.scenario.load import scenario_from_dict
from emulator.scenario.model import Scenario
from tests.support import ROOT

WIRING = ROOT / "emulator" / "engine" / "wiring.py"
COMPONENTS = {"Terminal", "Host", "Link", "SimCardReader", "SimPrinter", "Injector"}


def constructed(path: Path) -> list[tuple[str, int]]:
    """The components ``path`` calls by name, with the line of each call."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in COMPONENTS:
                calls.append((name, node.lineno))
    return calls


def test_only_the_wiring_builds_a_units_components() -> None:
    sources = sorted((ROOT / "emulator").rglob("*.py"))
    assert WIRING in sources
    elsewhere = {str(path.relative_to(ROOT)): calls for path in sources if path != WIRING
                 if (calls := constructed(path))}
    assert elsewhere == {}
    assert {name for name, _ in constructed(WIRING)} == COMPONENTS


def scenario() -> Scenario:
    return scenario_from_dict({
        "format": 1, "name": "wired",
        "cards": [{"id": "c", "pan": "4111111111111111", "balance": "100.00"}],
        "steps": [{"id": "s1", "do": "sale", "card": "c", "amount": "1.00"}],
        "faults": [{"fault": "printer.paper_jam", "on": "printer.job_started", "for_s": 5}],
    })


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The components built, in order, by class name."""
    order: list[str] = []
    for cls in (Link, Host, SimCardReader, SimPrinter, Terminal, Injector):
        init = cls.__init__

        def spy(self: object, *args: object, _init: object = init, **kwargs: object) -> None:
            order.append(type(self).__name__)
            _init(self, *args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(cls, "__init__", spy)
    return order


UNIT = ["Link", "Host", "SimCardReader", "SimPrinter", "Terminal", "Injector"]


def test_a_world_and_each_fleet_terminal_are_built_in_the_same_order(built: list[str]) -> None:
    World(scenario())
    assert built == UNIT
    built.clear()
    Fleet(scenario(), 3)
    assert built == UNIT * 3


def test_a_fleet_shares_the_acquirer_core_and_gives_each_terminal_its_id() -> None:
    fleet = Fleet(scenario(), 2)
    assert {unit.host.core for unit in fleet.units} == {fleet.acquirer}
    assert [u.terminal.identity.terminal_id for u in fleet.units] == ["T0000001", "T0000002"]
    assert fleet.units[0].host.traces is fleet.router.views


def test_a_world_is_the_unit_its_parts_build() -> None:
    world = World(scenario())
    assert isinstance(world.printer, SimPrinter)
    assert world.terminal.printer is world.printer
    assert world.terminal.transport is world.link.terminal_end
    assert world.host.transport is world.link.bank_end
    assert world.host.core is world.acquirer
    assert world.terminal.identity.terminal_id == world.scenario.merchant.terminal_id
    assert world.run().steps[0].end_state == "approved"


def test_another_printer_replaces_only_the_printer() -> None:
    made: list[SimPrinter] = []

    def printer(shared: wiring.Shared, trace: TraceSink) -> SimPrinter:
        made.append(wiring.sim_printer(shared, trace))
        return made[-1]

    parts = wiring.SIMULATED.with_printer(printer)
    assert (parts.transport, parts.endpoint, parts.firmware) == (
        wiring.sim_link, wiring.sim_host, wiring.sim_terminal)
    world = World(scenario())
    shared = wiring.Shared.of(world.scenario, world.env)
    unit = wiring.wire_unit(shared, world.trace, parts, "T0000042")
    assert made == [unit.printer]
    assert unit.terminal.identity.terminal_id == "T0000042"

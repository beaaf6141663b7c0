"""posemu: a deterministic emulator of a card payment terminal and what it talks to.

    from emulator import load_scenario, run_fleet, run_scenario
    result = run_scenario(load_scenario("scenarios/sale_paper_jam.toml"))
    result.verdict, result.anomalies, result.trace_sha256
    fleet = run_fleet(load_scenario("scenarios/sale_approved.toml"), 100)  # 100 terminals
    fleet.end_states, fleet.anomaly_counts

Names are loaded on first use, for start-up speed: ``posemu --help``, the pytest
plugin and ``import emulator`` do not load simpy, pyiso8583 or the engine until a
run needs them. (No import cycle needs it: ``devices`` never imports ``emulator``.)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devices.errors import PosemuError, ScenarioError
    from emulator.engine.fleet import FleetResult, run_fleet
    from emulator.engine.world import run_scenario
    from emulator.judge.result import Result, StepResult
    from emulator.scenario.load import load_scenario, parse_scenario
    from emulator.scenario.model import Scenario

_HOME = {
    "FleetResult": "emulator.engine.fleet",
    "PosemuError": "devices.errors",
    "ScenarioError": "devices.errors",
    "Result": "emulator.judge.result",
    "StepResult": "emulator.judge.result",
    "Scenario": "emulator.scenario.model",
    "load_scenario": "emulator.scenario.load",
    "parse_scenario": "emulator.scenario.load",
    "run_scenario": "emulator.engine.world",
    "run_fleet": "emulator.engine.fleet",
}

__all__ = [
    "FleetResult",
    "PosemuError",
    "Result",
    "Scenario",
    "ScenarioError",
    "StepResult",
    "load_scenario",
    "parse_scenario",
    "run_fleet",
    "run_scenario",
]


def __getattr__(name: str) -> Any:
    if name in _HOME:
        value = getattr(import_module(_HOME[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'emulator' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

"""``posemu fuzz --liveness``: every run of the campaign carries ``[liveness]``.

Safety (no anomaly) says nothing bad happened; liveness says the terminal gets its
work done once the world lets it. The workload's scenarios get the ``[liveness]`` key
(:mod:`emulator.engine.liveness` judges it): faults stop at the horizon, the run ends
the quiet bound later, and a terminal that is not quiet then shows :data:`NOT_QUIET`, an
anomaly like any other, which its finding's file reproduces with ``posemu run``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from devices.errors import UsageError
from emulator.engine.liveness import NOT_QUIET
from emulator.engine.world import World
from emulator.scenario.model import QUIET_S, Liveness

if TYPE_CHECKING:
    from emulator.fuzz.workload import Workload
    from emulator.judge.result import Result
    from emulator.scenario.model import Scenario

__all__ = ["NOT_QUIET", "QUIET_S", "Liveness", "live", "live_tables", "run_live"]


def run_live(scenario: Scenario, live: Liveness) -> tuple[Result, list[str]]:
    """Run ``scenario`` as if it had ``[liveness]`` = ``live``: the result and what
    keeps the terminal from being quiet (empty: quiet)."""
    world = World(msgspec.structs.replace(scenario, liveness=live, until_s=float(live.end_s)))
    result = world.run()
    assert world.liveness is not None
    return result, world.liveness.why


def live_tables(tables: dict[str, Any], live: Liveness | None) -> dict[str, Any]:
    """A scenario's tables with ``[liveness]`` = ``live`` (no ``until_s``: the key ends
    the run), placed before the other tables; ``live`` None: without it."""
    head = {k: v for k, v in tables.items() if not isinstance(v, dict | list)
            and k != "until_s"}
    key = {} if live is None else {"liveness": msgspec.structs.asdict(live)}
    rest = {k: v for k, v in tables.items() if k not in head and k not in ("until_s", "liveness")}
    return {**head, **key, **rest}


def live(workload: Workload, horizon_s: float | None, quiet_s: float = QUIET_S) -> Workload:
    """``workload`` in liveness mode: faults stop at ``horizon_s`` (default: when its
    last step starts), runs end ``quiet_s`` later: its scenarios' ``[liveness]``.

    Raises UsageError when the runs would end before the last step starts."""
    from dataclasses import replace  # noqa: PLC0415

    last = max(workload.step_at, default=0.0)
    spec = Liveness(last if horizon_s is None else horizon_s, quiet_s)
    if spec.end_s < last or spec.end_s <= 0:
        raise UsageError(f"--liveness: the horizon plus the quiet bound ({spec.end_s:g} s) "
                         f"must reach the last step (at {last:g} s) and be more than 0")
    return replace(workload, liveness=spec, tables=live_tables(workload.tables, spec))

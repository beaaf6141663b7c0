"""``posemu fuzz --liveness``: faults stop at a horizon, then the terminal must go quiet.

Safety (no anomaly) says nothing bad happened; liveness says the terminal gets its
work done once the world lets it. A liveness run stops every fault at the horizon
(none starts after it, those in force are cleared), runs on for the quiet bound, and
then asks whether the terminal is quiet: nothing owed in store-and-forward (advices
acknowledged, reversals and voids answered), no receipt held, no step still running
or waiting, the printer idle and the terminal powered: its batch can be settled. A
terminal that is not is a finding of its own kind, :data:`NOT_QUIET`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from devices.errors import UsageError
from emulator.engine.world import World

if TYPE_CHECKING:
    from emulator.engine.trace import Event
    from emulator.fuzz.workload import Workload
    from emulator.judge.result import Result
    from emulator.scenario.model import Scenario

NOT_QUIET = "not_quiet"
"""The finding of a liveness run whose terminal was not quiet at the bound."""
QUIET_S = 600.0
"""Default bound: ten store-and-forward retries of the robust profile, twice its
receipt hold."""


class Liveness(NamedTuple):
    """When faults stop, and how long the terminal then has to go quiet."""

    horizon_s: float
    quiet_s: float = QUIET_S

    @property
    def end_s(self) -> float:
        return self.horizon_s + self.quiet_s


def run_live(scenario: Scenario, live: Liveness) -> tuple[Result, list[str]]:
    """Run ``scenario`` with every fault stopped at the horizon, to the bound; the
    result and what keeps the terminal from being quiet (empty: quiet)."""
    world = World(scenario)
    world.env.timeout(live.horizon_s).callbacks.append(lambda _e: world.injector.stop())
    result = world.run(until=live.end_s)
    terminal = world.terminal
    why = [f"owes {what} for {step}" for step, what in terminal.unresolved()]
    if not getattr(terminal, "powered", True):  # posemu's own firmware says; a plug-in may not
        why.append("powered off")
    running = _running(result.trace.events)
    if running is not None:
        why.append(f"step {running} still running")
    waiting = getattr(getattr(terminal, "steps", None), "items", ())
    why += [f"step {s.id} not started" for s in waiting]
    if getattr(world.printer, "open_jobs", 0):  # the simulated printer's count
        why.append("printer still printing")
    return result, why


def _running(events: Iterable[Event]) -> str | None:
    """The step the terminal was running at the end (a power cut ends it too)."""
    running: str | None = None
    for event in events:
        if event.name == "terminal.txn_started":
            running = str(event.fields["step"])
        elif event.name in ("terminal.txn_done", "terminal.power_lost"):
            running = None
    return running


def live(workload: Workload, horizon_s: float | None, quiet_s: float = QUIET_S) -> Workload:
    """``workload`` in liveness mode: faults stop at ``horizon_s`` (default: when its
    last step starts), runs end ``quiet_s`` later (its scenarios' ``until_s``).

    Raises UsageError when the runs would end before the last step starts."""
    from dataclasses import replace  # noqa: PLC0415

    last = max(workload.step_at, default=0.0)
    spec = Liveness(last if horizon_s is None else horizon_s, quiet_s)
    if spec.end_s < last:
        raise UsageError(f"--liveness: the horizon plus the quiet bound ({spec.end_s:g} s) "
                         f"must reach the last step (at {last:g} s)")
    return replace(workload, liveness=spec, tables={**workload.tables, "until_s": spec.end_s})

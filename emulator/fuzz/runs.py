"""One run of a campaign, whatever its mode: a single terminal (a liveness run's scenario
carries ``[liveness]``: its ``not_quiet`` is an anomaly like any other), or a fleet of
terminals (``posemu fuzz --terminals N``), seen the same way by the search,
the shrinker and the determinism check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from emulator.engine.fleet import Fleet
from emulator.engine.world import run_scenario
from emulator.fuzz.sometimes import Reached, reached

if TYPE_CHECKING:
    from emulator.engine.trace import Event
    from emulator.fuzz.workload import Candidate, Workload


class Observed(NamedTuple):
    """What one run showed."""

    anomalies: frozenset[str]  # anomaly kinds, and not_quiet
    end_states: frozenset[str]
    reached: Reached
    trace_sha256: str
    broken: str | None = None  # a plug-in broke the event contract: its verdict means nothing


def run_candidate(workload: Workload, candidate: Candidate) -> Observed:
    """Run one schedule of ``workload`` as its mode says."""
    scenario = workload.scenario(candidate)
    if workload.terminals > 1:
        return _fleet(workload, candidate)
    result = run_scenario(scenario)
    return Observed(frozenset(a.kind for a in result.anomalies),
                    frozenset(s.end_state for s in result.steps),
                    reached(result.trace.events), result.trace_sha256,
                    next((f for f in result.failures if f.startswith("firmware_error")), None))


def _fleet(workload: Workload, candidate: Candidate) -> Observed:
    fleet = Fleet(workload.scenario(candidate), workload.terminals)
    by_terminal: dict[str, list[Event]] = {}
    fleet_wide: list[Event] = []

    def keep(event: Event) -> None:
        tid = event.fields.get("tid")
        if tid is None:
            fleet_wide.append(event)
        else:
            by_terminal.setdefault(str(tid), []).append(event)

    fleet.trace.subscribe(None, keep)
    result = fleet.run()
    seen = [reached(events) for events in by_terminal.values()]
    fired = {str(e.fields["fault"]) for e in fleet_wide if e.name == "fault.started"}
    return Observed(
        frozenset(result.anomaly_counts), frozenset(result.end_states),
        Reached(tuple(sorted(fired.union(*(r.fired for r in seen)))),
                tuple(sorted({p for r in seen for p in r.pairs}
                             | {(k, "idle") for k in fired})),
                tuple(sorted({p for r in seen for p in r.points}))),
        result.trace_sha256,
    )

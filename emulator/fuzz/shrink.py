"""Shrinking a failing run to a minimal fault schedule.

The oracle is the one the search used: the run shows the anomaly. Each field
of a fault has a ladder of simpler values (earlier times, first occurrences,
shorter and rounder durations, default parameters). First hypothesis searches
the neighbourhood of the run (any subset of its faults, each field on a rung
of its ladder, the run's own values drawn half the time) and shrinks the
failing example it finds towards fewer faults and lower rungs; then a greedy
delta-debugging pass (drop each fault, walk each field down its whole ladder)
finishes. Both are deterministic, so a shrink gives the same schedule in any
process.
"""

from __future__ import annotations

import json
import time
from typing import Any, NamedTuple

from devices.errors import PosemuError
from emulator.fuzz.runs import run_candidate
from emulator.fuzz.workload import Candidate, Fault, Workload
from emulator.scenario.catalogue import FAULTS

NICE_S = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)
"""Round durations and times a ladder offers before the value found."""

_TRIGGER = frozenset({"fault", "on", "at_s", "nth", "step", "for_s"})


class Shrunk(NamedTuple):
    """A minimal schedule and what finding it cost."""

    candidate: Candidate
    runs: int  # scenario runs the shrink made
    seconds: float


class Oracle:
    """Does a schedule make ``anomaly`` happen? Answers are cached."""

    def __init__(self, workload: Workload, anomaly: str) -> None:
        self.workload = workload
        self.anomaly = anomaly
        self.runs = 0
        self._seen: dict[str, bool] = {}

    def __call__(self, candidate: Candidate) -> bool:
        if not candidate.faults:
            return False
        key = json.dumps(candidate, sort_keys=True)
        if key not in self._seen:
            self.runs += 1
            try:
                self._seen[key] = self.anomaly in run_candidate(self.workload,
                                                                candidate).anomalies
            except PosemuError:
                self._seen[key] = False
        return self._seen[key]


def shrink(workload: Workload, candidate: Candidate, anomaly: str,
           examples: int = 60) -> Shrunk:
    """The smallest schedule found that still shows ``anomaly``."""
    start = time.perf_counter()
    oracle = Oracle(workload, anomaly)
    best = minimise(oracle, candidate, examples) if examples else candidate
    best = greedy(oracle, best)
    return Shrunk(best, oracle.runs, time.perf_counter() - start)


# ------------------------------------------------------------------ ladders


def ladders(fault: Fault, workload: Workload) -> dict[str, list[Any]]:
    """For each field of ``fault`` that could be simpler: simplest first, the
    current value last (None = drop the key: its default). The kind, the trigger
    event, a response code and an amount are what the fault is: kept."""
    defaults = {p.name: p.default for p in FAULTS[fault["fault"]].params}
    out: dict[str, list[Any]] = {}
    for key, value in fault.items():
        if key == "at_s":
            rungs: list[Any] = sorted({v for v in (0.0, *workload.step_at, float(int(value)))
                                       if v < value})
        elif key in ("for_s", "delay_s"):
            rungs = [v for v in NICE_S if v < value]
        elif key in ("nth", "count", "bytes"):
            rungs = list(range(1, value))
        elif key in ("step", "posted", "jitter_s", "field", "direction"):
            rungs = []
        else:
            continue
        if key not in ("for_s", "at_s"):  # optional keys: dropping comes first
            rungs = [None, *(v for v in rungs if v != defaults.get(key, 1))]
        out[key] = [*rungs, value]
    return out


def with_value(fault: Fault, key: str, value: Any) -> Fault:
    """``fault`` with ``key`` set (None: removed)."""
    new = {k: v for k, v in fault.items() if k != key}
    if value is not None:
        new[key] = value
    return _ordered(new)


def _ordered(fault: Fault) -> Fault:
    order = ("fault", "on", "at_s", "nth", "step", "for_s")
    head = {k: fault[k] for k in order if k in fault}
    return {**head, **{k: v for k, v in fault.items() if k not in _TRIGGER}}


# ------------------------------------------------------------------ greedy


def greedy(oracle: Oracle, candidate: Candidate) -> Candidate:
    """Delta debugging: drop faults, then simplify fields, until nothing changes."""
    workload = oracle.workload
    seed, faults = candidate.seed, list(candidate.faults)
    if seed != workload.seed and oracle(Candidate(workload.seed, tuple(faults))):
        seed = workload.seed
    for _ in range(4):
        changed = False
        i = 0
        while i < len(faults) and len(faults) > 1:
            trial = faults[:i] + faults[i + 1:]
            if oracle(Candidate(seed, tuple(trial))):
                faults, changed = trial, True
            else:
                i += 1
        for i in range(len(faults)):
            for key, rungs in ladders(faults[i], workload).items():
                for value in rungs[:-1]:
                    fault = with_value(faults[i], key, value)
                    if oracle(Candidate(seed, (*faults[:i], fault, *faults[i + 1:]))):
                        faults[i], changed = fault, True
                        break
        if not changed:
            break
    return Candidate(seed, tuple(faults))


# ------------------------------------------------------------------ hypothesis


def _biased(rungs: list[Any]) -> list[Any]:
    """At most three simpler rungs, then the current value as often: hypothesis draws
    the value that failed half the time and shrinks towards the first rung."""
    simpler = rungs[:-1]
    if len(simpler) > 3:
        simpler = [simpler[0], simpler[len(simpler) // 2], simpler[-1]]
    return [*simpler, *[rungs[-1]] * max(len(simpler), 1)]


def minimise(oracle: Oracle, candidate: Candidate, examples: int) -> Candidate:
    """Hypothesis over the neighbourhood of ``candidate`` (each fault kept or not,
    each field on a rung of its ladder): the minimal failing example it finds."""
    from hypothesis import HealthCheck, Phase, Verbosity, find, settings  # noqa: PLC0415
    from hypothesis import strategies as st  # noqa: PLC0415
    from hypothesis.errors import NoSuchExample  # noqa: PLC0415

    faults = candidate.faults
    seeds = [candidate.seed]
    if candidate.seed != oracle.workload.seed:
        seeds = [oracle.workload.seed, candidate.seed, candidate.seed]
    parts = []
    for fault in faults:
        rungs = {k: _biased(v) for k, v in ladders(fault, oracle.workload).items()}
        keep = st.sampled_from((False, True, True)) if len(faults) > 1 else st.just(True)
        parts.append(st.tuples(keep, st.fixed_dictionaries(
            {k: st.sampled_from(v) for k, v in rungs.items()})))
    strategy = st.tuples(st.sampled_from(seeds), st.tuples(*parts))

    def build(value: tuple[int, tuple[tuple[bool, dict[str, Any]], ...]]) -> Candidate:
        seed, chosen = value
        out = []
        for fault, (keep, fields) in zip(faults, chosen, strict=True):
            if keep:
                new = fault
                for key, field_value in fields.items():
                    new = with_value(new, key, field_value)
                out.append(new)
        return Candidate(seed, tuple(out))

    config = settings(
        max_examples=examples, database=None, derandomize=True, deadline=None,
        phases=[Phase.generate, Phase.shrink], verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
    )
    try:
        return build(find(strategy, lambda v: oracle(build(v)), settings=config))
    except NoSuchExample:
        return candidate

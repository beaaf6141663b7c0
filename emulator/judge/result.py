"""The result of one run: end states, anomalies, balances, verdict, trace identity.

It also builds what the JSON objects of a run and of a fleet
(:class:`~emulator.engine.fleet.FleetResult`) have in common, so the contract's field
names for them are written once: the scenario header, an anomaly, balances.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from emulator.judge.oracle import Anomaly
from emulator.money import format_minor
from emulator.scenario.events import describe_trigger

if TYPE_CHECKING:
    from emulator.engine.trace import Trace
    from emulator.scenario.model import ExpectSpec, FaultSpec, Scenario


@dataclass(frozen=True)
class StepResult:
    """One operator step as it ended."""

    id: str
    do: str
    amount_minor: int | None
    end_state: str
    receipt: str | None
    stan: str
    rrn: str


@dataclass(frozen=True)
class Result:
    """Everything a front end reports about one scenario run."""

    scenario: Scenario
    steps: tuple[StepResult, ...]
    anomalies: tuple[Anomaly, ...]
    balances_minor: dict[str, int]
    balances_before_minor: dict[str, int]
    trace: Trace
    sim_time_s: float
    failures: tuple[str, ...]
    firmware_error: BaseException | None = None  # a plug-in's breach (its cause: --debug)

    @cached_property
    def trace_sha256(self) -> str:
        """The trace's identity (:meth:`Trace.sha256`), hashed when first asked for: a
        caller that never reads it (a fuzz campaign) does not pay for serialising every
        event. Like ``events``, it reads the trace as it is then (a ``World`` is run once)."""
        return self.trace.sha256()

    @property
    def verdict(self) -> str:
        return "fail" if self.failures else "pass"

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def events(self) -> int:
        return len(self.trace)

    def to_json(self) -> dict[str, Any]:
        """The contract's JSON object for ``posemu run --json``."""
        return self._json([_step_json(s) for s in self.steps])

    def json_text(self) -> Iterator[str]:
        """``json.dumps(self.to_json())`` in pieces, a step at a time: a long run's
        object is written without being held whole."""
        head, _, tail = json.dumps(self._json([])).partition(_NO_STEPS)
        yield head + '"steps": ['
        for i, step in enumerate(self.steps):
            yield (", " if i else "") + json.dumps(_step_json(step))
        yield "]" + tail

    def _json(self, steps: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            **scenario_json(self.scenario),
            "verdict": self.verdict,
            "failures": list(self.failures),
            "anomalies": [anomaly_json(a) for a in self.anomalies],
            "steps": steps,
            "balances": money_json(self.balances_minor),
            "trace_sha256": self.trace_sha256,
            "sim_time_s": round(self.sim_time_s, 6),
            "events": self.events,
        }


_NO_STEPS = '"steps": []'
"""How ``json.dumps`` writes an empty ``steps``: the only place its quotes are bare (a
string's own quotes are escaped)."""


def _step_json(s: StepResult) -> dict[str, Any]:
    return {
        "id": s.id, "do": s.do,
        "amount": None if s.amount_minor is None else format_minor(s.amount_minor),
        "end_state": s.end_state, "receipt": s.receipt, "stan": s.stan, "rrn": s.rrn,
    }


def scenario_json(scenario: Scenario, *, fleet: bool = False) -> dict[str, Any]:
    """The header of a result's JSON object: the scenario's path, name, seed and profile.

    A fleet's object names the scenario first, as ``scenario``."""
    header = {"path": scenario.path, "name": scenario.name, "seed": scenario.seed,
              "profile": scenario.profile}
    if scenario.firmware is not None:  # a plug-in: no profile of posemu's own terminal
        header.update(profile=None, firmware=scenario.firmware.ref)
    if fleet:
        header = {"scenario": header.pop("name"), **header}
    return header


class Stated(Protocol):
    """An anomaly as a result states it: a run's, or one terminal's of a fleet."""

    @property
    def kind(self) -> str: ...
    @property
    def step(self) -> str: ...
    @property
    def detail(self) -> str: ...


def anomaly_json(anomaly: Stated, **where: str) -> dict[str, str]:
    """One anomaly as JSON: ``where`` (a fleet's ``terminal``), kind, step, detail."""
    return {**where, "kind": anomaly.kind, "step": anomaly.step, "detail": anomaly.detail}


def money_json(balances: Mapping[str, int]) -> dict[str, str]:
    """Balances in minor units as the contract gives money: decimal strings."""
    return {k: format_minor(v) for k, v in balances.items()}


NEVER_FIRED = "fault_never_fired"
"""The failure of a run where a listed fault (not ``optional``) never started."""


@dataclass(frozen=True)
class Seen:
    """What a run showed beside end states and money: the screen and the slips of each
    step, the faults that fired (by name, in order) and those that did not."""

    screens: Mapping[str, str] = field(default_factory=dict)
    slips: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    fired: Sequence[str] = ()
    unfired: Sequence[FaultSpec] = ()


def never_fired(unfired: Sequence[FaultSpec]) -> list[str]:
    """The ``fault_never_fired`` failure of each fault of ``unfired`` not optional."""
    return [f"{NEVER_FIRED}: faults[{f.index}] {f.fault} waited for {describe_trigger(f)}, "
            "which never came (mark it `optional = true` if it may not)"
            for f in unfired if not f.optional]


def check(
    expect: ExpectSpec | None, end_states: dict[str, str], anomalies: tuple[Anomaly, ...],
    balances_minor: dict[str, int], seen: Seen | None = None,
) -> tuple[str, ...]:
    """What differs from the expectations (no [expect]: any anomaly is a failure), and
    every fault that never fired."""
    seen = Seen() if seen is None else seen
    found = sorted(a.kind for a in anomalies)
    if expect is None:
        return (*(f"unexpected anomaly {a.kind} at {a.step}: {a.detail}" for a in anomalies),
                *never_fired(seen.unfired))
    failures: list[str] = never_fired(seen.unfired)
    if expect.anomalies is not None and Counter(expect.anomalies) != Counter(found):
        failures.append(
            f"anomalies: expected {sorted(expect.anomalies)}, found {found}"
        )
    for step, state in (expect.end_states or {}).items():
        if end_states.get(step) != state:
            failures.append(f"end_states.{step}: expected {state}, found {end_states.get(step)}")
    for card, minor in (expect.balances or {}).items():
        got = balances_minor.get(card)
        if got != minor:
            shown = "missing" if got is None else format_minor(got)
            failures.append(f"balances.{card}: expected {format_minor(minor)}, found {shown}")
    for step, screen in (expect.screens or {}).items():
        if seen.screens.get(step) != screen:
            failures.append(f"screens.{step}: expected {screen}, found {seen.screens.get(step)}")
    for step, slips in (expect.receipts or {}).items():
        printed = tuple(seen.slips.get(step, ()))
        if printed != slips:
            failures.append(f"receipts.{step}: expected {list(slips)}, found {list(printed)}")
    if expect.faults_fired is not None:
        fired = sorted(seen.fired)
        if Counter(expect.faults_fired) != Counter(fired):
            failures.append(f"faults_fired: expected {sorted(expect.faults_fired)}, "
                            f"found {fired}")
    return tuple(failures)

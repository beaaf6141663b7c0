"""The result of one run: end states, anomalies, balances, verdict, trace identity."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from emulator.judge.oracle import Anomaly
from emulator.money import format_minor

if TYPE_CHECKING:
    from emulator.engine.trace import Trace
    from emulator.scenario.model import ExpectSpec, Scenario


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
        return {
            "path": self.scenario.path,
            "name": self.scenario.name,
            "seed": self.scenario.seed,
            "profile": self.scenario.profile,
            "verdict": self.verdict,
            "failures": list(self.failures),
            "anomalies": [
                {"kind": a.kind, "step": a.step, "detail": a.detail} for a in self.anomalies
            ],
            "steps": [
                {
                    "id": s.id, "do": s.do,
                    "amount": None if s.amount_minor is None else format_minor(s.amount_minor),
                    "end_state": s.end_state, "receipt": s.receipt, "stan": s.stan,
                    "rrn": s.rrn,
                }
                for s in self.steps
            ],
            "balances": {k: format_minor(v) for k, v in self.balances_minor.items()},
            "trace_sha256": self.trace_sha256,
            "sim_time_s": round(self.sim_time_s, 6),
            "events": self.events,
        }


def check(
    expect: ExpectSpec | None, end_states: dict[str, str], anomalies: tuple[Anomaly, ...],
    balances_minor: dict[str, int],
) -> tuple[str, ...]:
    """What differs from the expectations (no [expect]: any anomaly is a failure)."""
    found = sorted(a.kind for a in anomalies)
    if expect is None:
        return tuple(f"unexpected anomaly {a.kind} at {a.step}: {a.detail}" for a in anomalies)
    failures: list[str] = []
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
    return tuple(failures)

"""The fuzz campaign: the search over runs, then the shrinking.

Tier 1 draws run ``i`` of a campaign from ``(seed, i)`` alone
(:func:`emulator.fuzz.workload.draw`) and runs it, here or in worker processes;
results are merged in run-index order, so they do not depend on the number of
jobs. Tier 2 shrinks the first run of each anomaly kind, and of each further
distinct cause (:mod:`emulator.fuzz.shrink`).
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import count, islice
from typing import Any, NamedTuple, TypeVar

from devices.errors import PosemuError
from emulator.engine.fleet import FleetResult, run_fleet
from emulator.engine.world import run_scenario
from emulator.fuzz.command import DEFAULT_BUDGET_S
from emulator.fuzz.determinism import TraceMismatch, check, sample
from emulator.fuzz.liveness import NOT_QUIET
from emulator.fuzz.runs import run_candidate
from emulator.fuzz.shrink import Shrunk, shrink
from emulator.fuzz.sometimes import IDLE, POINTS
from emulator.fuzz.workload import KINDS, SWIZZLE, Workload, draw
from emulator.money import format_minor
from emulator.scenario.catalogue import (
    CLEAN_END_STATES,
    END_STATES,
    EXPECTABLE,
    STEP_KINDS,
)

EXIT_CLEAN, EXIT_FOUND, EXIT_INTERRUPTED = 0, 1, 130
STEP_OF_STATE = {
    "approved": "sale", "declined": "sale", "cancelled": "sale", "voided": "void",
    "refunded": "refund", "refund_failed": "refund", "reprinted": "reprint",
    "reprint_failed": "reprint", "settled": "settle", "settle_failed": "settle",
}
"""The step kind each clean end state needs: one the workload lacks is not warned about
(its step kind is). ``skipped`` needs a chained step, not a kind: it is not warned about."""
CHUNK = 8  # runs per task handed to a worker
T = TypeVar("T")


@dataclass(frozen=True)
class Config:
    """How a campaign runs (``runs`` and ``budget_s`` None: a 60 s budget)."""

    seed: int = 0
    runs: int | None = None
    budget_s: float | None = None
    jobs: int = 1
    shard: tuple[int, int] = (1, 1)
    causes: int = 2  # minimal causes shrunk per anomaly kind, at most
    until: str | None = None  # stop searching at the first run showing this anomaly
    check_determinism: int = 0  # runs sampled to run again in two fresh processes
    examples: int = 60  # hypothesis examples per shrink


class RunOutcome(NamedTuple):
    """What one run of the search showed."""

    run: int  # its index in the campaign
    anomalies: tuple[str, ...]  # kinds, sorted
    fired: tuple[str, ...]  # fault kinds that started
    end_states: tuple[str, ...]
    error: str | None = None
    pairs: tuple[tuple[str, str], ...] = ()  # (fault kind, step kind it started in)
    points: tuple[str, ...] = ()  # sometimes points reached (emulator.fuzz.sometimes)


@dataclass
class Finding:
    """An anomaly kind, the run it was shrunk from, the minimal schedule and its run."""

    anomaly: str
    run: int
    before: int  # faults of the run found
    shrunk: Shrunk
    anomalies: list[str]
    end_states: dict[str, str]
    balances: dict[str, str]
    path: str | None = None
    verified: bool | None = None
    not_quiet: str = ""  # a liveness run's: what kept the terminal busy (the anomaly's detail)


@dataclass
class Report:
    """A campaign: its runs (in index order), findings and coverage."""

    workload: Workload
    config: Config
    outcomes: list[RunOutcome]
    search_s: float
    findings: list[Finding] = field(default_factory=list)
    command: str = ""
    checked: int = 0  # runs run again by --check-determinism
    differences: list[TraceMismatch] = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C ended it: the runs and findings so far

    @property
    def runs(self) -> int:
        return len(self.outcomes)

    def anomaly_runs(self) -> dict[str, list[int]]:
        """Anomaly kind (catalogue order) -> the runs that showed it."""
        found: dict[str, list[int]] = {}
        for outcome in self.outcomes:
            for kind in outcome.anomalies:
                found.setdefault(kind, []).append(outcome.run)
        return {k: found[k] for k in EXPECTABLE if k in found}

    def fired(self) -> dict[str, int]:
        counts = Counter(k for o in self.outcomes for k in o.fired)
        fleet = (SWIZZLE,) if self.workload.terminals > 1 else ()
        return {k: counts[k] for k in (*KINDS, *fleet)}

    def end_states(self) -> dict[str, int]:
        counts = Counter(s for o in self.outcomes for s in o.end_states)
        return {s: counts[s] for s in END_STATES}

    def step_kinds(self) -> tuple[str, ...]:
        """The workload's step kinds, in catalogue order."""
        kinds = {s["do"] for s in self.workload.tables.get("steps", ())}
        return tuple(k for k in STEP_KINDS if k in kinds)

    def pairs(self) -> dict[str, dict[str, int]]:
        """Fault kind -> step kind (and ``idle``) -> runs in which the fault started
        while such a step ran."""
        counts = Counter(p for o in self.outcomes for p in o.pairs)
        return {k: {s: counts[k, s] for s in (*self.step_kinds(), IDLE)} for k in KINDS}

    def points(self) -> dict[str, int]:
        """Sometimes point -> runs that reached it."""
        counts = Counter(p for o in self.outcomes for p in o.points)
        return {p: counts[p] for p in POINTS}

    def errors(self) -> list[tuple[int, str]]:
        errors = [(o.run, o.error) for o in self.outcomes if o.error is not None]
        how = self.command or f"posemu fuzz --seed {self.config.seed} --runs {self.runs}"
        errors += [(d.run, f"not deterministic: its trace hashed {d.first[:16]} in one process "
                    f"and {d.second[:16]} in another (run {d.run} of: {how})")
                   for d in self.differences]
        return sorted(errors)

    def warnings(self) -> list[str]:
        return coverage_warnings(self.runs, self.fired(), self.end_states(), self.step_kinds(),
                                 self.pairs(), self.points())

    @property
    def status(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FOUND if self.anomaly_runs() or self.errors() else EXIT_CLEAN


def coverage_warnings(runs: int, fired: dict[str, int], states: dict[str, int],
                      step_kinds: tuple[str, ...], pairs: dict[str, dict[str, int]],
                      points: dict[str, int]) -> list[str]:
    """What a campaign of ``runs`` runs did not cover, from its coverage counts (the same
    for one campaign and for its shards merged)."""
    within = f"in {runs} runs"
    out = [f"fault kind {k} never fired {within}" for k, n in fired.items() if not n]
    out += [f"end state {s} never reached {within}" for s in CLEAN_END_STATES
            if not states.get(s) and STEP_OF_STATE.get(s) in step_kinds]
    out += [f"step kind {s} not in the workload" for s in STEP_KINDS if s not in step_kinds]
    out += [f"fault kind {k} never started during a {s} {within}"
            for k, row in pairs.items() for s, n in row.items() if not n and s != IDLE]
    out += [f"sometimes point {p} never reached {within}" for p, n in points.items() if not n]
    return out


# ------------------------------------------------------------------ the search


def evaluate(workload: Workload, seed: int, index: int) -> RunOutcome:
    """Draw run ``index`` of campaign ``seed`` and run it."""
    candidate = draw(workload, seed, index)
    try:
        seen = run_candidate(workload, candidate)
    except PosemuError as exc:  # a conservation error is a bug of posemu: report it
        return RunOutcome(index, (), (), (), f"{type(exc).__name__}: {exc}")
    if seen.broken is not None:  # a plug-in broke the event contract: its verdict means nothing
        return RunOutcome(index, (), seen.reached.fired, (), seen.broken)
    return RunOutcome(index, tuple(sorted(seen.anomalies)), seen.reached.fired,
                      tuple(sorted(seen.end_states)), pairs=seen.reached.pairs,
                      points=seen.reached.points)


def shard_indices(runs: int | None, shard: tuple[int, int]) -> Iterable[int]:
    """The run indices of shard ``i/n``: i-1, i-1+n, ... (below ``runs``)."""
    first, step = shard[0] - 1, shard[1]
    return count(first, step) if runs is None else range(first, runs, step)


_WORKLOAD: Workload | None = None


def _init(workload: Workload) -> None:
    global _WORKLOAD  # noqa: PLW0603 - the worker's one workload
    _WORKLOAD = workload


def _worker_init(workload: Workload) -> None:
    """A worker: Ctrl-C is the parent's to handle (it stops handing out work)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init(workload)


def _run_chunk(seed: int, indices: list[int]) -> list[RunOutcome]:
    assert _WORKLOAD is not None
    return [evaluate(_WORKLOAD, seed, i) for i in indices]


def _shrink_run(seed: int, index: int, anomaly: str, examples: int) -> Shrunk:
    assert _WORKLOAD is not None
    return shrink(_WORKLOAD, draw(_WORKLOAD, seed, index), anomaly, examples)


def _ready() -> None:
    """A no-op task: makes the pool start its workers."""


class Runner:
    """Runs tasks here (one job) or in worker processes; results in task order.

    Workers are forked (spawned where fork is missing) and all started at once,
    before any progress-bar thread exists.
    """

    def __init__(self, workload: Workload, jobs: int) -> None:
        self.jobs = jobs
        self.pool: ProcessPoolExecutor | None = None
        if jobs > 1:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self.pool = ProcessPoolExecutor(
                jobs, mp_context=multiprocessing.get_context(method),
                initializer=_worker_init, initargs=(workload,),
            )
            for future in [self.pool.submit(_ready) for _ in range(jobs)]:
                future.result()
        else:
            _init(workload)

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def ordered(self, fn: Callable[..., T], tasks: Iterator[tuple[Any, ...]],
                more: Callable[[], bool] = lambda: True) -> Iterator[T]:
        """``fn(*task)`` for each task while ``more()``, in order."""
        if self.pool is None:
            for task in tasks:
                if not more():
                    return
                yield fn(*task)
            return
        pool = self.pool
        pending: deque[Future[T]] = deque()

        def submit() -> bool:
            task = next(tasks, None) if more() else None
            if task is not None:
                pending.append(pool.submit(fn, *task))
            return task is not None

        try:
            while len(pending) < 2 * self.jobs and submit():
                pass
            while pending:
                result = pending.popleft().result()
                submit()
                yield result
        finally:  # the caller stopped early: drop what is queued
            for future in pending:
                future.cancel()


Progress = Callable[[int, int, str], None]
"""Told (runs done, anomaly kinds found so far, phase: "search" or "shrink")."""


def search(runner: Runner, workload: Workload, config: Config,
           progress: Progress | None = None,
           outcomes: list[RunOutcome] | None = None) -> tuple[list[RunOutcome], float]:
    """Tier 1: the shard's runs in index order until ``runs``, the budget or the
    first run showing ``until``; each is appended to ``outcomes`` as it comes (so an
    interrupted search keeps what it did)."""
    start = time.monotonic()
    budget = config.budget_s
    if budget is None and config.runs is None:
        budget = DEFAULT_BUDGET_S
    indices = iter(shard_indices(config.runs, config.shard))
    chunks = iter(lambda: list(islice(indices, CHUNK)), [])
    tasks = ((config.seed, chunk) for chunk in chunks)

    def more() -> bool:
        return budget is None or time.monotonic() - start < budget

    outcomes = [] if outcomes is None else outcomes
    kinds: set[str] = set()
    for chunk in runner.ordered(_run_chunk, tasks, more):
        hit = next((i for i, o in enumerate(chunk) if config.until in o.anomalies), None)
        kept = chunk if hit is None else chunk[: hit + 1]
        outcomes.extend(kept)
        kinds.update(k for o in kept for k in o.anomalies)
        if progress is not None:
            progress(len(outcomes), len(kinds), "search")
        if hit is not None:
            break
    return outcomes, time.monotonic() - start


# ------------------------------------------------------------------ shrinking


Confirmed = Callable[[Report, Finding], None]
"""Told each finding as soon as it is shrunk (to write its file at once)."""


def shrink_findings(runner: Runner, workload: Workload, config: Config,
                    report: Report, confirmed: Confirmed | None = None) -> list[Finding]:
    """Tier 2: per anomaly kind, shrink its first run; then, up to ``causes``, the
    first run whose faults do not include the kinds of a cause already found.
    ``report.findings`` holds the findings so far (in kind order) at every moment."""
    failing = report.anomaly_runs()
    kinds_of: dict[int, set[str]] = {}
    found: dict[str, list[Finding]] = {k: [] for k in failing}
    tried: set[tuple[str, int]] = set()
    for _ in range(config.causes):
        tasks: list[tuple[str, int]] = []
        for anomaly, runs in failing.items():
            causes = [{f["fault"] for f in x.shrunk.candidate.faults} for x in found[anomaly]]
            for index in runs:
                if index not in kinds_of:
                    kinds_of[index] = {f["fault"] for f in draw(workload, config.seed,
                                                                index).faults}
                if (anomaly, index) not in tried and not any(c <= kinds_of[index]
                                                             for c in causes):
                    tasks.append((anomaly, index))
                    break
        if not tasks:
            break
        args = ((config.seed, index, anomaly, config.examples) for anomaly, index in tasks)
        for (anomaly, index), shrunk in zip(tasks, runner.ordered(_shrink_run, args),
                                            strict=True):
            tried.add((anomaly, index))
            before = len(draw(workload, config.seed, index).faults)
            finding = _finding(workload, anomaly, index, before, shrunk)
            if confirmed is not None:  # its file written before it counts as found
                confirmed(report, finding)
            found[anomaly].append(finding)
            report.findings = [f for kind in failing for f in found[kind]]
    return [f for kind in failing for f in found[kind]]


def _finding(workload: Workload, anomaly: str, index: int, before: int,
             shrunk: Shrunk) -> Finding:
    scenario = workload.scenario(shrunk.candidate)
    result = run_scenario(scenario)
    busy = next((a.detail for a in result.anomalies if a.kind == NOT_QUIET), "")
    if anomaly == NOT_QUIET and workload.terminals > 1:
        busy = busy_terminals(run_fleet(scenario, workload.terminals))
    return Finding(
        anomaly=anomaly, run=index, before=before, shrunk=shrunk,
        anomalies=sorted(a.kind for a in result.anomalies),
        end_states={s.id: s.end_state for s in result.steps},
        balances={k: format_minor(v) for k, v in result.balances_minor.items()},
        not_quiet=busy,
    )


def busy_terminals(fleet: FleetResult) -> str:
    """The terminals of ``fleet`` not quiet at the end and what kept each busy (those its
    result keeps; how many more)."""
    named = [f"{a.terminal} ({a.detail})" for a in fleet.anomalies if a.kind == NOT_QUIET]
    more = fleet.anomaly_counts[NOT_QUIET] - len(named)
    return ", ".join(named) + (f" and {more} more" if more else "")


def fuzz(workload: Workload, config: Config, progress: Progress | None = None,
         runner: Runner | None = None, confirmed: Confirmed | None = None) -> Report:
    """A whole campaign: search, then shrink each finding (``confirmed`` is told each).

    Ctrl-C ends it early with the report so far (``interrupted``): the runs searched,
    the findings shrunk.
    """
    if runner is None:
        with Runner(workload, config.jobs) as own:
            return fuzz(workload, config, progress, own, confirmed)
    start = time.monotonic()
    report = Report(workload, config, [], 0.0)
    try:
        _, report.search_s = search(runner, workload, config, progress, report.outcomes)
    except KeyboardInterrupt:
        report.search_s, report.interrupted = time.monotonic() - start, True
        return report
    if progress is not None:
        progress(report.runs, len(report.anomaly_runs()), "shrink")
    try:
        if config.check_determinism:
            picked = sample([o.run for o in report.outcomes], config.check_determinism)
            report.checked = len(picked)
            report.differences = check(workload, config.seed, picked)
        report.findings = shrink_findings(runner, workload, config, report, confirmed)
    except KeyboardInterrupt:
        report.interrupted = True
    return report

"""A fleet: one acquirer serving N terminals, each running the scenario's steps.

scenario, N -> one Environment, one seeded RNG, one trace (streamed) -> one
:class:`Acquirer` core (one ledger: the bank) -> per terminal ``T0000001``,
``T0000002``, ...: its own link, host shell, card reader, printer, terminal and
injector (the scenario's faults, on its own devices), wired as a single run's are
(:func:`~emulator.engine.wiring.wire_unit`) -> the steps, at their
``at_s``, on every terminal -> run -> each step judged by its terminal's oracle at the
settlement after which nothing can change it (or at the end), counted.

Every event a terminal's components emit carries ``tid`` (the terminal id,
ISO 8583 field 41), so step ids and STANs may repeat across terminals. Memory
does not grow with the trace: it is written (or only hashed) as it happens,
and each terminal's :class:`Observer` keeps a small record per step not yet
judged, no events and no receipt text. The bank's ledger is checked against the
trace's bank events as far as they are counted: postings made, the merchant's balance
(:mod:`emulator.judge.reconcile`).
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from operator import attrgetter, itemgetter
from typing import IO, TYPE_CHECKING, Any

import simpy

from devices.errors import ScenarioError
from devices.net.link import TO_BANK
from devices.simkit.agenda import Agenda
from emulator.engine.collector import collection_paused
from emulator.engine.liveness import Watch, at_horizon
from emulator.engine.swizzle import Swizzle
from emulator.engine.trace import Discard, Event, Listener, Listeners, Trace
from emulator.engine.wiring import SIMULATED, BankBooks, Shared, trace_header, wire_unit
from emulator.judge.oracle import BANK_EVENTS, Anomaly, Observer, StepView, Verdict, step_views
from emulator.judge.reconcile import BankMoves
from emulator.judge.result import anomaly_json, money_json, scenario_json

if TYPE_CHECKING:
    from devices.bank.host import Host
    from devices.net.link import Link
    from devices.ports import Firmware
    from devices.printer.sim import SimPrinter
    from emulator.scenario.model import Scenario, StepSpec

MAX_TERMINALS = 9_999_999
"""Terminal ids are ``T`` and seven digits: ISO 8583 field 41 holds eight characters."""
KEPT_FINDINGS = 20
"""How many anomalies a :class:`FleetResult` keeps in full (all are counted)."""


def terminal_id(k: int) -> str:
    """The id of the fleet's ``k``-th terminal (1-based): ``T0000001``."""
    if not 1 <= k <= MAX_TERMINALS:
        raise ValueError(f"terminal number {k} out of 1..{MAX_TERMINALS}")
    return f"T{k:07d}"


class TerminalTrace:
    """One terminal's view of the fleet's trace.

    ``emit`` adds ``tid=<terminal id>`` to the event; ``subscribe`` hears only
    this terminal's events (so an injector's ``nth`` counts its own terminal's
    events). It has the part of :class:`Trace` that devices, the terminal and
    the injector use.
    """

    def __init__(self, router: _Router, terminal_id: str) -> None:
        self._router = router
        self._trace = router.trace
        self.terminal_id = terminal_id
        self.listeners = Listeners()

    @property
    def header(self) -> dict[str, Any]:
        return self._trace.header

    def emit(self, name: str, **fields: Any) -> None:
        self._trace.emit(name, tid=self.terminal_id, **fields)

    def subscribe(self, name: str | None, listener: Listener) -> None:
        """Call ``listener`` on this terminal's events ``name`` (all of them when None)."""
        self._router.route(name)
        self.listeners.add(name, listener)

    def unsubscribe(self, name: str | None, listener: Listener) -> None:
        self.listeners.remove(name, listener)


class _Router:
    """Passes each event of the shared trace to its terminal's view, by ``tid``.

    It subscribes to the shared trace once per event name some view listens
    to, so an event costs one dict lookup however many terminals there are,
    and an event no terminal listens to costs nothing.
    """

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.views: dict[str, TerminalTrace] = {}
        self._routed: set[str | None] = set()

    def view(self, terminal_id: str) -> TerminalTrace:
        view = self.views[terminal_id] = TerminalTrace(self, terminal_id)
        return view

    def route(self, name: str | None) -> None:
        if name not in self._routed:
            self._routed.add(name)
            self.trace.subscribe(name, self._every if name is None else self._named)

    def _named(self, event: Event) -> None:
        view = self.views.get(event.fields.get("tid", ""))
        if view is not None:
            for listener in tuple(view.listeners.named.get(event.name, ())):
                listener(event)

    def _every(self, event: Event) -> None:
        view = self.views.get(event.fields.get("tid", ""))
        if view is not None:
            for listener in tuple(view.listeners.every):
                listener(event)


@dataclass(frozen=True)
class TerminalAnomaly:
    """An anomaly of one terminal of the fleet."""

    terminal: str
    kind: str
    step: str
    detail: str


@dataclass(frozen=True)
class FleetResult:
    """What a fleet run did, counted: its size does not grow with the number of
    terminals or transactions (the balances have one entry per card)."""

    scenario: Scenario
    terminals: int
    transactions: int  # steps run: terminals x steps
    end_states: Counter[str]  # end state -> how many steps ended so, over the fleet
    anomaly_counts: Counter[str]  # anomaly kind -> how many, over the fleet
    anomalies: tuple[TerminalAnomaly, ...]  # the first KEPT_FINDINGS, by terminal then step
    events: int
    trace_sha256: str
    sim_time_s: float
    postings: int  # the bank's postings, reversed ones included
    balances_minor: dict[str, int]
    balances_before_minor: dict[str, int]

    @property
    def anomaly_total(self) -> int:
        return sum(self.anomaly_counts.values())

    def to_json(self) -> dict[str, Any]:
        """The counts as plain data (``posemu fleet --json``); money as decimal strings."""
        return {
            **scenario_json(self.scenario, fleet=True),
            "terminals": self.terminals, "transactions": self.transactions,
            "end_states": dict(sorted(self.end_states.items())),
            "anomalies": dict(sorted(self.anomaly_counts.items())),
            "first_anomalies": [anomaly_json(a, terminal=a.terminal) for a in self.anomalies],
            "events": self.events, "postings": self.postings,
            "sim_time_s": self.sim_time_s, "trace_sha256": self.trace_sha256,
            "balances_before": money_json(self.balances_before_minor),
            "balances": money_json(self.balances_minor),
        }

    def summary(self) -> str:
        """A few plain lines for a person (``posemu fleet``)."""
        states = ", ".join(f"{n:,} {state}" for state, n in sorted(self.end_states.items()))
        lines = [
            f"{self.scenario.path or self.scenario.name}: {self.terminals:,} terminals, "
            f"{self.transactions:,} steps ({self.scenario.runs_as}, seed {self.scenario.seed})",
            f"end states: {states}",
            f"anomalies: {self.anomaly_total:,}" + (
                " (" + ", ".join(f"{n:,} {k}" for k, n in sorted(self.anomaly_counts.items()))
                + ")" if self.anomaly_total else ""),
        ]
        lines += [f"  {a.terminal} {a.step}: {a.kind}: {a.detail}" for a in self.anomalies]
        if self.anomaly_total > len(self.anomalies):
            lines.append(f"  ... {self.anomaly_total - len(self.anomalies):,} more")
        lines.append(f"{self.events:,} events, {self.postings:,} postings, "
                     f"{self.sim_time_s:.2f} simulated s, trace sha256 {self.trace_sha256}")
        return "\n".join(lines)


@dataclass
class _Unit:
    """One terminal of the fleet and what judges it."""

    number: int  # 0-based, the order its findings are kept in
    terminal_id: str
    view: TerminalTrace
    terminal: Firmware[StepSpec]
    link: Link
    host: Host
    printer: SimPrinter
    observer: Observer | None
    judged: int = 0  # steps before this place in submission order are judged or held
    held: list[StepView] = field(default_factory=list)  # not final at the last settlement
    watch: Watch | None = None  # [liveness]
    not_quiet: tuple[Anomaly, ...] = ()  # what the watch found at the end

    def in_flight(self) -> bool:
        """A request is on its way to the bank or being weighed there: it may still
        post or reverse money of a step the settlement would judge."""
        return bool(self.link.in_flight[TO_BANK] or self.host.weighing)


_Rank = tuple[int, int, int]  # terminal, step in file order, finding of the step


class _Tally:
    """The fleet's counts, and its first ``KEPT_FINDINGS`` findings in the order of a
    judgement at the end (by terminal, then step, in file order), whenever they come."""

    def __init__(self) -> None:
        self.end_states: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self._kept: list[tuple[_Rank, TerminalAnomaly]] = []

    def add(self, unit: _Unit, place: int, state: str | None,
            findings: Sequence[Anomaly]) -> None:
        """Count one judged step at ``place`` (``state`` None: findings of no step)."""
        if state is not None:
            self.end_states[state] += 1
        for j, found in enumerate(findings):
            self.find(unit, (unit.number, place, j), found)

    def find(self, unit: _Unit, rank: _Rank, found: Anomaly) -> None:
        """Count one finding; keep it if it ranks among the first ``KEPT_FINDINGS``."""
        self.counts[found.kind] += 1
        kept = self._kept
        if len(kept) < KEPT_FINDINGS or rank < kept[-1][0]:
            tagged = TerminalAnomaly(unit.terminal_id, found.kind, found.step, found.detail)
            bisect.insort(kept, (rank, tagged), key=itemgetter(0))
            del kept[KEPT_FINDINGS:]

    @property
    def kept(self) -> tuple[TerminalAnomaly, ...]:
        return tuple(found for _, found in self._kept)


TerminalVerdict = Callable[[str, Verdict], object]
"""Told each terminal's verdict (terminal id, verdict) as the fleet is judged."""

Progress = Callable[[str, int, int], object]
"""Told ``(phase, done, total)`` now and then: terminals wired (``"wiring"``), then
steps shown done (``"running"``). It only observes: the run is the same without it."""
PROGRESS_EVERY = 1000
"""How many terminals or steps between two calls of a :data:`Progress`."""


class Fleet:
    """Every component of a fleet run, wired together and ready to run."""

    def __init__(
        self, scenario: Scenario, terminals: int, *, trace_sink: IO[bytes] | None = None,
        keep_receipts: bool = False, progress: Progress | None = None,
    ) -> None:
        if not 1 <= terminals <= MAX_TERMINALS:
            raise ValueError(f"terminals must be 1..{MAX_TERMINALS}, not {terminals}")
        for i, step in enumerate(scenario.steps):  # judged one by one, at fixed times
            for key in ("after", "retry_of"):
                if getattr(step, key) is not None:
                    raise ScenarioError("a fleet runs steps at fixed times: chained steps and "
                                        "retries are for `posemu run`", path=scenario.path,
                                        key=f"steps[{i}].{key}")
        self.scenario = scenario
        self.size = terminals
        self.env = simpy.Environment()
        self.trace = Trace(self.env, header=trace_header(scenario, terminals=terminals),
                           sink=Discard() if trace_sink is None else trace_sink)
        self.router = _Router(self.trace)
        self.shared = Shared.of(scenario, self.env, traces=self.router.views)
        self.rng, self.acquirer = self.shared.rng, self.shared.acquirer
        self.views = step_views(scenario)
        self._place = {view.id: i for i, view in enumerate(self.views)}
        at = attrgetter("at_s")
        submitted = sorted(scenario.steps, key=at)  # the order every terminal gets them
        self._order = [self.views[self._place[step.id]] for step in submitted]
        self._position = {step.id: i for i, step in enumerate(submitted)}
        self.early = True
        """Judge each step at the settlement after which nothing can change it, and keep
        only counts (:meth:`run` turns it off when it is asked for every verdict)."""
        self._tally = _Tally()
        self.units = [self._wire(k, keep_receipts, progress) for k in range(terminals)]
        swizzle = Swizzle(self.env, self.rng, self.trace, [u.link for u in self.units],
                          scenario.faults)
        if scenario.liveness is not None:  # each unit's watch stops its own faults
            at_horizon(self.env, scenario.liveness, swizzle.stop)
        if progress is not None:
            self._count_steps(progress)
        self.moves = BankMoves(keyed=False)
        """What the trace says the bank did, counted: the ledger is checked against it."""
        for name in BANK_EVENTS:
            self.trace.subscribe(name, self.moves.observe)
        self.agenda = Agenda(self.env, (
            (at_s, tuple(group)) for at_s, group in itertools.groupby(submitted, key=at)
        ), self._start)

    def _count_steps(self, progress: Progress) -> None:
        """Tell ``progress`` how many steps have been shown done, every so often."""
        total, done = self.size * len(self.views), 0

        def heard(_event: Event) -> None:
            nonlocal done
            done += 1
            if done % PROGRESS_EVERY == 0 or done == total:
                progress("running", done, total)

        progress("running", 0, total)
        self.trace.subscribe("terminal.txn_done", heard)

    def _wire(self, number: int, keep_receipts: bool, progress: Progress | None = None) -> _Unit:
        if progress is not None and (number % PROGRESS_EVERY == 0 or number + 1 == self.size):
            progress("wiring", number + 1, self.size)
        tid = terminal_id(number + 1)
        view = self.router.view(tid)
        observer = Observer(keep_receipts=keep_receipts)
        for name in Observer.EVENTS:  # before the injector: it sees events in trace order
            view.subscribe(name, observer.observe)
        view.subscribe("terminal.txn_done", self._settlements(number))  # so is this
        unit = wire_unit(self.shared, view, SIMULATED, tid)
        live = self.scenario.liveness
        return _Unit(number, tid, view, unit.terminal, unit.link, unit.host, unit.printer,
                     observer, watch=None if live is None else Watch(
                         self.env, live, view, unit.injector.stop))

    def _start(self, steps: tuple[StepSpec, ...]) -> None:
        """Every terminal's operator starting ``steps`` (all due now), terminal by terminal."""
        for unit in self.units:
            for step in steps:
                unit.terminal.submit(step)

    def _settlements(self, number: int) -> Listener:
        """Told unit ``number``'s ``terminal.txn_done``: after a settlement, judge what is
        final."""
        def heard(event: Event) -> None:
            if self.early and event.fields["result"] == "settled":
                self._judge_settled(self.units[number], self._position[event.fields["step"]] + 1)
        return heard

    def _judge_settled(self, unit: _Unit, upto: int) -> None:
        """Judge and count the steps submitted up to ``upto`` (the settlement included),
        and those held before, that nothing can change any more; hold the others.

        Every one of them has run: the terminal takes steps in turn. A step is held
        while the terminal may still act on it (:meth:`Terminal.open_steps`: a record
        the settlement kept because a message is owed or it is not closed, a held
        receipt, the last receipt, which a reprint can still copy), a void while its
        target is held (its verdict reads the target's money), and every step while
        the printer has a job (one outliving a power cut, or queued behind it, may
        still cut a receipt) or a frame that may move its money is on its way to the
        bank or being weighed there (a request given up on may still post or
        reverse). What is judged then can no longer change, but for a key mangled into
        a judged step's key."""
        observer = unit.observer
        assert observer is not None
        steps = [*unit.held, *self._order[unit.judged:upto]]
        unit.judged = upto
        if unit.printer.open_jobs or self._in_flight(unit):
            unit.held = steps
            return
        busy = unit.terminal.open_steps()
        unit.held = [s for s in steps if _busy(s, busy)]
        final = [s for s in steps if not _busy(s, busy)]
        for step, (state, found) in zip(final, observer.judge_final(final), strict=True):
            self._tally.add(unit, self._place[step.id], state, found)

    def _in_flight(self, unit: _Unit) -> bool:
        """A frame that may still move ``unit``'s money is on its way to the bank or being
        weighed there: one of its own, or, when the bank checks no MAC, any terminal's
        (field 41 mangled on the way names the terminal whose money the bank moves)."""
        if unit.in_flight():
            return True
        return not self.scenario.bank.verify_mac and any(u.in_flight() for u in self.units)

    def run(self, on_terminal: TerminalVerdict | None = None) -> FleetResult:
        """Run to the horizon (or until nothing is left to happen); judge every terminal.

        With ``on_terminal`` every step is judged at the end, as a single run is, and
        each terminal's :class:`Verdict` is passed on; without it steps are judged as
        they become final (:attr:`early`) and only counts are kept."""
        with collection_paused():
            scenario = self.scenario
            self.early = on_terminal is None
            books = BankBooks(scenario, self.acquirer)
            self.env.run(until=scenario.until_s)
            for unit in self.units:
                owed = list(unit.terminal.unresolved())
                for step, what in owed:
                    unit.view.emit("terminal.unresolved", step=step, what=what)
                if unit.watch is not None:  # [liveness]: each terminal quiet on its own
                    unit.not_quiet = unit.watch.judge(unit.terminal, unit.printer, owed)
            balances = books.close(self.moves, None, f"{scenario.name} (fleet of {self.size})")
            for unit in self.units:
                self._judge_rest(unit, on_terminal)
            tally = self._tally
            return FleetResult(
                scenario=scenario, terminals=self.size, transactions=self.size * len(self.views),
                end_states=tally.end_states, anomaly_counts=tally.counts, anomalies=tally.kept,
                events=len(self.trace), trace_sha256=self.trace.sha256(),
                sim_time_s=float(self.env.now), postings=self.acquirer.ledger.count,
                balances_minor=balances, balances_before_minor=books.before,
            )

    def _judge_rest(self, unit: _Unit, on_terminal: TerminalVerdict | None) -> None:
        """At the end of the run: judge what is left of ``unit``, then drop its record."""
        observer = unit.observer
        assert observer is not None, "a fleet is judged once"
        unit.observer = None
        tally = self._tally
        if on_terminal is None:
            steps = [*unit.held, *self._order[unit.judged:]]
            unit.held, unit.judged = [], len(self._order)
            for step, (state, found) in zip(steps, observer.judge_final(steps), strict=True):
                tally.add(unit, self._place[step.id], state, found)
            tally.add(unit, len(self.views), None, [*observer.unattributed(), *unit.not_quiet])
            return
        verdict = observer.verdict(self.views)  # standing money from the bank's events
        tally.end_states.update(verdict.end_states.values())
        for j, finding in enumerate(verdict.anomalies):
            tally.find(unit, (unit.number, self._place[finding.step], j), finding)
        extra = [*observer.unattributed(), *unit.not_quiet]
        tally.add(unit, len(self.views), None, extra)
        if extra:
            verdict = replace(verdict, anomalies=(*verdict.anomalies, *extra))
        on_terminal(unit.terminal_id, verdict)


def _busy(step: StepView, busy: set[str]) -> bool:
    """Whether ``step`` may still change: the terminal may act on it, or it voids a
    step the terminal may act on."""
    return step.id in busy or (step.do == "void" and (step.target or "") in busy)


def run_fleet(
    scenario: Scenario, terminals: int, *, trace_sink: IO[bytes] | None = None,
    keep_receipts: bool = False, on_terminal: TerminalVerdict | None = None,
    progress: Progress | None = None,
) -> FleetResult:
    """Run ``scenario`` on ``terminals`` terminals served by one acquirer.

    ``trace_sink`` (a binary file) gets the trace, one line per event as it
    happens; without it the trace is only hashed and counted. ``on_terminal``
    is told each terminal's :class:`Verdict`; with ``keep_receipts`` those
    verdicts carry the receipt text (the fleet keeps none by default). ``progress`` is
    told how far wiring and running have come (a progress bar).
    """
    with collection_paused():  # until the fleet is dropped: see run_scenario
        return Fleet(scenario, terminals, trace_sink=trace_sink, keep_receipts=keep_receipts,
                     progress=progress).run(on_terminal)

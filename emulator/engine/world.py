"""One run: build the world from a scenario, run it in simulated time, judge it.

scenario -> World (Environment, one seeded RNG, trace, acquirer) -> one unit wired
(:func:`~emulator.engine.wiring.wire_unit`: devices, terminal, faults scheduled) ->
operator steps -> run -> oracle (from the trace alone, as a fleet's) -> the bank's ledger
checked against the trace (:mod:`emulator.judge.reconcile`) -> Result.

A bench run (:mod:`emulator.engine.bench`) hands World a real-time environment and a
printer factory; everything else is wired the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import IO, TYPE_CHECKING, TypeAlias

import simpy

from devices.errors import FirmwareError
from devices.net.link import Link
from devices.ports import FaultTarget, Printer
from devices.simkit.agenda import Agenda
from emulator.engine.collector import collection_paused
from emulator.engine.liveness import Watch
from emulator.engine.operator import Operator
from emulator.engine.swizzle import Swizzle
from emulator.engine.trace import Event, Trace
from emulator.engine.wiring import (
    SIMULATED,
    BankBooks,
    Connection,
    Parts,
    Shared,
    trace_header,
    wire_unit,
)
from emulator.firmware.harness import POSEMUS_OWN
from emulator.judge.oracle import BANK_EVENTS, Observer, step_views
from emulator.judge.reconcile import BankMoves, Booking
from emulator.judge.result import Result, Seen, StepResult, check
from emulator.scenario.model import Scenario

if TYPE_CHECKING:
    from devices.bank.ledger import Posting
    from devices.ports import Firmware
    from emulator.scenario.model import StepSpec


LONG_RUN_STEPS = 1_000
"""A scenario of more steps than this is a long run: ``posemu run`` streams its trace
(written to ``--trace-dir`` as it happens, or only hashed) and shows no timeline."""


def is_long(scenario: Scenario) -> bool:
    """Whether ``scenario`` is a long run (more than :data:`LONG_RUN_STEPS` steps)."""
    return len(scenario.steps) > LONG_RUN_STEPS


PrinterFactory: TypeAlias = Callable[[simpy.Environment, Trace], Printer]
"""Builds the run's printer from its environment and trace (the simulated one by default)."""


class World:
    """Every component of one run, wired together and ready to run.

    ``env`` and ``printer`` replace the simulated clock and printer (a bench run);
    by default the run is the deterministic simulation. The oracle and the bank's
    moves are folded from the trace as it happens, so with ``trace_sink`` (a binary
    file: the trace is written there, one line per event, and not kept) a run's
    memory does not grow with its trace.
    """

    def __init__(
        self, scenario: Scenario, env: simpy.Environment | None = None,
        printer: PrinterFactory | None = None,
        parts: Parts[Printer, Connection, FaultTarget, Firmware[StepSpec]] | None = None,
        terminal_id: str | None = None, trace_sink: IO[bytes] | None = None,
    ) -> None:
        self.scenario = scenario
        self.env = env = simpy.Environment() if env is None else env
        self.trace = trace = Trace(env, header=trace_header(scenario), sink=trace_sink)
        self.observer, self.moves = Observer(), BankMoves()
        for name in Observer.EVENTS:
            trace.subscribe(name, self.observer.observe)
        for name in BANK_EVENTS:
            trace.subscribe(name, self.moves.observe)
        shared = Shared.of(scenario, env)
        self.rng, self.acquirer = shared.rng, shared.acquirer
        self.retired: list[Posting] = []  # what the bank forgot: still checked
        self.acquirer.on_retire = self.retired.extend
        base = SIMULATED if parts is None else parts  # a live run's: a TCP transport
        chosen = base if printer is None else base.with_printer(
            lambda _shared, _sink: printer(env, trace))  # the run's trace, as a Trace
        unit = wire_unit(shared, trace, chosen, terminal_id)  # a live fleet's: its own
        self.link, self.host, self.reader = unit.link, unit.host, unit.reader
        self.printer, self.terminal = unit.printer, unit.terminal
        self.injector = unit.injector
        links = [unit.link] if isinstance(unit.link, Link) else []  # a live one: no clog
        swizzle = Swizzle(env, self.rng, trace, links, scenario.faults)  # a fleet of one
        self.agenda = Agenda(env, ((step.at_s, step) for step in scenario.steps
                                   if step.after is None), self.terminal.submit)
        self.operator = Operator(env, trace, self.terminal.submit, scenario.steps)
        self.liveness = None if scenario.liveness is None else Watch(  # [liveness]: last
            env, scenario.liveness, trace, self.injector.stop, swizzle.stop)

    def run(self, until: float | simpy.Event | None = None) -> Result:
        """Run to ``until`` (default: the horizon, or until nothing is left to happen); judge
        from the trace, once the bank's ledger is found as the trace says (:class:`BankBooks`)."""
        with collection_paused():
            books = BankBooks(self.scenario, self.acquirer)
            try:
                self.env.run(until=self.scenario.until_s if until is None else until)
            except Exception as exc:  # a plug-in broke its contract: the run ends here
                return self.conclude(books, self.firmware_error(exc))
            return self.conclude(books)

    def firmware_error(self, exc: Exception) -> FirmwareError:
        """What a plug-in's ``exc`` breaks (posemu's own errors are raised again)."""
        if self.scenario.firmware is None or isinstance(exc, POSEMUS_OWN):
            raise exc
        return exc if isinstance(exc, FirmwareError) else FirmwareError(
            "no exceptions", f"{type(exc).__name__}: {exc}")

    def conclude(self, books: BankBooks, error: FirmwareError | None = None) -> Result:
        """Judge the run once its environment has run (``books`` opened before it ran;
        ``error``: a plug-in stopped it): what the terminal still owes, the books, the
        oracle. A live fleet runs many worlds on one environment, then concludes each."""
        with collection_paused():
            scenario = self.scenario
            owed: list[tuple[str, str]] = []
            if error is None:
                try:
                    owed = list(self.terminal.unresolved())
                except Exception as exc:  # a plug-in broke its contract
                    error = self.firmware_error(exc)
            if error is not None:
                owed = []
                self.trace.emit("firmware.error", step=error.step, rule=error.rule,
                                detail=error.detail)
            for step, what in owed:
                self.trace.emit("terminal.unresolved", step=step, what=what)
            self.operator.finish()
            postings = [*self.retired, *self.acquirer.ledger.postings]  # every one made
            balances = books.close(self.moves, bookings_of(postings), scenario.name)
            for event in self.believed():
                self.observer.observe(event)
            verdict = self.observer.verdict(step_views(scenario))
            if self.liveness is not None and error is None:  # [liveness]: not_quiet
                verdict = replace(verdict, anomalies=(*verdict.anomalies, *self.liveness.judge(
                    self.terminal, self.printer, owed)))
            # the bank's events carry no RRN: a step's is read off the postings just
            # found to agree with them
            rrns = {p.stan: p.rrn for p in sorted(postings, key=lambda p: p.seq)}
            steps = tuple(
                StepResult(
                    id=s.id, do=s.do, amount_minor=s.amount_minor,
                    end_state=verdict.end_states[s.id], receipt=verdict.receipts[s.id],
                    stan=verdict.stans[s.id], rrn=rrns.get(verdict.stans[s.id], ""),
                )
                for s in scenario.steps
            )
            return Result(
                scenario=scenario, steps=steps, anomalies=verdict.anomalies,
                balances_minor=balances, balances_before_minor=books.before, trace=self.trace,
                sim_time_s=float(self.env.now), firmware_error=error,
                failures=(*([] if error is None else [f"firmware_error: {error}"]),
                          *check(scenario.expect, verdict.end_states, verdict.anomalies, balances,
                                 seen=Seen(verdict.screens, verdict.slips,
                                           [scenario.faults[i].fault
                                            for i in self.injector.fired],
                                           self.injector.unfired()))),
            )


    def believed(self) -> Iterable[Event]:
        """Events the oracle reads after the trace's: none (a run against a remote
        acquirer adds the money its terminal believes moved)."""
        return ()


def run_scenario(scenario: Scenario, trace_sink: IO[bytes] | None = None) -> Result:
    """Run one scenario from its seed and return what happened (``trace_sink``: where
    its trace is written as it happens, instead of being kept in the result).

    Collection stays paused until the world is dropped, so the collection that
    follows frees it while it is young instead of promoting it, alive, to an
    older generation that only full collections scan.
    """
    with collection_paused():
        return World(scenario, trace_sink=trace_sink).run()


def bookings_of(postings: Iterable[Posting]) -> Iterator[Booking]:
    """The ledger's postings as :func:`~emulator.judge.reconcile.reconcile` reads them."""
    return (Booking(p.stan, p.f7, p.kind, p.amount_minor, not p.reversed) for p in postings)

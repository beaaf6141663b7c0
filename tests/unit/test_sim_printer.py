"""The simulated printer's run-ahead gives exactly the trace of printing segment by segment."""

from __future__ import annotations

import itertools
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simpy.events import NORMAL, URGENT

from devices.fault import ActiveFault
from devices.printer.core import PrinterCore
from devices.printer.sim import SimPrinter
from devices.simkit.queues import LATE, due_at
from emulator.engine.trace import Trace
from emulator.engine.world import World
from emulator.scenario.catalogue import TRIGGER_EVENTS
from emulator.scenario.load import load_scenario, scenario_from_dict
from emulator.scenario.model import Scenario
from tests.support import LIBRARY_FILES

PRINTER_FAULTS = ["printer.paper_jam", "printer.paper_out", "printer.cover_open",
                  "printer.offline"]


def run(scenario: Scenario, *, run_ahead: bool) -> tuple[bytes, list[SimPrinter]]:
    made: list[SimPrinter] = []

    def printer(env: simpy.Environment, trace: Trace) -> SimPrinter:
        spec = scenario.printer
        made.append(SimPrinter(env, trace, PrinterCore(paper_m=spec.paper_m,
                                                       near_end_m=spec.near_end_m),
                               spec.lines_per_s, run_ahead=run_ahead))
        return made[-1]

    return World(scenario, printer=printer).run().trace.to_jsonl(), made


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=[p.stem for p in LIBRARY_FILES])
def test_every_library_scenario_gives_the_same_trace_with_and_without_run_ahead(
    path: Path,
) -> None:
    scenario = load_scenario(path)
    fast, _ = run(scenario, run_ahead=True)
    slow, _ = run(scenario, run_ahead=False)
    assert fast == slow


@pytest.fixture
def feeds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each piece fed to any printer core, in order."""
    fed: list[int] = []
    real_feed = PrinterCore.feed

    def counting_feed(core: PrinterCore, data: bytes) -> list[Any]:
        fed.append(len(data))
        return real_feed(core, data)

    monkeypatch.setattr(PrinterCore, "feed", counting_feed)
    return fed


def test_a_clean_receipt_is_run_ahead(feeds: list[int]) -> None:
    clean = scenario_from_dict(document([]))
    fast, printers = run(clean, run_ahead=True)
    assert printers[0].core.paper_m < clean.printer.paper_m  # the receipt used paper
    assert fast.count(b'"job_done"') == 5  # four sales and a reprint
    assert len(feeds) == 5  # each receipt fed to the core once, whole
    feeds.clear()
    slow, _ = run(clean, run_ahead=False)
    assert len(feeds) > 5 * 10  # segment by segment: one feed per paper movement
    assert fast == slow


@pytest.mark.parametrize("for_s", [30.0, 0.2])
def test_a_receipt_reaching_a_jammed_printer_fails_at_once_and_is_dropped_whole(
    feeds: list[int], for_s: float,
) -> None:
    """Jammed at the first job's start: it fails at its first line and the rest of it is
    dropped; the terminal prints it again once the printer is back. 30 s: the jam lasts the
    whole job, fed in two parts (through its first LF, the rest). 0.2 s: it clears while
    the job is dropped, which goes on segment by segment. Either way, the trace is that of
    printing segment by segment."""
    jammed = scenario_from_dict(document([{"fault": "printer.paper_jam",
                                            "on": "printer.job_started", "for_s": for_s}]))
    fast, _ = run(jammed, run_ahead=True)
    fed = len(feeds)
    slow, _ = run(jammed, run_ahead=False)
    assert fast == slow
    assert fast.count(b'"job_failed"') == 1
    assert fast.count(b'"job_done"') == 5  # the failed one again, three sales, a reprint
    if for_s > 1:
        assert fed == 2 + 5  # the failed job in two parts; each other one whole
    else:  # the segments due when the jam cleared again, then the rest one by one
        assert fed > 2 + 10 + 5


def document(faults: list[dict[str, Any]], paper_m: float = 20.0,
             lines_per_s: float = 20.0, seed: int = 0) -> dict[str, Any]:
    return {
        "format": 1, "name": "printer", "seed": seed,
        "printer": {"paper_m": paper_m, "near_end_m": min(0.5, paper_m),
                    "lines_per_s": lines_per_s},
        "cards": [{"id": "a", "pan": "4111111111111111", "balance": "500.00"}],
        "steps": [{"id": f"s{i}", "do": "sale", "card": "a", "amount": "1.00", "at_s": i * 4}
                  for i in range(4)] + [{"id": "r", "do": "reprint", "at_s": 40}],
        "faults": faults, "network": {"jitter_s": 0.05},
    }


@st.composite
def printer_fault(draw: st.DrawFn) -> dict[str, Any]:
    fault: dict[str, Any] = {"fault": draw(st.sampled_from(PRINTER_FAULTS))}
    if draw(st.booleans()):
        fault["at_s"] = draw(st.floats(0, 45))
    else:
        fault["on"] = draw(st.sampled_from(sorted(TRIGGER_EVENTS)))
        fault["nth"] = draw(st.integers(1, 3))
    if draw(st.booleans()):
        fault["for_s"] = draw(st.floats(0.01, 20))
    return fault


@settings(max_examples=int(os.environ.get("POSEMU_EXAMPLES", "150")), deadline=None,
          derandomize=os.environ.get("POSEMU_EXAMPLES") is None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(printer_fault(), max_size=3),
       st.sampled_from([20.0, 0.4, 0.3, 0.2, 0.05]),  # paper: some rolls end mid-receipt
       st.sampled_from([20.0, 7.0, 100.0]), st.integers(0, 2**16),
       st.sampled_from(["robust", "naive"]))
def test_run_ahead_never_changes_the_trace(
    faults: list[dict[str, Any]], paper_m: float, lines_per_s: float, seed: int, profile: str,
) -> None:
    doc = document(faults, paper_m, lines_per_s, seed)
    doc["terminal"] = {"profile": profile}
    scenario = scenario_from_dict(doc)
    fast, _ = run(scenario, run_ahead=True)
    slow, _ = run(scenario, run_ahead=False)
    assert fast == slow


# Pieces of jobs that start or end unlike a receipt: a cut or ESC d 0 before any text (a
# first segment that prints nothing), text never ended by LF (a tail), a reset mid-job.
PIECES = [b"text\n", b"\x1dV\x00", b"\x1bd\x00", b"\x1bd\x02", b"tail", b"\x1b@", b"\n",
          b"\x1bJ\x10", b"\x10\x04\x01", b"\x1b3\n"]
KINDS = ["printer.paper_jam", "printer.cover_open", "printer.paper_out", "printer.offline"]


def toggle(printer: SimPrinter, faults: dict[str, ActiveFault], kind: str, on: bool) -> None:
    """Start fault ``kind`` on ``printer`` (``on``) or clear it, unless it is so already."""
    if on and kind not in faults:
        faults[kind] = ActiveFault(kind)
        printer.apply(faults[kind])
    elif not on and kind in faults:
        printer.clear(faults.pop(kind))


def print_jobs(jobs: list[bytes], start: str | None,
               changes: list[tuple[float, str, bool]], *, run_ahead: bool) -> bytes:
    env = simpy.Environment()
    trace = Trace(env)
    printer = SimPrinter(env, trace, PrinterCore(paper_m=0.3), run_ahead=run_ahead)
    faults: dict[str, ActiveFault] = {}

    def change(at: float, kind: str, on: bool) -> Generator[simpy.Event, Any, None]:
        yield env.timeout(at)
        toggle(printer, faults, kind, on)

    def jobs_in_turn() -> Generator[simpy.Event, Any, None]:
        for data in jobs:
            whole = yield printer.print_job(data)
            trace.emit("test.job_ended", whole=whole)

    if start is not None:
        faults[start] = ActiveFault(start)
        printer.apply(faults[start])
    for at, kind, on in changes:
        env.process(change(at, kind, on))
    env.process(jobs_in_turn())
    env.run()
    return trace.to_jsonl()


@settings(max_examples=int(os.environ.get("POSEMU_EXAMPLES", "300")), deadline=None,
          derandomize=os.environ.get("POSEMU_EXAMPLES") is None)
@given(st.lists(st.lists(st.sampled_from(PIECES), min_size=1, max_size=8).map(b"".join),
                min_size=1, max_size=3),
       st.sampled_from([None, *KINDS]),
       st.lists(st.tuples(st.sampled_from([0.0, 0.05, 0.1, 0.12, 0.3, 0.5, 1.0]),
                          st.sampled_from(KINDS), st.booleans()), max_size=3))
def test_jobs_of_any_shape_print_alike_run_ahead_or_not(
    jobs: list[bytes], start: str | None, changes: list[tuple[float, str, bool]],
) -> None:
    """Odd jobs on a printer that may be offline when they start and change mid-job."""
    fast = print_jobs(jobs, start, changes, run_ahead=True)
    assert fast == print_jobs(jobs, start, changes, run_ahead=False)


def print_at_instants(start_s: float, job: bytes, changes: list[tuple[str, bool, int, int, int]],
                      *, run_ahead: bool) -> bytes:
    """One job started at ``start_s``. Each change (kind, on, made, priority, due) reaches
    the printer at exactly the job's ``due``-th line instant, by a timer made at its
    ``made``-th (-1: before the job) by a process woken there with ``priority``."""
    env = simpy.Environment()
    trace = Trace(env)
    printer = SimPrinter(env, trace, PrinterCore(), 20.0, run_ahead=run_ahead)
    instants = list(itertools.accumulate([printer.line_s] * 12, initial=start_s))
    faults: dict[str, ActiveFault] = {}

    def change(kind: str, on: bool, made: int, priority: int,
               due: int) -> Generator[simpy.Event, Any, None]:
        if made >= 0:
            yield due_at(env, instants[made], priority)
        yield due_at(env, instants[due])
        toggle(printer, faults, kind, on)

    def one_job() -> Generator[simpy.Event, Any, None]:
        yield env.timeout(start_s)
        whole = yield printer.print_job(job)
        trace.emit("test.job_ended", whole=whole)

    for kind, on, made, priority, due in changes:
        env.process(change(kind, on, made, priority, max(made, due)))
    env.process(one_job())
    env.run()
    return trace.to_jsonl()


@settings(max_examples=int(os.environ.get("POSEMU_EXAMPLES", "300")), deadline=None,
          derandomize=os.environ.get("POSEMU_EXAMPLES") is None)
@given(st.sampled_from([0.0, 0.022, 0.3, 4.94, 1234.5678]),
       st.integers(0, 4), st.integers(0, 2),
       st.lists(st.tuples(st.sampled_from(KINDS), st.booleans(), st.integers(-1, 6),
                          st.sampled_from([URGENT, NORMAL, LATE]), st.integers(0, 8)),
                min_size=1, max_size=3))
def test_what_reaches_the_printer_on_a_line_instant_comes_first_run_ahead_or_not(
    start_s: float, before_cut: int, after_cut: int,
    changes: list[tuple[str, bool, int, int, int]],
) -> None:
    """A fault or its clearing due at the very instant a line is: whenever its timer was
    made (before the job, or mid-job before or after the printer's own step), it reaches
    the printer before that line is fed, and the job runs ahead or not alike. Jobs that
    start near 0 s also check the instants themselves: waiting ``t - now`` from there can
    miss ``t`` by a bit."""
    job = b"line\n" * before_cut + b"\x1dV\x00" + b"more\n" * after_cut
    fast = print_at_instants(start_s, job, changes, run_ahead=True)
    assert fast == print_at_instants(start_s, job, changes, run_ahead=False)


def test_open_jobs_counts_a_job_from_when_it_is_given_until_it_lets_the_printer_go() -> None:
    """Queued jobs count too: a fleet judges nothing while one may still cut a receipt."""
    env = simpy.Environment()
    printer = SimPrinter(env, Trace(env), PrinterCore(), lines_per_s=10.0)
    first = printer.print_job(b"one\ntwo\n\x1dV\x00")
    second = printer.print_job(b"three\n\x1dV\x00")
    assert printer.open_jobs == 2  # neither has started
    env.run(until=first)
    assert (printer.open_jobs, second.is_alive) == (1, True)
    env.run(until=second)
    assert printer.open_jobs == 0
    assert (first.value, second.value) == (True, True)

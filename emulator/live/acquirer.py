"""A live acquirer: a scenario's bank served on a real socket, judged from outside.

The unit is wired as every run is (:func:`~emulator.engine.wiring.wire_unit`), with
one factory per port: the transport is the live connections' :class:`~devices.net.server.Wires`,
the endpoint the simulation's :class:`~devices.bank.host.Host` (the same core, ledger,
batches and ``bank.*`` faults), and no terminal: the terminal is whatever connects. The
clock is a :class:`~devices.simkit.realtime.LoopEnvironment`'s, the trace is streamed
(flushed per event), and the outside oracle (:mod:`emulator.live.oracle`) judges at the
end from the bank's postings and the answers its connections wrote.
"""

from __future__ import annotations

import asyncio
import queue
import random
import ssl
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from devices.errors import ConservationError, ScenarioError
from devices.net.framing import Framing
from devices.net.server import Answer, LiveServer, Wires
from devices.printer.core import JobDone
from devices.simkit.realtime import LoopEnvironment
from emulator.engine.trace import Event, Trace
from emulator.engine.wiring import (
    BankBooks,
    Parts,
    Shared,
    card_infos,
    make_acquirer,
    sim_host,
    sim_printer,
    trace_header,
    wire_unit,
)
from emulator.live.oracle import Answered, LiveAnomaly, Posted, judge

if TYPE_CHECKING:
    import simpy

    from devices.fault import ActiveFault
    from devices.ports import CardReader, Printer, TraceSink, Transport
    from devices.printer.virtual import VirtualPrinter
    from emulator.firmware.messages import Identity
    from emulator.scenario.model import Scenario, StepSpec

__all__ = ["LiveAcquirer", "LiveResult", "Running", "refuse_terminal_faults"]

IN_DOUBT_AFTER_S = 60.0
"""The outside oracle's window when ``[bank] in_doubt_after_s`` is not set."""
PRINTED_WAIT_S = 5.0
"""How long judging waits for the virtual printer to finish what it was sent."""
_OURS = ("bank", "network")
"""The devices whose faults a live acquirer can act on."""
_OUR_EVENTS = ("bank.", "network.")


def refuse_terminal_faults(scenario: Scenario, printer: bool = False) -> None:
    """ScenarioError for the first fault a live acquirer cannot act on: one of a
    terminal, card reader or printer it does not have (``printer``: it runs the virtual
    printer), or one triggered by their events."""
    ours = (*_OURS, "printer") if printer else _OURS
    for fault in scenario.faults:
        device = fault.fault.split(".", 1)[0]
        if device not in ours:
            raise ScenarioError(
                f"{fault.fault} needs posemu's simulated {device}, which a live acquirer does "
                "not run (the terminal is whatever connects): remove it, or run the scenario "
                "with posemu run" + ("" if printer or device != "printer" else
                                     " (printer faults: serve with --printer pty)"),
                path=scenario.path, key=f"faults[{fault.index}].fault")
        if fault.on is not None and not fault.on.startswith(_OUR_EVENTS):
            raise ScenarioError(
                f"{fault.on} never happens on a live acquirer (it is the terminal's event): "
                "trigger on a bank.* or network.* event, or use at_s",
                path=scenario.path, key=f"faults[{fault.index}].on")


@dataclass
class LiveResult:
    """What a live acquirer saw and judged."""

    scenario: Scenario
    address: tuple[str, int]
    anomalies: list[LiveAnomaly]
    notes: list[LiveAnomaly]
    balances_minor: dict[str, int]
    postings: list[dict[str, Any]]
    trace_sha256: str
    events: int
    uptime_s: float
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.scenario.path, "name": self.scenario.name,
            "listen": f"{self.address[0]}:{self.address[1]}",
            "verdict": "pass" if self.passed else "fail", "failures": self.failures,
            "anomalies": [a.to_json() for a in self.anomalies],
            "notes": [n.to_json() for n in self.notes],
            "balances": {k: _money(v) for k, v in self.balances_minor.items()},
            "postings": self.postings, "trace_sha256": self.trace_sha256,
            "events": self.events, "uptime_s": round(self.uptime_s, 3),
        }


class _Flushed:
    """A binary sink that flushes each write (a killed run keeps every event written)."""

    def __init__(self, out: IO[bytes] | None) -> None:
        self.out = out

    def write(self, data: bytes) -> int:
        if self.out is not None:
            self.out.write(data)
            self.out.flush()
        return len(data)


class _Tagged(Mapping[str, "TraceSink"]):
    """Every terminal id maps to the trace with ``terminal_id`` added to the event: where
    the host traces the money it moves (many terminals share one live acquirer)."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def __getitem__(self, terminal_id: str) -> TraceSink:
        return _TidSink(self.trace, terminal_id)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class _TidSink:
    def __init__(self, trace: Trace, terminal_id: str) -> None:
        self.trace = trace
        self.terminal_id = terminal_id

    def emit(self, name: str, **fields: Any) -> None:
        self.trace.emit(name, terminal_id=self.terminal_id, **fields)


class _NoTerminal:
    """The firmware port of a live acquirer: the terminal is outside, nothing runs here."""

    def apply(self, fault: ActiveFault) -> None:
        """Never called: terminal faults are refused."""

    def clear(self, fault: ActiveFault) -> None:
        """Never called: terminal faults are refused."""

    def submit(self, step: StepSpec) -> None:
        """Steps are the outside terminal's: nothing is submitted here."""

    def unresolved(self) -> list[tuple[str, str]]:
        return []

    def open_steps(self) -> set[str]:
        return set()


def _no_terminal(shared: Shared, trace: TraceSink, transport: Transport, reader: CardReader,
                 printer: Printer, identity: Identity) -> _NoTerminal:
    return _NoTerminal()


_CONTROLS = {"printer.paper_out": ("paper-out", "paper-in"),
             "printer.paper_jam": ("jam", "clear"),
             "printer.cover_open": ("cover-open", "cover-close"),
             "printer.offline": ("off", "on")}
"""A printer fault as the virtual printer's control lines: (applied, cleared)."""


class _PtyPrinter:
    """The printer port of a live acquirer with ``--printer pty``: the virtual printer the
    terminal prints on; the scenario's printer faults become its control lines."""

    def __init__(self, printer: VirtualPrinter) -> None:
        self.printer = printer

    def apply(self, fault: ActiveFault) -> None:
        self.printer.control(_CONTROLS[fault.kind][0])

    def clear(self, fault: ActiveFault) -> None:
        self.printer.control(_CONTROLS[fault.kind][1])

    def print_job(self, data: bytes, **about: Any) -> simpy.Process:
        raise NotImplementedError("the terminal prints on the pty itself")

    def status(self, n: int) -> int | None:
        return self.printer.status(n)


def _wires(shared: Shared, trace: TraceSink) -> Wires:
    return Wires(shared.env, shared.rng, trace)


class LiveAcquirer:
    """The scenario's bank behind a socket; :meth:`serve` runs it until told to stop."""

    def __init__(
        self, scenario: Scenario, framing: Framing | None = None,
        tls: ssl.SSLContext | None = None, trace_out: IO[bytes] | None = None,
        *, printer: VirtualPrinter | None = None,
    ) -> None:
        refuse_terminal_faults(scenario, printer=printer is not None)
        self.printer = printer
        """The virtual printer the terminal prints on (``--printer pty``), or None."""
        self.scenario = scenario
        self.framing = framing or Framing()
        self.env = env = LoopEnvironment()
        header = trace_header(scenario, live={"framing": self.framing.name,
                                              "tpdu": self.framing.tpdu, "tls": tls is not None})
        self.trace = trace = Trace(env, header=header, sink=_Flushed(trace_out))  # type: ignore[arg-type]
        acquirer = make_acquirer(scenario)
        shared = Shared(scenario, env, random.Random(scenario.seed), acquirer,
                        card_infos(scenario), _Tagged(trace))
        self.books = BankBooks(scenario, acquirer)
        self.acquirer = acquirer
        def pty_printer(_shared: Shared, _trace: TraceSink) -> Printer:
            assert printer is not None
            return _PtyPrinter(printer)

        parts = Parts(sim_printer if printer is None else pty_printer, _wires, sim_host,
                      _no_terminal)
        unit = wire_unit(shared, trace, parts)
        unit.link.direct = not any(f.on is not None and f.on.startswith("network.")
                                   for f in scenario.faults)
        self.server = LiveServer(env, trace, unit.link, unit.host, self.framing, tls=tls,
                                 on_answer=self._answered)
        self.answers: list[tuple[float, Answer]] = []  # decoded when judged
        self.moves: dict[str, list[tuple[float, tuple[str, str, str]]]] = {
            "bank.posted": [], "bank.reversed": []}
        trace.subscribe("bank.posted", self._moved)
        trace.subscribe("bank.reversed", self._moved)
        self.address: tuple[str, int] | None = None
        self._stop = env.event()
        self._receipts: list[str] = []

    def _answered(self, answer: Answer) -> None:
        self.answers.append((self.env.now, answer))

    def _moved(self, event: Event) -> None:
        f = event.fields
        self.moves[event.name].append((event.t, (f["terminal_id"], f["stan"], f["f7"])))

    def receipts(self) -> list[str]:
        """The texts of the receipts the virtual printer completed so far."""
        assert self.printer is not None
        self.printer.wait_printed(PRINTED_WAIT_S)
        while True:
            try:
                job = self.printer.jobs.get_nowait()
            except queue.Empty:
                break
            if isinstance(job, JobDone):
                self._receipts.append(job.text)
        return list(self._receipts)

    def stop(self) -> None:
        """End :meth:`serve` (from the loop's thread: a signal handler, a callback)."""
        if not self._stop.triggered:
            self.env.deliver(self._stop.succeed)

    async def serve(
        self, host: str, port: int, *, duration_s: float | None = None,
        ready: Callable[[tuple[str, int]], None] | None = None,
    ) -> LiveResult:
        """Listen on ``host:port`` (port 0: a free one), tell ``ready`` the address, serve
        until :meth:`stop` or ``duration_s``, then judge."""
        env = self.env
        env.attach()
        self.address = address = await self.server.start(host, port)
        env.deliver(lambda: self.trace.emit(
            "live.listening", host=address[0], port=address[1], framing=self.framing.name,
            tpdu=self.framing.tpdu, tls=self.server.tls is not None))
        if duration_s is not None:
            env.timeout(duration_s).callbacks.append(lambda _e: self.stop())
        if ready is not None:
            ready(address)
        try:
            await env.run_async(self._stop)
        finally:
            await self.server.stop()
            await asyncio.sleep(0)  # let the connections' closings reach the trace
        return self.result()

    def result(self) -> LiveResult:
        """Judge what happened so far."""
        books, acquirer, scenario = self.books, self.acquirer, self.scenario
        if acquirer.total_minor() != books.total_before:
            raise ConservationError(f"{scenario.name}: money not conserved")
        cards = {c.pan: c.id for c in scenario.cards}
        posted_at, reversed_at = _by_key(self.moves["bank.posted"]), _by_key(
            self.moves["bank.reversed"])
        postings: list[Posted] = []
        rows: list[dict[str, Any]] = []
        for p in acquirer.ledger.postings:
            times, undone = posted_at.get(p.key, []), reversed_at.get(p.key, [])
            t = times.pop(0) if times else 0.0
            rt = undone.pop(0) if p.reversed and undone else None
            postings.append(Posted(t, p.key, p.kind, p.amount_minor, cards[p.pan],
                                   not p.reversed, rt))
            rows.append({"terminal_id": p.terminal_id, "stan": p.stan, "f7": p.f7,
                         "kind": p.kind, "amount": _money(p.amount_minor),
                         "card": cards[p.pan], "rrn": p.rrn, "reversed": p.reversed,
                         "t": round(t, 6)})
        window = scenario.bank.in_doubt_after_s
        answers = [Answered(t, a.fields, a.written) for t, a in self.answers]
        anomalies, notes = judge(postings, answers,
                                 IN_DOUBT_AFTER_S if window is None else window,
                                 self.receipts() if self.printer is not None else None)
        balances = books.balances()
        return LiveResult(
            scenario, self.address or ("", 0), anomalies, notes, balances, rows,
            self.trace.sha256(), len(self.trace), float(self.env.now),
            _failures(scenario, anomalies, balances))


def _by_key(moves: list[tuple[float, tuple[str, str, str]]],
            ) -> dict[tuple[str, str, str], list[float]]:
    """The moments of each key's moves, in order."""
    out: dict[tuple[str, str, str], list[float]] = {}
    for t, key in moves:
        out.setdefault(key, []).append(t)
    return out


def _failures(
    scenario: Scenario, anomalies: list[LiveAnomaly], balances: dict[str, int],
) -> list[str]:
    """What differs from ``[expect]`` (anomalies as a multiset; balances); without it, any
    anomaly is a failure."""
    found = Counter(a.kind for a in anomalies)
    expect = scenario.expect
    wanted = Counter(expect.anomalies or ()) if expect is not None else Counter()
    failures: list[str] = []
    if found != wanted:
        failures.append(f"anomalies: expected {sorted(wanted.elements())}, found "
                        f"{sorted(found.elements())}")
    if expect is not None and expect.balances:
        for card, minor in expect.balances.items():
            got = balances.get(card)
            if got != minor:
                failures.append(f"balance of {card}: expected {_money(minor)}, found "
                                f"{'?' if got is None else _money(got)}")
    return failures


def _money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    return f"{sign}{minor // 100}.{minor % 100:02d}"


class Running:
    """A live acquirer served by a thread of its own (a test suite's, the pytest fixture's):
    ``with Running(acquirer) as run:`` gives ``run.address``; ``run.result`` after the block."""

    def __init__(self, acquirer: LiveAcquirer, host: str = "127.0.0.1", port: int = 0,
                 timeout_s: float = 10.0) -> None:
        self.acquirer = acquirer
        self.host, self.port = host, port
        self.timeout_s = timeout_s
        self.address: tuple[str, int] = ("", 0)
        self.result: LiveResult | None = None
        self.stopped_by_test = False
        """True once :meth:`stop` was called (the pytest fixture then leaves the verdict
        to the test)."""
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name="posemu-acquirer", daemon=True)

    def _main(self) -> None:
        async def serve() -> LiveResult:
            self._loop = asyncio.get_running_loop()
            return await self.acquirer.serve(self.host, self.port, ready=self._bound)

        try:
            self.result = asyncio.run(serve())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    def _bound(self, address: tuple[str, int]) -> None:
        self.address = address
        self._ready.set()

    def __enter__(self) -> Running:
        self._thread.start()
        if not self._ready.wait(self.timeout_s) or self._error is not None:
            self._thread.join(self.timeout_s)
            raise self._error or TimeoutError("the live acquirer did not start")
        return self

    def stop(self) -> LiveResult:
        """Stop serving and judge (idempotent)."""
        self.stopped_by_test = True
        return self.close()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def close(self) -> LiveResult:
        """Stop serving (the fixture's teardown: the verdict is still to be read)."""
        if self._thread.is_alive() and self._loop is not None:
            self._loop.call_soon_threadsafe(self.acquirer.stop)
        self._thread.join(self.timeout_s)
        if self._error is not None:
            raise self._error
        if self.result is None:
            raise TimeoutError("the live acquirer did not stop")
        return self.result

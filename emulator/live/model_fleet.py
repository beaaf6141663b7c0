"""``posemu fleet FILE --terminals N --acquirer URL``: N of the scenario's terminal models
(posemu's firmware, by its profile, or a plug-in) in real time against a real host.

One :class:`~devices.simkit.realtime.LoopEnvironment` (one asyncio loop, one thread) runs
N worlds, each wired as ``posemu run --acquirer``'s single one is
(:func:`~emulator.engine.wiring.wire_unit` through :class:`~emulator.engine.world.World`):
its own :class:`~devices.net.tcp.TcpTransport` connection, terminal id (``T0000001``...)
and STAN sequence, its own trace, the scenario's steps. Each terminal is then judged as a
single live run is: by the oracle from its side (the money it believes moved) and by the
host rules (:mod:`emulator.live.host_rules`) on its messages. The scenario's
``network.*`` faults act in one fault proxy in front of the host, shared by the fleet.

With ``shared``, the terminals share one connection instead (:class:`SharedConnection`):
each answer goes to the terminal its field 41 names.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from devices.errors import MessageError, UsageError
from devices.iso8583.message import decode
from devices.net.tcp import Idle, TcpTransport
from devices.ports import Refused
from devices.simkit.queues import Mailbox
from devices.simkit.realtime import LoopEnvironment
from emulator.engine.fleet import terminal_id
from emulator.engine.wiring import BankBooks
from emulator.judge.result import anomaly_json
from emulator.live.client import (
    Logged,
    Remote,
    RemoteWorld,
    host_breaches,
    refuse_bank_faults,
    remote_parts,
)
from emulator.live.fleet import percentile_ms
from emulator.live.host_rules import messages_from_log
from emulator.live.wire_faults import ProxyThread, proxy_rules

if TYPE_CHECKING:
    from devices.errors import FirmwareError
    from devices.fault import ActiveFault
    from devices.ports import TraceSink
    from devices.simkit.queues import Take
    from emulator.engine.wiring import Parts, Shared
    from emulator.judge.result import Result
    from emulator.scenario.model import Scenario

__all__ = ["MAX_MODEL_TERMINALS", "ModelFleetReport", "SharedConnection", "run_model_fleet"]

MAX_MODEL_TERMINALS = 1_000
"""Each terminal keeps its trace in memory and its own connection."""
KEPT = 20
"""How many anomalies and breaches the report names in full (all are counted)."""


@dataclass
class ModelFleetReport:
    """What the fleet's terminals showed, their anomalies and the host's breaches, counted."""

    name: str
    terminals: int
    speed: float
    duration_s: float = 0.0
    end_states: Counter[str] = field(default_factory=Counter)
    anomalies: Counter[str] = field(default_factory=Counter)
    first_anomalies: list[dict[str, str]] = field(default_factory=list)
    breaches: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    failed: Counter[str] = field(default_factory=Counter)  # terminal id -> failures
    failures: list[str] = field(default_factory=list)  # the first, with the terminal id
    sent: int = 0  # requests the terminals sent
    answered: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)  # real seconds
    terminal_ids: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every terminal passed as ``posemu run --acquirer`` would: its ``[expect]`` met,
        no host rule broken."""
        return not self.failed

    def add(self, tid: str, result: Result, transport: list[Logged]) -> None:
        """Count terminal ``tid``'s result and its messages."""
        self.terminal_ids.append(tid)
        self.end_states.update(step.end_state for step in result.steps)
        for anomaly in result.anomalies:
            self.anomalies[anomaly.kind] += 1
            if len(self.first_anomalies) < KEPT:
                self.first_anomalies.append(anomaly_json(anomaly, terminal=tid))
        for failure in result.failures:
            self.failed[tid] += 1
            if len(self.failures) < KEPT:
                self.failures.append(f"{tid}: {failure}")
        for t in transport:
            self._count(t)

    def breach(self, tid: str, rule: str, text: str) -> None:
        self.breaches[rule] += 1
        if len(self.examples) < 5:
            self.examples.append(f"{tid}: {text}")

    def _count(self, transport: Logged) -> None:
        """Requests, answers, codes and latencies (a request to its first answer)."""
        asked: dict[tuple[str, str], float] = {}
        for message in messages_from_log(transport.log):
            key = (message.get("41"), message.get("11"))
            if message.sent:
                self.sent += 1
                asked.setdefault(key, message.t)
            elif key in asked:
                self.answered += 1
                self.codes[message.get("39") or "??"] += 1
                self.latencies_s.append((message.t - asked.pop(key)) / self.speed)

    def to_json(self) -> dict[str, Any]:
        """The report as one object (``--json``)."""
        return {
            "name": self.name, "terminals": self.terminals, "speed": self.speed,
            "duration_s": round(self.duration_s, 3),
            "end_states": dict(sorted(self.end_states.items())),
            "anomalies": dict(sorted(self.anomalies.items())),
            "first_anomalies": self.first_anomalies,
            "requests_sent": self.sent, "answered": self.answered, "codes": dict(self.codes),
            "throughput_per_s": round(self.answered / self.duration_s, 1)
            if self.duration_s else 0.0,
            "latency_ms": {f"p{int(q * 100)}": round(percentile_ms(self.latencies_s, q), 2)
                           for q in (0.5, 0.9, 0.99)},
            "breaches": dict(sorted(self.breaches.items())), "examples": self.examples,
            "terminals_failed": len(self.failed), "failures": self.failures,
            "verdict": "pass" if self.passed else "fail",
        }

    def summary(self) -> str:
        """A few plain lines for a person."""
        data = self.to_json()
        lat = data["latency_ms"]
        states = ", ".join(f"{n} {s}" for s, n in data["end_states"].items()) or "none"
        kinds = ", ".join(f"{n} {k}" for k, n in data["anomalies"].items())
        lines = [f"{self.name}: {self.terminals} terminals for {data['duration_s']} s "
                 f"(speed {self.speed:g})",
                 f"  end states: {states}",
                 f"  anomalies: {sum(self.anomalies.values())}" + (f" ({kinds})" if kinds else ""),
                 *(f"    {a['terminal']} {a['step']}: {a['kind']}: {a['detail']}"
                   for a in self.first_anomalies[:5]),
                 f"  {self.sent} requests sent, {self.answered} answered "
                 f"({data['throughput_per_s']}/s); latency p50 {lat['p50']} ms, "
                 f"p90 {lat['p90']} ms, p99 {lat['p99']} ms",
                 "  codes: " + (", ".join(f"{c} x{n}" for c, n in sorted(self.codes.items()))
                                or "none")]
        lines += [f"  host.{rule}: {n} breaches" for rule, n in sorted(self.breaches.items())]
        lines += [f"    {e}" for e in self.examples]
        if self.failed:
            lines.append(f"  {len(self.failed)} terminals failed, e.g. {self.failures[0]}")
        lines.append(data["verdict"].upper())
        return "\n".join(lines)


def check_terminals(terminals: int) -> None:
    """UsageError unless 1 to :data:`MAX_MODEL_TERMINALS`."""
    if not 1 <= terminals <= MAX_MODEL_TERMINALS:
        raise UsageError(f"--terminals must be 1 to {MAX_MODEL_TERMINALS:,} with --acquirer "
                         f"(--load-only: up to 10,000), not {terminals}")


def run_model_fleet(scenario: Scenario, remote: Remote, terminals: int,
                    speed: float = 1.0, shared: bool = False) -> ModelFleetReport:
    """Run ``terminals`` of ``scenario``'s terminal against the host at ``remote``, in real
    time (``speed`` simulated seconds per second), through a fault proxy when the scenario
    has network faults, each on its own connection (``shared``: all on one); each judged
    from its side. The report."""
    check_terminals(terminals)
    refuse_bank_faults(scenario)
    rules = proxy_rules(scenario, remote.tls is not None, speed)
    if rules:
        with ProxyThread(remote.address, remote.framing, rules, scenario.seed) as proxy:
            return _run(scenario, Remote(*proxy.address, remote.framing, None), terminals,
                        speed, shared)
    return _run(scenario, remote, terminals, speed, shared)


def _run(scenario: Scenario, remote: Remote, terminals: int, speed: float,
         shared: bool) -> ModelFleetReport:
    env = LoopEnvironment(speed)
    made: list[list[Logged]] = [[] for _ in range(terminals)]
    one = SharedConnection(env, remote) if shared else None
    worlds = [RemoteWorld(scenario, env=env, terminal_id=terminal_id(k + 1),
                           parts=remote_parts(env, remote, made[k]) if one is None
                           else one.parts(terminal_id(k + 1), made[k]))
              for k in range(terminals)]
    books = [BankBooks(scenario, world.acquirer) for world in worlds]
    report = ModelFleetReport(scenario.name, terminals, speed)
    error: FirmwareError | None = None
    started = time.perf_counter()
    try:
        env.run(until=scenario.until_s)
    except Exception as exc:  # a plug-in broke its contract: every terminal stops here
        error = worlds[0].firmware_error(exc)
    report.duration_s = time.perf_counter() - started
    timeout_s = scenario.policy.response_timeout_s
    for k, world in enumerate(worlds):
        tid = terminal_id(k + 1)
        breaches = host_breaches(made[k], timeout_s)
        result = world.conclude(books[k], error)
        result = replace(result, failures=(*result.failures, *map(str, breaches)))
        report.add(tid, result, made[k])
        for breach in breaches:
            report.breach(tid, breach.rule, str(breach))
    return report


class _NoTrace:
    """The shared connection's own events (connected, closed) belong to no one terminal."""

    def emit(self, name: str, **fields: Any) -> None:
        """Dropped: each terminal traces its own frames."""


class SharedConnection(TcpTransport):
    """One connection for the whole fleet: each terminal's frames go out on it, each answer
    (or a frame the host refused) comes back to the terminal its field 41 names."""

    def __init__(self, env: LoopEnvironment, remote: Remote) -> None:
        super().__init__(env, _NoTrace(), remote.address, remote.framing, remote.tls)
        self.seats: dict[str, Seat] = {}
        self._box = self  # type: ignore[assignment]  # what arrives is routed by put()

    def put(self, item: bytes | Refused) -> None:
        """Route what arrived to its terminal (a frame naming none is dropped)."""
        frame = item.frame if isinstance(item, Refused) else item
        try:
            tid = str(decode(frame).get("41", ""))
        except MessageError:
            return
        seat = self.seats.get(tid)
        if seat is not None:
            seat.arrived(item)

    def parts(self, tid: str, made: list[Logged]) -> Parts[Any, Any, Any, Any]:
        """The wiring's parts of terminal ``tid``: its seat on this connection."""
        from emulator.engine.wiring import Parts, sim_printer, sim_terminal  # noqa: PLC0415
        from emulator.live.client import NoBank  # noqa: PLC0415

        def transport(shared: Shared, trace: TraceSink) -> _SeatLink:
            seat = self.seats[tid] = Seat(self, trace)
            made.append(seat)
            return _SeatLink(seat)

        return Parts(sim_printer, transport, lambda *_: NoBank(), sim_terminal)


class Seat:
    """One terminal's end of the :class:`SharedConnection`: its frames, its log, its box."""

    def __init__(self, connection: SharedConnection, trace: TraceSink) -> None:
        self.connection = connection
        self.env = connection.env
        self.trace = trace
        self.log: list[tuple[float, bool, bytes]] = []
        self._box = Mailbox(connection.env)

    def send(self, frame: bytes | Refused, **about: Any) -> None:
        if isinstance(frame, Refused):
            return
        self.trace.emit("tcp.sent", size=len(frame), **about)
        self.log.append((float(self.env.now), True, frame))
        self.connection.send(frame)

    def arrived(self, item: bytes | Refused) -> None:
        if isinstance(item, Refused):
            self.trace.emit("tcp.refused", error="connection refused")
        else:
            self.trace.emit("tcp.received", size=len(item))
            self.log.append((float(self.env.now), False, item))
        self._box.put(item)

    def receive(self) -> Take:
        return self._box.get()

    def discard(self) -> None:
        self._box.items.clear()


class _SeatLink:
    """The way to the host through a seat; network faults act in the proxy, not here."""

    def __init__(self, seat: Seat) -> None:
        self.terminal_end = seat
        self.bank_end = Idle(seat.env)

    def apply(self, fault: ActiveFault) -> None:
        """Never called: network faults act in the fault proxy."""

    def clear(self, fault: ActiveFault) -> None:
        """Never called: network faults act in the fault proxy."""

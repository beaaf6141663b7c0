"""``posemu fleet FILE --terminals N --acquirer URL``: N load terminals against a real host.

Each terminal is a light one (not the firmware model of ``posemu run``): its own
connection, terminal id (``T0000001``...) and STAN sequence; it sells the scenario's
sale amounts on its cards in turn, at its share of ``rate`` sales per second, waits
``[terminal] response_timeout_s`` for each answer and reverses (0400) a sale left
unanswered, as the robust profile does. Its messages are judged by the host rules
(:mod:`emulator.live.host_rules`); the fleet reports throughput, latency percentiles
and the breaches. The scenario's ``network.*`` faults act on posemu's side of the
socket: the terminals connect through an in-process fault proxy
(:mod:`emulator.live.proxy`) in front of the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devices.errors import FramingError, MessageError, ScenarioError, UsageError
from devices.iso8583.message import decode, encode, original_data
from devices.net.framing import FrameReader, to_internal
from devices.net.tcp import CLIENT_TPDU, CONNECT_TIMEOUT_S
from emulator.engine.wiring import mac_key
from emulator.live.host_rules import judge_host, messages_from_log
from emulator.live.proxy import ProxyServer
from emulator.live.wire_faults import proxy_rules

if TYPE_CHECKING:
    from emulator.live.client import Remote
    from emulator.scenario.model import Scenario

__all__ = ["FleetReport", "percentile_ms", "run_live_fleet"]

MAX_LIVE_TERMINALS = 10_000
_F7 = "1207120000"


@dataclass
class FleetReport:
    """What the fleet did and what the host rules found."""

    terminals: int
    duration_s: float
    sent: int = 0
    answered: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    timeouts: int = 0
    reversals: int = 0
    latencies_s: list[float] = field(default_factory=list)
    breaches: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    proxy: dict[str, Any] | None = None

    def percentile_ms(self, q: float) -> float:
        return percentile_ms(self.latencies_s, q)

    @property
    def passed(self) -> bool:
        return not self.breaches

    def to_json(self) -> dict[str, Any]:
        return {
            "terminals": self.terminals, "duration_s": round(self.duration_s, 3),
            "sales_sent": self.sent, "answered": self.answered, "codes": dict(self.codes),
            "timeouts": self.timeouts, "reversals": self.reversals,
            "throughput_per_s": round(self.answered / self.duration_s, 1)
            if self.duration_s else 0.0,
            "latency_ms": {f"p{int(q * 100)}": round(self.percentile_ms(q), 2)
                           for q in (0.5, 0.9, 0.99)},
            "breaches": dict(self.breaches), "examples": self.examples,
            "verdict": "pass" if self.passed else "fail",
            **({"proxy": self.proxy} if self.proxy is not None else {}),
        }

    def summary(self) -> str:
        data = self.to_json()
        lat = data["latency_ms"]
        lines = [f"{self.terminals} terminals for {data['duration_s']} s: {self.sent} sales "
                 f"sent, {self.answered} answered ({data['throughput_per_s']}/s), "
                 f"{self.timeouts} timeouts, {self.reversals} reversals",
                 f"  latency p50 {lat['p50']} ms, p90 {lat['p90']} ms, p99 {lat['p99']} ms",
                 "  codes: " + (", ".join(f"{c} x{n}" for c, n in sorted(self.codes.items()))
                                or "none")]
        lines += [f"  host.{rule}: {n} breaches" for rule, n in sorted(self.breaches.items())]
        lines += [f"    {e}" for e in self.examples]
        lines.append(data["verdict"].upper())
        return "\n".join(lines)


def percentile_ms(latencies_s: list[float], q: float) -> float:
    """The ``q`` quantile (0 to 1) of ``latencies_s``, in milliseconds (0 with none)."""
    if not latencies_s:
        return 0.0
    ordered = sorted(latencies_s)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_live_fleet(
    scenario: Scenario, remote: Remote, terminals: int, rate: float, duration_s: float,
    progress: Callable[[float, FleetReport], None] | None = None,
) -> FleetReport:
    """Run the fleet for ``duration_s`` seconds (then wait for the answers and reversals
    still due), ``rate`` sales per second in all; the report."""
    if not 1 <= terminals <= MAX_LIVE_TERMINALS:
        raise UsageError(f"--terminals must be 1 to {MAX_LIVE_TERMINALS:,} with --acquirer, "
                         f"not {terminals}")
    rules = proxy_rules(scenario, remote.tls is not None,
                        refuse="cannot act on a live fleet: the bank is not ours, and the "
                               "terminals are load terminals")
    cards = [c.pan for c in scenario.cards]
    if not cards:
        raise ScenarioError("a live fleet needs [[cards]] to sell on", path=scenario.path,
                            key="cards")
    amounts = [s.amount_minor for s in scenario.steps if s.do == "sale" and s.amount_minor]
    report = FleetReport(terminals, duration_s)
    address = remote.address
    proxies = None
    if rules:
        proxies = ProxyServer(remote.framing, scenario.seed)
        made = await proxies.create("fleet", "127.0.0.1:0", f"{address[0]}:{address[1]}",
                                    rules=tuple(rules))
        address = made.listen
    key = mac_key(scenario) if scenario.bank.verify_mac else None
    timeout_s = scenario.policy.response_timeout_s
    loop = asyncio.get_running_loop()
    start = loop.time()
    stop_at = start + duration_s
    interval = terminals / rate if rate else 0.0
    fleet = [_Terminal(i + 1, address, remote, key, timeout_s, report, start)
             for i in range(terminals)]
    jobs = [loop.create_task(t.run(cards, amounts or [1000], stop_at, interval,
                                   (i / rate) if rate else 0.0))
            for i, t in enumerate(fleet)]
    try:
        while not all(job.done() for job in jobs):
            if progress is not None:
                progress(min(1.0, (loop.time() - start) / duration_s), report)
            await asyncio.wait(jobs, timeout=0.25)
    finally:
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        report.duration_s = max(loop.time() - start, 1e-9)
        if proxies is not None:
            await proxies.close()
            report.proxy = proxies.summary()
    for terminal in fleet:
        for breach in judge_host(messages_from_log(terminal.log), timeout_s):
            report.breaches[breach.rule] += 1
            if len(report.examples) < 5:
                report.examples.append(f"{terminal.tid}: {breach}")
    return report


class _Terminal:
    """One load terminal: a connection, a terminal id, a STAN sequence, a message log."""

    def __init__(self, n: int, address: tuple[str, int], remote: Remote, key: bytes | None,
                 timeout_s: float, report: FleetReport, start: float) -> None:
        self.tid = f"T{n:07d}"
        self.address = address
        self.remote = remote
        self.key = key
        self.timeout_s = timeout_s
        self.report = report
        self.start = start
        self.stans = itertools.count(1)
        self.log: list[tuple[float, bool, bytes]] = []
        self._io: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._reader = FrameReader(remote.framing)
        self._answers: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._pump: asyncio.Task[None] | None = None

    def _now(self) -> float:
        return asyncio.get_running_loop().time() - self.start

    async def run(self, cards: list[str], amounts: list[int], stop_at: float,
                  interval: float, offset: float) -> None:
        loop = asyncio.get_running_loop()
        due = self.start + offset
        n = 0
        try:
            while due < stop_at:
                await asyncio.sleep(max(0.0, due - loop.time()))
                pan = cards[n % len(cards)]
                await self._sale(pan, amounts[n % len(amounts)])
                n += 1
                due = max(due + interval, loop.time()) if interval else loop.time()
        finally:
            await self._close()

    async def _sale(self, pan: str, amount: int) -> None:
        report = self.report
        stan = f"{next(self.stans) % 1_000_000:06d}"
        fields = {"t": "0200", "2": pan, "3": "000000", "4": f"{amount:012d}", "7": _F7,
                  "11": stan, "41": self.tid, "42": "MERCHANT0000001", "49": "978"}
        report.sent += 1
        sent_at = time.perf_counter()
        answer = await self._ask(fields)
        if answer is not None:
            report.answered += 1
            report.latencies_s.append(time.perf_counter() - sent_at)
            report.codes[str(answer.get("39", "??"))] += 1
            return
        report.timeouts += 1
        report.reversals += 1
        reversal = {**fields, "t": "0400", "11": f"{next(self.stans) % 1_000_000:06d}",
                    "90": original_data("0200", stan, _F7)}
        for mti in ("0400", "0401"):  # one repeat of an unanswered reversal, as robust does
            if await self._ask({**reversal, "t": mti}) is not None:
                return

    async def _ask(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        """Send; the answer, or None after the timeout (the connection lost too)."""
        frame = encode(fields, self.key)
        waiting = asyncio.get_running_loop().create_future()
        self._answers[str(fields["11"])] = waiting
        try:
            writer = await self._connection()
            framing = self.remote.framing
            writer.write(framing.encode(frame[2:], CLIENT_TPDU if framing.tpdu else None))
            self.log.append((self._now(), True, frame))
            return await asyncio.wait_for(waiting, self.timeout_s)
        except (OSError, TimeoutError):
            return None
        finally:
            self._answers.pop(str(fields["11"]), None)

    async def _connection(self) -> asyncio.StreamWriter:
        if self._io is None or self._io[1].is_closing():
            await self._close()
            self._io = await asyncio.wait_for(asyncio.open_connection(
                *self.address, ssl=self.remote.tls,
                server_hostname=self.address[0] if self.remote.tls else None),
                CONNECT_TIMEOUT_S)
            self._reader = FrameReader(self.remote.framing)
            self._pump = asyncio.get_running_loop().create_task(self._read(self._io[0]))
        return self._io[1]

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                data = await reader.read(65536)
                frames = self._reader.feed(data) if data else []
            except (OSError, FramingError):
                data = b""
            if not data:
                if self._io is not None:
                    self._io[1].close()
                return
            for frame in frames:
                internal = to_internal(frame.message)
                self.log.append((self._now(), False, internal))
                try:
                    fields = decode(internal)
                except MessageError:
                    continue
                waiting = self._answers.get(str(fields.get("11", "")))
                if waiting is not None and not waiting.done():
                    waiting.set_result(fields)

    async def _close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            self._pump = None
        if self._io is not None:
            writer, self._io = self._io[1], None
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), CONNECT_TIMEOUT_S)

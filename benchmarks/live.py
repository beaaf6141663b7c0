"""The live acquirer under load: requests per second and latency for N terminal connections.

For each N (default 1, 100, 1000), N connections on loopback each send a sale (0200, a
new STAN every time, len2 framing), wait for its answer, and send the next, for
``--seconds``. Two servers take the same load in turn, each in its own process:

- ``posemu acquirer`` (the scenario below: one card, no MAC, ``processing_s = 0``, the
  trace hashed but not written): the host core, ledger, duplicate check, trace and
  outside oracle (a simulated link per connection too, which frames skip while no
  network fault is in force);
- a minimal asyncio server with the same framing that decodes each request and answers
  it 00 (posemu's fast codec, no ledger, no faults, no trace): what a fixed-answer
  simulator costs.

Then, for each N, an open-loop load on both servers: N connections sending on a fixed
schedule (``--open-rate`` requests/s in all, default 1,000, spread evenly), whether or
not the last request was answered; each latency counts from when its request was due,
as a terminal sees it (the first fifth of the run is not counted: warm-up).

Printed: both servers' requests per second and latency (p50, p99) at saturation and
open loop, the ratio posemu / minimal at saturation (target >= 0.5 at N = 100) and
posemu's open-loop p99 (target <= 10 ms at N = 100; at saturation, with one request in
flight per connection, any server's p99 is queueing, about N / throughput). The load
generator shares the machine with the server: run it on an otherwise idle machine.

    .venv/bin/python benchmarks/live.py [--terminals 1,100,1000] [--seconds S] [--open-rate R]
    .venv/bin/python benchmarks/live.py --minimal-server     (the baseline, on its own)

With ``--fleet``, the load is ``posemu fleet --load-only --acquirer`` instead (posemu's load
terminals, each its own connection, terminal id and STAN sequence, as fast as answers
come), against ``posemu acquirer`` on loopback, three times for each N: one sale a
second per terminal, the same with the link down both ways for a while (``network.down``
through the fleet's fault proxy: each sale lost is a timeout of 1 s and a reversal),
and as fast as answers come. Printed: answered sales per second, latency p50/p90/p99,
timeouts, reversals and host-rule breaches.

    .venv/bin/python benchmarks/live.py --fleet [--terminals 100,1000] [--seconds S]

With ``--models``, ``posemu fleet --acquirer`` (the scenario's terminal models, each
its own connection; one sale each, all due at the same instant) against ``posemu
acquirer``: wall time, answers and latency percentiles.

    .venv/bin/python benchmarks/live.py --models [--terminals 100,1000] [--speed 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import machine, verdict
from devices.iso8583.message import decode, encode

RATIO_TARGET = 0.5
P99_TARGET_MS = 10.0
TARGET_N = 100
POSEMU = Path(sys.executable).with_name("posemu")
SCENARIO = """\
format = 1
name = "live load"
[bank]
processing_s = 0
verify_mac = false
[[cards]]
id = "load"
pan = "4111111111111111"
balance = "99999999.00"
"""
START_TIMEOUT_S = 30.0
OPEN_RATE = 1000.0
"""The open-loop load by default, requests/s in all: 10/s per connection at N = 100
(a shop's terminal sends a sale every half minute at best), about a tenth of what the
minimal server answers at saturation on a quiet 2-core machine."""
OPEN_WARM_UP = 0.2
"""The share of an open-loop run whose requests are sent but not counted (connections
and caches warming up)."""
OPEN_GRACE_S = 2.0
"""How long an open-loop terminal waits for its last answers once it stops sending."""


# ------------------------------------------------------------------ the baseline


class _Minimal(asyncio.Protocol):
    """Decode each len2 frame and answer it 00: the least an ISO 8583 host does."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 2:
            n = int.from_bytes(self.buffer[:2], "big")
            if len(self.buffer) < 2 + n:
                return
            frame, self.buffer = self.buffer[:2 + n], self.buffer[2 + n:]
            fields = decode(frame)
            answer = {"t": "0210", **{k: fields[k] for k in ("3", "4", "7", "11", "41")
                                      if k in fields}, "39": "00"}
            self.transport.write(encode(answer))


async def _serve_minimal() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Minimal, "127.0.0.1", 0, backlog=2048)
    print(f"LISTEN 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the benchmark closes stdin
    server.close()


# ------------------------------------------------------------------ the load


def _sale(tid: str, stan: int) -> bytes:
    return encode({"t": "0200", "2": "4111111111111111", "3": "000000", "4": "000000000100",
                   "7": "1122090000", "11": f"{stan:06d}", "41": tid, "42": "MERCHANT0000001"})


async def _terminal(address: tuple[str, int], tid: str, stop_at: float,
                    latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection(*address)
    stan = 0
    try:
        while time.perf_counter() < stop_at:
            stan = stan % 999_999 + 1
            frame = _sale(tid, stan)
            began = time.perf_counter()
            writer.write(frame)
            head = await reader.readexactly(2)
            await reader.readexactly(int.from_bytes(head, "big"))
            latencies.append(time.perf_counter() - began)
    finally:
        writer.close()


async def _load(address: tuple[str, int], n: int, seconds: float) -> tuple[float, list[float]]:
    latencies: list[float] = []
    began = time.perf_counter()
    stop_at = began + seconds
    await asyncio.gather(*(_terminal(address, f"T{i:07d}", stop_at, latencies)
                           for i in range(n)))
    return len(latencies) / (time.perf_counter() - began), latencies


async def _paced(address: tuple[str, int], tid: str, interval: float, first: float,
                 counted_from: float, stop_at: float, latencies: list[float]) -> int:
    """One terminal sending a sale every ``interval`` s from ``first`` until ``stop_at``
    (open loop: on time whether or not the last one was answered); each answer's latency
    counts from when its sale was due (those due before ``counted_from``, the warm-up, are
    not counted). The number left unanswered."""
    reader, writer = await asyncio.open_connection(*address)
    due_times: deque[float] = deque()

    async def answers() -> None:
        while True:
            head = await reader.readexactly(2)
            await reader.readexactly(int.from_bytes(head, "big"))
            due = due_times.popleft()
            if due >= counted_from:
                latencies.append(time.perf_counter() - due)

    reading = asyncio.create_task(answers())
    stan, due = 0, first
    try:
        while due < stop_at:
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            stan = stan % 999_999 + 1
            due_times.append(due)
            writer.write(_sale(tid, stan))
            due += interval
        give_up = time.perf_counter() + OPEN_GRACE_S
        while due_times and time.perf_counter() < give_up and not reading.done():
            await asyncio.sleep(0.01)
        return len(due_times)
    finally:
        reading.cancel()
        writer.close()


async def _open_load(address: tuple[str, int], n: int, seconds: float, rate: float,
                     ) -> tuple[float, list[float], int]:
    """``n`` connections offering ``rate`` sales/s in all, evenly spread: (answers per
    second, latencies, unanswered)."""
    latencies: list[float] = []
    interval = n / rate
    began = time.perf_counter() + 0.1  # every connection opened before the first is due
    counted_from = began + seconds * OPEN_WARM_UP
    stop_at = began + seconds
    lost = await asyncio.gather(*(_paced(address, f"T{i:07d}", interval,
                                         began + i * interval / n, counted_from, stop_at,
                                         latencies)
                                  for i in range(n)))
    return len(latencies) / (stop_at - counted_from), latencies, sum(lost)


def _start(command: list[str | Path]) -> tuple[subprocess.Popen[str], tuple[str, int]]:
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "LISTEN":
        proc.kill()
        raise RuntimeError(f"{command[0]} did not start")
    host, port = line[1].rsplit(":", 1)
    return proc, (host, int(port))


def measure(server: str, n: int, seconds: float, rate: float | None = None,
            ) -> tuple[float, float, float, int]:
    """(requests per second, p50 ms, p99 ms, unanswered) of ``server`` ("posemu" or
    "minimal"): at saturation (each connection sends when answered), or with ``rate``
    sales per second offered in all (open loop)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "load.toml"
        path.write_text(SCENARIO)
        command: list[str | Path] = (
            [POSEMU, "acquirer", path, "--json"] if server == "posemu"
            else [sys.executable, "-m", "benchmarks.live", "--minimal-server"])
        proc, address = _start(command)
        try:
            if rate is None:
                answered, latencies = asyncio.run(_load(address, n, seconds))
                lost = 0
            else:
                answered, latencies, lost = asyncio.run(_open_load(address, n, seconds, rate))
        finally:
            if server == "posemu":
                proc.terminate()
            proc.communicate(timeout=START_TIMEOUT_S)  # closes stdin: the minimal one ends
    if not latencies:
        return 0.0, 0.0, 0.0, lost
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return answered, cuts[49] * 1000, cuts[98] * 1000, lost


FLEET = """\
format = 1
name = "live fleet load"
[terminal]
response_timeout_s = 1
[bank]
verify_mac = false
[[cards]]
id = "load"
pan = "4111111111111111"
balance = "99999999.00"
[[steps]]
id = "s1"
do = "sale"
card = "load"
amount = "1.00"
"""


def measure_fleet(n: int, seconds: float, rate: float, down: bool) -> dict[str, Any]:
    """``posemu fleet --load-only --acquirer`` with ``n`` terminals at ``rate`` sales/s (0:
    as fast as answers come) against ``posemu acquirer``; with ``down``, the link down both
    ways for a while (``network.down`` through the fleet's proxy). The fleet's JSON report."""
    with tempfile.TemporaryDirectory() as tmp:
        bank, fleet = Path(tmp) / "bank.toml", Path(tmp) / "fleet.toml"
        bank.write_text(SCENARIO)
        window = min(0.5, seconds * 0.3)
        faults = (f'[[faults]]\nfault = "network.down"\nat_s = {seconds * 0.3:.3f}\n'
                  f"for_s = {window:.3f}\n") if down else ""
        fleet.write_text(FLEET + faults)
        proc, address = _start([POSEMU, "acquirer", bank, "--json"])
        try:
            done = subprocess.run(
                [POSEMU, "fleet", fleet, "--terminals", str(n), "--load-only", "--acquirer",
                 f"tcp://{address[0]}:{address[1]}", "--rate", f"{rate:g}", "--duration",
                 str(seconds), "--json"], capture_output=True, text=True, check=False,
                timeout=seconds + 60)
        finally:
            proc.terminate()
            proc.communicate(timeout=START_TIMEOUT_S)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"posemu fleet failed: {done.stderr.strip()}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


MODELS = """\
format = 1
name = "live fleet of terminal models"
[[cards]]
id = "load"
pan = "4111111111111111"
balance = "99999999.00"
[[steps]]
id = "s1"
do = "sale"
card = "load"
amount = "1.00"
"""


def measure_models(n: int, speed: float) -> tuple[dict[str, Any], float]:
    """``posemu fleet --acquirer`` (the terminal models, one sale each, ``speed`` simulated
    seconds per real one) with ``n`` terminals against ``posemu acquirer``: the fleet's
    JSON report and the command's wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        bank, fleet = Path(tmp) / "bank.toml", Path(tmp) / "fleet.toml"
        bank.write_text(SCENARIO.replace("verify_mac = false\n", ""))  # the terminal MACs
        fleet.write_text(MODELS)
        proc, address = _start([POSEMU, "acquirer", bank, "--json"])
        try:
            started = time.perf_counter()
            done = subprocess.run(
                [POSEMU, "fleet", fleet, "--terminals", str(n), "--acquirer",
                 f"tcp://{address[0]}:{address[1]}", "--speed", f"{speed:g}", "--json"],
                capture_output=True, text=True, check=False, timeout=120)
            wall = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.communicate(timeout=START_TIMEOUT_S)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"posemu fleet failed: {done.stderr.strip()}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report, wall


def models_main(counts: list[int], speed: float) -> None:
    """``--models``: the terminal models' fleet, one sale each, all due at once."""
    print(machine())
    print(f"posemu fleet --acquirer (terminal models, one sale each, --speed {speed:g}) "
          "against posemu acquirer, len2")
    for n in counts:
        report, wall = measure_models(n, speed)
        lat = report["latency_ms"]
        print(f"N = {n}: {wall:.2f} s wall, {report['duration_s']:.2f} s running, "
              f"{report['answered']}/{report['requests_sent']} answered, end states "
              f"{report['end_states']}, p50 {lat['p50']:.2f} ms, p90 {lat['p90']:.2f} ms, "
              f"p99 {lat['p99']:.2f} ms, breaches {report['breaches'] or 'none'}")


def fleet_main(counts: list[int], seconds: float) -> None:
    """``--fleet``: the live fleet's numbers: one sale a second per terminal (clean, and
    with the link down a while), then as fast as answers come."""
    print(machine())
    print(f"{seconds:g} s of selling per run; posemu fleet --load-only --acquirer against posemu "
          "acquirer, len2, response timeout 1 s")
    for n in counts:
        for label, rate, down in (("1/s each", n, False), ("1/s each, link down", n, True),
                                  ("as fast as answered", 0, False)):
            report = measure_fleet(n, seconds, rate, down)
            lat = report["latency_ms"]
            print(f"N = {n}, {label}: {report['throughput_per_s']:,.0f} sales/s answered, "
                  f"p50 {lat['p50']:.2f} ms, p90 {lat['p90']:.2f} ms, p99 {lat['p99']:.2f} ms, "
                  f"{report['timeouts']} timeouts, {report['reversals']} reversals, "
                  f"breaches {report['breaches'] or 'none'}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--terminals", default="1,100,1000", metavar="N,N,...")
    parser.add_argument("--seconds", type=float, default=3.0, metavar="S")
    parser.add_argument("--minimal-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--open-rate", type=float, default=OPEN_RATE, metavar="R",
                        help="requests/s offered in all by the open-loop load")
    parser.add_argument("--fleet", action="store_true",
                        help="measure posemu fleet --load-only --acquirer instead (clean and "
                             "with faults)")
    parser.add_argument("--models", action="store_true",
                        help="measure posemu fleet --acquirer (the terminal models) instead")
    parser.add_argument("--speed", type=float, default=20.0, metavar="X",
                        help="with --models: simulated seconds per real second")
    args = parser.parse_args(argv)
    if not args.open_rate > 0:
        parser.error(f"--open-rate must be more than 0, not {args.open_rate:g}")
    if args.models:
        models_main([int(n) for n in args.terminals.split(",")], args.speed)
        return
    if args.fleet:
        fleet_main([int(n) for n in args.terminals.split(",")], args.seconds)
        return
    if args.minimal_server:
        asyncio.run(_serve_minimal())
        return
    counts = [int(n) for n in args.terminals.split(",")]
    print(machine())
    print(f"{args.seconds:g} s per server, N and load; len2 framing")
    at_target: tuple[float, float] | None = None
    for n in counts:
        minimal = measure("minimal", n, args.seconds)
        posemu = measure("posemu", n, args.seconds)
        ratio = posemu[0] / minimal[0] if minimal[0] else 0.0
        print(f"N = {n}, at saturation (each connection sends again when answered):")
        print(f"  minimal asyncio server: {minimal[0]:,.0f} requests/s, p50 {minimal[1]:.2f} "
              f"ms, p99 {minimal[2]:.2f} ms")
        print(f"  posemu acquirer: {posemu[0]:,.0f} requests/s, p50 {posemu[1]:.2f} ms, "
              f"p99 {posemu[2]:.2f} ms")
        print(f"  ratio posemu / minimal: {ratio:.2f}; added latency p50 "
              f"{posemu[1] - minimal[1]:.2f} ms, p99 {posemu[2] - minimal[2]:.2f} ms")
        offered = args.open_rate
        print(f"N = {n}, open loop ({offered:,.0f} requests/s offered in all, "
              f"{offered / n:,.1f}/s per connection, on time whether answered or not):")
        open_minimal = measure("minimal", n, args.seconds, offered)
        open_posemu = measure("posemu", n, args.seconds, offered)
        for label, got in (("minimal asyncio server", open_minimal),
                           ("posemu acquirer", open_posemu)):
            print(f"  {label}: {got[0]:,.0f} answers/s, p50 {got[1]:.2f} ms, "
                  f"p99 {got[2]:.2f} ms, {got[3]} unanswered")
        if n == TARGET_N or at_target is None:
            # unanswered requests have no latency: any of them fails the target
            at_target = (ratio, open_posemu[2] if not open_posemu[3] else math.inf)
    if at_target is not None:
        where = TARGET_N if TARGET_N in counts else counts[-1]
        print(verdict(f"throughput ratio at N = {where}", at_target[0], RATIO_TARGET,
                      at_least=True))
        print(verdict(f"posemu p99 (ms) at N = {where}, open loop", at_target[1],
                      P99_TARGET_MS, at_least=False))


if __name__ == "__main__":
    main()

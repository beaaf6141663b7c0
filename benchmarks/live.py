"""The live acquirer under load: requests per second and latency for N terminal connections.

For each N (default 1, 100, 1000), N connections on loopback each send a sale (0200, a
new STAN every time, len2 framing), wait for its answer, and send the next, for
``--seconds``. Two servers take the same load in turn, each in its own process:

- ``posemu acquirer`` (the scenario below: one card, no MAC, ``processing_s = 0``, the
  trace hashed but not written): the host core, ledger, duplicate check, simulated link
  per connection, trace and outside oracle;
- a minimal asyncio server with the same framing that decodes each request and answers
  it 00 (posemu's fast codec, no ledger, no faults, no trace): what a fixed-answer
  simulator costs.

Printed: both servers' requests per second and latency (p50, p99), the ratio posemu /
minimal (target >= 0.5 at N = 100) and posemu's p99 (target <= 10 ms at N = 100). The
load generator shares the machine with the server: run it on an otherwise idle machine.

    .venv/bin/python benchmarks/live.py [--terminals 1,100,1000] [--seconds S]
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
import statistics
import subprocess
import sys
import tempfile
import time
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


async def _terminal(address: tuple[str, int], tid: str, stop_at: float,
                    latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection(*address)
    stan = 0
    try:
        while time.perf_counter() < stop_at:
            stan = stan % 999_999 + 1
            frame = encode({"t": "0200", "2": "4111111111111111", "3": "000000",
                            "4": "000000000100", "7": "1122090000", "11": f"{stan:06d}",
                            "41": tid, "42": "MERCHANT0000001"})
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


def _start(command: list[str | Path]) -> tuple[subprocess.Popen[str], tuple[str, int]]:
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "LISTEN":
        proc.kill()
        raise RuntimeError(f"{command[0]} did not start")
    host, port = line[1].rsplit(":", 1)
    return proc, (host, int(port))


def measure(server: str, n: int, seconds: float) -> tuple[float, float, float]:
    """(requests per second, p50 ms, p99 ms) of ``server`` ("posemu" or "minimal")."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "load.toml"
        path.write_text(SCENARIO)
        command: list[str | Path] = (
            [POSEMU, "acquirer", path, "--json"] if server == "posemu"
            else [sys.executable, "-m", "benchmarks.live", "--minimal-server"])
        proc, address = _start(command)
        try:
            rate, latencies = asyncio.run(_load(address, n, seconds))
        finally:
            if server == "posemu":
                proc.terminate()
            proc.communicate(timeout=START_TIMEOUT_S)  # closes stdin: the minimal one ends
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return rate, cuts[49] * 1000, cuts[98] * 1000


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
    parser.add_argument("--fleet", action="store_true",
                        help="measure posemu fleet --load-only --acquirer instead (clean and "
                             "with faults)")
    parser.add_argument("--models", action="store_true",
                        help="measure posemu fleet --acquirer (the terminal models) instead")
    parser.add_argument("--speed", type=float, default=20.0, metavar="X",
                        help="with --models: simulated seconds per real second")
    args = parser.parse_args(argv)
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
    print(f"{args.seconds:g} s per server and N; len2 framing, one request in flight per "
          "connection")
    at_target: tuple[float, float] | None = None
    for n in counts:
        minimal = measure("minimal", n, args.seconds)
        posemu = measure("posemu", n, args.seconds)
        ratio = posemu[0] / minimal[0] if minimal[0] else 0.0
        print(f"N = {n}:")
        print(f"  minimal asyncio server: {minimal[0]:,.0f} requests/s, p50 {minimal[1]:.2f} "
              f"ms, p99 {minimal[2]:.2f} ms")
        print(f"  posemu acquirer: {posemu[0]:,.0f} requests/s, p50 {posemu[1]:.2f} ms, "
              f"p99 {posemu[2]:.2f} ms")
        print(f"  ratio posemu / minimal: {ratio:.2f}; added latency p50 "
              f"{posemu[1] - minimal[1]:.2f} ms, p99 {posemu[2] - minimal[2]:.2f} ms")
        if n == TARGET_N or at_target is None:
            at_target = (ratio, posemu[2])
    if at_target is not None:
        where = TARGET_N if TARGET_N in counts else counts[-1]
        print(verdict(f"throughput ratio at N = {where}", at_target[0], RATIO_TARGET,
                      at_least=True))
        print(verdict(f"posemu p99 (ms) at N = {where}", at_target[1], P99_TARGET_MS,
                      at_least=False))


if __name__ == "__main__":
    main()

"""Helpers of the fault proxy's tests: ``posemu proxy`` as a process, posemu's acquirer in
a thread, and the proxy's trace read back. Every wait is bounded."""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devices.net.framing import Framing
from emulator.live.acquirer import LiveAcquirer, LiveResult, Running
from emulator.scenario.load import scenario_from_dict
from tests.support import POSEMU

WAIT_S = 15.0
CARDS = [{"id": "dave", "pan": "4012888888881881", "balance": "80.00"}]


def bank_data(**bank: Any) -> dict[str, Any]:
    """A clean bank: no MAC, answering at once."""
    return {"format": 1, "name": "bank behind the proxy", "cards": CARDS,
            "bank": {"verify_mac": False, "processing_s": 0.0, "in_doubt_after_s": 5, **bank}}


@contextmanager
def acquirer(data: dict[str, Any] | None = None) -> Iterator[Running]:
    run = Running(LiveAcquirer(scenario_from_dict(data or bank_data()), Framing.parse("len2")))
    with run:
        yield run


def stop_acquirer(run: Running) -> LiveResult:
    result: LiveResult = run.stop()
    return result


class ProxyProcess:
    """``posemu proxy`` running: its addresses, then its summary once stopped."""

    def __init__(self, upstream: tuple[str, int], tmp_path: Path, *extra: str) -> None:
        self.trace_path = tmp_path / "proxy.jsonl"
        self.process = subprocess.Popen(
            [POSEMU, "proxy", "--listen", "127.0.0.1:0", "--upstream",
             f"{upstream[0]}:{upstream[1]}", "--api", "127.0.0.1:0", "--json",
             "--trace", str(self.trace_path), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        self.listen = self._address("LISTEN")
        self.api = self._address("API")

    def _address(self, word: str) -> tuple[str, int]:
        stdout = self.process.stdout
        assert stdout is not None
        text = b""
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while not text.endswith(b"\n"):  # byte by byte: nothing read ahead is lost
                if not selector.select(WAIT_S):
                    self.process.kill()
                    raise AssertionError(f"posemu proxy printed no {word} line")
                byte = stdout.read(1)
                if not byte:
                    raise AssertionError(f"posemu proxy ended before {word}: "
                                         f"{self.process.communicate(timeout=WAIT_S)[1]!r}")
                text += byte
        line = text.decode().split()
        assert line[:1] == [word], line
        host, _, port = line[1].rpartition(":")
        return host, int(port)

    def stop(self) -> dict[str, Any]:
        """SIGTERM; the summary (``--json``)."""
        self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=WAIT_S)
        assert self.process.returncode == 0, err
        summary: dict[str, Any] = json.loads(out)
        return summary

    def trace(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.trace_path.read_text().splitlines()]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=WAIT_S)


@contextmanager
def proxy(upstream: tuple[str, int], tmp_path: Path, *extra: str) -> Iterator[ProxyProcess]:
    running = ProxyProcess(upstream, tmp_path, *extra)
    try:
        yield running
    finally:
        running.kill()


def frames(trace: list[dict[str, Any]]) -> list[tuple[str, str, list[str]]]:
    """(direction, MTI, what the proxy did) of each frame in the trace."""
    return [(e["direction"], e.get("mti", "?"), e["did"]) for e in trace
            if e["event"] == "proxy.frame"]

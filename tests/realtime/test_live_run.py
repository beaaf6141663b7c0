"""posemu's terminal over TCP against the live acquirer: seed stories, judged by both sides.

The acquirer serves in-process (a thread); the terminal is another process in the first
test, ``posemu run FILE --acquirer tcp://127.0.0.1:PORT --speed 20``, and runs in-process
(``run_remote``, the same code) in the others to save the start-up: its simulated parts
(card reader, printer, its own timeouts) run 20 times faster than real time, the wire and
the bank are real. Each story's bank fault is the acquirer's: its answer comes 1 s late, after
the terminal's timeout (4 simulated seconds, 0.2 s).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devices.net.framing import Framing
from emulator.live.acquirer import LiveAcquirer, LiveResult, Running
from emulator.live.client import run_remote
from emulator.scenario.load import load_scenario, scenario_from_dict
from tests.support import POSEMU

TIMEOUT_S = 30
CARDS = [{"id": "dave", "pan": "4012888888881881", "balance": "80.00"}]
LATE = {"fault": "bank.timeout", "on": "bank.request_received", "delay_s": 1.0, "count": 1}


def bank(**extra: Any) -> dict[str, Any]:
    """The acquirer's side of a story: the cards, the bank, its fault."""
    return {"format": 1, "name": "story bank", "cards": CARDS, "faults": [LATE],
            "bank": {"processing_s": 0.0, "in_doubt_after_s": 0.6}, **extra}


def terminal(tmp_path: Path, profile: str, do: str = "sale", **knobs: Any) -> Path:
    """The terminal's side: the cards, the profile, one sale (or refund) of 30.00."""
    lines = ["format = 1", 'name = "story terminal"', "[terminal]", f'profile = "{profile}"',
             "response_timeout_s = 4", *(f"{k} = {json.dumps(v)}" for k, v in knobs.items()),
             "[[cards]]", 'id = "dave"', 'pan = "4012888888881881"', 'balance = "80.00"',
             "[[steps]]", 'id = "s1"', f'do = "{do}"', 'card = "dave"', 'amount = "30.00"']
    path = tmp_path / f"terminal-{profile}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def acquirer() -> Iterator[Any]:
    runs: list[Running] = []

    def start(data: dict[str, Any], framing: str = "len2") -> Running:
        run = Running(LiveAcquirer(scenario_from_dict(data), Framing.parse(framing)))
        runs.append(run.__enter__())
        return run

    yield start
    for run in runs:
        run.stop()


def run_terminal(path: Path, address: tuple[str, int], query: str = "",
                 *, process: bool = False) -> dict[str, Any]:
    """The terminal's JSON result: from ``posemu run`` in another process, or in-process."""
    url = f"tcp://{address[0]}:{address[1]}{query}"
    if not process:
        return run_remote(load_scenario(path), url, speed=20).to_json()
    done = subprocess.run([POSEMU, "run", path, "--acquirer", url, "--speed", "20", "--json"],
                          capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert done.returncode in (0, 1), done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def kinds(result: LiveResult) -> list[str]:
    return [a.kind for a in result.anomalies]


def test_slip_says_unpaid_reproduced_with_naive(acquirer, tmp_path):
    run = acquirer(bank())
    seen = run_terminal(terminal(tmp_path, "naive", request_retries=0), run.address,
                        process=True)
    bank_side = run.stop()
    assert seen["steps"][0]["end_state"] == "declined"  # what the terminal showed
    assert kinds(bank_side) == ["in_doubt"]  # the bank holds 30.00 nobody will reverse
    assert bank_side.balances_minor["dave"] == 5000


def test_slip_says_unpaid_prevented_with_robust(acquirer, tmp_path):
    run = acquirer(bank())
    seen = run_terminal(terminal(tmp_path, "robust", request_retries=0), run.address)
    bank_side = run.stop()
    assert seen["steps"][0]["end_state"] == "declined"
    assert seen["verdict"] == "pass"
    assert kinds(bank_side) == []  # reversed in time
    assert bank_side.balances_minor["dave"] == 8000


def test_fresh_retry_charges_twice(acquirer, tmp_path):
    run = acquirer(bank(bank={"processing_s": 0.0, "in_doubt_after_s": 5}))
    seen = run_terminal(terminal(tmp_path, "robust", retry_as_repeat=False), run.address)
    bank_side = run.stop()
    assert seen["steps"][0]["end_state"] == "approved"  # the terminal saw one approval
    assert kinds(bank_side) == ["duplicate_charge"]
    assert bank_side.balances_minor["dave"] == 2000


def test_a_repeat_with_the_same_stan_is_charged_once(acquirer, tmp_path):
    run = acquirer(bank(bank={"processing_s": 0.0, "in_doubt_after_s": 5}), "ascii4+self")
    seen = run_terminal(terminal(tmp_path, "robust"), run.address, "?framing=ascii4+self")
    bank_side = run.stop()
    assert seen["steps"][0]["end_state"] == "approved"
    assert kinds(bank_side) == []
    assert bank_side.balances_minor["dave"] == 5000


SYSTEM_ERROR = {"fault": "bank.respond", "at_s": 0, "code": "96", "posted": True}


def test_refund_shows_system_error_reproduced_with_naive(acquirer, tmp_path):
    run = acquirer(bank(faults=[SYSTEM_ERROR]))
    seen = run_terminal(terminal(tmp_path, "naive", "refund"), run.address)
    bank_side = run.stop()
    assert seen["steps"][0]["end_state"] == "refund_failed"  # what the terminal showed
    assert set(kinds(bank_side)) == {"refund_shown_failed_but_credited"}
    assert bank_side.balances_minor["dave"] > 8000 + 3000  # credited more than once


def test_refund_shows_system_error_prevented_with_robust(acquirer, tmp_path):
    run = acquirer(bank(faults=[SYSTEM_ERROR]))
    seen = run_terminal(terminal(tmp_path, "robust", "refund"), run.address)
    bank_side = run.stop()
    assert seen["steps"][0]["end_state"] == "refunded"  # it asked the status: credited
    assert kinds(bank_side) == []
    assert bank_side.balances_minor["dave"] == 11000

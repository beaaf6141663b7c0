"""``posemu fleet FILE --terminals N --acquirer URL``: N of the scenario's terminal models
(posemu's firmware, naive or robust) in one real-time loop against posemu's acquirer on
127.0.0.1, each with its own connection, terminal id and STAN sequence, each judged from
its own side. Seed story 1 (a paper jam as the approved receipt starts, cleared 10
simulated seconds later), 20 simulated seconds per real second."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from emulator.engine.trace import Event
from emulator.live.acquirer import Running
from emulator.live.client import parse_url
from emulator.live.model_fleet import ModelFleetReport, run_model_fleet
from emulator.scenario.load import scenario_from_dict
from tests.realtime.proxy_support import WAIT_S, acquirer, stop_acquirer
from tests.support import POSEMU

CARD = {"id": "alice", "pan": "4111111111111111", "balance": "1000.00"}
BANK = {"format": 1, "name": "bank", "cards": [CARD], "bank": {"processing_s": 0.0}}
N = 20


def story(profile: str, expect: list[str]) -> dict[str, Any]:
    """The paper-jam story's terminal: one sale of 12.50, the printer jammed for 10 s."""
    return {"format": 1, "name": f"paper jam, {profile}", "seed": 7,
            "terminal": {"profile": profile}, "cards": [CARD],
            "steps": [{"id": "s1", "do": "sale", "card": "alice", "amount": "12.50"}],
            "faults": [{"fault": "printer.paper_jam", "on": "printer.job_started",
                        "for_s": 10}],
            "expect": {"anomalies": expect}}


def fleet(profile: str, expect: list[str]) -> tuple[ModelFleetReport, list[dict[str, Any]]]:
    """The fleet's report and the host's postings."""
    with acquirer(BANK) as bank:
        connections = heard(bank, "live.connected")
        url = f"tcp://{bank.address[0]}:{bank.address[1]}"
        report = run_model_fleet(scenario_from_dict(story(profile, expect)), parse_url(url),
                                 N, speed=20)
        postings = stop_acquirer(bank).to_json()["postings"]
    assert len(connections) == N  # a connection each
    return report, postings


def heard(bank: Running, name: str) -> list[Event]:
    """The acquirer's events ``name`` from now on (its trace streams, keeping none)."""
    events: list[Event] = []
    bank.acquirer.trace.subscribe(name, events.append)
    return events


def ids(n: int) -> set[str]:
    return {f"T{k:07d}" for k in range(1, n + 1)}


def test_naive_terminals_each_charge_without_a_receipt():
    report, postings = fleet("naive", ["charged_no_receipt"])
    assert report.end_states == {"charged_no_receipt": N}
    assert report.anomalies == {"charged_no_receipt": N}
    assert {a["terminal"] for a in report.first_anomalies} == ids(N)  # one on each terminal
    assert report.passed  # the anomaly the story expects, on every terminal
    assert report.breaches == {}
    # the host saw N terminals, each its own id and STAN sequence: one sale each
    assert sorted(p["terminal_id"] for p in postings) == sorted(ids(N))
    assert len({(p["terminal_id"], p["stan"]) for p in postings}) == N
    assert report.sent == report.answered == N
    assert report.codes == {"00": N}


def test_robust_terminals_hold_the_sale_and_reprint():
    report, postings = fleet("robust", [])
    assert report.end_states == {"approved": N}
    assert report.anomalies == {}
    assert report.passed
    assert {p["terminal_id"] for p in postings} == ids(N)
    assert not any(p["reversed"] for p in postings)


def test_a_terminal_expecting_what_did_not_happen_fails_the_fleet():
    report, _ = fleet("robust", ["charged_no_receipt"])  # robust prevents it
    assert not report.passed
    assert report.to_json()["terminals_failed"] == N
    assert report.failures[0].startswith("T0000001: anomalies:")


@pytest.fixture
def story_file(tmp_path: Path) -> Path:
    lines = ["format = 1", 'name = "paper jam"', "[terminal]", 'profile = "naive"',
             "[[cards]]", 'id = "alice"', 'pan = "4111111111111111"', 'balance = "1000.00"',
             "[[steps]]", 'id = "s1"', 'do = "sale"', 'card = "alice"', 'amount = "12.50"',
             "[[faults]]", 'fault = "printer.paper_jam"', 'on = "printer.job_started"',
             "for_s = 10", "[expect]", 'anomalies = ["charged_no_receipt"]']
    path = tmp_path / "story.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_command_line_runs_the_models_and_reports(story_file):
    with acquirer(BANK) as bank:
        done = subprocess.run(
            [POSEMU, "fleet", story_file, "--terminals", "3", "--acquirer",
             f"tcp://{bank.address[0]}:{bank.address[1]}", "--speed", "20", "--json"],
            capture_output=True, text=True, timeout=WAIT_S, check=False)
        stop_acquirer(bank)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["end_states"] == {"charged_no_receipt": 3}
    assert report["verdict"] == "pass"
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p99"]


@pytest.mark.parametrize(("extra", "says"), [
    (["--rate", "5"], "--rate and --duration need --load-only"),
    (["--speed", "0"], "--speed must be more than 0"),
    (["--terminals", "1001"], "--terminals must be 1 to 1,000 with --acquirer"),
    (["--trace", "t.jsonl"], "--trace does not apply with --acquirer"),
    (["--load-only", "--shared-connection"], "do not apply with --load-only"),
])
def test_bad_flags_are_refused(story_file, extra, says):
    done = subprocess.run([POSEMU, "fleet", story_file, "--terminals", "2", "--acquirer",
                           "tcp://127.0.0.1:9", *extra],
                          capture_output=True, text=True, timeout=WAIT_S, check=False)
    assert done.returncode == 2
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_terminals_sharing_one_connection_each_get_their_own_answers():
    with acquirer(BANK) as bank:
        connections = heard(bank, "live.connected")
        url = f"tcp://{bank.address[0]}:{bank.address[1]}"
        report = run_model_fleet(scenario_from_dict(story("naive", ["charged_no_receipt"])),
                                 parse_url(url), N, speed=20, shared=True)
        side = stop_acquirer(bank).to_json()
    assert len(connections) == 1
    assert report.end_states == {"charged_no_receipt": N}
    assert report.passed
    assert report.breaches == {}
    assert report.sent == report.answered == N  # each answer reached the terminal it names
    assert len({(p["terminal_id"], p["stan"]) for p in side["postings"]}) == N


def test_answers_dropped_on_posemus_side_are_repeated_and_charged_once():
    data = story("robust", [])
    data["faults"] = [{"fault": "network.drop", "direction": "to_terminal", "at_s": 0,
                       "count": 2}]
    data["terminal"]["response_timeout_s"] = 10  # 0.5 s real
    with acquirer(BANK) as bank:
        url = f"tcp://{bank.address[0]}:{bank.address[1]}"
        report = run_model_fleet(scenario_from_dict(data), parse_url(url), 5, speed=20)
        side = stop_acquirer(bank)
    assert report.end_states == {"approved": 5}
    assert report.breaches == {}
    assert report.sent > 5  # the two terminals whose answer was lost asked again
    assert report.sent - report.answered == 2  # the two answers lost; every other came
    assert len(side.postings) == 5  # each charged once
    assert side.anomalies == []

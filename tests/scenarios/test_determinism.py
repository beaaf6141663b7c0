"""Same scenario, same seed: the same trace, byte for byte, in any interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from emulator import load_scenario, run_scenario
from emulator.scenario.load import scenario_from_dict
from tests.support import JAM, POSEMU, ROOT

MULTI_FAULT = """\
format = 1
name = "Several faults triggered by events"
seed = 3

[network]
latency_s = 0.1
jitter_s = 0.05

[[cards]]
id = "alice"
pan = "4111111111111111"
balance = "250.00"

[[cards]]
id = "bob"
pan = "5500005555555559"
balance = "100.00"

[[steps]]
id = "s1"
do = "sale"
card = "alice"
amount = "12.50"

[[steps]]
id = "s2"
at_s = 200
do = "sale"
card = "bob"
amount = "20.00"

[[steps]]
id = "r1"
at_s = 400
do = "refund"
card = "alice"
amount = "5.00"

[[faults]]
fault = "network.drop"
on = "terminal.request_sent"
direction = "to_terminal"

[[faults]]
fault = "printer.paper_jam"
on = "printer.job_started"
nth = 2
for_s = 30

[[faults]]
fault = "network.duplicate"
on = "bank.request_received"
nth = 3
for_s = 5
"""


@pytest.fixture
def multi_fault(tmp_path: Path) -> Path:
    path = tmp_path / "multi_fault.toml"
    path.write_text(MULTI_FAULT, encoding="utf-8")
    return path


def jam_with_jitter(seed: int) -> dict[str, Any]:
    with JAM.open("rb") as f:
        data = tomllib.load(f)
    data["seed"] = seed
    data["network"] = {"jitter_s": 0.05}
    return data


def hashes_in_fresh_interpreter(hashseed: str, *paths: Path) -> list[str]:
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    proc = subprocess.run(
        [str(POSEMU), "run", "--json", *map(str, paths)], capture_output=True, text=True,
        env=env, check=False, timeout=60, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line)["trace_sha256"] for line in proc.stdout.splitlines()]


def test_trace_hash_is_the_same_in_fresh_interpreters_whatever_the_hash_seed(
    multi_fault: Path,
) -> None:
    runs = {
        seed: hashes_in_fresh_interpreter(seed, JAM, multi_fault)
        for seed in ("0", "12345", "random")
    }
    assert len(runs["0"]) == 2
    assert runs["0"] == runs["12345"] == runs["random"]
    in_process = [run_scenario(load_scenario(p)).trace_sha256 for p in (JAM, multi_fault)]
    assert runs["0"] == in_process


def test_running_twice_in_process_gives_byte_identical_traces() -> None:
    one = run_scenario(load_scenario(JAM))
    two = run_scenario(load_scenario(JAM))
    assert one.trace.to_jsonl() == two.trace.to_jsonl()
    assert one.trace_sha256 == two.trace_sha256
    assert one.to_json() == two.to_json()


def test_reusing_one_scenario_object_gives_identical_runs() -> None:
    scenario = scenario_from_dict(jam_with_jitter(1))
    assert run_scenario(scenario).trace.to_jsonl() == run_scenario(scenario).trace.to_jsonl()


def test_with_jitter_the_seed_changes_the_trace() -> None:
    one = run_scenario(scenario_from_dict(jam_with_jitter(1)))
    two = run_scenario(scenario_from_dict(jam_with_jitter(2)))
    assert one.trace_sha256 != two.trace_sha256
    assert [e.name for e in one.trace] == [e.name for e in two.trace]  # same story, other times


def test_with_jitter_the_same_seed_gives_the_same_trace() -> None:
    one = run_scenario(scenario_from_dict(jam_with_jitter(1)))
    again = run_scenario(scenario_from_dict(jam_with_jitter(1)))
    assert one.trace.to_jsonl() == again.trace.to_jsonl()


def test_faults_triggered_by_events_fire_identically_on_every_run(multi_fault: Path) -> None:
    runs = [run_scenario(load_scenario(multi_fault)) for _ in range(2)]
    started = [
        [(e.t, e.fields["fault"]) for e in r.trace if e.name == "fault.started"] for r in runs
    ]
    assert sorted(f for _, f in started[0]) == [
        "network.drop", "network.duplicate", "printer.paper_jam",
    ]
    assert started[0] == started[1]
    assert runs[0].trace.to_jsonl() == runs[1].trace.to_jsonl()


def test_faults_triggered_by_events_still_depend_on_the_seed(multi_fault: Path) -> None:
    base = load_scenario(multi_fault)
    assert (
        run_scenario(base).trace_sha256
        != run_scenario(base.with_overrides(seed=4)).trace_sha256
    )

"""The Python API: `from emulator import load_scenario, run_scenario` and friends."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import devices.errors
import emulator
import emulator.engine.fleet
import emulator.engine.world
import emulator.judge.result
import emulator.scenario.model
from emulator import load_scenario, run_scenario
from emulator.judge.result import Result, StepResult
from emulator.scenario.load import scenario_from_dict
from emulator.scenario.model import Scenario
from tests.support import JAM, ROOT

EXPECTED_ALL = {
    "FleetResult", "PosemuError", "Result", "Scenario", "ScenarioError", "StepResult",
    "load_scenario", "parse_scenario", "run_fleet", "run_scenario",
}


def fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False,
        timeout=60, cwd=ROOT,
    )


def test_all_lists_exactly_the_public_names() -> None:
    assert set(emulator.__all__) == EXPECTED_ALL
    assert len(emulator.__all__) == len(EXPECTED_ALL)


@pytest.mark.parametrize("name", sorted(EXPECTED_ALL))
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(emulator, name) is not None
    assert name in dir(emulator)


def test_public_names_are_the_implementing_objects() -> None:
    assert emulator.run_scenario is emulator.engine.world.run_scenario
    assert emulator.load_scenario is emulator.scenario.load.load_scenario
    assert emulator.Result is emulator.judge.result.Result
    assert emulator.run_fleet is emulator.engine.fleet.run_fleet
    assert emulator.ScenarioError is devices.errors.ScenarioError
    assert issubclass(emulator.ScenarioError, emulator.PosemuError)


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = emulator.no_such_name


def test_documented_import_works() -> None:
    # the import itself is at the top of this module
    assert load_scenario is emulator.scenario.load.load_scenario
    assert run_scenario is emulator.engine.world.run_scenario


def test_run_scenario_returns_a_result_with_verdict_anomalies_steps_balances() -> None:
    result = run_scenario(load_scenario(JAM))
    assert isinstance(result, Result)
    assert result.verdict == "pass"
    assert result.passed
    assert [(a.kind, a.step) for a in result.anomalies] == [("charged_no_receipt", "s1")]
    (step,) = result.steps
    assert isinstance(step, StepResult)
    assert (step.id, step.do, step.amount_minor, step.end_state, step.receipt) == (
        "s1", "sale", 1250, "charged_no_receipt", None,
    )
    assert result.balances_minor == {"alice": 23750, "merchant": 1250}
    assert result.balances_before_minor == {"alice": 25000, "merchant": 0}
    assert len(result.trace_sha256) == 64
    assert result.trace_sha256 == result.trace.sha256()


def test_the_trace_is_hashed_once_and_only_when_its_identity_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from emulator.engine.trace import Trace  # noqa: PLC0415

    hashed: list[Trace] = []
    real = Trace.sha256

    def counting(trace: Trace) -> str:
        hashed.append(trace)
        return real(trace)

    monkeypatch.setattr(Trace, "sha256", counting)
    result = run_scenario(load_scenario(JAM))
    assert result.verdict == "pass"
    assert hashed == []
    first = result.trace_sha256
    assert result.trace_sha256 == first
    assert result.to_json()["trace_sha256"] == first
    assert hashed == [result.trace]


def test_load_scenario_accepts_str_and_path_alike() -> None:
    assert load_scenario(str(JAM)) == load_scenario(JAM)


def test_load_scenario_of_a_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(emulator.ScenarioError, match=r"nope\.toml"):
        emulator.load_scenario(tmp_path / "nope.toml")


def test_parse_scenario_of_the_file_text_runs_like_the_file() -> None:
    text = JAM.read_text(encoding="utf-8")
    parsed = emulator.parse_scenario(text, str(JAM))
    assert emulator.run_scenario(parsed).trace_sha256 == (
        emulator.run_scenario(emulator.load_scenario(JAM)).trace_sha256
    )


JAM_AS_PYTHON = {
    "format": 1,
    "name": "Paper jam after approval (reproduced)",
    "seed": 7,
    "terminal": {"profile": "naive"},
    "cards": [{"id": "alice", "pan": "4111111111111111", "balance": "250.00"}],
    "steps": [{"id": "s1", "do": "sale", "card": "alice", "amount": "12.50"}],
    "faults": [{"fault": "printer.paper_jam", "on": "printer.job_started", "for_s": 120}],
    "expect": {
        "anomalies": ["charged_no_receipt"],
        "end_states": {"s1": "charged_no_receipt"},
        "balances": {"alice": "237.50"},
    },
}


def test_scenario_built_in_python_runs_like_the_toml_file() -> None:
    built = scenario_from_dict(JAM_AS_PYTHON)
    assert isinstance(built, Scenario)
    from_python = emulator.run_scenario(built)
    from_file = emulator.run_scenario(emulator.load_scenario(JAM))
    assert from_python.trace_sha256 == from_file.trace_sha256
    assert from_python.verdict == from_file.verdict == "pass"
    assert from_python.balances_minor == from_file.balances_minor


def test_scenario_from_the_parsed_toml_tables_runs_like_the_file() -> None:
    with JAM.open("rb") as f:
        data = tomllib.load(f)
    assert (
        emulator.run_scenario(scenario_from_dict(data)).trace_sha256
        == emulator.run_scenario(emulator.load_scenario(JAM)).trace_sha256
    )


def test_importing_devices_before_emulator_works_in_a_fresh_interpreter() -> None:
    proc = fresh_python(
        "import devices.bank.acquirer; import emulator\n"
        "from emulator import load_scenario, run_scenario\n"
        f"print(run_scenario(load_scenario({str(JAM)!r})).verdict)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "pass\n"


def test_importing_emulator_does_not_load_the_engine_until_used() -> None:
    proc = fresh_python(
        "import sys, emulator\n"
        "print('emulator.engine.world' in sys.modules)\n"
        "emulator.run_scenario\n"
        "print('emulator.engine.world' in sys.modules)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "True"]

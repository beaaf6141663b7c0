"""Plug-in firmware: loading, settings, the event contract and its checks, front ends.

Every way a plug-in can break the contract ends its run with one ``firmware_error``
failure naming the step and the rule (exit status 1), a plug-in that cannot be loaded
or a key it does not declare is refused with one line (exit status 2), and posemu's
own terminal keeps the same contract (checked on its traces after the fact).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from devices.errors import ScenarioError
from emulator.engine.world import run_scenario
from emulator.firmware.contract import audit
from emulator.firmware.plugin import with_firmware
from emulator.fuzz.workload import draw, make_workload
from emulator.scenario.load import load_scenario, scenario_from_dict
from emulator.scenario.model import FirmwareSpec
from tests.support import LIBRARY_FILES, cli, sale

MODULE = "tests.frontends.broken_firmware"


def tables(firmware: str | None = None, **terminal: Any) -> dict[str, Any]:
    """A two-sale scenario run by ``firmware`` (a class of broken_firmware)."""
    data: dict[str, Any] = {
        "format": 1, "name": "plug-in",
        "cards": [{"id": "alice", "pan": "4111111111111111", "balance": "100.00"}],
        "steps": [sale("s1"), sale("s2", at_s=30)],
    }
    if firmware is not None:
        data["terminal"] = {"firmware": f"{MODULE}:{firmware}", **terminal}
    return data


def write(tmp_path: Path, data: dict[str, Any], name: str = "plug.toml") -> Path:
    lines = [f'format = {data["format"]}', f'name = "{data["name"]}"']
    if "terminal" in data:
        lines.append("[terminal]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in data["terminal"].items()]
    for card in data["cards"]:
        lines += ["[[cards]]", *(f"{k} = {json.dumps(v)}" for k, v in card.items())]
    for step in data["steps"]:
        lines += ["[[steps]]", *(f"{k} = {json.dumps(v)}" for k, v in step.items())]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------ a plug-in that keeps it


def test_a_minimal_plugin_runs_and_is_judged_from_its_events() -> None:
    result = run_scenario(scenario_from_dict(tables("Minimal")))
    assert result.passed
    assert [s.end_state for s in result.steps] == ["cancelled", "cancelled"]
    started = [e.fields["step"] for e in result.trace.events if e.name == "terminal.txn_started"]
    assert started == ["s1", "s2"]


def test_its_settings_are_validated_and_reach_it_with_defaults() -> None:
    quick = run_scenario(scenario_from_dict(tables("Minimal", pause_s=0.25)))
    done = [e.t for e in quick.trace.events if e.name == "terminal.txn_done"]
    assert done == [0.25, 30.25]
    default = scenario_from_dict(tables("Minimal"))
    assert default.firmware is not None
    assert default.firmware.settings == {"pause_s": 1.0}
    with pytest.raises(ScenarioError, match=r"terminal\.pause_s: expected seconds"):
        scenario_from_dict(tables("Minimal", pause_s="soon"))


def test_a_knob_the_plugin_does_not_declare_is_refused_naming_it() -> None:
    with pytest.raises(ScenarioError) as err:
        scenario_from_dict(tables("Minimal", reverse_on_timeout=True))
    assert str(err.value) == (
        "<scenario>: terminal.reverse_on_timeout: firmware tests.frontends.broken_firmware:"
        "Minimal does not declare `reverse_on_timeout` (a knob of posemu's own terminal); "
        "its settings: pause_s")
    with pytest.raises(ScenarioError, match=r"terminal\.profile: .*plug-in"):
        scenario_from_dict(tables("Minimal", profile="naive"))


@pytest.mark.parametrize(("ref", "message"), [
    ("nowhere.at_all:Thing", "cannot load firmware nowhere.at_all:Thing: ModuleNotFoundError"),
    (f"{MODULE}:Missing", f"module {MODULE} has no 'Missing'"),
    (f"{MODULE}:not_callable", "not_callable is not callable"),
    ("no colon here", "is not 'package.module:factory'"),
])
def test_a_plugin_that_cannot_be_loaded_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ref: str, message: str,
) -> None:
    data = tables()
    data["terminal"] = {"firmware": ref}
    path = write(tmp_path, data)
    code, out, err = cli(capsys, "run", path)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith(f"posemu: {path}: terminal.firmware: ")
    assert message in err
    code, _, err = cli(capsys, "run", write(tmp_path, tables(), "plain.toml"), "--firmware", ref)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1


# ------------------------------------------------------------------ breaking the contract


@pytest.mark.parametrize(("firmware", "step", "rule", "detail"), [
    ("NoOutcome", "s1", "one outcome per step", "without emitting terminal.txn_done"),
    ("UnknownEvent", "s1", "known events", "'terminal.txn_dnoe' is not an event"),
    ("MissingField", "s1", "required fields", "terminal.request_sent without `f7`"),
    ("Raises", "s1", "no exceptions", "run() raised KeyError: 'no such record'"),
    ("Unannounced", "s1", "announced requests", "a 0200 (STAN 000001, field 7 1122090000) sent"),
    ("ForgesBank", "s1", "known events", "'bank.posted' is not an event"),
    ("WrongResult", "s1", "outcomes", "result 'ok' is not one a sale shows"),
    ("SwallowsErrors", "s1", "required fields", "terminal.txn_done without `result`"),
    ("Hangs", "s1", "one outcome per step", "the run ended while the step was still waiting"),
    ("NotAGenerator", "s1", "generators", "run() must be a generator"),
    ("FactoryFails", None, "factory", "raised RuntimeError: cannot open the flash"),
])
def test_a_broken_rule_ends_the_run_with_one_firmware_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], firmware: str, step: str | None,
    rule: str, detail: str,
) -> None:
    result = run_scenario(scenario_from_dict(tables(firmware)))
    where = f"step {step}" if step else "outside any step"
    [failure] = result.failures
    assert failure.startswith(f"firmware_error: {where}: {rule}: ")
    assert detail in failure
    assert result.verdict == "fail"
    [error] = [e for e in result.trace.events if e.name == "firmware.error"]
    assert (error.fields["step"], error.fields["rule"]) == (step, rule)
    # the run ends there: the second step never starts
    assert "s2" not in {e.fields.get("step") for e in result.trace.events}
    code, out, err = cli(capsys, "run", "--json", write(tmp_path, tables(firmware)))
    assert (code, err) == (1, "")
    assert json.loads(out)["failures"] == [failure]
    code, out, err = cli(capsys, "run", write(tmp_path, tables(firmware)))
    assert code == 1
    assert "Traceback" not in out + err
    assert failure in out


def test_debug_shows_where_the_plugin_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = cli(capsys, "--debug", "run", "--json", write(tmp_path, tables("Raises")))
    assert code == 1
    assert json.loads(out)["failures"][0].startswith("firmware_error: step s1: no exceptions")
    assert 'broken_firmware.py", line' in err
    assert "KeyError: 'no such record'" in err


def test_a_bench_run_is_posemus_own_terminals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = cli(capsys, "run", write(tmp_path, tables("Minimal")), "--printer",
                         "serial:/dev/null")
    assert (code, out) == (2, "")
    assert "terminal.firmware: a plug-in firmware runs in simulated time only" in err


def test_catching_the_power_loss_is_caught() -> None:
    data = tables("CatchesPowerLoss")
    data["faults"] = [{"fault": "terminal.power_loss", "at_s": 5, "for_s": 60}]
    [failure] = run_scenario(scenario_from_dict(data)).failures
    assert failure.startswith("firmware_error: step s1: powered off: emitted terminal.txn_done")


def test_a_power_loss_cuts_a_step_short_without_breaking_the_contract() -> None:
    data = tables("Minimal", pause_s=10.0)
    data["faults"] = [{"fault": "terminal.power_loss", "at_s": 5, "for_s": 10}]
    result = run_scenario(scenario_from_dict(data))
    assert result.passed
    names = [e.name for e in result.trace.events if e.name.startswith("terminal.")]
    assert names[:4] == ["terminal.txn_started", "terminal.power_lost", "terminal.rebooted",
                         "terminal.txn_started"]


def test_check_names_the_plugin_and_refuses_an_undeclared_knob(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(capsys, "check", write(tmp_path, tables("Minimal", pause_s=2)))
    assert code == 0
    assert f"({MODULE}:Minimal, seed 0)" in out
    code, out, err = cli(capsys, "check", write(tmp_path, tables("Minimal", verify_mac=False)))
    assert code == 2
    assert "terminal.verify_mac: firmware" in out + err


def test_profile_and_a_plugin_do_not_go_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(tmp_path, tables())
    code, _, err = cli(capsys, "run", path, "--firmware", f"{MODULE}:Minimal", "--profile",
                       "naive")
    assert code == 2
    assert "has no profiles" in err
    with pytest.raises(ScenarioError, match=r"terminal\.reverse_on_timeout"):
        with_firmware(scenario_from_dict({**tables(), "terminal": {"reverse_on_timeout": True}}),
                      f"{MODULE}:Minimal")


def test_fuzz_lists_a_run_whose_plugin_broke_the_contract_as_an_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(capsys, "fuzz", "--firmware", f"{MODULE}:Raises", "--runs", "2",
                       "--json")
    assert code == 1
    summary = json.loads(out)
    assert summary["firmware"] == f"{MODULE}:Raises"
    assert summary["findings"] == []
    assert [e["error"] for e in summary["errors"]] == [
        "firmware_error: step s1: no exceptions: run() raised KeyError: 'no such record'"] * 2


def test_fleet_takes_a_plugin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, tables())
    code, out, _ = cli(capsys, "fleet", path, "--terminals", "3", "--json", "--firmware",
                       f"{MODULE}:Minimal")
    assert code == 0
    assert json.loads(out)["transactions"] == 6
    code, out, err = cli(capsys, "fleet", path, "--terminals", "2", "--firmware",
                         f"{MODULE}:Raises")
    assert (code, out) == (1, "")
    assert err.startswith("posemu: firmware_error: step s1: no exceptions: ")
    assert err.count("\n") == 1


# ------------------------------------------------------------------ posemu's own terminal


@pytest.mark.parametrize("profile", ["robust", "naive"])
def test_posemus_own_terminal_keeps_the_contract(profile: str) -> None:
    for path in LIBRARY_FILES:
        result = run_scenario(load_scenario(path).with_overrides(profile=profile))
        assert audit(result.trace.events) == [], path


def test_posemus_own_terminal_keeps_the_contract_under_fuzzing() -> None:
    for profile in ("robust", "naive"):
        workload = make_workload(None, "built-in", profile, {})
        for index in range(40):
            result = run_scenario(workload.scenario(draw(workload, 7, index)))
            assert audit(result.trace.events) == [], (profile, index)


def test_the_audit_finds_what_the_harness_would() -> None:
    result = run_scenario(scenario_from_dict(tables("Minimal")))
    events = [e for e in result.trace.events if e.name != "terminal.txn_done"]
    found = audit(events)
    assert [(e.step, e.rule) for e in found] == [("s1", "one outcome per step"),
                                                 ("s2", "one outcome per step")]


def test_posemus_own_terminal_loaded_as_a_plugin_gives_the_same_traces() -> None:
    """It is built from the public kit alone: loaded by name as any plug-in, with its
    policy as settings, every library scenario's trace is the built-in's, byte for byte."""
    ref = "emulator.firmware.terminal:posemu_terminal"
    for path in LIBRARY_FILES:
        scenario = load_scenario(path)
        plugin = msgspec.structs.replace(scenario, firmware=FirmwareSpec(
            ref=ref, settings=dataclasses.asdict(scenario.policy)))
        assert run_scenario(plugin).trace_sha256 == run_scenario(scenario).trace_sha256, path
    robust = with_firmware(load_scenario(LIBRARY_FILES[0].with_name(
        "sale_paper_jam_prevented.toml")), ref)
    assert robust.firmware is not None
    assert robust.firmware.settings["on_receipt_failure"] == "reprint"

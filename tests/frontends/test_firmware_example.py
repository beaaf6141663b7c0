"""The worked example, examples/status_first: a plug-in firmware written against the
interface alone, run through ``posemu run``, the pytest plugin and ``posemu fuzz``, which
finds and shrinks its weakness; its runs are deterministic like posemu's own."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from emulator.engine.world import run_scenario
from emulator.scenario.load import load_scenario
from tests.support import LIBRARY, POSEMU, ROOT, cli

pytest_plugins = ["pytester"]

EXAMPLE = ROOT / "examples" / "status_first"
FIRMWARE = EXAMPLE / "status_first.py"
SILENT, LATE = EXAMPLE / "silent_bank.toml", EXAMPLE / "late_answer.toml"
WORKLOAD = EXAMPLE / "workload.toml"


def test_it_is_written_against_the_interface_not_posemus_terminal() -> None:
    tree = ast.parse(FIRMWARE.read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module}
    assert imported == {"__future__", "collections.abc", "typing", "emulator.firmware.api",
                        "devices.iso8583.message", "devices.ports"}
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    assert cls.bases == []


def test_posemu_run_shows_where_it_fails_a_seed_story_and_where_it_holds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = cli(capsys, "run", "--json", EXAMPLE)
    assert (code, err) == (1, "")
    results = {Path(r["path"]).name: r for r in map(json.loads, out.splitlines())}
    silent, late = results["silent_bank.toml"], results["late_answer.toml"]
    assert (silent["profile"], silent["firmware"]) == (None, "status_first:StatusFirst")
    assert silent["verdict"] == "fail"
    assert [a["kind"] for a in silent["anomalies"]] == ["charged_shown_unpaid"]
    assert "CHECK WITH BANK" in silent["steps"][0]["receipt"]
    assert silent["balances"]["alice"] == "58.00"  # charged
    assert late["verdict"] == "pass"
    assert [s["end_state"] for s in late["steps"]] == ["approved", "reprinted"]


def test_the_pytest_plugin_runs_it(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(str(EXAMPLE), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)  # the workload is a scenario too
    result.stdout.fnmatch_lines([
        "*unexpected anomaly charged_shown_unpaid at s1: shown failed, yet 42.00 moved*",
        "*(seed 0, firmware status_first:StatusFirst)*",
    ])


def test_the_pytest_plugin_runs_library_scenarios_with_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    result = pytester.runpytest(
        str(LIBRARY / "sale_approved.toml"), str(LIBRARY / "sale_bank_respond_96.toml"),
        "--posemu-firmware", "status_first:StatusFirst", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["posemu: every scenario runs with firmware status_first:*"])


def test_the_ini_option_names_it_too_and_a_bad_one_stops_the_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    pytester.makeini("[pytest]\nposemu_firmware = status_first:StatusFirst\n")
    pytester.makefile(".toml", sale=(LIBRARY / "sale_approved.toml").read_text())
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["posemu: every scenario runs with firmware status_first:*"])
    result = pytester.runpytest("-p", "no:cacheprovider", "--posemu-firmware",
                                "status_first:Nothing")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--posemu-firmware: cannot load firmware status_first:Nothing:"
                                 " module status_first has no 'Nothing'"])


def test_posemu_fuzz_finds_and_shrinks_its_weakness(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out_dir = tmp_path / "found"
    code, out, _ = cli(capsys, "fuzz", WORKLOAD, "--seed", "0", "--until",
                       "charged_shown_unpaid", "--causes", "1", "--out", out_dir, "--json")
    assert code == 1
    summary = json.loads(out)
    assert summary["firmware"] == "status_first:StatusFirst"
    assert summary["errors"] == []
    unpaid = [f for f in summary["findings"] if f["anomaly"] == "charged_shown_unpaid"]
    # the designed weakness: a bank that stays silent, shrunk to that one fault
    [silent] = unpaid
    assert [x["fault"] for x in silent["faults"]] == ["bank.timeout"]
    assert silent["faults_after"] == 1 < silent["faults_before"]
    assert silent["verified"]
    path = Path(silent["file"])
    written = tomllib.loads(path.read_text(encoding="utf-8"))
    assert written["terminal"] == {"firmware": "status_first:StatusFirst"}
    result = run_scenario(load_scenario(path))  # what `posemu run FILE` replays
    assert result.passed
    assert "charged_shown_unpaid" in {a.kind for a in result.anomalies}
    slips = {e.fields["slip"] for e in result.trace.events if e.name == "printer.job_done"}
    assert "notice" in slips  # the CHECK WITH BANK slip


def test_the_same_scenario_seed_and_firmware_give_the_same_trace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for path in (SILENT, LATE):
        first, again = run_scenario(load_scenario(path)), run_scenario(load_scenario(path))
        assert first.trace.to_jsonl() == again.trace.to_jsonl()
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # another interpreter, other set orders
    done = subprocess.run([str(POSEMU), "run", "--json", str(SILENT), str(LATE)], env=env,
                          cwd=ROOT, capture_output=True, text=True, check=False)
    hashes = [json.loads(line)["trace_sha256"] for line in done.stdout.splitlines()]
    assert hashes == [run_scenario(load_scenario(p)).trace_sha256 for p in (SILENT, LATE)]


def test_replay_reruns_a_trace_with_the_firmware_it_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(EXAMPLE)
    code, _, _ = cli(capsys, "run", LIBRARY / "sale_bank_respond_96.toml", "--firmware",
                     "status_first:StatusFirst", "--trace-dir", tmp_path)
    assert code == 0
    trace = tmp_path / "sale_bank_respond_96.jsonl"
    assert json.loads(trace.read_text().splitlines()[0])["firmware"] == "status_first:StatusFirst"
    code, out, _ = cli(capsys, "replay", trace, "--json")
    assert code == 0
    assert json.loads(out)["identical"]

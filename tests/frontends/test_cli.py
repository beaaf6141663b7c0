"""`posemu run`: exit statuses, one-line errors, JSON Lines, overrides, traces, privacy."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

import emulator.cli.main
from devices.errors import ConservationError
from emulator.cli.main import main
from emulator.engine.trace import read_trace
from tests.support import JAM, LIBRARY, POSEMU, ROOT, cli

JAM_PREVENTED = LIBRARY / "sale_paper_jam_prevented.toml"
PARTIAL = LIBRARY / "sale_partial_approval.toml"

RESULT_KEYS = {
    "path", "name", "seed", "profile", "verdict", "failures", "anomalies", "steps",
    "balances", "trace_sha256", "sim_time_s", "events",
}
STEP_KEYS = {"id", "do", "amount", "end_state", "receipt", "stan", "rrn"}




def posemu(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run the installed ``posemu`` console script in a fresh interpreter."""
    return subprocess.run(
        [str(POSEMU), *map(str, args)], capture_output=True, text=True, cwd=cwd,
        check=False, timeout=60,
    )


def json_lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def copy(src: Path, dst: Path, edit: Callable[[str], str] = lambda s: s) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(edit(src.read_text(encoding="utf-8")), encoding="utf-8")
    return dst


def wrong_balance(text: str) -> str:
    assert 'balances = { alice = "237.50" }' in text
    return text.replace('balances = { alice = "237.50" }', 'balances = { alice = "240.00" }')


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert err.endswith("\n")
    return lines[0]


# ------------------------------------------------------------------ exit statuses


def test_passing_scenario_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = copy(JAM, tmp_path / "jam.toml")
    code, out, err = cli(capsys, "run", path)
    assert code == 0
    assert err == ""
    assert "PASS" in out
    assert str(path) in out


def test_failed_expectation_exits_1_and_names_what_differed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = copy(JAM, tmp_path / "jam.toml", wrong_balance)
    code, out, err = cli(capsys, "run", path)
    assert code == 1
    assert err == ""
    assert "FAIL" in out
    assert "balances.alice" in out
    assert "240.00" in out
    assert "237.50" in out


def test_one_failing_scenario_among_passing_ones_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    good = copy(JAM, tmp_path / "a.toml")
    bad = copy(JAM, tmp_path / "b.toml", wrong_balance)
    code, out, _ = cli(capsys, "run", "--json", good, bad)
    assert code == 1
    assert [r["verdict"] for r in json_lines(out)] == ["pass", "fail"]


def test_failed_expectation_is_listed_in_json_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = copy(JAM, tmp_path / "jam.toml", wrong_balance)
    code, out, _ = cli(capsys, "run", "--json", path)
    (row,) = json_lines(out)
    assert code == 1
    assert row["verdict"] == "fail"
    failures = row["failures"]
    assert isinstance(failures, list)
    assert len(failures) == 1
    assert "balances.alice" in failures[0]
    assert "240.00" in failures[0]
    assert "237.50" in failures[0]


def test_scenario_without_expect_fails_on_any_anomaly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    def drop_expect(text: str) -> str:
        return text[: text.index("[expect]")]

    path = copy(JAM, tmp_path / "jam.toml", drop_expect)
    code, out, _ = cli(capsys, "run", "--json", path)
    (row,) = json_lines(out)
    assert code == 1
    assert row["verdict"] == "fail"
    assert any("charged_no_receipt" in f for f in row["failures"])  # type: ignore[union-attr]


# ------------------------------------------------------------- bad input: exit 2


BAD_TOML = 'format = 1\nname = "broken"\n[[cards]\nid = "a"\n'


def _missing(tmp: Path) -> tuple[list[str], str]:
    return ["run", str(tmp / "nope.toml")], "nope.toml"


def _empty_dir(tmp: Path) -> tuple[list[str], str]:
    (tmp / "empty").mkdir()
    (tmp / "empty" / "README.md").write_text("no scenarios here\n")
    return ["run", str(tmp / "empty")], "empty"


def _syntax(tmp: Path) -> tuple[list[str], str]:
    path = tmp / "syntax.toml"
    path.write_text(BAD_TOML)
    return ["run", str(path)], f"{path}:3"


def _unknown_key(tmp: Path) -> tuple[list[str], str]:
    path = copy(JAM, tmp / "typo.toml", lambda s: s.replace("seed = 7", "seed = 7\nsede = 3"))
    return ["run", str(path)], "sede"


def _bad_amount(tmp: Path) -> tuple[list[str], str]:
    path = copy(JAM, tmp / "amount.toml", lambda s: s.replace('"12.50"', '"12.505"'))
    return ["run", str(path)], "steps[0].amount"


def _unknown_fault(tmp: Path) -> tuple[list[str], str]:
    path = copy(JAM, tmp / "fault.toml",
                lambda s: s.replace('"printer.paper_jam"', '"printer.paper_jamm"'))
    return ["run", str(path)], "faults[0].fault"


def _bad_flag(tmp: Path) -> tuple[list[str], str]:
    return ["run", "--bogus", str(copy(JAM, tmp / "jam.toml"))], "--bogus"


def _bad_profile(tmp: Path) -> tuple[list[str], str]:
    return ["run", "--profile", "weird", str(copy(JAM, tmp / "jam.toml"))], "weird"


def _bad_seed(tmp: Path) -> tuple[list[str], str]:
    return ["run", "--seed", "x", str(copy(JAM, tmp / "jam.toml"))], "--seed"


def _no_path(_tmp: Path) -> tuple[list[str], str]:
    return ["run"], "PATH"


BAD_INPUTS = {
    "missing path": _missing,
    "directory without toml": _empty_dir,
    "toml syntax error": _syntax,
    "unknown key": _unknown_key,
    "bad amount": _bad_amount,
    "unknown fault": _unknown_fault,
    "bad flag": _bad_flag,
    "bad profile": _bad_profile,
    "bad seed": _bad_seed,
    "no path": _no_path,
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str,
) -> None:
    args, named = BAD_INPUTS[case](tmp_path)
    code, out, err = cli(capsys, *args)
    assert code == 2
    assert out == ""
    line = one_error_line(err)
    assert line.startswith("posemu: ")
    assert named in line


def test_scenario_error_names_file_and_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    args, _ = _unknown_fault(tmp_path)
    _, _, err = cli(capsys, *args)
    assert str(tmp_path / "fault.toml") in err
    assert "faults[0].fault" in err
    assert "printer.paper_jamm" in err


def test_invalid_scenario_stops_everything_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    good = copy(JAM, tmp_path / "a.toml")
    bad = tmp_path / "b.toml"
    bad.write_text(BAD_TOML)
    traces = tmp_path / "traces"
    code, out, _ = cli(capsys, "run", "--json", "--trace-dir", traces, good, bad)
    assert code == 2
    assert out == ""
    assert not traces.exists() or list(traces.iterdir()) == []


def test_console_script_reports_bad_scenario_in_one_line_with_status_2(tmp_path: Path) -> None:
    path = tmp_path / "syntax.toml"
    path.write_text(BAD_TOML)
    proc = posemu("run", path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert f"{path}:3" in one_error_line(proc.stderr)


def test_console_script_bad_flag_is_one_line_with_status_2() -> None:
    proc = posemu("run", "--bogus", JAM)
    assert proc.returncode == 2
    assert "--bogus" in one_error_line(proc.stderr)


# ------------------------------------------------------------------------- --debug


def test_debug_prints_the_traceback_and_keeps_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    args, _ = _unknown_key(tmp_path)
    assert main(["run", "--debug", *args[1:]]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "sede" in err


def test_debug_shows_a_traceback_for_a_bad_scenario(tmp_path: Path) -> None:
    args, _ = _unknown_key(tmp_path)
    proc = posemu("run", "--debug", *args[1:])
    assert "Traceback (most recent call last)" in proc.stderr
    assert "ScenarioError" in proc.stderr
    assert proc.returncode != 0


def test_debug_before_the_command_also_shows_a_traceback(tmp_path: Path) -> None:
    args, _ = _unknown_key(tmp_path)
    proc = posemu("--debug", *args)
    assert "Traceback (most recent call last)" in proc.stderr


def test_debug_keeps_exit_status_2_for_a_bad_scenario(tmp_path: Path) -> None:
    args, _ = _unknown_key(tmp_path)
    proc = posemu("run", "--debug", *args[1:])
    assert proc.returncode == 2


# --------------------------------------------------------------------------- --json


def test_json_prints_one_object_per_scenario_with_the_contract_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    jam = copy(JAM, tmp_path / "a.toml")
    partial = copy(PARTIAL, tmp_path / "b.toml")
    code, out, err = cli(capsys, "run", "--json", jam, partial)
    assert (code, err) == (0, "")
    rows = json_lines(out)
    assert len(rows) == 2
    for row in rows:
        assert set(row) == RESULT_KEYS
        for step in row["steps"]:  # type: ignore[attr-defined]
            assert set(step) == STEP_KEYS
    first = rows[0]
    assert first["path"] == str(jam)
    assert first["name"] == "Paper jam after approval (reproduced)"
    assert (first["seed"], first["profile"], first["verdict"]) == (7, "naive", "pass")
    assert first["failures"] == []
    (anomaly,) = first["anomalies"]  # type: ignore[misc]
    assert (anomaly["kind"], anomaly["step"]) == ("charged_no_receipt", "s1")
    assert isinstance(anomaly["detail"], str)
    (step,) = first["steps"]  # type: ignore[misc]
    assert (step["id"], step["do"], step["amount"], step["end_state"]) == (
        "s1", "sale", "12.50", "charged_no_receipt",
    )
    assert step["receipt"] is None  # the jam ate it
    assert first["balances"] == {"alice": "237.50", "merchant": "12.50"}
    sha = first["trace_sha256"]
    assert isinstance(sha, str)
    assert len(sha) == 64
    assert int(sha, 16) >= 0
    assert isinstance(first["events"], int)
    assert first["events"] > 0
    assert isinstance(first["sim_time_s"], float | int)
    assert first["sim_time_s"] > 0


def test_json_receipt_is_the_decoded_text_of_the_printed_receipt(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(capsys, "run", "--json", JAM_PREVENTED)
    (row,) = json_lines(out)
    (step,) = row["steps"]  # type: ignore[misc]
    assert code == 0
    assert step["end_state"] == "approved"
    receipt = step["receipt"]
    assert isinstance(receipt, str)
    assert "APPROVED" in receipt
    assert "12.50" in receipt
    assert "1111" in receipt
    assert "\x1b" not in receipt  # decoded: no ESC/POS commands left


def test_json_output_is_only_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capsys, "run", "--json", JAM, JAM_PREVENTED)
    assert all(line.startswith("{") and line.endswith("}") for line in out.splitlines())
    assert out.endswith("\n")


def test_console_script_json_matches_in_process_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "emulator.cli.main", "run", "--json", str(JAM)],
        capture_output=True, text=True, check=False, timeout=60, cwd=ROOT,
    )
    _, out, _ = cli(capsys, "run", "--json", JAM)
    assert proc.returncode == 0
    assert proc.stderr == ""
    assert json_lines(proc.stdout) == json_lines(out)


# ------------------------------------------------------------ --seed and --profile


def test_seed_override_changes_the_reported_seed(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capsys, "run", "--json", "--seed", "99", JAM)
    (row,) = json_lines(out)
    assert row["seed"] == 99
    assert row["profile"] == "naive"


def test_seed_override_reaches_the_trace_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    cli(capsys, "run", "--seed", "99", "--trace-dir", tmp_path, JAM)
    header, _ = read_trace(tmp_path / "sale_paper_jam.jsonl")
    assert header["seed"] == 99


def test_profile_override_makes_the_prevented_story_fail_with_its_anomaly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(capsys, "run", "--json", "--profile", "naive", JAM_PREVENTED)
    (row,) = json_lines(out)
    assert code == 1
    assert row["profile"] == "naive"
    assert row["seed"] == 7
    assert row["verdict"] == "fail"
    assert [a["kind"] for a in row["anomalies"]] == ["charged_no_receipt"]  # type: ignore[index, union-attr]
    assert any("charged_no_receipt" in f for f in row["failures"])  # type: ignore[union-attr]


def test_profile_override_to_robust_fixes_the_reproduced_story(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(capsys, "run", "--json", "--profile", "robust", JAM)
    (row,) = json_lines(out)
    assert row["profile"] == "robust"
    assert row["anomalies"] == []
    assert code == 1  # the file expects the anomaly the robust firmware prevents


# ------------------------------------------------------------------- directories


def test_directory_runs_every_toml_under_it_in_sorted_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "suite"
    for name in ("c.toml", "a.toml", "sub/b.toml", "b.toml"):
        copy(JAM, root / name)
    (root / "notes.txt").write_text("not a scenario")
    (root / "README.md").write_text("# not a scenario")
    code, out, _ = cli(capsys, "run", "--json", root)
    paths = [Path(str(r["path"])) for r in json_lines(out)]
    assert code == 0
    assert paths == sorted(paths)
    assert {p.relative_to(root).as_posix() for p in paths} == {
        "a.toml", "b.toml", "c.toml", "sub/b.toml",
    }


def test_all_shipped_scenarios_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "run", "--json", LIBRARY)
    rows = json_lines(out)
    assert len(rows) == len(list(LIBRARY.glob("*.toml")))
    assert [r["failures"] for r in rows if r["verdict"] != "pass"] == []
    assert code == 0


# -------------------------------------------------------------------- --trace-dir


def test_trace_dir_holds_one_trace_per_scenario_matching_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    traces = tmp_path / "traces" / "nested"
    code, out, _ = cli(capsys, "run", "--json", "--trace-dir", traces, JAM, PARTIAL,
                       JAM_PREVENTED)
    rows = json_lines(out)
    assert code == 0
    files = sorted(traces.iterdir())
    assert [f.name for f in files] == [
        "sale_paper_jam.jsonl", "sale_paper_jam_prevented.jsonl", "sale_partial_approval.jsonl",
    ]
    for row in rows:
        data = (traces / f"{Path(str(row['path'])).stem}.jsonl").read_bytes()
        header_line, body = data.split(b"\n", 1)
        assert json.loads(header_line)["posemu_trace"] == 1
        assert hashlib.sha256(body).hexdigest() == row["trace_sha256"]
        assert body.count(b"\n") == row["events"]


def test_trace_dir_keeps_scenarios_with_the_same_file_name_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    one = copy(JAM, tmp_path / "x" / "story.toml")
    two = copy(PARTIAL, tmp_path / "y" / "story.toml")
    traces = tmp_path / "traces"
    _, out, _ = cli(capsys, "run", "--json", "--trace-dir", traces, one, two)
    written = {
        hashlib.sha256(f.read_bytes().split(b"\n", 1)[1]).hexdigest()
        for f in traces.glob("*.jsonl")
    }
    assert written == {r["trace_sha256"] for r in json_lines(out)}
    assert len(written) == 2


def test_run_failing_midway_leaves_only_complete_traces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = emulator.cli.main.run_scenario
    calls: list[str] = []

    def breaks_on_second(scenario):  # type: ignore[no-untyped-def]
        calls.append(scenario.name)
        if len(calls) == 2:
            raise ConservationError("money not conserved (simulated)")
        return real(scenario)

    monkeypatch.setattr(emulator.cli.main, "run_scenario", breaks_on_second)
    traces = tmp_path / "traces"
    code, _, err = cli(capsys, "run", "--trace-dir", traces, JAM, PARTIAL)
    assert code == 3
    assert "money not conserved" in one_error_line(err)
    assert [p.name for p in traces.iterdir()] == ["sale_paper_jam.jsonl"]
    read_trace(traces / "sale_paper_jam.jsonl")  # complete and readable


def test_trace_that_cannot_be_written_is_an_io_error_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    traces = tmp_path / "traces"
    (traces / "sale_partial_approval.jsonl" / "in-the-way").mkdir(parents=True)
    code, _, err = cli(capsys, "run", "--trace-dir", traces, JAM, PARTIAL)
    assert code == 3
    one_error_line(err)
    read_trace(traces / "sale_paper_jam.jsonl")


def test_trace_that_cannot_be_written_leaves_no_temp_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    traces = tmp_path / "traces"
    (traces / "sale_partial_approval.jsonl" / "in-the-way").mkdir(parents=True)
    cli(capsys, "run", "--trace-dir", traces, JAM, PARTIAL)
    assert [p.name for p in traces.rglob("*.tmp")] == []


def test_trace_dir_that_is_a_file_is_an_io_error_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    blocker = tmp_path / "traces"
    blocker.write_text("a file, not a directory")
    code, out, err = cli(capsys, "run", "--trace-dir", blocker, JAM)
    assert code == 3
    assert out == ""
    one_error_line(err)


# ------------------------------------------------------------------------ privacy


def scenario_pans() -> set[str]:
    pans: set[str] = set()
    for path in LIBRARY.glob("*.toml"):
        with path.open("rb") as f:
            pans.update(card["pan"] for card in tomllib.load(f).get("cards", []))
    return pans


def test_no_full_pan_in_any_output_or_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    pans = scenario_pans()
    assert len(pans) >= 3
    traces = tmp_path / "traces"
    outputs: list[str] = []
    for flags in (["--json", "--trace-dir", str(traces)], []):
        _, out, err = cli(capsys, "run", *flags, LIBRARY)
        outputs += [out, err]
    trace_files = list(traces.iterdir())
    assert len(trace_files) == len(list(LIBRARY.glob("*.toml")))
    outputs += [f.read_text(encoding="ascii") for f in trace_files]
    everything = "\n".join(outputs)
    assert "**** 1111" in everything  # sanity: receipts are in there, masked
    leaked = sorted(pan[-4:] for pan in pans if pan in everything)
    assert leaked == []


def test_pan_named_as_unknown_card_is_masked_in_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = copy(JAM, tmp_path / "jam.toml",
                lambda s: s.replace('card = "alice"', 'card = "5555555555554444"'))
    code, out, err = cli(capsys, "run", path)
    assert code == 2
    assert "5555555555554444" not in out + err
    assert "4444" in one_error_line(err)


def test_card_without_id_is_shown_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    def no_id(text: str) -> str:
        return text.replace('id = "alice"\n', "").replace(
            'card = "alice"', 'card = "4111111111111111"',
        ).replace("balances = { alice", 'balances = { "411111******1111"')

    path = copy(JAM, tmp_path / "jam.toml", no_id)
    traces = tmp_path / "traces"
    outputs = []
    for flags in (["--json", "--trace-dir", str(traces)], []):
        _, out, err = cli(capsys, "run", *flags, path)
        outputs += [out, err]
    outputs += [f.read_text() for f in traces.iterdir()]
    everything = "\n".join(outputs)
    assert "411111******1111" in everything
    assert "4111111111111111" not in everything


# -------------------------------------------------------------------- human output


def test_human_output_shows_each_receipt_as_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(capsys, "run", JAM_PREVENTED)
    assert code == 0
    assert "**** **** **** 1111" in out


def test_runs_from_any_working_directory(tmp_path: Path) -> None:
    scenario = copy(JAM, tmp_path / "jam.toml")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [str(POSEMU), "run", "--json", scenario.name], capture_output=True, text=True,
        cwd=tmp_path, env=env, check=False, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json_lines(proc.stdout)[0]["path"] == "jam.toml"

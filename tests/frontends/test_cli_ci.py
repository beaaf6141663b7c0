"""``posemu`` in CI: ``-q``, plain piped output, closed pipes, ``--junit``, the fleet's
progress bar and one seed range everywhere."""

from __future__ import annotations

import io
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from emulator.scenario.seeds import MAX_SEED
from tests.frontends.test_cli_report import copy, run_on_pty
from tests.support import JAM, LIBRARY, POSEMU, ROOT, cli

PREVENTED = LIBRARY / "sale_paper_jam_prevented.toml"
WRONG = ('alice = "237.50"', 'alice = "240.00"')  # an expectation that fails


def batch(tmp_path: Path, fail: int | None = None) -> list[Path]:
    """Four copies of the paper jam story; ``fail``: that one expects the wrong balance."""
    return [copy(JAM, tmp_path / f"s{n}.toml", *(WRONG if n == fail else ("", "")))
            for n in range(4)]


# ---------------------------------------------------------------------- quiet


def test_quiet_is_one_line_a_passing_scenario_and_a_failing_one_in_full(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    paths = batch(tmp_path, fail=1)
    code, out, _ = cli(capsys, "run", "-q", paths[0], paths[1], paths[2])
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"PASS  {paths[0]}  (naive, seed 7)  anomalies: charged_no_receipt")
    assert out.count("timeline") == 1  # the failure, in full
    assert "  - balances.alice: expected 240.00, found 237.50" in lines
    assert lines[-2].startswith(f"PASS  {paths[2]}")
    assert lines[-1] == "3 scenario(s): 2 passed, 1 failed"
    assert "summary" not in out


def test_quiet_and_verbose_do_not_go_together(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "run", "-q", "-v", JAM)
    assert code == 2
    assert "not allowed with argument" in err


# ------------------------------------------------------------ plain when piped


def test_piped_output_has_no_trailing_spaces(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["run", JAM], ["run", "--verbose", JAM, PREVENTED], ["faults"], ["profiles"],
                 ["explain", "charged_no_receipt"], ["events"]):
        _, out, _ = cli(capsys, *args)
        padded = [line for line in out.splitlines() if line != line.rstrip()]
        assert out.count("\n") > 10
        assert padded == [], args


def test_summary_names_never_wrap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    long_name = "A scenario name long enough to wrap in an eighty column table"
    path = copy(JAM, tmp_path / "long.toml", "Paper jam after approval (reproduced)", long_name)
    _, out, _ = cli(capsys, "run", *batch(tmp_path), path)
    summary = out[out.index("\nsummary\n"):].splitlines()
    (row,) = [line for line in summary if long_name in line]
    assert row.split()[-7:] == ["naive", "7", "PASS", "1", "20", "124.94", "s"]
    assert len(row) > 80


# ---------------------------------------------------------------- closed pipe


class _Closed(io.StringIO):
    """Standard output whose reader goes away after ``lines`` lines."""

    def __init__(self, lines: int) -> None:
        super().__init__()
        self.lines = lines

    def write(self, text: str) -> int:
        if self.getvalue().count("\n") >= self.lines:
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


@pytest.mark.parametrize(("fail", "status"), [(None, 0), (0, 1), (3, 0)])
def test_a_closed_pipe_ends_quietly_with_the_status_of_the_runs_so_far(
    fail: int | None, status: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from emulator.cli.main import main  # noqa: PLC0415

    paths = batch(tmp_path, fail)
    for args in (["run", "--json"], ["run"]):
        stdout = _Closed(lines=1)
        monkeypatch.setattr("sys.stdout", stdout)
        junit = tmp_path / "junit.xml"
        assert main([*args, "--junit", str(junit), *map(str, paths)]) == status
        assert capsys.readouterr().err == ""
        cases = ET.parse(junit).getroot().findall(".//testcase")
        assert 1 <= len(cases) < 4  # stopped when the reader went away: #4 never ran


def test_head_on_a_real_pipe_exits_0_without_a_word(tmp_path: Path) -> None:
    paths = [str(JAM)] * 300  # more output than a pipe holds
    with subprocess.Popen([str(POSEMU), "run", "--json", *paths], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, cwd=ROOT) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.readline().startswith(b'{"path": ')
        proc.stdout.close()
        assert proc.wait(timeout=120) == 0
        assert proc.stderr.read() == b""


# --------------------------------------------------------------------- junit


def test_junit_report_has_a_case_per_run_and_the_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    paths = batch(tmp_path, fail=2)
    junit = tmp_path / "out" / "junit.xml"
    junit.parent.mkdir()
    junit.write_text("an older report")
    code, _, _ = cli(capsys, "run", "--json", "--junit", junit, *paths)
    assert code == 1
    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "1", "0")
    cases = suite.findall("testcase")
    assert [c.get("file") for c in cases] == [str(p) for p in paths]
    assert {c.get("name") for c in cases} == {"Paper jam after approval (reproduced)"}
    assert cases[0].get("classname", "").endswith(".s0")
    props = {p.get("name"): p.get("value") for p in cases[0].iter("property")}
    assert (props["seed"], props["profile"]) == ("7", "naive")
    assert len(props["trace_sha256"] or "") == 64
    assert [c.find("failure") is not None for c in cases] == [False, False, True, False]
    failure = cases[2].find("failure")
    assert failure is not None
    assert failure.get("message") == "balances.alice: expected 240.00, found 237.50"
    assert "anomaly charged_no_receipt at s1" in (cases[0].findtext("system-out") or "")
    assert sorted(p.name for p in junit.parent.iterdir()) == ["junit.xml"]  # no temp left


def test_junit_is_not_written_when_the_input_is_bad(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    junit = tmp_path / "junit.xml"
    code, _, _ = cli(capsys, "run", "--junit", junit, JAM, tmp_path / "missing.toml")
    assert code == 2
    assert not junit.exists()


# ------------------------------------------------------------------ fleet bar


def test_fleet_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    approved = str(LIBRARY / "sale_approved.toml")
    out, terminal = run_on_pty(["fleet", approved, "--terminals", "3"], env, stdout_pty=False)
    assert "steps done" in terminal
    assert "3/3" in terminal
    assert out.startswith(f"{approved}: 3 terminals")
    piped = subprocess.run([str(POSEMU), "fleet", approved, "--terminals", "3"], cwd=ROOT,
                           capture_output=True, text=True, check=True, timeout=60)
    assert piped.stderr == ""
    assert piped.stdout == out


# --------------------------------------------------------------------- seeds


@pytest.mark.parametrize("seed", ["-1", str(MAX_SEED + 1), "x"])
def test_a_seed_out_of_range_is_refused_everywhere(
    seed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    for command in (["run", JAM, "--seed", seed], ["fleet", JAM, "--terminals", "1", "--seed",
                                                    seed]):
        code, _, err = cli(capsys, *command)
        assert code == 2
        assert "--seed" in err
        if seed != "x":
            assert f"must be an integer from 0 to {MAX_SEED}" in err
    if seed != "x":
        path = copy(JAM, tmp_path / "seed.toml", "seed = 7", f"seed = {seed}")
        code, _, err = cli(capsys, "run", path)
        assert code == 2
        assert f"{path}: seed: must be " in err


def test_the_largest_seed_runs_from_the_command_line_and_from_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = copy(LIBRARY / "sale_approved.toml", tmp_path / "big.toml", "format = 1",
                f"format = 1\nseed = {MAX_SEED}")
    code, out, _ = cli(capsys, "run", "--json", path)
    assert code == 0
    assert f'"seed": {MAX_SEED}' in out
    code, out, _ = cli(capsys, "run", "--json", "--seed", str(MAX_SEED), LIBRARY /
                       "sale_approved.toml")
    assert code == 0
    assert f'"seed": {MAX_SEED}' in out

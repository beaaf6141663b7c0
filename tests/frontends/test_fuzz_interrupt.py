"""Ctrl-C in a fuzz campaign keeps the work done: the runs searched, the findings shrunk
(their files written as each is confirmed), and the summary so far."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from emulator.fuzz.campaign import Config, Finding, Report, fuzz
from emulator.fuzz.findings import FindingWriter, summary
from emulator.fuzz.workload import make_workload
from tests.support import POSEMU

NAIVE = make_workload(None, "built-in", "naive", {})


def test_an_interrupted_search_reports_the_runs_so_far() -> None:
    def progress(done: int, found: int, phase: str) -> None:
        if done >= 24:
            raise KeyboardInterrupt

    report = fuzz(NAIVE, Config(seed=3, runs=200), progress)
    assert report.interrupted
    assert report.status == 130
    assert [o.run for o in report.outcomes] == list(range(24))
    assert summary(report)["interrupted"] is True


def test_findings_are_written_as_confirmed_and_kept_on_interrupt(tmp_path: Path) -> None:
    writer = FindingWriter(tmp_path)
    confirmed: list[str] = []

    def on_finding(report: Report, finding: Finding) -> None:
        writer(report, finding)
        confirmed.append(finding.anomaly)
        assert finding.path is not None
        assert Path(finding.path).is_file()  # on disk before the next one is shrunk
        if len(confirmed) == 2:
            raise KeyboardInterrupt

    report = fuzz(NAIVE, Config(seed=3, runs=64, causes=1), confirmed=on_finding)
    assert report.interrupted
    assert sorted(f.anomaly for f in report.findings) == sorted(confirmed[:1])
    assert all(f.verified for f in report.findings)
    assert sorted(p.stem for p in tmp_path.glob("*.toml")) == sorted(confirmed)


def test_ctrl_c_on_the_command_line_keeps_the_files_and_prints_the_summary(
    tmp_path: Path,
) -> None:
    out = tmp_path / "found"
    proc = subprocess.Popen(
        [str(POSEMU), "fuzz", "--profile", "naive", "--runs", "150", "--jobs", "2",
         "--out", str(out), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a test run started in the background ignores SIGINT; the child must not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    end = time.monotonic() + 60
    while not list(out.glob("*.toml")) and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.05)  # until the first finding is on disk
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    data = json.loads(stdout)
    assert data["interrupted"] is True
    files = set(out.glob("*.toml"))
    assert files  # before: the directory was never created
    listed = {Path(f["file"]) for f in data["findings"]}
    assert listed <= files
    assert len(files - listed) <= 1  # at most the one being checked when Ctrl-C came

"""HTML reports: ``posemu run/replay --html``, the pytest plugin's ``--posemu-html``, and
``posemu printer --pty --render`` (its pictures: tests/realtime/test_pty_printer.py).

What a browser shows of them is checked in test_html_browser.py; here: the files, that
they need nothing from outside, that the trace does not change, and that nothing heavy is
imported without ``--html``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from emulator import load_scenario, run_scenario
from emulator.report.html import run_recorded
from emulator.report.html.diagram import LANES, diagram
from emulator.report.html.writer import write_index
from tests.support import JAM, LIBRARY, LIBRARY_FILES, ROOT, cli

pytest_plugins = ["pytester"]

CLEAN = LIBRARY / "sale_approved.toml"
RETRY = LIBRARY / "sale_network_delay_retry.toml"
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["'](?!#|data:|index\.html|[\w.-]+\.html)""",
                      re.IGNORECASE)


def test_run_html_writes_a_page_per_scenario_and_an_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "report"
    code, stdout, _ = cli(capsys, "run", JAM, CLEAN, "--html", out, "--json")
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "index.html", "sale_approved.html", "sale_paper_jam.html"]
    index = (out / "index.html").read_text()
    assert 'href="sale_paper_jam.html"' in index
    assert "charged_no_receipt" in index
    jam = (out / "sale_paper_jam.html").read_text()
    assert "verdict PASS" in jam
    assert 'data-kind="charged_no_receipt"' in jam
    assert "CUT SHORT: jam" in jam
    # --json output (trace hashes included) is unchanged by --html
    assert stdout == cli(capsys, "run", JAM, CLEAN, "--json")[1]
    assert [json.loads(line)["path"] for line in stdout.splitlines()] == [str(JAM), str(CLEAN)]


def test_pages_need_nothing_from_outside(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "run", JAM, RETRY, "--html", tmp_path)
    for page in tmp_path.glob("*.html"):
        text = page.read_text()
        assert not EXTERNAL.search(text), page
        assert "<link" not in text
        assert "@import" not in text
        assert "url(http" not in text


def doc_run_commands() -> list[list[str]]:
    """The ``posemu run ... --html report/`` examples of README.md and docs/report.md."""
    found = []
    for doc in (ROOT / "README.md", ROOT / "docs" / "report.md"):
        for block in re.findall(r"^```sh\n(.*?)^```$", doc.read_text(), re.M | re.S):
            for line in block.splitlines():
                command = line.split("#")[0].split()
                if command[:2] in (["posemu", "run"], [".venv/bin/posemu", "run"]) \
                        and "--html" in command and command[1:] not in found:
                    found.append(command[1:])
    return found


def test_doc_examples_write_reports_and_never_a_full_card_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    commands = doc_run_commands()
    assert len(commands) == 2  # the library, and one file with --json
    pans = set()
    for path in LIBRARY_FILES:
        pans |= set(re.findall(r'pan = "(\d{12,19})"', path.read_text()))
    assert pans
    monkeypatch.chdir(ROOT)
    for n, args in enumerate(commands):
        out = tmp_path / str(n)
        code, _, err = cli(capsys, *[str(out) if a == "report/" else a for a in args])
        assert code == 0, err
        assert (out / "index.html").exists()
        for page in out.glob("*.html"):
            text = page.read_text()
            assert not [pan for pan in pans if pan in text], page
    assert len(list((tmp_path / "0").glob("*.html"))) == len(LIBRARY_FILES) + 1


def test_recorded_runs_have_the_same_trace_as_plain_runs() -> None:
    for path in LIBRARY_FILES:
        scenario = load_scenario(path)
        assert run_recorded(scenario).result.trace_sha256 == \
            run_scenario(scenario).trace_sha256, path


def test_the_recorded_bytes_are_the_jobs_the_trace_shows() -> None:
    recorded = run_recorded(load_scenario(LIBRARY / "sale_paper_jam_prevented.toml"))
    started = [e for e in recorded.result.trace.events if e.name == "printer.job_started"]
    assert len(recorded.jobs) == len(started) == 2
    assert all(job.startswith(b"\x1b@") for job in recorded.jobs)


def test_diagram_lanes_arrows_faults_steps_and_pins() -> None:
    result = run_scenario(load_scenario(JAM))
    svg = diagram(result.trace.events, result.anomalies)
    assert re.findall(r'class="lane" data-lane="(\w+)"', svg) == list(LANES)
    mtis = re.findall(r'class="arrow frame[^"]*"[^>]*data-mti="(\d+)"', svg)
    assert mtis == ["0200", "0210"]
    assert 'data-fault="printer.paper_jam"' in svg
    assert svg.count('class="step-boundary') == 2  # s1 starts, s1 ends
    assert re.findall(r'class="anomaly-pin" data-kind="(\w+)"', svg) == ["charged_no_receipt"]
    assert "0200 #000001 12.50" in svg
    assert "0210 #000001 rc 00" in svg


def test_compressed_idle_time_is_shorter_and_says_how_long() -> None:
    result = run_scenario(load_scenario(JAM))
    plain = diagram(result.trace.events, result.anomalies)
    short = diagram(result.trace.events, result.anomalies, compress=True)
    height = re.compile(r'<svg[^>]*height="([\d.]+)"')
    assert float(height.search(short)[1]) < float(height.search(plain)[1])  # type: ignore[index]
    assert "⋯ 119.1 s" in short  # the jam's two minutes, less the time to the job's end
    assert 'class="idle"' not in plain


def test_lost_frames_end_in_a_cross_on_the_link() -> None:
    result = run_scenario(load_scenario(LIBRARY / "sale_network_down_in_doubt.toml"))
    svg = diagram(result.trace.events, result.anomalies)
    assert svg.count('class="arrow frame lost') >= 1
    assert 'class="cross"' in svg
    assert re.findall(r'class="anomaly-pin" data-kind="(\w+)"', svg) == ["in_doubt"]


def test_replay_html_writes_the_new_runs_page(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    traces = tmp_path / "traces"
    cli(capsys, "run", JAM, "--trace-dir", traces, "--json")
    code, out, _ = cli(capsys, "replay", traces / "sale_paper_jam.jsonl",
                       "--html", tmp_path / "r")
    assert code == 0
    assert out.startswith("identical:")
    page = (tmp_path / "r" / "sale_paper_jam.html").read_text()
    assert 'data-kind="charged_no_receipt"' in page
    assert (tmp_path / "r" / "index.html").exists()


def test_replay_html_of_a_fleet_trace_is_a_summary(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "fleet.jsonl"
    code, out, _ = cli(capsys, "fleet", JAM, "--terminals", "30", "--trace", trace, "--json")
    assert code == 1
    counts = json.loads(out)
    code, _, _ = cli(capsys, "replay", trace, "--html", tmp_path / "r")
    assert code == 0
    page = (tmp_path / "r" / "fleet.html").read_text()
    assert "fleet of 30 terminals" in page
    assert 'data-lane="' not in page  # counts, not lanes
    for state, n in counts["end_states"].items():
        assert f'<tr data-state="{state}"><td>{state}</td><td class="num">{n}</td>' in page
    for kind, n in counts["anomalies"].items():
        assert f'<tr data-anomaly="{kind}"><td>{kind}</td><td class="num">{n}</td>' in page
    # the chart: every step once, by its end state, in the slice of time it ended in
    bars = re.findall(r'class="bar" data-state="(\w+)"[^>]*><title>[^<]*: (\d+) ', page)
    totals: dict[str, int] = {}
    for state, n in bars:
        totals[state] = totals.get(state, 0) + int(n)
    assert totals == counts["end_states"]
    assert "Steps ended, by end state, over simulated time" in page


def test_html_into_a_file_is_an_io_error(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = cli(capsys, "run", CLEAN, "--html", blocker)
    assert code == 3
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_index_is_made_from_the_pages_in_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    cli(capsys, "run", JAM, CLEAN, "--html", tmp_path)
    (tmp_path / "index.html").unlink()
    (tmp_path / "notes.html").write_text("<p>not a report</p>")
    (tmp_path / "odd.html").write_text('<meta name="posemu-entry" content="{&quot;x&quot;: 1}">')
    index = write_index(tmp_path).read_text()
    assert re.findall(r'<a href="([\w.-]+)">', index) == ["sale_approved.html",
                                                         "sale_paper_jam.html"]


def test_runs_without_html_import_no_report_module() -> None:
    script = (
        "import sys\n"
        "from emulator.cli.main import main\n"
        f"assert main(['run', {str(JAM)!r}]) == 0\n"
        "heavy = ('emulator.report', 'devices.printer.paper', 'devices.printer.render')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "[]"


def test_html_without_images_does_not_import_the_picture_module() -> None:  # the above can fail
    script = (
        "import sys, tempfile\n"
        "from emulator.cli.main import main\n"
        f"assert main(['run', {str(JAM)!r}, '--json', '--html', tempfile.mkdtemp()]) == 0\n"
        "print('emulator.report.html' in sys.modules, 'devices.printer.render' in sys.modules,\n"
        "      file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False, timeout=60, cwd=ROOT)
    assert proc.stderr.strip().splitlines()[-1] == "True False"


# ------------------------------------------------------------------ the pytest plugin


def test_pytest_posemu_html_writes_failed_scenarios_only(pytester: pytest.Pytester) -> None:
    for path in (JAM, CLEAN):
        (pytester.path / path.name).write_text(path.read_text())
    result = pytester.runpytest_subprocess("--posemu-profile", "robust",
                                           "--posemu-html", "report", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    pages = sorted(p.name for p in (pytester.path / "report").iterdir())
    assert len(pages) == 2
    assert "index.html" in pages
    [page] = [p for p in pages if p != "index.html"]
    assert page.startswith("sale_paper_jam.toml")
    result.stdout.fnmatch_lines([f"html report: report/{page}"])
    index = (pytester.path / "report" / "index.html").read_text()
    assert f'href="{page}"' in index
    assert ">FAIL<" in index
    assert ">PASS<" not in index  # passed scenarios get no page


# ------------------------------------------------------------------------ receipts


def test_receipt_html_draws_barcodes_and_qr_codes_inline() -> None:
    from devices.printer.paper import lay_out  # noqa: PLC0415
    from emulator.report.html.receipts import Job, receipt_html  # noqa: PLC0415
    from tests.unit.test_receipt_picture import stream  # noqa: PLC0415

    html = receipt_html(Job(1, 4.94, "s1", "approved", "done", "", tuple(lay_out(stream()))))
    images = re.findall(r'<img alt="(\w+) ([^"]*)" data-data="[^"]*" style="width:([\d.]+)%" '
                        r'src="data:image/png;base64,', html)
    assert [(kind, data) for kind, data, _ in images] == [
        ("barcode", "4006381333931"), ("qr", "posemu:000000000001")]
    assert all(0 < float(width) <= 100 for _, _, width in images)
    assert "**** **** **** 1111" in html
    assert 'class="cut"' in html


def test_without_the_bytes_a_receipt_is_the_traces_text() -> None:
    from emulator.report.html.receipts import jobs_of, receipt_html  # noqa: PLC0415

    events = run_scenario(load_scenario(LIBRARY / "sale_paper_jam_prevented.toml")).trace.events
    failed, done = jobs_of(events, [])  # a bench run keeps no bytes
    assert (failed.outcome, failed.reason, done.outcome) == ("failed", "jam", "done")
    html = receipt_html(done)
    assert "APPROVED" in html
    assert 'class="cut"' in html
    assert "CUT SHORT: jam" in receipt_html(failed)


def test_the_same_run_gives_the_same_pages(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a", "b"):
        cli(capsys, "run", JAM, RETRY, "--html", tmp_path / name, "--json")
    pages = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(pages) == 3
    for page in pages:
        assert (tmp_path / "a" / page).read_bytes() == (tmp_path / "b" / page).read_bytes()

"""Bench runs: `posemu run FILE --printer serial:<pty>` against `posemu printer --pty`.

Two processes over a real pseudo-terminal, in real time: each test takes a few seconds
(a sale spends 4.5 s at the card reader). Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.engine.trace import read_trace
from tests.support import POSEMU, ROOT, cli

BAUD = 115200
RUN_TIMEOUT_S = 60

SCENARIO = """\
format = 1
name = "Bench sale"

[terminal]
profile = "{profile}"
response_timeout_s = 2
receipt_hold_s = {hold}
printer_poll_s = 0.2

[printer]
lines_per_s = 100

[[cards]]
id = "alice"
pan = "4111111111111111"
balance = "250.00"

[[steps]]
id = "s1"
at_s = 0.5
do = "sale"
card = "alice"
amount = "12.50"
{extra}"""


def scenario(tmp_path: Path, profile: str = "naive", hold: float = 20, extra: str = "",
             name: str = "bench_sale") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(SCENARIO.format(profile=profile, hold=hold, extra=extra), encoding="utf-8")
    return path


class Printer:
    """`posemu printer --pty` in a subprocess: control lines in, receipts out."""

    def __init__(self, raw_log: Path | None = None) -> None:
        extra = ["--raw-log", str(raw_log)] if raw_log is not None else []
        self.proc = subprocess.Popen(
            [str(POSEMU), "printer", "--pty", "--baudrate", str(BAUD), "--lines-per-s", "100",
             *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.seen: list[str] = []
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        first = self.proc.stdout.readline() if ready else ""
        if not first.startswith("PTY /dev/"):
            self.proc.kill()
            pytest.fail(f"no PTY line from the virtual printer: {first!r}")
        self.spec = f"serial:{first.split()[1]}?baudrate={BAUD}"

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_for(self, text: str, timeout_s: float = 30) -> None:
        """Read its output until a line holds ``text`` (bounded by ``timeout_s``)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], deadline - time.monotonic())
            line = self.proc.stdout.readline() if ready else ""
            self.seen.append(line)
            if text in line:
                return
            if ready and not line:
                break
        pytest.fail(f"the virtual printer never printed {text!r}")

    def finish(self) -> str:
        """Quit; everything it printed after the PTY line."""
        self.send("quit")
        out, _ = self.proc.communicate(timeout=10)
        assert self.proc.returncode == 0
        return "".join(self.seen) + out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


@pytest.fixture
def printer() -> Iterator[Printer]:
    p = Printer()
    yield p
    p.kill()


def start_run(path: Path, spec: str, *args: str | Path, cwd: Path = ROOT) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(POSEMU), "run", str(path), "--printer", spec, "--json", *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)


def finish_run(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, out, err


def run(path: Path, spec: str, *args: str | Path, cwd: Path = ROOT) -> tuple[int, str, str]:
    return finish_run(start_run(path, spec, *args, cwd=cwd))


def result(out: str) -> dict[str, Any]:
    [line] = out.splitlines()
    data: dict[str, Any] = json.loads(line)
    return data


def events(path: Path, name: str) -> list[dict[str, Any]]:
    _, evs = read_trace(path)
    return [e.fields for e in evs if e.name == name]


# -- end to end over a pseudo-terminal ---------------------------------------------------


def test_a_sale_prints_its_receipt_on_the_virtual_printer(
    printer: Printer, tmp_path: Path,
) -> None:
    started = time.monotonic()
    code, out, err = run(scenario(tmp_path), printer.spec, "--trace-dir", tmp_path / "t")
    assert (code, err) == (0, "")
    data = result(out)
    [step] = data["steps"]
    assert step["end_state"] == "approved"
    assert "AMOUNT                           EUR 12.50" in step["receipt"]
    assert data["anomalies"] == []
    assert data["balances"] == {"alice": "237.50", "merchant": "12.50"}
    assert 5 < data["sim_time_s"] < 10  # ended when the terminal was idle
    assert time.monotonic() - started < 20
    printed = printer.finish()
    assert "AMOUNT                           EUR 12.50" in printed
    assert "--- cut ---" in printed
    trace = tmp_path / "t" / "bench_sale.jsonl"
    assert events(trace, "printer.state")[0] == {"state": "online", "source": "printer"}


def test_paper_out_is_charged_no_receipt_for_the_naive_firmware(
    printer: Printer, tmp_path: Path,
) -> None:
    printer.send("paper-out")
    expect = '\n[expect]\nanomalies = ["charged_no_receipt"]\n'
    code, out, err = run(scenario(tmp_path, extra=expect), printer.spec, "--trace-dir", tmp_path)
    assert (code, err) == (0, "")
    data = result(out)
    assert data["verdict"] == "pass"
    assert [a["kind"] for a in data["anomalies"]] == ["charged_no_receipt"]
    assert data["steps"][0]["end_state"] == "charged_no_receipt"
    assert data["balances"]["alice"] == "237.50"
    trace = tmp_path / "bench_sale.jsonl"
    assert events(trace, "fault.started") == [{"fault": "printer.paper_out",
                                               "source": "printer"}]
    assert events(trace, "printer.job_failed")[0]["reason"] == "paper_out"
    assert "EUR 12.50" not in printer.finish()


def test_paper_out_is_undone_by_the_robust_firmware(printer: Printer, tmp_path: Path) -> None:
    printer.send("paper-out")
    code, out, err = run(scenario(tmp_path, "robust", hold=1), printer.spec)
    assert (code, err) == (0, "")
    data = result(out)
    assert data["anomalies"] == []
    assert data["steps"][0]["end_state"] == "cancelled"
    assert data["balances"] == {"alice": "250.00", "merchant": "0.00"}


def wait_raw(raw: Path, needle: bytes, timeout_s: float = 30) -> None:
    """Wait until the virtual printer has received ``needle`` (its raw log shows it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if raw.exists() and needle in raw.read_bytes():
            return
        select.select([], [], [], 0.05)
    pytest.fail(f"the virtual printer never received {needle!r}")


def test_robust_firmware_holds_and_reprints_once_paper_is_in(tmp_path: Path) -> None:
    raw = tmp_path / "raw.bin"
    printer = Printer(raw_log=raw)
    printer.send("paper-out")
    proc = start_run(scenario(tmp_path, "robust", hold=30), printer.spec,
                     "--trace-dir", tmp_path)
    # Nothing reaches the printer while it reports paper out, so there is no byte to wait
    # for: anchor on the run's first status poll (its clock starts then), and load paper
    # well after the receipt fails (about 5.5 s in) and well before the 30 s hold ends.
    wait_raw(raw, b"\x10\x04")
    time.sleep(12)
    printer.send("paper-in")
    code, out, err = finish_run(proc)
    assert (code, err) == (0, "")
    data = result(out)
    assert data["anomalies"] == []
    assert data["steps"][0]["end_state"] == "approved"
    trace = tmp_path / "bench_sale.jsonl"
    assert events(trace, "terminal.receipt_held") == [{"step": "s1"}]
    assert [f["source"] for f in events(trace, "fault.cleared")] == ["printer"]
    assert len(events(trace, "printer.job_failed")) == 1
    assert len(events(trace, "printer.job_done")) == 1
    assert "AMOUNT                           EUR 12.50" in printer.finish()


# -- hardware failures: exit 3, one line, the trace kept ---------------------------------


def test_a_missing_device_is_exit_3_and_the_trace_is_kept(tmp_path: Path) -> None:
    path = scenario(tmp_path)
    code, out, err = run(path, "serial:/dev/posemu-no-such-port", cwd=tmp_path)
    assert (code, out) == (3, "")
    assert len(err.splitlines()) == 1
    assert "cannot open the port" in err
    assert "trace so far in posemu-bench-bench_sale.jsonl" in err
    header, evs = read_trace(tmp_path / "posemu-bench-bench_sale.jsonl")
    assert header["name"] == "Bench sale"
    assert [e.name for e in evs] == ["bench.aborted"]


def test_a_printer_killed_mid_run_is_exit_3_and_the_trace_is_kept(tmp_path: Path) -> None:
    raw = tmp_path / "raw.bin"
    printer = Printer(raw_log=raw)
    proc = start_run(scenario(tmp_path), printer.spec, "--trace-dir", tmp_path / "t")
    wait_raw(raw, b"POSEMU DEMO SHOP")  # the receipt is on its way: pull the plug
    printer.kill()
    started = time.monotonic()
    code, out, err = finish_run(proc)
    assert time.monotonic() - started < 5
    assert (code, out) == (3, "")
    assert len(err.splitlines()) == 1
    trace = tmp_path / "t" / "bench_sale.jsonl"
    assert f"; trace so far in {trace}" in err
    _, evs = read_trace(trace)
    names = [e.name for e in evs]
    assert "card.read" in names
    assert "printer.job_started" in names
    assert names[-1] == "bench.aborted"
    aborted = evs[-1].fields
    assert "s1" in aborted["txns"]  # the sale went online before the port vanished
    assert aborted["reason"].startswith("printer serial:")


# -- refused before anything runs: exit 2 ------------------------------------------------




def test_a_printer_fault_in_the_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    path = scenario(tmp_path, extra='\n[[faults]]\nfault = "printer.paper_jam"\nat_s = 1\n')
    code, out, err = cli(capsys, "run", path, "--printer", "serial:/dev/posemu-no-such-port")
    assert (code, out) == (2, "")
    assert err == (f"posemu: {path}: faults[0].fault: printer.paper_jam cannot be scheduled "
                   "with --printer: the real printer reports its own faults (remove it, or "
                   "run without --printer)\n")
    assert list(tmp_path.glob("*.jsonl")) == []


@pytest.mark.parametrize(("spec", "message"), [
    ("usb:/dev/ttyUSB0", "expected serial:<device>"),
    ("serial:/dev/ttyS0?baudrate=fast", "baudrate must be a whole number from 50 to 4,000,000"),
])
def test_a_bad_printer_spec_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str, message: str,
) -> None:
    code, out, err = cli(capsys, "run", scenario(tmp_path), "--printer", spec)
    assert (code, out) == (2, "")
    assert message in err
    assert len(err.splitlines()) == 1


def test_only_one_file_runs_with_a_printer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    first, second = scenario(tmp_path, name="a"), scenario(tmp_path, name="b")
    code, _, err = cli(capsys, "run", first, second, "--printer", "serial:/dev/ttyS0")
    assert code == 2
    assert err == "posemu: --printer runs one scenario file; 2 given\n"


def test_printer_needs_pty(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "printer")
    assert code == 2
    assert "--pty" in err


def test_the_cli_loads_the_bench_only_for_printer_runs() -> None:
    probe = (
        "import sys\n"
        "from emulator.cli.main import build_parser\n"
        "build_parser().parse_args(['run', '--json', 'x.toml'])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'serial', 'escpos', 'rich'}),"
        " 'emulator.engine.bench' in sys.modules, 'devices.printer.virtual' in sys.modules,"
        " file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=ROOT, check=True, timeout=60)
    assert proc.stderr == "[] False False\n"


@pytest.mark.hardware
@pytest.mark.skipif(not os.environ.get("POSEMU_PRINTER"),
                    reason="set POSEMU_PRINTER=serial:/dev/ttyUSB0 to test a real printer")
def test_a_sale_prints_on_a_physical_printer(tmp_path: Path) -> None:
    code, out, err = run(scenario(tmp_path), os.environ["POSEMU_PRINTER"])
    assert (code, err) == (0, "")
    assert result(out)["steps"][0]["end_state"] == "approved"

"""``posemu acquirer`` as users run it: its first line, signals, report, trace, exit codes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.realtime.live_client import Client, encode, request
from tests.support import POSEMU, cli

TIMEOUT_S = 20
SCENARIO = """\
format = 1
name = "live cli"
[bank]
processing_s = 0
verify_mac = false
in_doubt_after_s = 0.2
[[cards]]
id = "alice"
pan = "4111111111111111"
balance = "100.00"
"""


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "bank.toml"
    path.write_text(SCENARIO)
    return path


def test_listen_serve_sigterm_report(scenario: Path, tmp_path: Path):
    trace = tmp_path / "live.jsonl"
    with subprocess.Popen([POSEMU, "acquirer", scenario, "--listen", "127.0.0.1:0",
                           "--json", "--trace", trace], stdout=subprocess.PIPE, text=True,
                          stderr=subprocess.PIPE) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline().split()
            assert first[0] == "LISTEN"
            host, port = first[1].rsplit(":", 1)
            with Client((host, int(port))) as client:
                assert client.ask(request("0200", 1, amount=700))["39"] == "00"
            lines = trace.read_text().splitlines()  # streamed: there while it runs
            assert any('"event":"posted"' in line for line in lines)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=TIMEOUT_S)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    report = json.loads(out)
    assert report["balances"]["alice"] == "93.00"
    assert report["anomalies"] == []
    assert report["events"] == len(trace.read_text().splitlines()) - 1
    assert "4111111111111111" not in out + trace.read_text()


def test_an_unexpected_anomaly_exits_1(scenario: Path):
    text = SCENARIO + '[[faults]]\nfault = "bank.timeout"\non = "bank.request_received"\n'
    scenario.write_text(text)
    with subprocess.Popen([POSEMU, "acquirer", scenario, "--duration", "0.6"],
                          stdout=subprocess.PIPE, text=True, stderr=subprocess.PIPE) as proc:
        try:
            assert proc.stdout is not None
            host, port = proc.stdout.readline().split()[1].rsplit(":", 1)
            with Client((host, int(port))) as client:
                client.send(encode(request("0200", 1)))
            out, err = proc.communicate(timeout=TIMEOUT_S)
        finally:
            proc.kill()
    assert proc.returncode == 1, err
    assert "ANOMALY in_doubt (terminal TERM0001 STAN 000001)" in out
    assert out.rstrip().endswith("FAIL")


def test_terminal_faults_are_refused_naming_them(scenario: Path,
                                                 capsys: pytest.CaptureFixture[str]):
    scenario.write_text(SCENARIO + '[[faults]]\nfault = "printer.paper_jam"\nat_s = 1\n')
    code, out, err = cli(capsys, "acquirer", scenario)
    assert code == 2
    assert "faults[0].fault" in err
    assert "--printer pty" in err
    assert "printer.paper_jam" in err
    assert out == ""


@pytest.mark.parametrize(("flags", "says"), [
    (["--framing", "vml"], "unknown framing"),
    (["--listen", "nowhere"], "HOST:PORT"),
    (["--tls-cert", "x.pem"], "go together"),
    (["--duration", "0"], "more than 0"),
])
def test_bad_flags_exit_2(scenario: Path, capsys: pytest.CaptureFixture[str], flags, says):
    code, _, err = cli(capsys, "acquirer", scenario, *flags)
    assert code == 2
    assert says in err


def test_an_address_in_use_exits_3(scenario: Path, capsys: pytest.CaptureFixture[str]):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = cli(capsys, "acquirer", scenario, "--listen", f"127.0.0.1:{port}")
    assert code == 3
    assert "in use" in err


def test_an_unreadable_certificate_exits_3(scenario: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]):
    code, _, err = cli(capsys, "acquirer", scenario, "--tls-cert", tmp_path / "none.pem",
                       "--tls-key", tmp_path / "none.key")
    assert code == 3
    assert "none.pem" in err


@pytest.mark.parametrize(("url", "says"), [
    ("http://127.0.0.1:1", "tcp://HOST:PORT"),
    ("tcp://127.0.0.1", "tcp://HOST:PORT"),
    ("tcp://127.0.0.1:1?framing=vml", "unknown framing"),
    ("tcp://127.0.0.1:1?colour=red", "unknown parameter 'colour'"),
])
def test_a_bad_acquirer_url_exits_2(scenario: Path, capsys: pytest.CaptureFixture[str], url,
                                    says):
    code, _, err = cli(capsys, "run", scenario, "--acquirer", url)
    assert code == 2
    assert says in err


def test_bank_faults_belong_to_the_acquirer(scenario: Path, capsys: pytest.CaptureFixture[str]):
    scenario.write_text(SCENARIO + '[[faults]]\nfault = "bank.down"\nat_s = 0\n')
    code, _, err = cli(capsys, "run", scenario, "--acquirer", "tcp://127.0.0.1:1")
    assert code == 2
    assert "faults[0].fault: bank.down belongs to the acquirer" in err


def test_no_acquirer_listening_is_a_refused_connection(scenario: Path):
    from emulator.live.client import run_remote  # noqa: PLC0415
    from emulator.scenario.load import load_scenario  # noqa: PLC0415

    scenario.write_text(SCENARIO + '[[steps]]\nid = "s1"\ndo = "sale"\ncard = "alice"\n'
                        'amount = "5.00"\n')
    with socket.socket() as free:  # a port nobody listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    result = run_remote(load_scenario(scenario), f"tcp://127.0.0.1:{port}", speed=50)
    assert [e.name for e in result.trace.events].count("tcp.refused") >= 1
    assert result.steps[0].end_state in ("declined", "cancelled")


def test_printer_pty_is_the_second_line(scenario: Path, capsys: pytest.CaptureFixture[str]):
    scenario.write_text(SCENARIO + '[[faults]]\nfault = "printer.paper_jam"\nat_s = 0\n')
    code, out, err = cli(capsys, "acquirer", scenario, "--printer", "pty", "--duration", "0.2")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("LISTEN 127.0.0.1:")
    assert lines[1].startswith("PTY /dev/")


def test_a_bad_printer_exits_2(scenario: Path, capsys: pytest.CaptureFixture[str]):
    code, _, err = cli(capsys, "acquirer", scenario, "--printer", "serial:/dev/ttyS0")
    assert code == 2
    assert "pty[?baudrate=N]" in err


def test_a_mac_key_that_is_not_hex_is_refused(scenario: Path,
                                             capsys: pytest.CaptureFixture[str]):
    scenario.write_text(SCENARIO.replace("verify_mac = false", 'mac_key = "not hex"'))
    code, _, err = cli(capsys, "acquirer", scenario)
    assert code == 2
    assert "bank.mac_key" in err

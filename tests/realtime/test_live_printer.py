"""``posemu acquirer --printer pty``: the terminal prints on the acquirer's virtual printer,
and the receipts are matched to the postings (seed story 1, charged but no receipt)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devices.printer.virtual import VirtualPrinter
from emulator.live.acquirer import LiveAcquirer, Running
from emulator.live.client import run_remote
from emulator.live.oracle import Posted, Receipt
from emulator.scenario.load import load_scenario, scenario_from_dict
from tests.support import POSEMU

TIMEOUT_S = 60
BAUD = 115200
CARD = {"id": "alice", "pan": "4111111111111111", "balance": "100.00"}
JAM = {"fault": "printer.paper_jam", "at_s": 0}
TERMINAL = """\
format = 1
name = "terminal with the acquirer's printer"
[terminal]
profile = "{profile}"
response_timeout_s = 4
receipt_hold_s = 2
printer_poll_s = 0.2
[printer]
lines_per_s = 100
[[cards]]
id = "alice"
pan = "4111111111111111"
balance = "100.00"
[[steps]]
id = "s1"
do = "sale"
card = "alice"
amount = "12.50"
"""


@pytest.fixture
def acquirer() -> Iterator[Any]:
    started: list[tuple[Running, VirtualPrinter]] = []

    def start(faults: list[dict[str, Any]]) -> tuple[Running, VirtualPrinter]:
        data = {"format": 1, "name": "bank with printer", "cards": [CARD], "faults": faults,
                "bank": {"processing_s": 0}, "printer": {"lines_per_s": 100}}
        printer = VirtualPrinter(lines_per_s=100, baudrate=BAUD)
        run = Running(LiveAcquirer(scenario_from_dict(data), printer=printer)).__enter__()
        started.append((run, printer))
        return run, printer

    yield start
    for run, printer in started:
        run.stop()
        printer.close()


def terminal(tmp_path: Path, profile: str, address: tuple[str, int], pty: str,
             *, process: bool = False) -> dict[str, Any]:
    """The terminal's JSON result: ``posemu run`` in another process, or in-process."""
    path = tmp_path / f"{profile}.toml"
    path.write_text(TERMINAL.format(profile=profile))
    if not process:
        return run_remote(load_scenario(path), f"tcp://{address[0]}:{address[1]}", speed=8,
                          printer=f"serial:{pty}?baudrate={BAUD}").to_json()
    done = subprocess.run(
        [POSEMU, "run", path, "--acquirer", f"tcp://{address[0]}:{address[1]}", "--printer",
         f"serial:{pty}?baudrate={BAUD}", "--speed", "8", "--json"],
        capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert done.returncode in (0, 1), done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_receipt_printed_on_the_acquirers_printer_clears_the_sale(acquirer, tmp_path):
    run, printer = acquirer([])
    seen = terminal(tmp_path, "naive", run.address, printer.path)
    bank = run.stop()
    assert seen["steps"][0]["end_state"] == "approved"
    assert bank.anomalies == []
    assert bank.balances_minor["alice"] == 8750


def test_charged_but_no_receipt_is_judged_on_the_acquirers_side(acquirer, tmp_path):
    run, printer = acquirer([JAM])
    terminal(tmp_path, "naive", run.address, printer.path, process=True)
    bank = run.stop()
    assert [a.kind for a in bank.anomalies] == ["charged_no_receipt"]
    assert bank.balances_minor["alice"] == 8750


def test_the_robust_terminal_undoes_the_sale_it_cannot_print(acquirer, tmp_path):
    run, printer = acquirer([JAM])
    seen = terminal(tmp_path, "robust", run.address, printer.path)
    bank = run.stop()
    assert seen["steps"][0]["end_state"] != "approved"
    assert bank.anomalies == []
    assert bank.balances_minor["alice"] == 10000


def test_receipts_name_a_posting_by_rrn_or_terminal_and_stan():
    p = Posted(1.0, ("TERM0001", "000042", "1122090000"), "sale", 1250, "alice", True)
    assert Receipt("TID TERM0001\nSTAN 000042\nAPPROVED").names(p, None)
    assert Receipt("RRN 000000000007\nAPPROVED").names(p, "000000000007")
    assert not Receipt("TID TERM0002\nSTAN 000042").names(p, None)
    assert Receipt("SALE\nAPPROVED\nSTAN 000042").approved
    assert not Receipt("SALE\nDECLINED\nSTAN 000042").approved


PARTIAL = {"fault": "bank.respond", "at_s": 0, "code": "10", "amount": "7.50", "count": 1}


@pytest.mark.parametrize(("profile", "found"), [("naive", ["wrong_amount"]), ("robust", [])])
def test_transfer_error_judged_by_the_receipt(acquirer, tmp_path, profile, found):
    run, printer = acquirer([PARTIAL])
    terminal(tmp_path, profile, run.address, printer.path)
    bank = run.stop()
    assert [a.kind for a in bank.anomalies] == found  # naive printed 12.50, 7.50 moved
    assert bank.balances_minor["alice"] == 10000 - 750

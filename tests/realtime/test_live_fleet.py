"""``posemu fleet --load-only --acquirer``: load terminals in real time against posemu's acquirer
(clean, and with a network fault applied on posemu's side) and against a broken host."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.realtime.broken_host import BrokenHost
from tests.realtime.proxy_support import WAIT_S, acquirer, bank_data, stop_acquirer
from tests.support import POSEMU

FLEET = """\
format = 1
name = "fleet"
[terminal]
response_timeout_s = 0.5
[[cards]]
id = "dave"
pan = "4012888888881881"
balance = "80.00"
[[steps]]
id = "s1"
do = "sale"
card = "dave"
amount = "1.25"
"""


def fleet(tmp_path: Path, address: tuple[str, int], faults: str = "", *extra: str,
          bank: str = "") -> tuple[int, dict[str, Any]]:
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET + bank + faults)
    done = subprocess.run([POSEMU, "fleet", path, "--terminals", "8", "--load-only",
                           "--acquirer", f"tcp://{address[0]}:{address[1]}", "--rate", "16",
                           "--duration", "1", "--json", *extra],
                          capture_output=True, text=True, timeout=WAIT_S, check=False)
    assert done.returncode in (0, 1), done.stderr
    assert "\x1b" not in done.stderr  # no progress bar when stderr is not a terminal
    result: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, result


def test_a_clean_fleet_is_answered_and_passes(tmp_path):
    with acquirer() as bank:
        status, report = fleet(tmp_path, bank.address, bank="[bank]\nverify_mac = false\n")
        bank_side = stop_acquirer(bank)
    assert status == 0
    assert report["verdict"] == "pass"
    assert report["sales_sent"] == report["answered"] == len(bank_side.postings)
    assert 8 <= report["sales_sent"] <= 24  # 16 a second for about a second, all 8 at least
    assert report["codes"] == {"00": report["answered"]}
    assert {p["terminal_id"] for p in bank_side.postings} == {f"T000000{n}" for n in range(1, 9)}
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p99"]


def test_lost_answers_are_reversed_and_the_host_keeps_its_books(tmp_path):
    drop = ('[[faults]]\nfault = "network.drop"\ndirection = "to_terminal"\ncount = 2\n'
            "at_s = 0\n")
    with acquirer(bank_data(verify_mac=True)) as bank:
        status, report = fleet(tmp_path, bank.address, drop)
        bank_side = stop_acquirer(bank)
    assert status == 0
    assert (report["timeouts"], report["reversals"]) == (2, 2)
    assert report["proxy"]["faults"][0]["acted"] == 2
    assert report["proxy"]["frames"]["to_bank"]["0400"] == 2
    assert sum(p["reversed"] for p in bank_side.postings) == 2
    assert bank_side.anomalies == []


def test_a_host_posting_copies_breaks_repeat_same_outcome(tmp_path):
    copy = ('[[faults]]\nfault = "network.duplicate"\ndirection = "to_bank"\ncount = 1\n'
            "at_s = 0\n")
    host = BrokenHost("posts_duplicates")
    try:
        status, report = fleet(tmp_path, host.address, copy)
    finally:
        host.stop()
    assert status == 1
    assert report["breaches"] == {"repeat_same_outcome": 1}
    assert "host.repeat_same_outcome" in report["examples"][0]


def test_a_bank_fault_is_refused(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(FLEET + '[[faults]]\nfault = "bank.timeout"\nat_s = 0\n')
    done = subprocess.run([POSEMU, "fleet", path, "--terminals", "2", "--load-only",
                           "--acquirer", "tcp://127.0.0.1:9"], capture_output=True, text=True,
                          timeout=WAIT_S, check=False)
    assert done.returncode == 2
    assert "faults[0].fault: bank.timeout cannot act on a live fleet" in done.stderr

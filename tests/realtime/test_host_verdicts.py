"""Host verdicts from the terminal's side (docs/live.md): posemu's terminal (``posemu run
--acquirer``) against posemu's own acquirer passes every rule, and against a deliberately
broken host (tests/realtime/broken_host.py) each rule catches the breach, named with the
messages involved."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from emulator.live.host_rules import Message, judge_host
from tests.realtime.broken_host import BrokenHost
from tests.realtime.proxy_support import WAIT_S, acquirer, bank_data, proxy, stop_acquirer
from tests.support import POSEMU


def terminal(tmp_path: Path, *steps: str, until_s: float = 0, **knobs: Any) -> Path:
    """posemu's robust terminal: a sale of 30.00 (and a settle with ``"settle"``); with
    ``until_s``, the run stops then (simulated seconds)."""
    lines = ["format = 1", 'name = "terminal"', *([f"until_s = {until_s}"] if until_s else []),
             "[terminal]", 'profile = "robust"',
             "response_timeout_s = 4", *(f"{k} = {json.dumps(v)}" for k, v in knobs.items()),
             "[[cards]]", 'id = "dave"', 'pan = "4012888888881881"', 'balance = "80.00"',
             "[[steps]]", 'id = "s1"', 'do = "sale"', 'card = "dave"', 'amount = "30.00"']
    for n, step in enumerate(steps):
        lines += ["[[steps]]", f'id = "x{n}"', f'do = "{step}"', f"at_s = {20 * (n + 1)}"]
    path = tmp_path / "terminal.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(path: Path, address: tuple[str, int]) -> dict[str, Any]:
    done = subprocess.run([POSEMU, "run", path, "--acquirer",
                           f"tcp://{address[0]}:{address[1]}", "--speed", "20", "--json"],
                          capture_output=True, text=True, timeout=WAIT_S * 4, check=False)
    assert done.returncode in (0, 1), done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def host_failures(result: dict[str, Any]) -> dict[str, str]:
    """Each host rule broken, with the text of its breaches (one per line)."""
    out: dict[str, str] = {}
    for failure in result["failures"]:
        if failure.startswith("host."):
            rule = failure.split(":", 1)[0]
            out[rule] = (out[rule] + "\n" if rule in out else "") + failure
    return out


def test_posemus_acquirer_keeps_every_rule(tmp_path):
    with acquirer(bank_data(verify_mac=True)) as bank:
        seen = run(terminal(tmp_path, "settle"), bank.address)
        stop_acquirer(bank)
    assert [s["end_state"] for s in seen["steps"]] == ["approved", "settled"]
    assert host_failures(seen) == {}


def test_a_host_posting_a_duplicated_frame_twice_is_caught(tmp_path):
    rules = tmp_path / "dup.toml"
    rules.write_text('[[faults]]\nfault = "network.duplicate"\ndirection = "to_bank"\n'
                     'mti = "0200"\ncount = 1\n')
    host = BrokenHost("posts_duplicates")
    try:
        with proxy(host.address, tmp_path, str(rules)) as running:
            seen = run(terminal(tmp_path, "settle"), running.listen)
            running.stop()
    finally:
        host.stop()
    assert len(host.posted) == 2  # the copy was posted as a second sale
    failed = host_failures(seen)
    assert sorted(failed) == ["host.posted_once", "host.repeat_same_outcome"]
    assert "field 37: 000000000001 then 000000000002" in failed["host.repeat_same_outcome"]
    assert "0210 STAN 000001" in failed["host.repeat_same_outcome"]
    assert "settlement was answered 95" in failed["host.posted_once"]
    assert "0510" in failed["host.posted_once"]


def test_a_host_ignoring_an_early_reversal_is_caught(tmp_path):
    host = BrokenHost("ignores_early_reversals")
    try:
        # the terminal repeats its reversal while the host says it stands: stop after 20 s
        seen = run(terminal(tmp_path, request_retries=0, until_s=20), host.address)
    finally:
        host.stop()
    failed = host_failures(seen)
    assert list(failed) == ["host.early_reversal_honoured"], seen["failures"]
    assert "0410 STAN" in failed["host.early_reversal_honoured"]
    assert "0210 STAN 000001" in failed["host.early_reversal_honoured"]


def test_a_host_echoing_the_wrong_stan_is_caught(tmp_path):
    host = BrokenHost("wrong_stan")
    try:
        seen = run(terminal(tmp_path, until_s=20), host.address)  # it reverses on and on
    finally:
        host.stop()
    failed = host_failures(seen)
    assert "host.fields_echoed" in failed
    assert "names no request this terminal sent (STAN '000002'" in failed["host.fields_echoed"]
    assert "0210 STAN 000002" in failed["host.fields_echoed"]
    # its answer never matched: for the terminal the sale went unanswered
    assert "host.answered_or_reversed" in failed


def msg(n: int, at: float, sent: bool, **fields: str) -> Message:
    return Message(n, at, sent, {"41": "TERM0001", "7": "1122090000", **fields})


def test_a_partial_approval_must_carry_the_smaller_amount():
    sale = msg(1, 0.0, True, t="0200", **{"11": "000001", "4": "000000001250"})
    full = msg(2, 0.1, False, t="0210", **{"11": "000001", "4": "000000001250", "39": "10"})
    breaches = judge_host([sale, full], timeout_s=4)
    assert [(b.rule, b.messages) for b in breaches] == [("fields_echoed", (sale, full))]
    part = msg(2, 0.1, False, t="0210", **{"11": "000001", "4": "000000000750", "39": "10"})
    assert judge_host([sale, part], timeout_s=4) == []


def test_a_status_answer_showing_more_than_charged_is_posted_twice():
    f90 = "0200" + "000001" + "1122090000" + "0" * 22
    sale = msg(1, 0.0, True, t="0200", **{"11": "000001", "4": "000000001000"})
    ok = msg(2, 0.1, False, t="0210", **{"11": "000001", "4": "000000001000", "39": "00"})
    ask = msg(3, 0.2, True, t="0600", **{"11": "000002", "90": f90})
    told = msg(4, 0.3, False, t="0610", **{"11": "000002", "4": "000000002000", "39": "00"})
    breaches = judge_host([sale, ok, ask, told], timeout_s=4)
    assert [(b.rule, b.messages) for b in breaches] == [("posted_once", (ask, told))]
    late = msg(2, 5.0, False, t="0210", **{"11": "000001", "4": "000000001000", "39": "00"})
    assert [b.rule for b in judge_host([sale, late], timeout_s=4)] == ["answered_or_reversed"]


def test_a_network_fault_of_the_run_acts_in_a_proxy_on_posemus_side(tmp_path):
    path = terminal(tmp_path)
    path.write_text(path.read_text() + '[[faults]]\nfault = "network.drop"\n'
                    'direction = "to_terminal"\nat_s = 0\ncount = 1\n')
    with acquirer(bank_data(verify_mac=True)) as bank:
        done = subprocess.run([POSEMU, "run", path, "--acquirer",
                               f"tcp://{bank.address[0]}:{bank.address[1]}", "--speed", "20",
                               "--json", "--trace-dir", str(tmp_path)],
                              capture_output=True, text=True, timeout=WAIT_S * 4, check=False)
        bank_side = stop_acquirer(bank)
    seen = json.loads(done.stdout)
    assert seen["steps"][0]["end_state"] == "approved", done.stderr
    assert host_failures(seen) == {}  # the loss was repeated past (a 0201), not the host's
    assert len(bank_side.postings) == 1  # the repeat answered from the duplicate check
    trace = (tmp_path / "terminal.jsonl").read_text().splitlines()
    sent = [line for line in trace if '"event":"request_sent"' in line]
    assert len(sent) == 2  # the first answer was lost on the way: the terminal asked again

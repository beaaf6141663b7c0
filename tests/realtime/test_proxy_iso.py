"""The fault proxy's ISO 8583-aware faults, end to end on loopback: ``posemu proxy``
between a terminal (posemu's own, ``posemu run --acquirer``, or a pyiso8583 client) and
posemu's acquirer; faults from a scenario FILE and through the HTTP API."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from emulator.live.proxy_rules import load_proxy_file
from tests.realtime.live_client import F7, Client, encode, request
from tests.realtime.proxy_support import (
    WAIT_S,
    acquirer,
    bank_data,
    frames,
    proxy,
    stop_acquirer,
)
from tests.realtime.test_live_run import terminal
from tests.support import POSEMU

PAN = "4012888888881881"


def call(api: tuple[str, int], method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One documented HTTP call to the proxy's API (plain urllib)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{api[0]}:{api[1]}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=WAIT_S) as answer:
            raw = answer.read()
            return answer.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_dropped_0210_is_repeated_by_posemus_terminal_and_charged_once(tmp_path):
    rules = tmp_path / "drop.toml"
    rules.write_text('seed = 3\n[[faults]]\nfault = "network.drop"\ndirection = "to_terminal"\n'
                     'mti = "0210"\nnth = 1\ncount = 1\n')
    with acquirer(bank_data(verify_mac=True)) as bank, \
            proxy(bank.address, tmp_path, str(rules)) as running:
        url = f"tcp://{running.listen[0]}:{running.listen[1]}"
        done = subprocess.run([POSEMU, "run", terminal(tmp_path, "robust"), "--acquirer", url,
                               "--speed", "20", "--json"], capture_output=True, text=True,
                              timeout=WAIT_S * 2, check=False)
        seen = json.loads(done.stdout)
        summary = running.stop()
        bank_side = stop_acquirer(bank)
    assert seen["steps"][0]["end_state"] == "approved", done.stderr
    assert bank_side.anomalies == []
    assert bank_side.balances_minor["dave"] == 5000
    passed = frames(running.trace())
    assert passed[:2] == [("to_bank", "0200", ["passed"]), ("to_terminal", "0210", ["faults[0]"])]
    assert ("to_bank", "0201", ["passed"]) in passed  # the terminal repeated, not re-sold
    assert summary["faults"][0]["acted"] == 1
    assert summary["faults"][0]["seen"] >= 2


def test_api_duplicates_a_0200_corrupts_field_4_and_delays_only_reversals(tmp_path):
    with acquirer() as bank, proxy(bank.address, tmp_path) as running:
        api = running.api
        for toxic in (
                {"name": "dup", "type": "network.duplicate", "stream": "upstream",
                 "attributes": {"mti": "0200", "count": 1}},
                {"name": "amount", "type": "network.corrupt", "stream": "upstream",
                 "attributes": {"mti": "0400", "field": 4}},
                {"name": "slow", "type": "network.latency", "stream": "upstream",
                 "attributes": {"mti": "04xx", "delay_s": 0.05}}):
            assert call(api, "POST", "/proxies/posemu/toxics", toxic)[0] == 200
        with Client(running.listen) as client:
            first = client.ask(request("0200", 1, pan=PAN, amount=2500))
            repeat = client.receive()  # the bank's answer to the copy
            reversal = client.ask(request("0400", 2, pan=PAN, amount=2500,
                                          **{"90": "0200000001" + F7 + "0" * 22}))
        status, listed = call(api, "GET", "/proxies/posemu/toxics")
        summary = running.stop()
        bank_side = stop_acquirer(bank)
    assert status == 200
    assert [t["name"] for t in listed] == ["dup", "amount", "slow"]
    assert first["39"] == repeat["39"] == "00"
    assert first["11"] == repeat["11"] == "000001"
    assert len(bank_side.postings) == 1  # the copy answered from the duplicate check
    # field 4 of the reversal changed on the way, and the frame still decodes
    seen = [e for e in running.trace() if e["event"] == "proxy.frame" and e["mti"] == "0400"]
    assert seen[0]["did"] == ["amount", "slow"]
    assert seen[0]["sent_as"] == "000000002500"
    assert seen[0]["amount"] != "000000002500"
    assert len(seen[0]["amount"]) == 12
    assert reversal["11"] == "000002"
    did = {f["name"]: f["acted"] for f in summary["faults"]}
    assert did == {"dup": 1, "amount": 1, "slow": 1}
    assert ("to_bank", "0200", ["dup"]) in frames(running.trace())


def test_a_file_fault_the_proxy_cannot_act_on_is_refused(tmp_path):
    rules = tmp_path / "bad.toml"
    rules.write_text('[[faults]]\nfault = "bank.timeout"\n')
    done = subprocess.run([POSEMU, "proxy", "--upstream", "127.0.0.1:9", str(rules)],
                          capture_output=True, text=True, timeout=WAIT_S, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"posemu: {rules}: faults[0].fault: the proxy acts on " + done.stderr.split(
            "the proxy acts on ", 1)[1].strip()]
    assert "bank.timeout" in done.stderr
    assert "Traceback" not in done.stderr


def test_api_refuses_a_bad_toxic_with_the_reason(tmp_path):
    with acquirer() as bank, proxy(bank.address, tmp_path) as running:
        bad = call(running.api, "POST", "/proxies/posemu/toxics",
                   {"type": "latency", "attributes": {"latnecy": 5}})
        missing = call(running.api, "DELETE", "/proxies/nope/toxics/x")
        running.stop()
        stop_acquirer(bank)
    assert bad[0] == 400
    assert "latnecy" in bad[1]["error"]
    assert missing[0] == 404


def test_the_docs_proxy_file_loads_as_described(tmp_path):
    text = (Path(__file__).parents[2] / "docs" / "live.md").read_text()
    section = text.split("## The fault proxy", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "proxy.toml"
    path.write_text(example)
    loaded = load_proxy_file(path)
    assert loaded.seed == 7
    assert [(r.fault, r.direction, r.mti, r.nth) for r in loaded.rules] == [
        ("network.drop", "to_terminal", ("0210",), 2),
        ("network.latency", "to_bank", ("04xx",), 1)]
    assert loaded.rules[1].param("delay_s") == 0.5


def test_api_answers_a_taken_name_409_and_an_unknown_call_405(tmp_path):
    with acquirer() as bank, proxy(bank.address, tmp_path) as running:
        upstream = f"{bank.address[0]}:{bank.address[1]}"
        taken = call(running.api, "POST", "/proxies", {"name": "posemu", "upstream": upstream})
        made = call(running.api, "POST", "/proxies", {"name": "b", "upstream": upstream})
        wrong = call(running.api, "PUT", "/proxies/b/toxics")
        reset = call(running.api, "POST", "/reset")
        running.stop()
        stop_acquirer(bank)
    assert taken[0] == 409
    assert made[0] == 201
    assert made[1]["listen"].startswith("127.0.0.1:")
    assert wrong[0] == 405
    assert reset == (204, None)


def test_split_then_reset_and_a_toxic_of_toxicity_zero(tmp_path):
    with acquirer() as bank, proxy(bank.address, tmp_path) as running:
        for toxic in (
                {"name": "never", "type": "network.drop", "stream": "downstream",
                 "toxicity": 0},
                {"name": "pieces", "type": "network.split", "stream": "downstream",
                 "attributes": {"mti": "0210", "pieces": 3, "delay_s": 0.01}},
                {"name": "rst", "type": "network.reset", "stream": "downstream",
                 "attributes": {"mti": "0210", "nth": 2}}):
            assert call(running.api, "POST", "/proxies/posemu/toxics", toxic)[0] == 200
        with Client(running.listen) as client:
            first = client.ask(request("0200", 1, pan=PAN, amount=100))  # in 3 pieces
            client.send(encode(request("0200", 2, pan=PAN, amount=200)))
            assert client.closed_by_peer()  # reset where the second answer was due
        summary = running.stop()
        bank_side = stop_acquirer(bank)
    assert first["39"] == "00"
    assert len(bank_side.postings) == 2
    did = {f["name"]: f["acted"] for f in summary["faults"]}
    assert did == {"never": 0, "pieces": 1, "rst": 1}
    closed = [e for e in running.trace() if e["event"] == "proxy.closed"]
    assert closed[0]["why"] == "fault network.reset"

"""docs/firmware.md says what the code does: its firmware and scenario run as shown, its
tables of events, results and rules are the contract's."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from emulator.engine.world import run_scenario
from emulator.firmware import contract
from emulator.scenario.load import load_scenario
from tests.frontends.test_docs import blocks, section, table_rows
from tests.support import ROOT

FIRMWARE_MD = ROOT / "docs" / "firmware.md"
HARNESS = ROOT / "emulator" / "firmware" / "harness.py"


def test_the_small_firmware_of_the_docs_runs_its_scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (code,) = blocks(FIRMWARE_MD, "python")
    (scenario,) = [b for b in blocks(FIRMWARE_MD, "toml") if "format =" in b]
    (tmp_path / "online_only.py").write_text(code, encoding="utf-8")
    (tmp_path / "sale.toml").write_text(scenario, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = run_scenario(load_scenario(tmp_path / "sale.toml"))
    assert result.failures == ()
    assert result.steps[0].receipt is not None
    assert "APPROVED" in result.steps[0].receipt
    silent = msgspec.structs.replace(  # its weakness: a bank that takes the money, silent
        load_scenario(tmp_path / "sale.toml"), expect=None,
        faults=load_scenario(ROOT / "examples" / "status_first" / "silent_bank.toml").faults)
    unpaid = run_scenario(silent)
    assert [a.kind for a in unpaid.anomalies] == ["charged_shown_unpaid"]


def test_the_event_table_is_the_contracts() -> None:
    rows = table_rows(FIRMWARE_MD)
    for name, rule in contract.EVENTS.items():
        required = re.findall(r"`(\w+)`", rows[name][1])
        assert tuple(required) == rule.required, name
        assert rows[name][2] == rule.meaning, name


def test_the_results_table_is_the_contracts() -> None:
    rows = table_rows(FIRMWARE_MD)
    for do, results in contract.RESULTS.items():
        assert tuple(re.findall(r"`(\w+)`", rows[do][1])) == results, do


def test_every_rule_the_harness_can_break_is_in_the_table() -> None:
    rules = set(re.findall(r'fail\(\s*"([a-z ]+)"',
                           HARNESS.read_text() + (ROOT / "emulator" / "firmware" /
                                                  "contract.py").read_text()))
    rules |= set(re.findall(r'FirmwareError\(\s*"([a-z ]+)"', HARNESS.read_text()))
    table = section(FIRMWARE_MD, "### The rules, and what breaks them")
    listed = set(re.findall(r"^\| `([a-z ]+)` \|", table, re.MULTILINE))
    assert rules == listed

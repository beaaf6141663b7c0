"""The event contract alone (emulator/firmware/contract.py): each rule, pure."""

from __future__ import annotations

from typing import Any

import pytest

from devices.errors import FirmwareError
from emulator.engine.trace import Event
from emulator.firmware.contract import Contract, audit

REQUEST = {"step": "s1", "mti": "0200", "stan": "000001", "f7": "1122090000"}


def started(*steps: str) -> Contract:
    contract = Contract()
    for step in steps:
        contract.begin(step, "sale")
    return contract


@pytest.mark.parametrize(("name", "fields", "rule"), [
    ("terminal.request_sent", {**REQUEST, "stan": "1"}, "field formats"),
    ("terminal.request_sent", {**REQUEST, "f7": 1122090000}, "field formats"),
    ("terminal.request_sent", {**REQUEST, "mti": "02OO"}, "field formats"),
    ("terminal.request_sent", {**REQUEST, "step": "s9"}, "known steps"),
    ("terminal.txn_done", {"step": "s1", "do": "refund", "result": "refunded"}, "outcomes"),
    ("terminal.txn_done", {"step": "s1", "do": "sale", "result": "approved",
                           "amount_minor": 12.5}, "field formats"),
    ("terminal.power_lost", {}, "events posemu emits"),
    ("printer.job_done", {"step": "s1"}, "known events"),
])
def test_a_broken_event_names_its_rule(name: str, fields: dict[str, Any], rule: str) -> None:
    contract = started("s1")
    with pytest.raises(FirmwareError) as err:
        contract.check(name, fields)
    assert (err.value.step, err.value.rule) == ("s1", rule)
    assert contract.violation is err.value


def test_good_events_pass_and_a_response_may_carry_nulls() -> None:
    contract = started("s1")
    contract.check("terminal.request_sent", REQUEST)
    contract.check("terminal.response_received", {"mti": None, "stan": None, "code": None})
    contract.check("terminal.reversal_queued", {"anything": 1})
    contract.check("terminal.txn_done", {"step": "s1", "do": "sale", "result": "approved"})
    contract.end()
    assert contract.violation is None


def test_one_outcome_per_step_and_requests_announced() -> None:
    contract = started("s1")
    contract.check("terminal.txn_done", {"step": "s1", "do": "sale", "result": "declined"})
    with pytest.raises(FirmwareError, match="twice"):
        contract.check("terminal.txn_done", {"step": "s1", "do": "sale", "result": "declined"})
    contract = started("s1")
    with pytest.raises(FirmwareError, match="announced requests"):
        contract.check_request("0200", "000001", "1122090000")
    contract = started("s1")
    contract.check("terminal.request_sent", REQUEST)
    contract.check_request("0200", "000001", "1122090000")
    assert contract.violation is None


@pytest.mark.parametrize(("about", "detail"), [
    ({"step": "s1", "receipt_of": "s1"}, "without `slip=`"),
    ({"step": "s1", "receipt_of": "s1", "slip": "receipt"}, "slip 'receipt'"),
    ({"step": "s1", "receipt_of": "s0", "slip": "copy"}, "names 's0'"),
])
def test_print_jobs_are_labelled(about: dict[str, str], detail: str) -> None:
    with pytest.raises(FirmwareError, match=detail):
        started("s1").check_print(about)


def test_a_step_cut_short_by_a_power_loss_owes_no_outcome() -> None:
    contract = started("s1")
    contract.abandon()
    contract.end()
    assert contract.violation is None


def test_the_audit_lets_a_late_outcome_through_and_lists_every_breach() -> None:
    events = [
        Event(0.0, "terminal.txn_started", {"step": "v1", "do": "void"}),
        Event(1.0, "terminal.txn_done", {"step": "v1", "do": "void", "result": "void_pending"}),
        Event(5.0, "terminal.txn_done", {"step": "v1", "do": "void", "result": "voided",
                                         "target": "s1", "late": True}),
        Event(6.0, "terminal.txn_started", {"step": "s2", "do": "sale"}),
        Event(7.0, "terminal.bogus", {}),
    ]
    assert [(e.step, e.rule) for e in audit(events)] == [
        ("s2", "known events"), ("s2", "one outcome per step")]


def test_a_notes_fields_are_free_but_its_step_must_have_started() -> None:
    contract = started("s1")
    contract.check("terminal.response_ignored", {"stan": None})
    contract.check("terminal.reversal_queued", {"step": "s1", "orig_stan": 7})
    with pytest.raises(FirmwareError, match="known steps"):
        contract.check("terminal.receipt_held", {"step": "s2"})

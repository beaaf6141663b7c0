"""The trigger events' catalogue, a fault's trigger in one line, the screens and slips, and
the injector telling which step an event without a ``step`` field belongs to."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.scenario.events import CATALOGUE, STEP_BY, describe_trigger, ordinal
from emulator.scenario.screens import SCREENS, screen_of, slip_of
from tests.unit.test_injector import Rig, fault_specs


def test_every_event_that_belongs_to_a_step_by_a_field_emits_that_field() -> None:
    for name, event in CATALOGUE.items():
        assert (event.step_by == "field") == ("step" in event.fields), name
        assert (event.step_by == "stan") == ("stan" in event.fields and "step"
                                             not in event.fields), name


@pytest.mark.parametrize(("fault", "line"), [
    ({"fault": "bank.down", "at_s": 12.5, "for_s": 60}, "at 12.5 s, for 60 s"),
    ({"fault": "network.drop", "on": "bank.response_sent", "step": "s1", "nth": 2},
     "the 2nd bank.response_sent of step s1 (told by its STAN)"),
    ({"fault": "card.read_error", "on": "card.read", "step": "s1", "optional": True},
     "the 1st card.read of step s1 (while the step runs) (optional)"),
    ({"fault": "printer.paper_jam", "on": "printer.job_started", "nth": 3},
     "the 3rd printer.job_started"),
])
def test_a_faults_trigger_in_one_line(fault: dict[str, Any], line: str) -> None:
    [spec] = fault_specs(fault, steps=("s1",))
    assert describe_trigger(spec) == line


def test_ordinals() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]


@pytest.mark.parametrize(("done", "screen"), [
    ({"result": "approved", "code": "00"}, "approved"),
    ({"result": "approved", "code": "10"}, "partial_approval"),
    ({"result": "approved", "code": "Y1"}, "approved"),
    ({"result": "declined", "code": "51"}, "declined"),
    ({"result": "declined", "code": "91", "reason": "host refused"}, "host_unavailable"),
    ({"result": "failed", "reason": "timeout"}, "timeout"),
    ({"result": "failed", "reason": "invalid"}, "system_error"),
    ({"result": "failed", "code": "00", "reason": "amount changed"}, "system_error"),
    ({"result": "refund_failed", "reason": "ok"}, "system_error"),
    ({"result": "refund_failed", "code": "05"}, "declined"),
    ({"result": "refund_failed", "reason": "card read error"}, "card_error"),
    ({"result": "cancelled", "reason": "card read error"}, "card_error"),
    ({"result": "cancelled", "reason": "card removed"}, "card_removed"),
    ({"result": "cancelled", "reason": "receipt not printed"}, "cancelled"),
    ({"result": "refused", "reason": "reversal pending"}, "try_again"),
    ({"result": "void_pending", "target": "s1"}, "void_pending"),
    ({"result": "settle_failed", "reason": "timeout"}, "settle_failed"),
])
def test_what_the_terminal_showed_is_one_screen(done: dict[str, Any], screen: str) -> None:
    assert screen_of(done) == screen
    assert screen in SCREENS


def test_a_slip_that_stopped_before_its_cut_is_cut_short() -> None:
    assert slip_of({"slip": "approved"}, done=True) == "approved"
    assert slip_of({"slip": "approved"}, done=False) == "cut_short"


def test_the_injector_tells_a_frames_step_by_its_stan_and_stops_listening_once_fired() -> None:
    rig = Rig({"fault": "network.drop", "on": "network.sent", "step": "s2"},
              steps=("s1", "s2"))
    frame = {"direction": "to_bank", "mti": "0200", "size": 100}
    rig.emit_at(
        (1.0, "terminal.request_sent", {"step": "s1", "stan": "000001"}),
        (1.1, "network.sent", {**frame, "stan": "000001"}),
        (2.0, "terminal.request_sent", {"step": "s2", "stan": "000002"}),
        (2.1, "network.sent", {**frame, "stan": "000001"}),  # s1's STAN again: not s2
        (2.2, "network.sent", {**frame, "stan": "000002"}),
    )
    rig.env.run()
    assert [t for t, _, _ in rig.targets["network"].applied] == [2.2]
    assert rig.injector.fired == [0]
    assert rig.injector.unfired() == ()
    rig.trace.emit("terminal.request_sent", step="s3", stan="000003")
    assert rig.injector.steps.stans == {}  # fired: the STANs are no longer kept


def test_the_injector_tells_a_card_read_by_the_step_running() -> None:
    rig = Rig({"fault": "card.read_error", "on": "card.read", "step": "s2"},
              steps=("s1", "s2"))
    rig.emit_at(
        (1.0, "terminal.txn_started", {"step": "s1"}),
        (1.5, "card.read", {"card": "alice"}),
        (2.0, "terminal.txn_done", {"step": "s1", "result": "approved"}),
        (2.5, "card.read", {"card": "alice"}),  # between steps: no step
        (3.0, "terminal.txn_started", {"step": "s2"}),
        (3.5, "card.read", {"card": "alice"}),
    )
    rig.env.run()
    assert [t for t, _, _ in rig.targets["card"].applied] == [3.5]


def test_every_trigger_event_has_a_way_to_its_step_or_none() -> None:
    assert set(STEP_BY) == set(CATALOGUE)
    assert [n for n, how in STEP_BY.items() if how is None] == ["terminal.rebooted"]

"""A batch close that got no answer is repeated (0501, same STAN, field 7 and totals)
before anything else settles (``repeat_lost_settlement``)."""

from __future__ import annotations

from typing import Any

from emulator.engine.world import run_scenario
from emulator.judge.result import Result
from emulator.scenario.load import scenario_from_dict
from tests.support import end_states

ALICE = {"id": "alice", "pan": "4111111111111111", "balance": "100.00"}
STEPS = [
    {"id": "s1", "do": "sale", "card": "alice", "amount": "10.00"},
    {"id": "s2", "do": "sale", "card": "alice", "amount": "5.00", "at_s": 20},
    {"id": "st1", "do": "settle", "at_s": 60},
    {"id": "s3", "do": "sale", "card": "alice", "amount": "7.00", "at_s": 200},
    {"id": "st2", "do": "settle", "at_s": 300},
]


def run(faults: list[dict[str, Any]], **terminal: Any) -> Result:
    return run_scenario(scenario_from_dict({
        "format": 1, "name": "repeat", "cards": [ALICE], "steps": STEPS, "faults": faults,
        "terminal": terminal,
    }))


def closes(result: Result) -> list[tuple[str, str, str, int]]:
    """(step, MTI, STAN, debits) of every batch close sent, in order."""
    return [(e.fields["step"], e.fields["mti"], e.fields["stan"], e.fields["debits"])
            for e in result.trace
            if e.name == "terminal.request_sent" and str(e.fields["mti"]).startswith("050")]


def drop(direction: str, for_s: float) -> dict[str, Any]:
    """Every message one way lost from st1's 0500 on, for ``for_s``."""
    return {"fault": "network.drop", "on": "terminal.request_sent", "step": "st1",
            "direction": direction, "count": 10, "for_s": for_s}


def test_a_lost_answer_is_repeated_at_once_and_the_host_answers_the_copy() -> None:
    result = run([drop("to_terminal", 5)])
    assert result.anomalies == ()
    assert end_states(result)["st1"] == "settled"
    (a, b, c) = closes(result)
    assert (a[1], b[1]) == ("0500", "0501")
    assert a[2] == b[2]
    assert a[3] == b[3] == 2
    assert c[:2] == ("st2", "0500")
    assert c[3] == 1  # s3 alone: a new batch


def test_a_close_still_unanswered_is_repeated_first_at_the_next_settlement() -> None:
    result = run([drop("to_terminal", 100)])  # the 0510 and its repeat's are both lost
    assert result.anomalies == ()
    states = end_states(result)
    assert (states["st1"], states["st2"]) == ("settle_failed", "settled")
    sent = closes(result)
    assert [s[:2] for s in sent] == [("st1", "0500"), ("st1", "0501"), ("st2", "0501"),
                                     ("st2", "0500")]
    assert sent[2][2] == sent[0][2]
    assert (sent[2][3], sent[3][3]) == (2, 1)


def test_a_close_the_host_never_got_is_counted_afresh_with_the_later_sales() -> None:
    """The 0500 and its 0501 never arrive: the host's batch stays open with s1 to s3, so
    it answers the repeat 95; the terminal then counts all three in one new close."""
    result = run([drop("to_bank", 100)])
    assert result.anomalies == ()
    assert end_states(result)["st2"] == "settled"
    assert [s[1:2] + s[3:] for s in closes(result)][-2:] == [("0501", 2), ("0500", 3)]


def test_naive_value_forgets_the_close_and_counts_its_sales_again() -> None:
    result = run([drop("to_terminal", 5)], repeat_lost_settlement=False)
    assert [a.kind for a in result.anomalies] == ["batch_out_of_balance"]
    assert [s[1] for s in closes(result)] == ["0500", "0500"]
    assert closes(result)[-1][3] == 3


def test_a_close_cut_off_by_a_power_loss_is_repeated_at_the_next_settlement() -> None:
    """The close is on disk before it leaves: the power goes as the host takes the 0500,
    and after the reboot the next settlement repeats it first."""
    result = run([{"fault": "terminal.power_loss", "on": "terminal.request_sent",
                   "step": "st1", "for_s": 0.5}])
    assert result.anomalies == ()
    sent = closes(result)
    assert [s[:2] for s in sent] == [("st1", "0500"), ("st2", "0501"), ("st2", "0500")]
    assert sent[1][2] == sent[0][2]
    assert sent[2][3] == 1


def test_a_late_format_error_for_the_first_copy_keeps_the_close_the_repeat_made() -> None:
    """The 0500 arrives spoiled and late (30) while its 0501 closed the batch: 30 may
    answer either copy, so the close is kept and repeated at the next settlement."""
    result = run([
        {"fault": "network.corrupt", "on": "terminal.txn_started", "step": "st1",
         "for_s": 1},
        {"fault": "network.latency", "on": "network.sent", "step": "st1", "for_s": 45,
         "delay_s": 20},
    ])
    assert result.anomalies == ()
    assert end_states(result)["st2"] == "settled"
    assert [s[:2] for s in closes(result)][-2:] == [("st2", "0501"), ("st2", "0500")]

"""What a scenario can say: faults bound to a step's exchange, faults that never fire,
chained steps, retries of one purchase, and the screens, slips and faults expected."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from devices.errors import ScenarioError
from emulator.engine.fleet import run_fleet
from emulator.engine.world import run_scenario
from emulator.judge.result import Result
from emulator.scenario.load import scenario_from_dict
from emulator.scenario.model import Scenario
from tests.support import DOCS, cli, end_states, fields_of, sale

CARD = {"id": "alice", "pan": "4111111111111111", "balance": "200.00"}


def scenario(*steps: dict[str, Any], faults: tuple[dict[str, Any], ...] = (),
             profile: str = "robust", **top: Any) -> Scenario:
    return scenario_from_dict({
        "format": 1, "terminal": {"profile": profile, "request_retries": 0},
        "cards": [CARD], "steps": list(steps), "faults": list(faults), **top,
    })


def run(*steps: dict[str, Any], faults: tuple[dict[str, Any], ...] = (),
        profile: str = "robust", **top: Any) -> Result:
    return run_scenario(scenario(*steps, faults=faults, profile=profile, **top))


def started(result: Result) -> list[tuple[float, str]]:
    return [(e.t, e.fields["fault"]) for e in result.trace.events if e.name == "fault.started"]


def step_span(result: Result, step: str) -> tuple[float, float]:
    """From the step's txn_started to its txn_done."""
    events = result.trace.events
    begin = next(e.t for e in events if e.name == "terminal.txn_started"
                 and e.fields["step"] == step)
    end = next(e.t for e in events if e.name == "terminal.txn_done" and e.fields["step"] == step)
    return begin, end


# ------------------------------------------------- faults bound to a step's exchange


@pytest.mark.parametrize("event", ["bank.request_received", "bank.response_sent",
                                   "network.sent", "network.delivered",
                                   "terminal.response_received"])
def test_step_bound_fault_fires_in_that_steps_exchange(event: str) -> None:
    """A fault on an event told by its frame's STAN fires in the named step's exchange
    (the second sale's), not in the first's."""
    result = run(sale("s1"), sale("s2", at_s=100),
                 faults=({"fault": "printer.cover_open", "on": event, "step": "s2"},))
    [(t, _)] = started(result)
    begin, end = step_span(result, "s2")
    assert begin < t < end
    assert result.failures == ()


def test_drop_of_the_answer_to_one_step_leaves_the_other_approved() -> None:
    result = run(sale("s1"), sale("s2", at_s=100), profile="naive", faults=(
        {"fault": "network.drop", "on": "bank.response_sent", "step": "s2",
         "direction": "to_terminal"},))
    assert end_states(result) == {"s1": "approved", "s2": "charged_shown_unpaid"}


def test_card_read_of_a_step_is_the_one_during_it() -> None:
    result = run(sale("s1"), sale("s2", at_s=100),
                 faults=({"fault": "card.removed_early", "on": "card.read", "step": "s2"},))
    assert end_states(result) == {"s1": "approved", "s2": "cancelled"}


def test_step_bound_faults_add_nothing_to_the_events_they_watch() -> None:
    """Attribution reads the trace: the events are the same with or without it (only
    the fault's own events are added)."""
    plain = run(sale("s1"), sale("s2", at_s=100))
    bound = run(sale("s1"), sale("s2", at_s=100), faults=(
        {"fault": "network.latency", "on": "network.sent", "step": "s1", "nth": 99,
         "optional": True},))
    assert bound.trace_sha256 == plain.trace_sha256


# ------------------------------------------------------------------ nothing silent


def test_fault_that_never_fires_fails_the_run_naming_it() -> None:
    result = run(sale("s1"), faults=(
        {"fault": "network.drop", "on": "bank.response_sent", "step": "s1", "nth": 2},))
    assert not result.passed
    [failure] = result.failures
    assert failure.startswith("fault_never_fired: faults[0] network.drop")
    assert "2nd bank.response_sent of step s1" in failure


def test_fault_past_the_end_of_the_run_never_fired() -> None:
    result = run(sale("s1"), faults=({"fault": "bank.down", "at_s": 900},), until_s=600)
    assert [f.split(":")[0] for f in result.failures] == ["fault_never_fired"]


def test_optional_fault_may_never_fire() -> None:
    result = run(sale("s1"), faults=(
        {"fault": "network.drop", "on": "bank.response_sent", "step": "s1", "nth": 2,
         "optional": True},))
    assert result.passed, result.failures


def test_faults_fired_counts_what_fired() -> None:
    faults = (
        {"fault": "network.latency", "on": "network.sent", "step": "s1"},
        {"fault": "printer.paper_jam", "on": "printer.job_failed", "optional": True},
    )
    good = run(sale("s1"), faults=faults, expect={"faults_fired": ["network.latency"]})
    assert good.passed, good.failures
    bad = run(sale("s1"), faults=faults, expect={"faults_fired": ["printer.paper_jam"]})
    assert bad.failures == ("faults_fired: expected ['printer.paper_jam'], "
                            "found ['network.latency']",)


# ----------------------------------------------------------- screens and receipts


def test_screens_and_receipts_are_checked_per_step() -> None:
    jam = ({"fault": "printer.paper_jam", "on": "printer.job_started", "for_s": 30},)
    good = run(sale("s1"), faults=jam, expect={
        "screens": {"s1": "approved"}, "receipts": {"s1": ["cut_short", "approved"]}})
    assert good.passed, good.failures
    bad = run(sale("s1"), faults=jam, expect={
        "screens": {"s1": "timeout"}, "receipts": {"s1": ["approved"]}})
    assert bad.failures == (
        "screens.s1: expected timeout, found approved",
        "receipts.s1: expected ['approved'], found ['cut_short', 'approved']",
    )


# ------------------------------------------------------------------- chained steps


def chained(step: str, after: str, **keys: Any) -> dict[str, Any]:
    table = sale(step)
    del table["at_s"]
    return {**table, "after": after, **keys}


def test_chained_step_starts_delay_s_after_the_outcome_shown() -> None:
    result = run(sale("s1"), chained("s2", "s1", delay_s=20))
    _, shown = step_span(result, "s1")
    begin, _ = step_span(result, "s2")
    assert begin == pytest.approx(shown + 20)
    assert end_states(result) == {"s1": "approved", "s2": "approved"}


def test_chained_step_runs_only_on_the_screens_given() -> None:
    """s2 waits for a timeout that s1 never shows: skipped, and so is s3 chained on s2."""
    result = run(sale("s1"), chained("s2", "s1", if_screen=["timeout"]),
                 chained("s3", "s2"))
    assert end_states(result) == {"s1": "approved", "s2": "skipped", "s3": "skipped"}
    assert [f["step"] for f in fields_of(result.trace.events, "operator.skipped")] == [
        "s2", "s3"]
    assert [f["step"] for f in fields_of(result.trace.events, "terminal.txn_started")] == [
        "s1"]
    assert result.passed, result.failures


def test_chained_step_after_a_step_that_never_shows_is_skipped_at_the_end() -> None:
    result = run(sale("s1"), chained("s2", "s1"),
                 faults=({"fault": "terminal.power_loss", "on": "terminal.request_sent"},))
    assert end_states(result)["s2"] == "skipped"
    [skip] = fields_of(result.trace.events, "operator.skipped")
    assert skip["why"] == "no outcome shown before the run ended"


def test_the_cashiers_retry_after_a_timeout_charges_twice_on_the_naive_firmware() -> None:
    steps = (sale("s1"), chained("s2", "s1", delay_s=20, if_screen=["timeout"],
                                 retry_of="s1"))
    lost = ({"fault": "bank.timeout", "on": "bank.request_received", "step": "s1",
             "count": 1},)
    naive = run(*steps, faults=lost, profile="naive")
    assert end_states(naive) == {"s1": "charged_shown_unpaid", "s2": "duplicate_charge"}
    [dup] = [a for a in naive.anomalies if a.kind == "duplicate_charge"]
    assert (dup.step, "charged at s1" in dup.detail) == ("s2", True)
    robust = run(*steps, faults=lost)
    assert end_states(robust) == {"s1": "declined", "s2": "approved"}
    assert robust.anomalies == ()


def test_a_retry_charged_alone_is_clean_and_a_chain_of_retries_is_one_purchase() -> None:
    """s1 declined (nothing stands), s2 and s3 its retries both charged: only s3 is the
    duplicate, of s2."""
    result = run(sale("s1"), {**sale("s2", at_s=100), "retry_of": "s1"},
                 {**sale("s3", at_s=200), "retry_of": "s2"},
                 faults=({"fault": "bank.respond", "code": "05", "count": 1,
                          "on": "terminal.request_sent", "step": "s1"},))
    assert end_states(result) == {"s1": "declined", "s2": "approved",
                                  "s3": "duplicate_charge"}
    assert [(a.kind, a.step) for a in result.anomalies] == [("duplicate_charge", "s3")]


def test_a_fleet_refuses_chained_steps() -> None:
    with pytest.raises(ScenarioError, match=r"steps\[1\]\.after"):
        run_fleet(scenario(sale("s1"), chained("s2", "s1")), 2)


# ------------------------------------------------------------------ refused files


@pytest.mark.parametrize(("steps", "faults", "expect", "key", "message"), [
    ([sale("s1")], [{"fault": "bank.down", "on": "terminal.rebooted", "step": "s1"}], {},
     "faults[0].step", "belongs to no step"),
    ([sale("s1"), {"id": "x", "do": "settle", "at_s": 5}],
     [{"fault": "bank.down", "on": "card.read", "step": "x"}], {},
     "faults[0].step", "a settle ('x') has no card.read"),
    ([{"id": "v", "do": "void", "target": "s0"}], [], {}, "steps[0].target", "unknown step"),
    ([sale("s1"), {**sale("s2"), "after": "s1"}], [], {}, "steps[1].at_s", "no `at_s`"),
    ([sale("s1"), {**sale("s2"), "delay_s": 3}], [], {}, "steps[1].delay_s", "goes with"),
    ([sale("s1"), {**chained("s2", "s1"), "if_screen": ["timed_out"]}], [], {},
     "steps[1].if_screen[0]", "unknown screen 'timed_out'"),
    ([chained("s2", "s1"), sale("s1")], [], {}, "steps[0].after", "earlier step"),
    ([sale("s1"), {"id": "p", "do": "reprint", "retry_of": "s1"}], [], {},
     "steps[1].retry_of", "must both be sales"),
    ([sale("s1"), {**sale("s2"), "card": "bob", "retry_of": "s1"}], [], {},
     "steps[1].card", "a retry charges the card of 's1'"),
    ([sale("s1")], [], {"screens": {"s1": "aproved"}}, "expect.screens.s1",
     "did you mean 'approved'"),
    ([sale("s1")], [], {"receipts": {"s1": "approved"}}, "expect.receipts.s1",
     "expected a list of slips"),
    ([sale("s1")], [], {"receipts": {"s1": ["torn"]}}, "expect.receipts.s1[0]",
     "unknown slip 'torn'"),
    ([sale("s1")], [], {"faults_fired": ["bank.slow"]}, "expect.faults_fired[0]",
     "unknown fault 'bank.slow'"),
])
def test_impossible_or_wrong_keys_are_refused_when_loaded(
    steps: list[dict[str, Any]], faults: list[dict[str, Any]], expect: dict[str, Any],
    key: str, message: str,
) -> None:
    cards = [CARD, {"id": "bob", "pan": "4012888888881881"}]
    with pytest.raises(ScenarioError) as err:
        scenario_from_dict({"format": 1, "cards": cards, "steps": steps, "faults": faults,
                            "expect": expect})
    assert err.value.key == key
    assert message in str(err.value)


def test_a_fault_that_can_never_match_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Any,
) -> None:
    path = tmp_path / "never.toml"
    path.write_text('format = 1\n[[steps]]\nid = "s1"\ndo = "settle"\n'
                    '[[faults]]\nfault = "bank.down"\non = "printer.job_started"\n'
                    'step = "s1"\n', encoding="utf-8")
    code, out, err = cli(capsys, "run", path)
    assert (code, out) == (2, "")
    assert err.strip().count("\n") == 0
    assert "faults[0].step: a settle ('s1') has no printer.job_started" in err


# ------------------------------------------------------------------------ the docs


def doc_table(heading: str) -> dict[str, str]:
    text = (DOCS / "scenario-format.md").read_text(encoding="utf-8")
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    return dict(re.findall(r"^\| `([a-z_.]+)` \| (.*?) \|", section, re.M))


def test_the_docs_list_every_screen_slip_and_trigger_event() -> None:
    from emulator.scenario.events import CATALOGUE  # noqa: PLC0415
    from emulator.scenario.screens import SCREENS, SLIPS  # noqa: PLC0415

    assert set(doc_table("### Screens")) == set(SCREENS)
    assert set(doc_table("### Slips")) == set(SLIPS)
    events = doc_table("### Which events belong to a step")
    assert set(events) == set(CATALOGUE)
    for name, fields in events.items():
        assert fields == (", ".join(f"`{f}`" for f in CATALOGUE[name].fields) or "-"), name


def test_the_chained_example_uses_every_new_key_and_passes() -> None:
    text = (DOCS / "scenario-format.md").read_text(encoding="utf-8")
    example = text.split("## Chained steps and retries", 1)[1]
    toml = re.search(r"```toml\n(.*?)```", example, re.S)
    assert toml is not None
    for key in ("after", "delay_s", "if_screen", "retry_of", "optional", "screens",
                "receipts", "faults_fired"):
        assert re.search(rf"^{key} = ", toml.group(1), re.M), key
    result = run_scenario(scenario_from_dict(tomllib.loads(toml.group(1))))
    assert result.passed, result.failures
    assert sorted(a.kind for a in result.anomalies) == ["charged_shown_unpaid",
                                                         "duplicate_charge"]

"""What `posemu fuzz` reaches and checks beyond anomalies: the full workload's end
states, fault kinds against step kinds, the sometimes points, liveness, determinism."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from emulator.engine.world import run_scenario
from emulator.fuzz.campaign import STEP_OF_STATE, Config, Report, Runner, RunOutcome, search
from emulator.fuzz.determinism import check, sample
from emulator.fuzz.liveness import NOT_QUIET, Liveness, live, run_live
from emulator.fuzz.sometimes import POINTS, reached
from emulator.fuzz.workload import KINDS, Candidate, Workload, make_workload
from emulator.scenario.catalogue import CLEAN_END_STATES, FAULTS, STEP_KINDS
from emulator.scenario.load import load_scenario, scenario_from_dict
from tests.frontends.test_fuzz import cli
from tests.support import LIBRARY
from tests.support import cli as run_cli

FULL = make_workload(None, "built-in full", "robust", {}, builtin="full")
BASIC = make_workload(None, "built-in", "robust", {})


def test_the_full_workload_reaches_every_step_kind_and_clean_end_state() -> None:
    outcomes, _ = search(Runner(FULL, 1), FULL, Config(seed=0, runs=60))
    report = Report(FULL, Config(seed=0, runs=60), outcomes, 1.0)
    assert report.step_kinds() == STEP_KINDS
    states = report.end_states()
    assert all(states[s] for s in STEP_OF_STATE), states  # skipped: a chained step's
    assert not [w for w in report.warnings() if w.startswith(("end state", "step kind"))]
    assert sum(report.fired().values()) > 60


def test_fleet_faults_are_never_drawn_so_the_pinned_draws_stay() -> None:
    assert "fleet.swizzle_clog" in FAULTS
    assert "fleet.swizzle_clog" not in KINDS
    assert tuple(FAULTS)[: len(KINDS)] == KINDS


def _run(workload: Workload, *faults: dict[str, Any]) -> tuple[str, ...]:
    result = run_scenario(workload.scenario(Candidate(0, faults)))
    return reached(result.trace.events).points


@pytest.mark.parametrize(("point", "faults"), [
    ("reversal_while_response_in_flight",
     [{"fault": "network.latency", "on": "bank.response_sent", "for_s": 266.2,
       "delay_s": 203.6, "direction": "to_terminal"}]),
    ("duplicate_after_reversal",
     [{"fault": "network.latency", "on": "network.sent", "for_s": 217.6, "delay_s": 80.2,
       "direction": "to_bank"}]),
    ("power_lost_mid_receipt",
     [{"fault": "terminal.power_loss", "on": "printer.job_started", "for_s": 8.2}]),
    ("advice_queued_at_settlement", [{"fault": "bank.down", "at_s": 61.1, "for_s": 605.3}]),
    ("reversal_queued_at_settlement", [{"fault": "bank.timeout", "at_s": 400.0, "for_s": 677.6}]),
    ("power_lost_awaiting_response",
     [{"fault": "bank.down", "at_s": 61.1, "for_s": 605.3},
      {"fault": "terminal.power_loss", "at_s": 302.5, "for_s": 536.7}]),
    ("response_after_timeout",
     [{"fault": "network.latency", "on": "terminal.txn_done", "for_s": 446.1,
       "delay_s": 311.1, "direction": "to_bank"}]),
    ("duplicate_response",
     [{"fault": "network.duplicate", "on": "terminal.request_sent", "step": "st2",
       "for_s": 39.4, "count": 2}]),
    ("posted_answer_lost", [{"fault": "bank.timeout", "at_s": 400.0, "for_s": 677.6}]),
    ("settle_answer_lost", [{"fault": "bank.timeout", "at_s": 800.0, "for_s": 3.6, "count": 1}]),
    ("advice_after_reboot",
     [{"fault": "bank.down", "at_s": 61.1, "for_s": 605.3},
      {"fault": "terminal.power_loss", "at_s": 158.1, "for_s": 171.2}]),
    ("reprint_after_failed_receipt", [{"fault": "printer.paper_jam", "at_s": 540.0,
                                       "for_s": 22.4}]),
])
def test_each_sometimes_point_is_reached_by_its_schedule(
    point: str, faults: list[dict[str, Any]],
) -> None:
    assert point in _run(FULL, *faults)


def test_the_points_list_is_the_catalogue_and_a_healthy_run_reaches_none() -> None:
    assert len(POINTS) >= 12
    assert {p.where for p in POINTS.values()} <= {"firmware", "link", "host"}
    assert _run(FULL) == ()
    assert reached(run_scenario(load_scenario(LIBRARY / "sale_approved.toml")).trace.events) \
        == ((), (), ())


def test_a_fault_is_counted_against_the_step_it_started_in() -> None:
    result = run_scenario(FULL.scenario(Candidate(0, (
        {"fault": "printer.paper_jam", "at_s": 540.0, "for_s": 22.4},
        {"fault": "card.read_error", "on": "terminal.txn_started", "step": "st"},
    ))))
    seen = reached(result.trace.events)
    assert seen.fired == ("card.read_error", "printer.paper_jam")
    assert seen.pairs == (("card.read_error", "settle"), ("printer.paper_jam", "idle"))


def test_the_report_warns_about_what_was_never_reached() -> None:
    outcome = RunOutcome(0, (), ("bank.down",), ("approved",),
                         pairs=(("bank.down", "sale"),), points=("duplicate_response",))
    report = Report(FULL, Config(runs=1), [outcome], 0.1)
    warnings = report.warnings()
    assert "fault kind card.read_error never fired in 1 runs" in warnings
    assert "end state declined never reached in 1 runs" in warnings
    assert "end state approved never reached in 1 runs" not in warnings
    assert "fault kind bank.down never started during a refund in 1 runs" in warnings
    assert "fault kind bank.down never started during a sale in 1 runs" not in warnings
    assert "sometimes point reversal_while_response_in_flight never reached in 1 runs" \
        in warnings
    assert "sometimes point duplicate_response never reached in 1 runs" not in warnings
    assert report.points()["duplicate_response"] == 1
    assert report.pairs()["bank.down"] == {**dict.fromkeys((*STEP_KINDS, "idle"), 0),
                                           "sale": 1}
    basic = Report(BASIC, Config(runs=1), [outcome], 0.1)
    assert "step kind reprint not in the workload" in basic.warnings()


def test_json_coverage_has_the_table_and_the_points(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capsys, "--runs", "8", "--json")
    coverage = json.loads(out)["coverage"]
    assert set(coverage["points"]) == set(POINTS)
    assert set(coverage["fault_steps"]) == set(KINDS)
    assert all(set(row) == {*STEP_KINDS, "idle"} for row in coverage["fault_steps"].values())


# ------------------------------------------------------------ liveness

FOREVER = scenario_from_dict({
    "format": 1, "name": "down for ever",
    "cards": [{"id": "alice", "pan": "4111111111111111", "balance": "100.00"}],
    "steps": [{"id": "s1", "do": "sale", "card": "alice", "amount": "10.00"}],
    "faults": [{"fault": "network.down", "on": "bank.request_received"}],  # never heals
})


def test_faults_stop_at_the_horizon_and_the_terminal_goes_quiet() -> None:
    result, why = run_live(FOREVER, Liveness(100.0, 600.0))
    assert why == []
    cleared = [e for e in result.trace.events if e.name == "fault.cleared"]
    assert [e.t for e in cleared] == [100.0]
    assert not result.anomalies


def test_a_terminal_that_still_owes_after_the_bound_is_not_quiet() -> None:
    # the link is back at 100 s; the sale's reversal is repeated every 30 s from 64.5 s
    result, why = run_live(FOREVER, Liveness(100.0, 10.0))
    assert why == ["owes reversal for s1", "step s1 still running"]
    assert result.sim_time_s == 110.0


def test_robust_runs_go_quiet_after_the_horizon() -> None:
    workload = live(BASIC, None)
    assert workload.liveness == Liveness(600.0, 600.0)
    outcomes, _ = search(Runner(workload, 1), workload, Config(seed=0, runs=40))
    assert not [o for o in outcomes if NOT_QUIET in o.anomalies]


def test_not_quiet_is_found_shrunk_and_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    # a bound too short for the settlement that starts at 600 s: never quiet
    status, out, _ = cli(capsys, "--workload", "basic", "--liveness", "--horizon-s", "400",
                         "--quiet-s", "200.3", "--runs", "2", "--causes", "1",
                         "--out", str(tmp_path), "--json")
    assert status == 1
    data = json.loads(out)
    assert data["anomaly_runs"][NOT_QUIET] == {"runs": 2, "first": 0}
    found = next(f for f in data["findings"] if f["anomaly"] == NOT_QUIET)
    assert found["faults_after"] == 1
    assert found["verified"] is True
    path = tmp_path / "not_quiet.toml"
    doc = tomllib.loads(path.read_text())
    assert doc["liveness"] == {"horizon_s": 400.0, "quiet_s": pytest.approx(200.3)}
    assert "until_s" not in doc  # [liveness] ends the run
    assert "--liveness --horizon-s 400 --quiet-s 200.3" in doc["description"]
    assert "Not quiet at 600.3 s: step st still running." in doc["description"]
    assert NOT_QUIET in doc["expect"]["anomalies"]
    # the file reproduces by itself: plain posemu run passes, showing not_quiet
    status, out, _ = run_cli(capsys, "run", "--json", path)
    assert status == 0, out
    shown = json.loads(out)
    assert {"kind": NOT_QUIET, "step": "st", "detail": "step st still running"} \
        in shown["anomalies"]
    assert shown["sim_time_s"] == pytest.approx(600.3)


def test_a_liveness_finding_is_verified_by_a_liveness_run(tmp_path: Path) -> None:
    from emulator.fuzz.findings import to_toml, verify  # noqa: PLC0415

    workload = live(FULL, None)  # faults stop at 800 s: the timeout's 600 s end cut short
    fault = {"fault": "bank.timeout", "on": "terminal.reversal_sent", "for_s": 600.0,
             "delay_s": 30.0}
    # the settlement whose answer the cut-short timeout loses is forgotten, as before
    # repeat_lost_settlement: the anomaly only a liveness run shows
    terminal = {**workload.tables["terminal"], "repeat_lost_settlement": False}
    doc = {**workload.tables, "terminal": terminal, "seed": 0, "faults": [fault],
           "expect": {"anomalies": ["batch_out_of_balance"]}}
    assert "liveness" in doc  # the campaign's key: its files carry it
    path = tmp_path / "batch_out_of_balance.toml"
    path.write_text(to_toml(doc))
    assert verify(path, "batch_out_of_balance", 1)
    # without the key, faults do not stop: posemu run does not show it
    tables = {k: v for k, v in doc.items() if k != "liveness"}
    path.write_text(to_toml({**tables, "until_s": workload.liveness.end_s}))
    assert not verify(path, "batch_out_of_balance", 1)


def test_liveness_options_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--horizon-s", "10"], ["--liveness", "--quiet-s", "-1"],
                 ["--liveness", "--horizon-s", "100", "--quiet-s", "100"]):
        status, _, err = cli(capsys, "--runs", "1", *argv)
        assert status == 2, argv
        assert err.startswith("posemu: ")
        assert err.count("\n") == 1


# ------------------------------------------------------------ determinism


def by_process(workload: Workload, seed: int, indices: Sequence[int]) -> list[str]:
    """A hasher whose answer depends on the process: every run differs."""
    return [f"{os.getpid()}:{i}" for i in indices]


def test_a_trace_that_depends_on_the_process_is_reported() -> None:
    differences = check(BASIC, 0, [3, 7], hasher=by_process)
    assert [d.run for d in differences] == [3, 7]
    assert all(d.first != d.second for d in differences)


def test_the_check_samples_evenly_and_passes_for_posemu(
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    assert sample(list(range(10)), 4) == [0, 2, 5, 7]
    assert sample([1, 2], 5) == [1, 2]
    status, out, _ = cli(capsys, "--workload", "basic", "--runs", "4",
                         "--check-determinism", "2", "--json", "--out", str(tmp_path))
    data = json.loads(out)
    assert data["determinism"] == {"checked": 2, "differences": 0}
    assert status == (1 if data["anomaly_runs"] else 0)
    assert not list(tmp_path.glob("nondeterministic_*.toml"))


def test_a_difference_is_an_error_with_the_command(tmp_path: Path) -> None:
    from emulator.fuzz.determinism import TraceMismatch  # noqa: PLC0415
    from emulator.fuzz.findings import write_findings  # noqa: PLC0415

    report = Report(BASIC, Config(seed=4, runs=8), [], 0.1, command="posemu fuzz --seed 4")
    report.differences = [TraceMismatch(5, "a" * 64, "b" * 64)]
    assert report.status == 1
    ((run, error),) = report.errors()
    assert run == 5
    assert "not deterministic" in error
    assert "posemu fuzz --seed 4" in error
    write_findings(report, tmp_path)
    written = load_scenario(tmp_path / "nondeterministic_run5.toml")
    assert len(written.faults) >= 1


# ------------------------------------------------------------ fleets


def test_a_fleet_run_draws_the_single_runs_faults_and_sometimes_a_swizzle() -> None:
    from dataclasses import replace  # noqa: PLC0415

    from emulator.fuzz.workload import draw  # noqa: PLC0415

    fleet = replace(FULL, terminals=3)
    swizzles = 0
    for index in range(12):
        single, several = draw(FULL, 2, index), draw(fleet, 2, index)
        assert several.seed == single.seed
        assert several.faults[: len(single.faults)] == single.faults
        extra = several.faults[len(single.faults):]
        assert [f["fault"] for f in extra] in ([], ["fleet.swizzle_clog"])
        swizzles += len(extra)
    assert 0 < swizzles < 12


def test_fuzz_runs_fleets(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(capsys, "--terminals", "2", "--runs", "6", "--seed", "2", "--json")
    data = json.loads(out)
    assert data["terminals"] == 2
    assert data["coverage"]["faults"]["fleet.swizzle_clog"] > 0
    assert status == (1 if data["anomaly_runs"] else 0)
    status, _, err = cli(capsys, "--runs", "1", "--terminals", "0")
    assert status == 2
    assert err.startswith("posemu: ")


def test_a_fleet_liveness_finding_names_its_terminals_and_reproduces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    # the bound too short for the settlement at 600 s, on every terminal of the fleet
    status, out, _ = cli(capsys, "--workload", "basic", "--terminals", "2", "--liveness",
                         "--horizon-s", "400", "--quiet-s", "200.3", "--runs", "2",
                         "--causes", "1", "--out", str(tmp_path), "--json")
    assert status == 1
    data = json.loads(out)
    assert (data["terminals"], data["liveness"]) == (2, {"horizon_s": 400.0, "quiet_s": 200.3})
    found = next(f for f in data["findings"] if f["anomaly"] == NOT_QUIET)
    assert found["verified"] is True
    path = tmp_path / "not_quiet.toml"
    doc = tomllib.loads(path.read_text())
    assert doc["liveness"] == {"horizon_s": 400.0, "quiet_s": pytest.approx(200.3)}
    assert ("Not quiet at 600.3 s: T0000001 (step st still running), "
            "T0000002 (step st still running).") in doc["description"]
    status, out, _ = run_cli(capsys, "fleet", path, "--terminals", "2", "--json")
    shown = json.loads(out)
    assert shown["anomalies"][NOT_QUIET] == 2
    assert {a["terminal"] for a in shown["first_anomalies"] if a["kind"] == NOT_QUIET} == {
        "T0000001", "T0000002"}


def test_end_states_of_step_kinds_the_workload_lacks_are_not_warned_about() -> None:
    assert set(STEP_OF_STATE) == set(CLEAN_END_STATES) - {"skipped"}  # needs a chained step
    assert set(STEP_OF_STATE.values()) == set(STEP_KINDS)
    outcome = RunOutcome(0, (), (), ("approved",))
    warnings = Report(BASIC, Config(runs=1), [outcome], 0.1).warnings()
    assert "end state refunded never reached in 1 runs" in warnings
    assert "end state reprinted never reached in 1 runs" not in warnings
    assert "step kind reprint not in the workload" in warnings

"""``[liveness]``: faults stop at the horizon, and a terminal not quiet at the end of the
run is the anomaly ``not_quiet``, in ``posemu run``, ``posemu replay`` and pytest alike."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from emulator.engine.fleet import run_fleet
from emulator.engine.world import run_scenario
from emulator.fuzz.liveness import run_live
from emulator.scenario.load import parse_scenario
from emulator.scenario.model import Liveness
from tests.support import cli
from tests.unit.test_scenario import BASE


def sale(*tables: str, until_s: float | None = None) -> str:
    """One card, one sale (the loader tests' scenario), with ``tables`` after it."""
    top = "" if until_s is None else f"until_s = {until_s}\n"
    return BASE.replace("format = 1\n", "format = 1\n" + top) + "".join(tables)


# the link goes down for good as the bank takes the sale: only the horizon clears it; the
# robust terminal repeats the sale's reversal every 30 s from 64.5 s
DOWN = '[[faults]]\nfault = "network.down"\non = "bank.request_received"\n'
# no fault at all: the roll runs out on the receipt, which the robust terminal holds for
# 300 s before it reverses the sale
NO_PAPER = "[printer]\npaper_m = 0.05\n"


def liveness(horizon_s: float, quiet_s: float) -> str:
    return f"[liveness]\nhorizon_s = {horizon_s}\nquiet_s = {quiet_s}\n"


def test_a_fault_in_force_is_cleared_at_the_horizon_and_the_run_ends_the_bound_later() -> None:
    result = run_scenario(parse_scenario(sale(liveness(100, 600), DOWN)))
    assert [(e.name, e.t) for e in result.trace.events if e.name.startswith("fault.")] == [
        ("fault.started", pytest.approx(4.82)), ("fault.cleared", 100.0)]
    assert result.sim_time_s == 700.0
    assert result.anomalies == ()
    assert result.passed


def test_a_terminal_still_owing_at_the_end_is_not_quiet() -> None:
    result = run_scenario(parse_scenario(sale(liveness(100, 10), DOWN)))
    found = {a.kind: a for a in result.anomalies}
    assert set(found) == {"in_doubt", "not_quiet"}
    assert (found["not_quiet"].step, found["not_quiet"].detail) == (
        "s1", "owes reversal for s1; step s1 still running")
    assert result.failures == (
        "unexpected anomaly in_doubt at s1: 10.00 stands, the terminal still owes a message",
        "unexpected anomaly not_quiet at s1: owes reversal for s1; step s1 still running")
    expect = '[expect]\nanomalies = ["in_doubt", "not_quiet"]\n'
    assert run_scenario(parse_scenario(sale(liveness(100, 10), DOWN, expect))).passed


@pytest.mark.parametrize(("quiet_s", "why"), [
    (100, "owes reversal for s1; owes held_receipt for s1; step s1 still running"),
    (600, None),
])
def test_a_receipt_held_for_want_of_paper_keeps_the_terminal_busy(
    quiet_s: float, why: str | None,
) -> None:
    result = run_scenario(parse_scenario(sale(NO_PAPER, liveness(60, quiet_s))))
    shown = {a.kind: a.detail for a in result.anomalies}
    assert shown.get("not_quiet") == why


def test_the_key_and_run_live_are_one_run() -> None:
    plain = parse_scenario(sale(DOWN))
    keyed = run_scenario(parse_scenario(sale(liveness(100, 10), DOWN)))
    result, why = run_live(plain, Liveness(100, 10))
    assert result.trace_sha256 == keyed.trace_sha256
    assert why == ["owes reversal for s1", "step s1 still running"]


def test_without_the_key_nothing_stops_and_nothing_is_judged() -> None:
    plain = parse_scenario(sale(DOWN, until_s=110))
    result = run_scenario(plain)
    assert "not_quiet" not in {a.kind for a in result.anomalies}
    assert "fault.cleared" not in {e.name for e in result.trace.events}
    keyed = msgspec.structs.replace(plain, liveness=Liveness(100, 10))
    assert run_scenario(keyed).trace_sha256 != result.trace_sha256


def test_posemu_run_and_replay_judge_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    busy = tmp_path / "busy.toml"
    busy.write_text(sale(liveness(100, 10), DOWN))
    status, out, _ = cli(capsys, "check", busy)
    assert status == 0
    assert out.splitlines()[0].endswith(", [liveness]: faults stop at 100 s, quiet by 110 s")
    status, out, _ = cli(capsys, "run", "--json", busy)
    assert status == 1
    shown = json.loads(out)
    assert {"kind": "not_quiet", "step": "s1",
            "detail": "owes reversal for s1; step s1 still running"} in shown["anomalies"]
    expected = tmp_path / "expected.toml"
    expected.write_text(sale(liveness(100, 10), DOWN,
                             '[expect]\nanomalies = ["not_quiet", "in_doubt"]\n'))
    status, _, _ = cli(capsys, "run", "--trace-dir", tmp_path / "traces", expected)
    assert status == 0
    (trace,) = (tmp_path / "traces").iterdir()
    status, out, _ = cli(capsys, "replay", "--json", trace)
    assert status == 0, out
    assert json.loads(out)["identical"] is True


def test_a_bad_key_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(sale("[liveness]\nhorizon_s = -5\n"))
    status, out, err = cli(capsys, "run", bad)
    assert (status, out) == (2, "")
    assert err.strip().splitlines() == [f"posemu: {bad}: liveness.horizon_s: must be >= 0"]


# ------------------------------------------------------------ fleets

# two links of the fleet clogged for good, the second 60 s after the first: the horizon
# (at 30 s) comes between the two
CLOG = ('[[faults]]\nfault = "fleet.swizzle_clog"\nat_s = 0\nterminals = 2\n'
        'interval_s = 60\n')


def test_each_terminal_of_a_fleet_is_judged_and_named() -> None:
    fleet = run_fleet(parse_scenario(sale(liveness(100, 10), DOWN)), 3)
    assert fleet.anomaly_counts == {"in_doubt": 3, "not_quiet": 3}
    assert [(a.terminal, a.step, a.detail) for a in fleet.anomalies
            if a.kind == "not_quiet"] == [
        (f"T000000{k}", "s1", "owes reversal for s1; step s1 still running") for k in (1, 2, 3)]
    quiet = run_fleet(parse_scenario(sale(liveness(100, 600), DOWN)), 3)
    assert quiet.anomaly_total == 0


def test_the_horizon_unclogs_a_swizzle_and_none_clogs_after_it(tmp_path: Path) -> None:
    scenario = parse_scenario(sale(liveness(30, 600), CLOG))
    with (tmp_path / "trace.jsonl").open("wb") as sink:
        fleet = run_fleet(scenario, 3, trace_sink=sink)
    assert fleet.anomaly_total == 0
    lines = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    clogs = [(e["event"], e["t"]) for e in lines[1:]
             if e["event"] in ("clogged", "unclogged") or e["component"] == "fault"]
    assert clogs == [("started", 0.0), ("clogged", 0.0), ("unclogged", 30.0),
                     ("cleared", 30.0)]
    # a single run is a fleet of one: its swizzle stops too
    single = run_scenario(scenario)
    assert [(e.name, e.t) for e in single.trace.events if e.name.startswith("network.unclog")
            or e.name.startswith("fault.")] == [
        ("fault.started", 0.0), ("network.unclogged", 30.0), ("fault.cleared", 30.0)]
    assert single.passed


def test_without_the_key_the_swizzle_clogs_for_good(tmp_path: Path) -> None:
    scenario = parse_scenario(sale(CLOG, until_s=700))
    with (tmp_path / "trace.jsonl").open("wb") as sink:
        run_fleet(scenario, 3, trace_sink=sink)
    lines = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert [(e["event"], e["t"]) for e in lines[1:] if "clog" in e["event"]] == [
        ("clogged", 0.0), ("clogged", 60.0)]

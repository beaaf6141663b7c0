"""A fleet: one acquirer, N terminals, a streamed trace and an incremental oracle."""

from __future__ import annotations

import gc
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from devices.errors import ConservationError
from emulator.engine.fleet import Fleet, FleetResult, TerminalTrace, run_fleet, terminal_id
from emulator.engine.trace import Event, Trace
from emulator.engine.world import World
from emulator.judge import oracle
from emulator.judge.oracle import Observer, StepView, Verdict, judge
from emulator.scenario.load import load_scenario, scenario_from_dict
from emulator.scenario.model import Scenario
from tests.support import ROOT, fleet_files


def sales(n: int, *, profile: str = "robust", faults: list[dict[str, Any]] | None = None,
          ) -> Scenario:
    """``n`` sales of 1.00 queued at t = 0 on one card with plenty of money."""
    return scenario_from_dict({
        "format": 1, "name": "fleet", "seed": 5, "terminal": {"profile": profile},
        "cards": [{"id": "c", "pan": "4111111111111111", "balance": "1000.00"}],
        "steps": [{"id": f"s{i}", "do": "sale", "card": "c", "amount": "1.00"}
                  for i in range(1, n + 1)],
        "faults": faults or [],
    })


def run(scenario: Scenario, terminals: int) -> tuple[FleetResult, dict[str, Verdict], bytes]:
    """Run a fleet with its trace streamed to memory; its result, verdicts and trace bytes."""
    verdicts: dict[str, Verdict] = {}
    sink = io.BytesIO()
    result = run_fleet(scenario, terminals, trace_sink=sink,
                       on_terminal=verdicts.__setitem__)
    return result, verdicts, sink.getvalue()


def rows(trace: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    header, *events = trace.splitlines()
    return json.loads(header), [json.loads(line) for line in events]


# -- a healthy fleet -----------------------------------------------------------


def test_three_terminals_four_sales_each_all_approved() -> None:
    fleet = Fleet(sales(4), 3, trace_sink=io.BytesIO())
    verdicts: dict[str, Verdict] = {}
    result = fleet.run(verdicts.__setitem__)
    assert (result.terminals, result.transactions) == (3, 12)
    assert result.end_states == {"approved": 12}
    assert result.anomaly_counts == {}
    assert result.anomalies == ()
    assert result.postings == 12
    assert result.balances_minor == {"c": 100_000 - 1200, "merchant": 1200}
    assert result.balances_before_minor == {"c": 100_000, "merchant": 0}
    postings = fleet.acquirer.ledger.postings
    assert len(postings) == 12
    for tid in ("T0000001", "T0000002", "T0000003"):
        mine = [p.stan for p in postings if p.terminal_id == tid]
        assert mine == ["000001", "000002", "000003", "000004"]  # STANs repeat across terminals
    assert list(verdicts) == ["T0000001", "T0000002", "T0000003"]
    for verdict in verdicts.values():  # each terminal's oracle sees only its own bookings
        assert verdict.end_states == {"s1": "approved", "s2": "approved", "s3": "approved",
                                      "s4": "approved"}
        assert verdict.stans == {"s1": "000001", "s2": "000002", "s3": "000003",
                                 "s4": "000004"}
        assert verdict.anomalies == ()


def test_every_event_is_tagged_with_its_terminal() -> None:
    result, _, trace = run(sales(2), 3)
    header, events = rows(trace)
    assert header["terminals"] == 3
    assert header["posemu_trace"] == 1
    assert len(events) == result.events
    assert {e["fields"]["tid"] for e in events} == {"T0000001", "T0000002", "T0000003"}
    for tid in ("T0000001", "T0000002", "T0000003"):
        mine = [e for e in events if e["fields"]["tid"] == tid]
        sent = [e["fields"]["stan"] for e in mine
                if e["event"] == "request_sent" and e["component"] == "terminal"]
        assert sent == ["000001", "000002"]
        assert {e["component"] for e in mine} >= {"terminal", "card", "printer", "bank",
                                                  "network"}
    times = [e["t"] for e in events]
    assert times == sorted(times)


def test_terminal_ids_fit_field_41() -> None:
    assert terminal_id(1) == "T0000001"
    assert terminal_id(1000) == "T0001000"
    assert len(terminal_id(9_999_999)) == 8
    with pytest.raises(ValueError, match="out of"):
        terminal_id(0)
    with pytest.raises(ValueError, match="terminals must be"):
        run_fleet(sales(1), 0)


# -- determinism -----------------------------------------------------------------


def test_same_fleet_same_trace_and_hash() -> None:
    first, _, trace = run(sales(3), 4)
    second, _, again = run(sales(3), 4)
    assert first.trace_sha256 == second.trace_sha256
    assert trace == again
    body = trace.split(b"\n", 1)[1]  # the hash covers the event lines, not the header
    assert hashlib.sha256(body).hexdigest() == first.trace_sha256
    assert first.events == second.events == body.count(b"\n")


def test_without_a_sink_the_trace_is_hashed_not_kept() -> None:
    streamed, _, _ = run(sales(2), 2)
    fleet = Fleet(sales(2), 2)
    result = fleet.run()
    assert fleet.trace.streaming
    assert fleet.trace.events == []
    assert result.trace_sha256 == streamed.trace_sha256
    assert result.events == streamed.events


def test_size_changes_the_trace() -> None:
    assert run(sales(2), 2)[0].trace_sha256 != run(sales(2), 3)[0].trace_sha256


# -- faults: every terminal gets its own ----------------------------------------------


JAM = {"fault": "printer.paper_jam", "on": "printer.job_started", "for_s": 120}


@pytest.mark.parametrize(
    ("profile", "state", "anomalies"),
    [("naive", "charged_no_receipt", {"charged_no_receipt": 3}), ("robust", "approved", {})],
)
def test_paper_jam_strikes_every_terminal(profile: str, state: str,
                                          anomalies: dict[str, int]) -> None:
    result, verdicts, _ = run(sales(1, profile=profile, faults=[JAM]), 3)
    assert {tid: v.end_states for tid, v in verdicts.items()} == {
        "T0000001": {"s1": state}, "T0000002": {"s1": state}, "T0000003": {"s1": state},
    }
    assert result.anomaly_counts == anomalies
    assert [(a.terminal, a.kind, a.step) for a in result.anomalies] == [
        (tid, kind, "s1") for tid in ("T0000001", "T0000002", "T0000003") for kind in anomalies
    ]


def test_a_trigger_counts_its_own_terminals_events() -> None:
    """nth = 2: each terminal's second receipt jams, not the fleet's second receipt."""
    result, verdicts, trace = run(sales(2, profile="naive", faults=[{**JAM, "nth": 2}]), 3)
    for verdict in verdicts.values():
        assert verdict.end_states == {"s1": "approved", "s2": "charged_no_receipt"}
    assert result.end_states == {"approved": 3, "charged_no_receipt": 3}
    _, events = rows(trace)
    started = [e["fields"]["tid"] for e in events if e["event"] == "started"]
    assert started == ["T0000001", "T0000002", "T0000003"]


@pytest.mark.parametrize(
    ("profile", "state", "charged"),
    [("naive", "duplicate_charge", 200), ("robust", "approved", 100)],
)
def test_lost_answer_on_every_terminal(profile: str, state: str, charged: int) -> None:
    """Each terminal's first 0210 is dropped: the naive firmware retries as a new sale
    (charged twice), the robust one repeats it (0201) and the host answers the copy."""
    drop = {"fault": "network.drop", "on": "bank.response_sent", "direction": "to_terminal"}
    result, verdicts, _ = run(sales(1, profile=profile, faults=[drop]), 3)
    assert {tid: v.end_states["s1"] for tid, v in verdicts.items()} == {
        "T0000001": state, "T0000002": state, "T0000003": state}
    assert result.end_states == {state: 3}
    assert result.balances_minor["merchant"] == 3 * charged


@pytest.mark.parametrize("path", fleet_files(), ids=lambda p: p.stem)
def test_each_terminal_ends_as_a_lone_terminal_does(path: Path) -> None:
    """With money enough on the shared cards, a terminal in a fleet of 3 ends every step
    as the same scenario run alone (World) does: its faults are its own."""
    scenario = load_scenario(path)
    scenario = msgspec.structs.replace(scenario, cards=tuple(
        msgspec.structs.replace(c, balance_minor=c.balance_minor * 100) for c in scenario.cards
    ))
    alone = World(scenario).run()
    want = ({s.id: s.end_state for s in alone.steps}, sorted(a.kind for a in alone.anomalies))
    _, verdicts, _ = run(scenario, 3)
    assert len(verdicts) == 3
    for verdict in verdicts.values():
        assert (verdict.end_states, sorted(a.kind for a in verdict.anomalies)) == want


def test_money_not_conserved_is_an_error() -> None:
    fleet = Fleet(sales(1), 2)
    ledger = fleet.acquirer.ledger

    def leak(_event: object) -> None:
        ledger.merchant_balance_minor += 1

    fleet.env.timeout(100).callbacks.append(leak)
    with pytest.raises(ConservationError, match="not conserved"):
        fleet.run()


# -- the terminal's view of the trace -----------------------------------------------


def test_terminal_trace_tags_and_filters() -> None:
    fleet = Fleet(sales(1), 2)
    one, two = (fleet.router.views[t] for t in ("T0000001", "T0000002"))
    heard: list[tuple[str, str]] = []
    everything: list[str] = []
    one.subscribe("card.read", lambda e: heard.append(("one", e.fields["tid"])))
    two.subscribe(None, lambda e: everything.append(e.name))
    one.emit("card.read", card="x")
    two.emit("card.read", card="y")
    assert heard == [("one", "T0000001")]
    assert everything == ["card.read"]

    def listener(event: Event) -> None:
        heard.append(("gone", event.fields["tid"]))

    one.subscribe("card.removed", listener)
    one.emit("card.removed", card="x")
    one.unsubscribe("card.removed", listener)
    one.emit("card.removed", card="x")
    assert heard == [("one", "T0000001"), ("gone", "T0000001")]
    assert isinstance(one, TerminalTrace)
    assert one.header is fleet.trace.header


# -- the incremental oracle --------------------------------------------------------


JUDGED = ("sale_paper_jam", "sale_paper_jam_prevented", "sale_network_delay_retry",
          "refund_system_error", "void_sale", "settle_partial_approval",
          "sale_power_loss_reversal_in_ram", "reprint_paper_jam")


@pytest.mark.parametrize("name", JUDGED)
def test_observer_gives_judges_verdict(name: str) -> None:
    scenario = load_scenario(ROOT / "scenarios" / f"{name}.toml")
    world = World(scenario)
    live = Observer()
    world.trace.subscribe(None, live.observe)  # as the run happens
    world.run()
    steps = [StepView(s.id, s.do, s.amount_minor, s.target) for s in scenario.steps]
    expected = judge(steps, world.trace.events)
    after = Observer()
    for event in world.trace:
        after.observe(event)
    assert live.verdict(steps) == expected
    assert after.verdict(steps) == expected


def test_observer_without_receipts_keeps_no_text() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "reprint_paper_jam.toml")
    world = World(scenario)
    world.run()
    steps = [StepView(s.id, s.do, s.amount_minor, s.target) for s in scenario.steps]
    full, bare = Observer(), Observer(keep_receipts=False)
    for event in world.trace:
        full.observe(event)
        bare.observe(event)
    kept = full.verdict(steps)
    lean = bare.verdict(steps)
    assert any(kept.receipts.values())
    assert lean.receipts == dict.fromkeys(kept.receipts)
    assert (lean.end_states, lean.anomalies, lean.stans) == (
        kept.end_states, kept.anomalies, kept.stans)
    assert all(record.receipt is None for record in bare._seen.values())


def test_observer_reads_only_its_events() -> None:
    """Observer.EVENTS names every event the fold reads, so subscribing to just those
    loses nothing."""
    source = (ROOT / "emulator" / "judge" / "oracle.py").read_text(encoding="utf-8")
    fold = source[source.index("    def observe("):source.index("    def _bank(")]
    bank = set(oracle.BANK_EVENTS)  # ``name in BANK_EVENTS``
    assert set(re.findall(r'name == "([a-z_.]+)"', fold)) | bank == set(Observer.EVENTS)
    observer = Observer()
    trace = Trace(_Clock())
    trace.subscribe(None, observer.observe)
    trace.emit("card.read", step="s1", card="c")
    trace.emit("printer.state", state="jam")
    assert len(observer) == 0
    trace.emit("terminal.request_sent", step="s1", mti="0200", stan="000001", f7="x")
    assert len(observer) == 1


class _Clock:
    now = 0.0


def test_judge_is_unchanged_for_hand_built_events() -> None:
    events = [
        Event(0.0, "terminal.request_sent",
              {"step": "s1", "mti": "0200", "stan": "000001", "f7": "f"}),
        Event(1.0, "terminal.txn_done", {"step": "s1", "result": "approved",
                                         "amount_minor": 100}),
        Event(1.0, "bank.posted", {"kind": "sale", "stan": "000001", "f7": "f",
                                   "amount_minor": 100}),
    ]
    steps = [StepView("s1", "sale", 100)]
    verdict = judge(steps, events)
    assert verdict.end_states == {"s1": "charged_no_receipt"}
    observer = Observer(keep_receipts=False)
    for event in events:
        observer.observe(event)
    assert observer.verdict(steps) == verdict


def test_the_collector_is_restored() -> None:
    assert gc.isenabled()
    run_fleet(sales(1), 2)
    assert gc.isenabled()


# ------------------------------------------------------------------ posemu fleet


def test_cli_fleet_counts_and_exits_1_on_anomalies(capsys: pytest.CaptureFixture[str]) -> None:
    from emulator.cli.main import main  # noqa: PLC0415

    assert main(["fleet", str(ROOT / "scenarios" / "sale_paper_jam.toml"),
                 "--terminals", "3"]) == 1
    out = capsys.readouterr().out
    assert "3 terminals, 3 steps (naive, seed 7)" in out
    assert "anomalies: 3 (3 charged_no_receipt)" in out
    assert [line.split()[0] for line in out.splitlines() if line.startswith("  T")] == [
        "T0000001", "T0000002", "T0000003"]


def test_cli_fleet_json_and_streamed_trace_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from emulator.cli.main import main  # noqa: PLC0415

    trace = tmp_path / "fleet.jsonl"
    path = str(ROOT / "scenarios" / "sale_paper_jam_prevented.toml")
    assert main(["fleet", path, "--terminals", "4", "--json", "--trace", str(trace)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["terminals"] == 4
    assert data["anomalies"] == {}
    assert sum(data["end_states"].values()) == data["transactions"] == 4
    body = trace.read_bytes().split(b"\n", 1)[1]
    assert hashlib.sha256(body).hexdigest() == data["trace_sha256"]
    assert body.count(b"\n") == data["events"]
    assert [p.name for p in tmp_path.iterdir()] == ["fleet.jsonl"]  # no temporary file left


@pytest.mark.parametrize(("argv", "message"), [
    (["--terminals", "0"], "--terminals must be 1 to 9,999,999, not 0"),
    (["--terminals", "2", "--seed", "x"], "argument --seed: not an integer: 'x'"),
])
def test_cli_fleet_bad_input_is_one_line_and_status_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
) -> None:
    from emulator.cli.main import main  # noqa: PLC0415

    path = str(ROOT / "scenarios" / "sale_approved.toml")
    with pytest.raises(SystemExit) as stop:
        raise SystemExit(main(["fleet", path, *argv]))
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]


def test_cli_fleet_trace_that_cannot_be_written_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from emulator.cli.main import main  # noqa: PLC0415

    target = tmp_path / "missing-dir" / "fleet.jsonl"
    path = str(ROOT / "scenarios" / "sale_approved.toml")
    assert main(["fleet", path, "--terminals", "2", "--trace", str(target)]) == 3
    assert "posemu:" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_money_moved_for_another_terminal_is_traced_and_judged_as_its() -> None:
    """With MACs unchecked by the bank, T0000002's reversal reaches it with field 41
    mangled into T0000001: the bank reverses T0000001's sale (same STAN and field 7,
    as both run the same steps). That reversal is T0000001's money: it is traced with
    its id and judged by its oracle (it was folded into T0000002's, which crashed on a
    reversal of nothing it had standing)."""
    raw = {
        "format": 1, "name": "mangled terminal id", "seed": 131,
        "bank": {"verify_mac": False, "duplicate_check": False},
        "network": {"latency_s": 0.001}, "printer": {"lines_per_s": 2.0},
        "cards": [{"id": "c", "pan": "4111111111111111", "balance": "1000.00"}],
        "steps": [{"id": "s1", "do": "sale", "card": "c", "amount": "500.00", "at_s": 0}],
        "faults": [{"fault": "network.corrupt", "direction": "both", "field": 41,
                    "count": 2, "on": "terminal.reversal_sent", "nth": 1, "for_s": 100}],
    }
    sink = io.BytesIO()
    verdicts: dict[str, Verdict] = {}
    result = run_fleet(scenario_from_dict(raw), 2, trace_sink=sink,
                       on_terminal=verdicts.__setitem__)
    early = run_fleet(scenario_from_dict(raw), 2)
    events = [json.loads(line) for line in sink.getvalue().splitlines()[1:]]
    came = [(e["fields"]["tid"], e["fields"]["mti"]) for e in events
            if e["event"] == "request_received"]
    reversed_ = [e["fields"]["tid"] for e in events if e["event"] == "reversed"]
    assert came[4:6] == [("T0000001", "0400"), ("T0000002", "0400")]
    assert reversed_ == ["T0000001", "T0000002"]  # the first came in through T0000002
    assert {t: dict(v.end_states) for t, v in verdicts.items()} == {
        "T0000001": {"s1": "declined"}, "T0000002": {"s1": "declined"}}
    assert result.balances_minor == result.balances_before_minor
    assert (early.end_states, early.anomaly_counts) == (result.end_states,
                                                        result.anomaly_counts)


def test_a_reversal_of_nothing_standing_under_its_key_is_kept_apart() -> None:
    observer = Observer()
    trace = Trace(_Clock())
    trace.subscribe(None, observer.observe)
    trace.emit("terminal.request_sent", step="s1", mti="0200", stan="000001", f7="x")
    trace.emit("bank.posted", kind="sale", stan="000001", f7="x", amount_minor=500)
    trace.emit("bank.reversed", kind="sale", stan="000001", f7="x", amount_minor=400)
    assert observer._standing["000001x"] == (500,)
    assert [f.detail.split(" stands")[0] for f in observer.unattributed()] == ["-4.00 (sale)"]

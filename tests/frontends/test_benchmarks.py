"""The benchmarks run and say what they measured (tiny sizes; no timing is asserted)."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from benchmarks import (
    coldstart,
    fidelity,
    fresh,
    html_report,
    long_run,
    profile_sales,
    scale,
    throughput,
)
from benchmarks.reference import reference_rates, run_reference
from devices.printer.stream import MEMO_LIMIT
from emulator.engine.world import run_scenario
from emulator.scenario.load import load_scenario
from tests.support import ROOT

# the measured value may be negative: a difference of two timings (html_report.py)
VERDICT = re.compile(r"^target .+ (>=|<=) [\d,.]+x?: (met|not met) \(-?[\d,.]+x?\)$",
                     re.MULTILINE)


def number(out: str, label: str) -> float:
    """The number printed right after ``label`` (commas allowed); fails if absent."""
    found = re.search(re.escape(label) + r"\s*([\d,]+(?:\.\d+)?)", out)
    assert found, f"no {label!r} in:\n{out}"
    return float(found[1].replace(",", ""))


def check_common(out: str, verdicts: int) -> None:
    assert out.startswith("python 3.")
    assert len(VERDICT.findall(out)) == verdicts, out


def test_reference_model_takes_the_sale_shape_in_simulated_time() -> None:
    per_sale = 1.5 + 3.0 + 0.12 + 0.2 + 0.12 + 3 * 0.05
    assert run_reference(4) == pytest.approx(4 * per_sale)
    rates = reference_rates(5, 2)
    assert len(rates) == 2
    assert all(r > 0 for r in rates)


def test_profile_shows_the_printer_and_the_firmware(capsys: pytest.CaptureFixture[str]) -> None:
    # enough sales for about a hundred samples: with 20 (a dozen samples) a frame
    # holding a third of the time went unsampled now and then
    profile_sales.main(["--sales", "400"])
    out = capsys.readouterr().out
    assert out.startswith("python 3.")
    assert "run_scenario" in out
    assert "SimPrinter._job" in out
    assert "Terminal._main" in out


def test_throughput(capsys: pytest.CaptureFixture[str]) -> None:
    throughput.main(["--sales", "5", "--runs", "1"])
    out = capsys.readouterr().out
    check_common(out, verdicts=2)
    assert number(out, "sales per run:") == 5
    assert number(out, "posemu simulated sales per second (median of 1):") > 0
    assert number(out, "reference simulated sales per second (median of 1):") > 0
    assert number(out, "ratio posemu / reference:") > 0
    assert number(out, "posemu speed-up over real time:") > 0
    assert number(out, "reference: simulated time:") == pytest.approx(5 * 5.09, abs=1)


def test_fidelity_parts_add_up_and_are_set_against_the_budget(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert fidelity.DISTINCT > MEMO_LIMIT  # every receipt's STAN line misses, as a sale's
    fidelity.main(["--calls", "20", "--runs", "1", "--sales", "5"])
    out = capsys.readouterr().out
    assert out.startswith("python 3.")
    labels = ["0200 encoded with its MAC", "0210 encoded with its MAC",
              "0200 decoded, MAC checked", "0210 decoded, MAC checked",
              "receipt rendered to ESC/POS", "receipt through the printer core",
              "16 trace events kept", "16 hash lines written and hashed"]  # 16 a sale
    costs = [number(out, label) for label in labels]
    assert all(us > 0 for us in costs)
    assert number(out, "the fidelity parts together") == pytest.approx(sum(costs), abs=0.05)
    reference = number(out, "the reference sale (median of 7 x 5)")
    sale = number(out, "a whole posemu sale (median of 3 x 5)")
    assert number(out, "budget of target (2), 5 reference sales:") == pytest.approx(
        5 * reference, abs=0.1)
    assert number(out, "ratio now:") == pytest.approx(reference / sale, abs=0.002)
    assert number(out, "with nothing but the fidelity parts costing anything:") == (
        pytest.approx(reference / sum(costs), abs=0.002))


def test_fresh(capsys: pytest.CaptureFixture[str]) -> None:
    fresh.main(["--scenarios", "3", "--runs", "1"])
    out = capsys.readouterr().out
    check_common(out, verdicts=1)
    assert "every scenario ended as expected: s1=approved, s2=approved, r1=refunded" in out
    assert number(out, "fresh scenarios per second (median of 1):") > 0


def test_fresh_scenarios_differ_and_both_faults_fire() -> None:
    assert fresh.fresh(1) != fresh.fresh(2)
    assert fresh.run_one(7) > 0  # run_one checks the end states and the faults itself


def test_coldstart(capsys: pytest.CaptureFixture[str]) -> None:
    coldstart.main(["--runs", "1"])
    out = capsys.readouterr().out
    check_common(out, verdicts=1)
    assert number(out, "posemu run wall ms (median of 1):") > 0
    assert number(out, "baseline wall ms (median of 1):") > 0
    assert number(out, "ratio posemu run / baseline:") > 0
    heavy = re.search(r"^posemu run imported: (.*); not imported: (.*); fuzzer modules: ",
                      out, re.MULTILINE)
    assert heavy, out
    named = re.findall(r"[A-Za-z]+", heavy[1] + " " + heavy[2])
    assert set(coldstart.HEAVY) <= set(named)
    assert "hypothesis" not in heavy[1]  # only posemu fuzz may load it


def test_scale_days_settle_and_are_all_approved() -> None:
    point = scale.one(2, 3, 2)  # one() checks every sale approved and every day settled
    assert (point["transactions"], point["days"]) == (12, 2)
    assert point["postings"] == 12
    assert point["peak_rss_kib"] >= point["base_rss_kib"] > 0


def test_scale_with_faults_still_approves_every_sale() -> None:
    plain, faulty = scale.one(2, 4, 2), scale.one(2, 4, 2, faults=True)
    assert faulty["postings"] == plain["postings"] == 16  # one() checks approvals too
    # per terminal and day: a lost request and its repeat, a doubled request and its
    # answer, the faults' own events
    assert faulty["events"] > plain["events"]
    assert faulty["trace_sha256"] != plain["trace_sha256"]


def test_scale(capsys: pytest.CaptureFixture[str]) -> None:
    scale.main(["--terminals", "1,2", "--sales", "2", "--length", "1", "--runs", "1"])
    out = capsys.readouterr().out
    assert len(VERDICT.findall(out)) == 3, out
    assert "run length x10 at 1 terminals (1 -> 10 days of 2 sales)" in out
    scale.main(["--terminals", "1", "--sales", "4", "--length", "1", "--days", "3",
                "--faults", "--runs", "1"])
    out = capsys.readouterr().out
    assert len(VERDICT.findall(out)) == 2, out
    assert "each day a request lost, one doubled, one answered late" in out
    # the child processes ran the faulty days: the 3-day row's events are theirs
    row = re.search(r"^ +1 +4 +3 +12 +([\d,]+) ", out, re.MULTILINE)
    assert row, out
    assert int(row[1].replace(",", "")) == scale.one(1, 4, 3, faults=True)["events"]
    ratio = re.search(r"run length x3 at 1 terminals \(1 -> 3 days of 4 sales\): wall time "
                      r"x([\d.]+) \(per 10x: x([\d.]+)\)", out)
    assert ratio, out
    # both are printed to two decimals: the per-10x figure lies within what the rounded
    # x3 figure allows (a loaded machine can make either small, where rounding weighs most)
    x3, per10, k = float(ratio[1]), float(ratio[2]), 1 / math.log10(3)
    assert max(x3 - 0.005, 0) ** k - 0.005 <= per10 <= (x3 + 0.005) ** k + 0.005


@pytest.mark.parametrize("script", ["throughput", "fresh", "coldstart", "scale", "fidelity"])
def test_help_runs_as_a_script_from_the_repo_root(script: str) -> None:
    proc = subprocess.run([sys.executable, f"benchmarks/{script}.py", "--help"], cwd=ROOT,
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:")
    assert "--runs" in proc.stdout


def test_html_report(capsys: pytest.CaptureFixture[str]) -> None:
    html_report.main(["--runs", "1", "--path", str(ROOT / "scenarios" / "sale_paper_jam.toml")])
    out = capsys.readouterr().out
    check_common(out, verdicts=1)
    assert number(out, "without --html wall s (median of 1):") > 0
    assert number(out, "with --html wall s (median of 1):") > 0
    assert number(out, "report:") == 2  # the page and the index
    assert number(out, "pages alone:") == 1


def test_live(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import live  # noqa: PLC0415  (starts two servers: only here)

    live.main(["--terminals", "2", "--seconds", "0.2", "--open-rate", "500"])
    out = capsys.readouterr().out
    check_common(out, verdicts=2)
    saturated, open_loop = out.split("open loop (", 1)
    assert number(saturated, "minimal asyncio server:") > 0
    assert number(saturated, "posemu acquirer:") > 0
    assert number(saturated, "ratio posemu / minimal:") > 0
    assert open_loop.startswith("500 requests/s offered in all, 250.0/s per connection")
    # both servers keep up with the schedule: about the rate offered, nothing lost
    runs = re.findall(r"(?:minimal asyncio server|posemu acquirer): ([\d,]+) answers/s.*"
                      r" (\d+) unanswered", open_loop)
    assert len(runs) == 2
    assert all(abs(int(rate.replace(",", "")) - 500) <= 25 and lost == "0"
               for rate, lost in runs), runs
    assert "open loop <= 10.00" in out


def test_live_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import live  # noqa: PLC0415

    live.main(["--fleet", "--terminals", "3", "--seconds", "0.6"])
    out = capsys.readouterr().out
    runs = re.findall(r"N = 3, ([^:]+): ([\d,.]+) sales/s answered.*?(\d+) timeouts", out)
    assert [label for label, _, _ in runs] == ["1/s each", "1/s each, link down",
                                               "as fast as answered"]
    assert all(float(rate.replace(",", "")) > 0 for _, rate, _ in runs)
    assert int(runs[1][2]) > 0  # the sales sent while the link was down timed out
    assert "breaches none" in out


def test_long_run_files_approve_every_sale_past_one_roll(tmp_path: Path) -> None:
    path = tmp_path / "soak.toml"
    long_run.write(path, 300, 200)  # a 20 m roll holds 231 receipts
    result = run_scenario(load_scenario(path))
    assert Counter(s.end_state for s in result.steps) == {"approved": 299, "settled": 1}


def test_long_run(capsys: pytest.CaptureFixture[str]) -> None:
    long_run.main(["--steps", "40", "--settle-every", "7"])
    out = capsys.readouterr().out
    check_common(out, 1)
    assert number(out, "40 steps (") >= 0
    assert "loading alone peaks at" in out

"""Help for writing scenarios: ``posemu new``, ``check``, ``events``, ``explain`` with no
argument, ``--version``."""

from __future__ import annotations

import json
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from emulator import load_scenario, run_scenario
from emulator.cli.events import FIELD_HELP
from emulator.cli.new import STORIES
from emulator.scenario.catalogue import EXPECTABLE, TRIGGER_EVENTS
from emulator.scenario.events import CATALOGUE
from tests.support import JAM, LIBRARY, cli


def test_version_is_the_installed_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "--version")
    assert (code, err) == (0, "")
    assert out == f"posemu {metadata.version('posemu')}\n"


# ----------------------------------------------------------------------- new


def test_new_writes_a_commented_template_that_passes_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = cli(capsys, "new", tmp_path / "my_story")
    path = tmp_path / "my_story.toml"
    assert (code, err) == (0, "")
    assert str(path) in out
    text = path.read_text(encoding="utf-8")
    assert text.count("\n# ") >= 10  # optional keys shown, commented out
    assert "# [[faults]]" in text
    scenario = load_scenario(path)
    assert scenario.name == "my_story"
    assert scenario.faults == ()
    result = run_scenario(scenario)
    assert result.passed
    assert [s.end_state for s in result.steps] == ["approved"]
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_new_template_retry_step_is_valid_once_uncommented(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "retry.toml"
    cli(capsys, "new", path)
    text = path.read_text(encoding="utf-8")
    block = text[text.index("# [[steps]]"):text.index("\n\n", text.index("# [[steps]]"))]
    uncommented = "\n".join(line.removeprefix("# ") for line in block.splitlines())
    path.write_text(text.replace(block, uncommented), encoding="utf-8")
    _, s2 = load_scenario(path).steps
    assert (s2.after, s2.delay_s, s2.retry_of) == ("s1", 20, "s1")


@pytest.mark.parametrize("story", list(STORIES))
def test_new_from_a_story_reproduces_its_anomaly(
    story: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / f"{story}.toml"
    assert cli(capsys, "new", path, "--from", story)[0] == 0
    result = run_scenario(load_scenario(path))
    assert result.passed, result.failures
    assert story in [a.kind for a in result.anomalies]
    robust = run_scenario(load_scenario(path).with_overrides(profile="robust"))
    assert story not in [a.kind for a in robust.anomalies]


def test_new_never_overwrites_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mine.toml"
    path.write_text("# my own work\n", encoding="utf-8")
    code, _, err = cli(capsys, "new", path)
    assert code == 2
    assert err == f"posemu: {path}: already exists; not overwritten (choose another NAME)\n"
    assert path.read_text(encoding="utf-8") == "# my own work\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.toml"]


def test_new_from_an_unknown_story_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = cli(capsys, "new", tmp_path / "x", "--from", "paper_jam")
    assert code == 2
    assert "invalid choice: 'paper_jam'" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("name", "message"), [
    ("", "'': NAME must name a file to write, not a directory"),
    ("{tmp}", "'{tmp}': NAME must name a file to write, not a directory"),
    ("{tmp}/nowhere/x", "{tmp}/nowhere: no such directory"),
])
def test_new_with_no_place_to_write_is_one_line_and_exit_2(
    name: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = cli(capsys, "new", name.format(tmp=tmp_path))
    assert (code, out) == (2, "")
    assert err == f"posemu: {message.format(tmp=tmp_path)}\n"
    assert not list(tmp_path.iterdir())


def test_new_cards_are_test_numbers_not_real_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    for story in STORIES:
        cli(capsys, "new", tmp_path / story, "--from", story)
        cards = tomllib.loads((tmp_path / f"{story}.toml").read_text())["cards"]
        assert all(c["pan"].startswith("999999") for c in cards)


# --------------------------------------------------------------------- check


def test_check_lists_what_each_fault_waits_for_without_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    timed = tmp_path / "timed.toml"
    timed.write_text(JAM.read_text().replace('on = "printer.job_started"', "at_s = 5.3")
                     .replace("for_s = 120", ""), encoding="utf-8")
    code, out, err = cli(capsys, "check", JAM, timed)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"ok  {JAM}  (naive, seed 7): 1 card, 1 step, 1 fault, [expect]",
        "  faults[0] printer.paper_jam: the 1st printer.job_started, for 120 s",
        f"ok  {timed}  (naive, seed 7): 1 card, 1 step, 1 fault, [expect]",
        "  faults[0] printer.paper_jam: at 5.3 s",
    ]


def test_check_reports_every_bad_file_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    typo = tmp_path / "a_typo.toml"
    typo.write_text(JAM.read_text().replace("paper_jam", "paper_jamm"), encoding="utf-8")
    never = tmp_path / "b_never.toml"
    never.write_text(JAM.read_text().replace('on = "printer.job_started"',
                                             'on = "terminal.rebooted"\nstep = "s1"'),
                     encoding="utf-8")
    good = tmp_path / "c_good.toml"
    good.write_text(JAM.read_text(), encoding="utf-8")
    code, out, err = cli(capsys, "check", tmp_path)
    assert code == 2
    first, second = err.splitlines()
    assert first == (f"posemu: {typo}: faults[0].fault: unknown fault 'printer.paper_jamm' "
                     "(did you mean 'printer.paper_jam'?)")
    assert second.startswith(f"posemu: {never}: faults[0].step: ")
    assert "terminal.rebooted" in second
    assert out.splitlines()[0] == f"ok  {good}  (naive, seed 7): 1 card, 1 step, 1 fault, [expect]"


def test_check_json_is_one_object_per_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("format = 1\n[[steps]]\ndo = 'dance'\n", encoding="utf-8")
    code, out, _ = cli(capsys, "check", "--json", JAM, bad)
    first, second = map(json.loads, out.splitlines())
    assert code == 2
    assert first == {"path": str(JAM), "valid": True, "error": None,
                     "name": "Paper jam after approval (reproduced)",
                     "faults": [{"index": 0, "fault": "printer.paper_jam",
                                 "waits_for": "the 1st printer.job_started, for 120 s"}]}
    assert (second["valid"], second["faults"]) == (False, [])
    assert second["error"].startswith(f"{bad}: steps[0].do: unknown step kind 'dance'")


# -------------------------------------------------------------------- events


def test_events_lists_every_trigger_event_with_its_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(capsys, "events")
    assert code == 0
    lines = out.splitlines()
    for name, meaning in TRIGGER_EVENTS.items():
        at = lines.index(f"{name}  {meaning}")
        assert lines[at + 1].startswith("  fields: ")
    at = lines.index("printer.job_started  the printer starts a receipt")
    assert lines[at + 1] == "  fields: job step receipt_of slip"
    assert lines[at + 2] == "  step: its step field"
    code, out, _ = cli(capsys, "events", "--json")
    data = json.loads(out)["events"]
    assert [e["name"] for e in data] == list(TRIGGER_EVENTS)
    steps = {e["name"]: e["step"] for e in data}
    assert steps["printer.job_started"] is True
    assert steps["terminal.rebooted"] is False
    assert {e["name"]: e["step_by"] for e in data}["bank.response_sent"] == "stan"
    assert all(f["help"] for e in data for f in e["fields"])


def test_events_list_every_field_the_trace_carries() -> None:
    listed = {e.name: set(e.fields) for e in CATALOGUE.values()}
    seen: dict[str, set[str]] = {}
    for name in ("sale_paper_jam", "sale_partial_approval", "sale_bank_timeout",
                 "sale_power_loss", "settle_in_balance", "sale_network_duplicate",
                 "void_sale"):
        for event in run_scenario(load_scenario(LIBRARY / f"{name}.toml")).trace:
            if event.name in listed:
                seen.setdefault(event.name, set()).update(event.fields)
    assert len(seen) >= 12
    for name, fields in seen.items():
        assert fields <= listed[name], (name, fields - listed[name])
    assert set().union(*listed.values()) <= set(FIELD_HELP)


# ------------------------------------------------------------------- explain


def test_explain_without_a_name_lists_every_anomaly(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "explain")
    assert code == 0
    names = [line for line in out.splitlines() if line and not line.startswith(" ")]
    assert names[:-1] == list(EXPECTABLE)
    assert "  prevented by: on_receipt_failure, confirm_print" in out
    code, out, _ = cli(capsys, "explain", "--json")
    every = json.loads(out)["anomalies"]
    assert [a["name"] for a in every] == list(EXPECTABLE)
    assert every[0]["knobs"][0]["name"] == "on_receipt_failure"

"""The human report of ``posemu run``, the catalogue commands, and ``posemu replay``."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

import emulator.cli.main
from emulator.scenario.catalogue import (
    ANOMALIES,
    CLEAN_END_STATES,
    EXPECTABLE,
    FAULTS,
    RUN_ANOMALIES,
)
from emulator.scenario.profiles import KNOBS, PROFILES, SETTINGS, Policy
from tests.support import JAM, LIBRARY, POSEMU, ROOT, cli

JAM_PREVENTED = LIBRARY / "sale_paper_jam_prevented.toml"
PARTIAL = LIBRARY / "sale_partial_approval.toml"
ANSI = re.compile(r"\x1b\[([0-9;?]*)[A-Za-z]")




def copy(src: Path, dst: Path, old: str = "", new: str = "") -> Path:
    text = src.read_text(encoding="utf-8")
    assert old in text
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(text.replace(old, new) if old else text, encoding="utf-8")
    return dst


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err.strip()


def panels(out: str) -> list[list[str]]:
    """The receipt panels in ``out``: the lines of each, from its top edge to its bottom."""
    found: list[list[str]] = []
    current: list[str] | None = None
    for line in out.splitlines():
        if line.startswith("┌"):
            current = [line]
        elif current is not None:
            current.append(line)
            if line.startswith("└"):
                found.append(current)
                current = None
    return found


def body(panel: list[str]) -> list[str]:
    return [line.strip().removeprefix("│").removesuffix("│").strip() for line in panel[1:-1]]


# ---------------------------------------------------------------- one scenario


def test_report_shows_timeline_receipts_balances_anomalies_verdict_and_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = cli(capsys, "run", JAM)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert str(JAM.relative_to(ROOT)) in out or str(JAM) in out
    # timeline: time, component, event and the fields that matter
    assert re.search(r"4\.500\s+terminal\s+request_sent\s+step=s1 mti=0200 stan=000001", out)
    assert re.search(r"4\.820\s+bank\s+response_sent\s+mti=0210 stan=000001 code=00", out)
    assert re.search(r"4\.940\s+printer\s+state\s+state=jam", out)
    assert re.search(r"5\.840\s+terminal\s+txn_done\s+step=s1 do=sale code=00", out)
    assert "result=approved" in out
    assert "f7=" not in out  # noise fields stay out
    assert "delivered" not in out  # network.sent/delivered only with --verbose
    # balances before and after
    assert any(re.fullmatch(r"alice\s+250\.00\s+237\.50\s+-12\.50", x.strip()) for x in lines)
    assert any(re.fullmatch(r"merchant\s+0\.00\s+12\.50\s+\+12\.50", x.strip()) for x in lines)
    # the anomaly and why the oracle called it
    assert "charged_no_receipt at s1: charged 12.50, no approved receipt printed" in out
    assert any(x.strip() == "verdict PASS" for x in lines)
    # summary table
    summary = out[out.index("summary"):]
    assert re.search(r"Paper jam after\s.*naive\s+7\s+PASS\s+1\s+20\s+124\.94 s", summary)
    assert "1 scenario(s): 1 passed, 0 failed" in summary


def test_verbose_adds_network_events_to_the_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capsys, "run", "--verbose", JAM)
    assert re.search(r"network\s+sent\s+mti=0200 stan=000001 direction=to_bank", out)
    assert re.search(r"network\s+delivered\s+mti=0210", out)


def test_receipt_is_shown_as_printed_inside_a_panel(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capsys, "run", JAM_PREVENTED)
    complete = [p for p in panels(out) if "APPROVED" in body(p)]
    assert len(complete) == 1
    (panel,) = complete
    assert "receipt s1 (approved)" in panel[0]
    assert panel[-1].strip("└┘─ ") == "cut"
    lines = body(panel)
    assert lines[0] == "POSEMU DEMO SHOP"
    assert "CARD                   **** **** **** 1111" in lines
    assert "AMOUNT                           EUR 12.50" in lines
    assert "RESPONSE CODE 00" in lines


def test_receipt_cut_short_by_a_jam_shows_what_was_printed_and_the_tear(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = copy(JAM, tmp_path / "jam_midway.toml", 'on = "printer.job_started"', "at_s = 5.3")
    code, out, _ = cli(capsys, "run", path)
    assert code == 0
    (panel,) = panels(out)
    assert "CUT SHORT: jam" in panel[-1]
    lines = body(panel)
    assert lines[0] == "POSEMU DEMO SHOP"
    assert "AMOUNT                           EUR 12.50" in lines
    assert "APPROVED" not in lines  # the jam came first
    assert lines[-1].startswith("/\\/\\")


def test_receipt_jammed_before_its_first_line_shows_nothing_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = cli(capsys, "run", JAM)
    (panel,) = panels(out)
    assert "CUT SHORT: jam" in panel[-1]
    assert body(panel)[0] == "(nothing printed)"


def test_failed_scenario_lists_what_differed_under_its_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = copy(JAM, tmp_path / "jam.toml", 'alice = "237.50"', 'alice = "240.00"')
    code, out, _ = cli(capsys, "run", path)
    assert code == 1
    lines = [x.strip() for x in out.splitlines()]
    verdict = next(i for i, x in enumerate(lines) if x.startswith("verdict FAIL"))
    assert lines[verdict + 1] == "- balances.alice: expected 240.00, found 237.50"
    assert "1 scenario(s): 0 passed, 1 failed" in out


# --------------------------------------------------------------- many scenarios


def four(tmp_path: Path) -> list[Path]:
    return [copy(JAM, tmp_path / f"s{n}.toml") for n in range(4)]


def test_more_than_three_scenarios_collapse_to_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    paths = four(tmp_path)
    code, out, _ = cli(capsys, "run", *paths)
    assert code == 0
    assert "timeline" not in out
    assert not panels(out)
    for path in paths:
        (line,) = [x for x in out.splitlines() if str(path) in x]
        assert line.startswith("PASS  ")
        assert "(naive, seed 7)" in line
        assert "anomalies: charged_no_receipt" in line
        assert "20 events" in line
    assert "4 scenario(s): 4 passed, 0 failed" in out


def test_verbose_expands_a_long_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capsys, "run", "--verbose", *four(tmp_path))
    assert out.count("timeline") == 4
    assert len(panels(out)) == 4
    assert "4 scenario(s)" in out


def test_three_scenarios_are_shown_in_full(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capsys, "run", JAM, JAM_PREVENTED, PARTIAL)
    assert out.count("timeline") == 3


def test_collapsed_failure_still_says_what_differed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    paths = four(tmp_path)
    copy(JAM, paths[2], 'alice = "237.50"', 'alice = "240.00"')
    code, out, _ = cli(capsys, "run", *paths)
    assert code == 1
    lines = out.splitlines()
    at = next(i for i, x in enumerate(lines) if str(paths[2]) in x)
    assert lines[at].startswith("FAIL  ")
    assert lines[at + 1].strip() == "- balances.alice: expected 240.00, found 237.50"


# ------------------------------------------------------------------ no escapes


@pytest.mark.parametrize("args", [
    ["run", str(JAM_PREVENTED)], ["run", str(JAM), str(JAM), str(JAM), str(JAM)],
    ["faults"], ["profiles"], ["explain", "duplicate_charge"],
])
def test_captured_output_has_no_escape_codes(
    capsys: pytest.CaptureFixture[str], args: list[str],
) -> None:
    _, out, err = cli(capsys, *args)
    assert out
    assert "\x1b" not in out + err


def test_piped_console_script_has_no_escape_codes(tmp_path: Path) -> None:
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("FORCE_COLOR", None)
    proc = subprocess.run([str(POSEMU), "run", *four(tmp_path)], capture_output=True,
                          text=True, env=env, check=False, timeout=60)
    assert proc.returncode == 0
    assert "PASS  " in proc.stdout
    assert "\x1b" not in proc.stdout + proc.stderr


def run_on_pty(args: list[str], env: dict[str, str], *, stdout_pty: bool) -> tuple[str, str]:
    """Run posemu with stderr (and maybe stdout) on a pseudo-terminal: (stdout, terminal)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(POSEMU), *args], stdout=slave if stdout_pty else subprocess.PIPE, stderr=slave,
        env={**env, "TERM": "xterm-256color", "COLUMNS": "100"}, cwd=ROOT,
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    assert proc.returncode == 0
    return (out or b"").decode(), b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal_stderr_keeps_piped_stdout_clean(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    out, terminal = run_on_pty(["run", *map(str, four(tmp_path))], env, stdout_pty=False)
    assert "running" in terminal
    assert "4/4" in terminal
    assert "\x1b" not in out
    assert len([x for x in out.splitlines() if x.startswith("PASS  ")]) == 4


def colours(text: str) -> list[str]:
    """SGR parameters that set a colour (foreground or background)."""
    found = []
    for params in ANSI.findall(text):
        for p in params.split(";"):
            if p.isdigit() and (30 <= int(p) <= 49 or 90 <= int(p) <= 107):
                found.append(p)
    return found


def test_no_color_is_honoured_on_a_terminal() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    _, coloured = run_on_pty(["run", str(JAM)], env, stdout_pty=True)
    _, plain = run_on_pty(["run", str(JAM)], {**env, "NO_COLOR": "1"}, stdout_pty=True)
    assert colours(coloured)
    assert "charged_no_receipt" in plain
    assert colours(plain) == []


# -------------------------------------------------------- faults / profiles / explain


def test_faults_lists_every_fault_and_parameter(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "faults")
    assert code == 0
    words = out.split()
    for fault in FAULTS.values():
        assert fault.name in words
        for param in fault.params:
            assert param.name in words
            assert param.kind in words


def test_faults_json_is_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "faults", "--json")
    assert code == 0
    data = json.loads(out)["faults"]
    assert [f["name"] for f in data] == list(FAULTS)
    for row in data:
        fault = FAULTS[row["name"]]
        assert (row["help"], row["device"]) == (fault.help, fault.device)
        assert [(p["name"], p["kind"], p["default"], p["help"]) for p in row["params"]] == [
            (p.name, p.kind, p.default, p.help) for p in fault.params
        ]


def test_profiles_lists_every_profile_knob_and_setting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(capsys, "profiles")
    assert code == 0
    for name in PROFILES:
        assert re.search(rf"^  {name}\s+every knob {name}$", out, re.MULTILINE)
    for knob in KNOBS.values():
        assert f"{knob.name}  guards {knob.guards}" in out
        assert f"robust {json.dumps(knob.robust)}: {knob.robust_means}" in out
        assert f"naive  {json.dumps(knob.naive)}: {knob.naive_means}" in out
    for name in SETTINGS:
        assert re.search(rf"^{name}\s+{getattr(Policy(), name)}\s", out, re.MULTILINE)


def test_profiles_json_is_the_profiles_module(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capsys, "profiles", "--json")
    data = json.loads(out)
    assert data["profiles"] == {n: dataclasses.asdict(p) for n, p in PROFILES.items()}
    assert data["knobs"] == [dataclasses.asdict(k) for k in KNOBS.values()]
    assert data["settings"] == [
        {"name": n, "default": getattr(Policy(), n), "help": h} for n, h in SETTINGS.items()
    ]


@pytest.mark.parametrize("name", EXPECTABLE)
def test_explain_names_meaning_story_and_guarding_knobs(
    capsys: pytest.CaptureFixture[str], name: str,
) -> None:
    anomaly = {**ANOMALIES, **RUN_ANOMALIES}[name]
    guards = [k for k in KNOBS.values() if k.guards == name]
    code, out, _ = cli(capsys, "explain", name)
    assert code == 0
    assert out.splitlines()[0] == name
    assert f"means: {anomaly.meaning}" in out
    if anomaly.story:
        assert f'story: seed story "{anomaly.story}"' in out
    else:
        assert "story: not one of the seed stories" in out
    shown = [k for k in KNOBS if re.search(rf"^    {k}$", out, re.MULTILINE)]
    assert shown == [k.name for k in guards]
    if not guards:
        assert "prevented by: no knob" in out
    code, out, _ = cli(capsys, "explain", "--json", name)
    data = json.loads(out)
    assert (data["name"], data["meaning"], data["story"]) == (name, anomaly.meaning, anomaly.story)
    assert data["knobs"] == [dataclasses.asdict(k) for k in guards]


@pytest.mark.parametrize(("name", "says"), [
    ("charged_no_reciept", "did you mean charged_no_receipt"),
    ("xyzzy", "one of: charged_no_receipt"),
    ("approved", "clean end state"),
])
def test_explain_of_an_unknown_name_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], name: str, says: str,
) -> None:
    assert name not in EXPECTABLE
    code, out, err = cli(capsys, "explain", name)
    assert (code, out) == (2, "")
    line = one_error_line(err)
    assert line.startswith("posemu: ")
    assert says in line
    assert name in CLEAN_END_STATES or "unknown anomaly" in line


# ----------------------------------------------------------------------- replay


def trace_of(tmp_path: Path, capsys: pytest.CaptureFixture[str], src: Path = JAM) -> Path:
    scenario = copy(src, tmp_path / "scenario" / src.name)
    traces = tmp_path / "traces"
    assert cli(capsys, "run", "--json", "--trace-dir", traces, scenario)[0] == 0
    return traces / f"{src.stem}.jsonl"


def test_replay_of_a_fresh_trace_is_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    trace = trace_of(tmp_path, capsys)
    code, out, err = cli(capsys, "replay", trace)
    assert (code, err) == (0, "")
    assert out.startswith(f"identical: {trace}")
    assert "(naive, seed 7): 20 events" in out


def tamper(capsys: pytest.CaptureFixture[str], trace: Path, old: str,
           new: str) -> tuple[int, str, str]:
    """Replace ``old`` in the first line holding it; check replay shows that line first.
    Its index in the file, the line as it was and as it is now."""
    lines = trace.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if old in line)
    original = lines[at]
    lines[at] = original.replace(old, new)
    trace.write_text("\n".join(lines) + "\n")
    code, out, _ = cli(capsys, "replay", trace)
    assert code == 1
    assert out.startswith("differs: ")
    assert f"first difference at event {at - 1} (line {at + 1} of {trace}):" in out
    assert f"  old: {lines[at]}\n  new: {original}\n" in out
    return at, original, lines[at]


def test_replay_of_a_tampered_trace_shows_the_first_differing_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    trace = trace_of(tmp_path, capsys)
    at, original, changed = tamper(capsys, trace, '"code":"00"', '"code":"05"')
    code, out, _ = cli(capsys, "replay", "--json", trace)
    data = json.loads(out)
    assert code == 1
    assert data["identical"] is False
    assert data["first_difference"] == {
        "index": at - 1, "line": at + 1, "old": changed, "new": original,
    }


def test_replay_of_a_truncated_trace_names_the_missing_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    trace = trace_of(tmp_path, capsys)
    lines = trace.read_text().splitlines()
    trace.write_text("\n".join(lines[:-1]) + "\n")
    code, out, _ = cli(capsys, "replay", trace)
    assert code == 1
    assert "first difference at event 19" in out
    assert "  old: (no event)" in out
    assert f"  new: {lines[-1]}" in out


def test_replay_with_another_scenario_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    trace = trace_of(tmp_path, capsys)
    (tmp_path / "scenario" / JAM.name).unlink()
    moved = copy(JAM, tmp_path / "moved.toml")
    code, out, _ = cli(capsys, "replay", trace, "--scenario", moved)
    assert code == 0
    assert out.startswith("identical: ")


def fleet_trace_of(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    scenario = copy(JAM, tmp_path / "scenario" / JAM.name)
    trace = tmp_path / "fleet.jsonl"
    assert cli(capsys, "fleet", scenario, "--terminals", "3", "--trace", trace)[0] == 1
    return trace


def test_replay_of_a_fleet_trace_runs_the_fleet_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    trace = fleet_trace_of(tmp_path, capsys)
    events = len(trace.read_text().splitlines()) - 1
    code, out, err = cli(capsys, "replay", trace)
    assert (code, err) == (0, "")
    assert out.startswith(f"identical: {trace}")
    assert f"(naive, seed 7) on 3 terminals: {events} events" in out
    code, out, _ = cli(capsys, "replay", "--json", trace)
    data = json.loads(out)
    assert (code, data["terminals"], data["identical"]) == (0, 3, True)
    assert data["old"] == data["new"] == {
        "events": events, "trace_sha256": hashlib.sha256(
            "".join(f"{line}\n" for line in trace.read_text().splitlines()[1:]).encode()
        ).hexdigest()}


def test_replay_of_a_tampered_fleet_trace_shows_the_first_differing_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    tamper(capsys, fleet_trace_of(tmp_path, capsys), '"tid":"T0000002"', '"tid":"T0000003"')


def test_replay_of_a_single_run_trace_says_it_is_no_fleet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    trace = trace_of(tmp_path, capsys)
    code, out, _ = cli(capsys, "replay", "--json", trace)
    assert code == 0
    assert json.loads(out)["terminals"] is None
    header, *events = trace.read_text().splitlines()
    trace.write_text("\n".join([json.dumps({**json.loads(header), "terminals": None}),
                                *events]) + "\n")  # as --json reports a single run
    code, out, _ = cli(capsys, "replay", trace)
    assert code == 0
    assert out.startswith("identical: ")
    assert "terminals" not in out


@pytest.mark.parametrize("fleet", [False, True])
def test_replay_reads_a_trace_from_a_pipe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fleet: bool,
) -> None:
    """Read once, as it comes: a pipe (a decompressed trace, say) is replayed in full."""
    trace = fleet_trace_of(tmp_path, capsys) if fleet else trace_of(tmp_path, capsys)
    proc = subprocess.run([str(POSEMU), "replay", "--json", "/dev/stdin"],
                          input=trace.read_bytes(), capture_output=True, check=False, timeout=60)
    assert (proc.returncode, proc.stderr) == (0, b"")
    data = json.loads(proc.stdout)
    assert data["identical"] is True
    assert data["old"]["events"] == len(trace.read_text().splitlines()) - 1


def test_replay_of_a_fleet_trace_names_a_malformed_line_met_during_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    trace = fleet_trace_of(tmp_path, capsys)
    lines = trace.read_text().splitlines()
    lines[10] = lines[10][:20]
    trace.write_text("\n".join(lines) + "\n")
    code, out, err = cli(capsys, "replay", trace)
    assert (code, out) == (2, "")
    assert one_error_line(err) == f"posemu: {trace}:11: malformed trace event"


def test_a_fleet_too_large_for_memory_is_one_line_and_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    trace = fleet_trace_of(tmp_path, capsys)

    def too_large(*_args: object, **_kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr("emulator.engine.fleet.run_fleet", too_large)
    code, out, err = cli(capsys, "replay", trace)
    assert (code, out) == (3, "")
    assert one_error_line(err) == "posemu: out of memory"


def garbage(tmp: Path) -> tuple[Path, str]:
    path = tmp / "garbage.jsonl"
    path.write_bytes(b"\x7fELF\x00\xff\xfe binary")
    return path, f"{path}:1"


def not_json(tmp: Path) -> tuple[Path, str]:
    path = tmp / "notes.jsonl"
    path.write_text("hello\n")
    return path, f"{path}:1"


def jam_trace(tmp: Path, name: str, events: str = "", **header: object) -> Path:
    """A trace file ``name`` whose header names a copy of the paper jam scenario."""
    copy(JAM, tmp / "jam.toml")
    path = tmp / name
    path.write_text(json.dumps({"posemu_trace": 1, "path": f"{tmp}/jam.toml", "seed": 1,
                                "profile": "naive", **header}) + "\n" + events)
    return path


def bad_event(tmp: Path) -> tuple[Path, str]:
    path = jam_trace(tmp, "bad.jsonl",
                     '{"t":0,"component":"terminal","event":"x","fields":{}}\n{"t":\n')
    return path, f"{path}:3"


def bad_seed(tmp: Path) -> tuple[Path, str]:
    path = tmp / "seed.jsonl"
    path.write_text('{"posemu_trace":1,"path":"x.toml","seed":"7","profile":"naive"}\n')
    return path, "seed"


def missing_scenario(tmp: Path) -> tuple[Path, str]:
    path = tmp / "orphan.jsonl"
    path.write_text(f'{{"posemu_trace":1,"path":"{tmp}/gone.toml","seed":1,"profile":"naive"}}\n')
    return path, f"{tmp}/gone.toml"


def deep_event(tmp: Path) -> tuple[Path, str]:
    path = jam_trace(tmp, "deep.jsonl", "[" * 100_000 + "\n")  # past the parser's depth
    return path, f"{path}:2: malformed trace event"


def deep_header(tmp: Path) -> tuple[Path, str]:
    path = tmp / "deep.jsonl"
    path.write_text("[" * 100_000 + "\n")
    return path, f"{path}:1: not a posemu trace"


def bad_terminals(tmp: Path) -> tuple[Path, str]:
    path = jam_trace(tmp, "fleet.jsonl", terminals=True)
    return path, f"{path}:1: terminals"


def missing_trace(tmp: Path) -> tuple[Path, str]:
    return tmp / "nope.jsonl", "nope.jsonl"


def empty(tmp: Path) -> tuple[Path, str]:
    path = tmp / "empty.jsonl"
    path.write_text("")
    return path, "not a posemu trace"


BAD_TRACES = {f.__name__: f for f in (garbage, not_json, bad_event, deep_event, deep_header,
                                       bad_seed, bad_terminals, missing_scenario,
                                       missing_trace, empty)}


@pytest.mark.parametrize("case", sorted(BAD_TRACES))
def test_replay_of_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str,
) -> None:
    path, named = BAD_TRACES[case](tmp_path)
    code, out, err = cli(capsys, "replay", path)
    assert (code, out) == (2, "")
    line = one_error_line(err)
    assert line.startswith("posemu: ")
    assert named in line


def test_replay_of_garbage_via_the_console_script(tmp_path: Path) -> None:
    path, named = garbage(tmp_path)
    proc = subprocess.run([str(POSEMU), "replay", str(path)], capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 2
    assert named in one_error_line(proc.stderr)
    proc = subprocess.run([str(POSEMU), "replay", "--debug", str(path)], capture_output=True,
                          text=True, check=False, timeout=60)
    assert proc.returncode == 2
    assert "Traceback (most recent call last)" in proc.stderr


# ------------------------------------------------------------------- rich stays out


def test_json_commands_do_not_import_rich() -> None:
    script = (
        "import sys\n"
        "from emulator.cli.main import main\n"
        f"assert main(['run', '--json', {str(JAM)!r}]) == 0\n"
        "for args in (['faults'], ['profiles'], ['explain', 'wrong_amount']):\n"
        "    assert main([*args, '--json']) == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "[]"


def test_human_output_does_import_rich() -> None:  # the check above can fail
    script = (
        "import sys\n"
        "from emulator.cli.main import main\n"
        "assert main(['faults']) == 0\n"
        "print('rich' in sys.modules, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False, timeout=60, cwd=ROOT)
    assert proc.stderr.strip() == "True"


def test_only_the_report_module_imports_rich_at_module_level() -> None:
    for source in sorted([*ROOT.glob("emulator/**/*.py"), *ROOT.glob("devices/**/*.py")]):
        top = [line for line in source.read_text().splitlines()
               if re.match(r"(from|import) rich\b", line)]
        assert not top or source.name == "report.py", source


# ------------------------------------------------------------------ docs/cli.md

CLI_MD = ROOT / "docs" / "cli.md"
_CONSOLE = re.compile(r"^```console\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def doc_commands() -> list[tuple[str, list[str]]]:
    """Each ``$ .venv/bin/posemu ...`` of docs/cli.md with the lines shown after it."""
    found: list[tuple[str, list[str]]] = []
    for block in _CONSOLE.findall(CLI_MD.read_text(encoding="utf-8")):
        if "/tmp/" in block:  # replay examples: covered by the replay tests above
            continue
        for chunk in block.split("$ ")[1:]:
            command, *shown = chunk.rstrip("\n").split("\n")
            found.append((command, shown))
    return found


@pytest.mark.parametrize(("command", "shown"), doc_commands(), ids=lambda x: str(x)[:60])
def test_cli_doc_examples_are_what_posemu_prints(
    command: str, shown: list[str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv, _, pipe = command.removeprefix(".venv/bin/posemu ").partition(" | ")
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("COLUMNS", raising=False)
    _, out, err = cli(capsys, *argv.split())
    lines = [line.rstrip() for line in (out + err).splitlines()]
    if pipe:
        assert pipe == f"head -{len(shown)}"
        lines = lines[: len(shown)]
    assert lines == shown


def test_cli_doc_names_every_subcommand_and_flag() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    parser = emulator.cli.main.build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, sub in commands.choices.items():
        assert f"## `posemu {name}" in text, name
        for action in sub._actions:
            for flag in action.option_strings:
                assert f"`{flag}" in text or f"[{flag}" in text, (name, flag)

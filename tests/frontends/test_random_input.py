"""Random input to the loader, the command line and the virtual printer: every refusal is
one line, nothing raises past the front end, and each example ends within its deadline."""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.errors import ScenarioError
from devices.printer.core import PrinterCore
from devices.printer.virtual import CONTROLS, VirtualPrinter, print_lines
from emulator.scenario.load import parse_scenario, scenario_from_dict
from tests.support import LIBRARY, cli

EXAMPLES = int(os.environ.get("POSEMU_RANDOM_EXAMPLES", "60"))  # more: a longer hunt
FAST = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=2),
                derandomize=EXAMPLES <= 60,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
BASE = tomllib.loads((LIBRARY / "refund_approved.toml").read_text())

# values that have broken parsers before: huge, tiny, odd, markup, control characters
ODD_NUMBERS = st.sampled_from([
    0, -1, 1, 2**63 - 1, -(2**63), 10**30, 1e-300, 1e300, float("inf"), float("-inf"),
    float("nan"), 0.5, "1e5000", "1e999999999", "-0", "9" * 5000, "0.001", "NaN", "²",
])
ODD_TEXT = st.sampled_from(["", "[/red]", "[bold]x", "a\nb", "\x1b[31m", "é", "x" * 5000,
                            "4111111111111111", "\x00"])
VALUES = st.one_of(ODD_NUMBERS, ODD_TEXT, st.booleans(), st.none(),
                   st.lists(ODD_NUMBERS, max_size=3), st.integers(), st.floats())


def one_line(message: str) -> None:
    assert "\n" not in message.strip()
    assert "Traceback" not in message


@FAST
@given(st.text(max_size=400))
def test_the_loader_refuses_random_text_in_one_line(text: str) -> None:
    try:
        parse_scenario(text, "random.toml")
    except ScenarioError as exc:
        one_line(str(exc))


def _mutate(data: Any, path: list[Any], value: Any) -> Any:
    if not path:
        return value
    head, *rest = path
    if isinstance(data, dict):
        return {**data, head: _mutate(data.get(head), rest, value)}
    if isinstance(data, list) and data:
        index = head % len(data) if isinstance(head, int) else 0
        return [*data[:index], _mutate(data[index], rest, value), *data[index + 1:]]
    return value


PATHS = st.sampled_from([
    ["seed"], ["start"], ["until_s"], ["name"], ["bank", "merchant_balance"],
    ["bank", "processing_s"], ["bank", "retention_s"], ["network", "latency_s"],
    ["printer", "lines_per_s"], ["printer", "paper_m"], ["terminal", "printer_poll_s"],
    ["terminal", "receipt_hold_s"], ["terminal", "request_retries"],
    ["terminal", "reversal_tries"], ["terminal", "saf_retry_s"], ["terminal", "offline_floor"],
    ["cards", 0, "balance"], ["cards", 0, "id"], ["cards", 0, "pan"], ["steps", 0, "amount"],
    ["steps", 0, "at_s"], ["steps", 0, "id"], ["steps", 0, "card"], ["expect", "balances"],
    ["faults"],
])


@FAST
@given(st.lists(st.tuples(PATHS, VALUES), min_size=1, max_size=3))
def test_the_loader_refuses_odd_values_in_one_line(changes: list[tuple[list[Any], Any]],
                                                   ) -> None:
    data: Any = BASE
    for path, value in changes:
        data = _mutate(data, path, value)
    try:
        scenario_from_dict(data, "mutated.toml")
    except ScenarioError as exc:
        one_line(str(exc))


FLAGS = {
    "run": ["--seed", "--profile", "--trace-dir", "--printer"],
    "fleet": ["--terminals", "--seed", "--profile"],
    "replay": ["--scenario"],
    "explain": [],
    "fuzz": ["--runs", "--budget-s", "--seed", "--jobs", "--shard", "--causes", "--set",
             "--until"],
    "printer": ["--baudrate", "--lines-per-s", "--paper-m"],
}
WORDS = st.one_of(ODD_NUMBERS.map(str), ODD_TEXT.filter(lambda t: "\x00" not in t),
                  st.sampled_from([str(LIBRARY / "sale_approved.toml"), "1/2", "3/2", "nope"]))


@FAST
@given(st.sampled_from(sorted(FLAGS)), st.data())
def test_the_command_line_refuses_odd_values_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, data: st.DataObject,
) -> None:
    argv = [command]
    for flag in data.draw(st.lists(st.sampled_from(FLAGS[command] or ["--json"]), max_size=3,
                                   unique=True)):
        argv += [flag] if flag == "--json" else [flag, data.draw(WORDS)]
    if command in ("run", "fleet", "replay", "explain"):
        argv.append(data.draw(WORDS))
    if command == "fuzz":  # bounded: one run of a profile that finds nothing
        argv = [a for a in argv if a not in ("--runs", "--budget-s")]
        argv += ["--runs", "1", "--profile", "robust", "--out", str(tmp_path / "out")]
    if command == "printer":
        argv.append("--bad-flag")  # a printer that parsed would serve until quit
    if "--trace-dir" in argv:
        argv[argv.index("--trace-dir") + 1] = str(tmp_path / "traces")
    status, _, err = cli(capsys, *argv)
    assert status in (0, 1, 2, 3), (argv, err)
    if status >= 2:
        assert err.startswith("posemu"), (argv, err)
        assert err.count("\n") == 1, (argv, err)
        assert len(err) < 1000


@FAST
@given(st.binary(max_size=600))
def test_the_printer_core_reads_random_bytes(data: bytes) -> None:
    core = PrinterCore(paper_m=0.2)
    core.feed(data)
    assert core.status(1) is not None
    assert 0 <= print_lines(data) < 10**6


@pytest.fixture(scope="module")
def printer() -> Any:
    with VirtualPrinter(lines_per_s=1000) as vp:
        yield vp


@FAST
@given(st.text(max_size=200))
def test_the_virtual_printer_refuses_an_unknown_control_in_one_short_line(
    printer: VirtualPrinter, line: str,
) -> None:
    if line.strip() in CONTROLS:
        printer.control(line)
        return
    with pytest.raises(ValueError, match="unknown control") as info:
        printer.control(line)
    one_line(str(info.value).replace("\\n", ""))
    assert len(str(info.value)) < 300

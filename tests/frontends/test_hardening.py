"""Bad input by class: inputs without end, numbers without bounds, totals the wire cannot
carry, user text read as markup, quadratic loading, messages naming the wrong thing.
Each is one line on standard error and a clear exit status, never a traceback or a hang."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devices.bank.acquirer import Acquirer
from emulator.cli.report import COLLAPSE_AFTER, RunReport
from emulator.engine.world import run_scenario
from emulator.scenario.load import load_scenario, scenario_from_dict
from emulator.scenario.source import MAX_SCENARIO_BYTES
from tests.support import LIBRARY, POSEMU, cli

SALE = LIBRARY / "sale_approved.toml"
CARD = {"id": "alice", "pan": "4111111111111111", "balance": "100.00"}


def one_line_error(status: int, err: str, expected: int = 2) -> None:
    assert status == expected, err
    assert err.startswith("posemu: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err


def posemu(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(POSEMU), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------- inputs without end


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("trace")
    assert posemu("run", "--json", SALE, "--trace-dir", directory).returncode == 0
    return directory / "sale_approved.jsonl"


@pytest.mark.parametrize("argv", [
    ["run", "/dev/zero"], ["run", "/dev/urandom"], ["fuzz", "--runs", "1", "/dev/zero"],
    ["fleet", "/dev/zero", "--terminals", "1"], ["replay", "/dev/zero"],
    ["replay", "TRACE", "--scenario", "/dev/zero"],
], ids=" ".join)
def test_an_endless_input_is_refused_at_once(argv: list[str], trace: Path) -> None:
    """Before: each read until memory ran out (the subprocess would time out)."""
    proc = posemu(*[str(trace) if a == "TRACE" else a for a in argv], timeout=30)
    one_line_error(proc.returncode, proc.stderr)
    assert "is a device" in proc.stderr or "longer than 1 MiB" in proc.stderr


def test_a_fifo_with_no_writer_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "scenario.toml"
    os.mkfifo(fifo)
    proc = posemu("run", fifo, timeout=30)  # before: blocked in open() for ever
    one_line_error(proc.returncode, proc.stderr)
    assert "FIFO" in proc.stderr


def test_a_file_past_the_size_limit_is_refused_unread(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "big.toml"
    with big.open("wb") as f:  # sparse: no disk used
        f.truncate(MAX_SCENARIO_BYTES + 1)
    status, _, err = cli(capsys, "run", big)
    one_line_error(status, err)
    assert "too large" in err


def test_the_pytest_plugin_skips_a_fifo(tmp_path: Path) -> None:
    from emulator.pytest_plugin import _read  # noqa: PLC0415

    fifo = tmp_path / "pending.toml"
    os.mkfifo(fifo)
    assert _read(fifo) is None  # before: collection blocked in open()
    assert _read(SALE) is not None


# ----------------------------------------------------------- numbers without bounds


def scenario(tmp_path: Path, top: str = "", terminal: str = "", card: str = "",
             extra: str = "") -> Path:
    return write(tmp_path / "s.toml", f"""format = 1
{top}
[terminal]
{terminal}
[[cards]]
id = "alice"
pan = "4111111111111111"
{card or 'balance = "100.00"'}
[[steps]]
do = "sale"
card = "alice"
amount = "1.00"
{extra}
""")


@pytest.mark.parametrize(("where", "text", "key"), [
    ("card", 'balance = "1e5000"', "cards[0].balance"),
    ("card", 'balance = "1e999999999"', "cards[0].balance"),
    ("card", "balance = 1e300", "cards[0].balance"),
    ("card", 'balance = "10000000000000.00"', "cards[0].balance"),
    ("terminal", "printer_poll_s = 1e-300", "terminal.printer_poll_s"),
    ("terminal", "saf_retry_s = 1e-300", "terminal.saf_retry_s"),
    ("terminal", "printer_poll_s = 0.01\nreceipt_hold_s = 1e9", "terminal.printer_poll_s"),
    ("terminal", "saf_expiry_s = 1e9", "terminal.saf_expiry_s"),
    ("terminal", "request_retries = 9223372036854775807", "terminal.request_retries"),
    ("terminal", "reversal_tries = 101", "terminal.reversal_tries"),
    ("top", 'start = "0001-01-01T00:00:00"', "start"),
    ("top", 'start = "9999-12-31T23:59:59"', "start"),
    ("extra", "[printer]\nlines_per_s = 1e-300", "printer.lines_per_s"),
])
def test_a_scenario_number_out_of_range_is_named(
    where: str, text: str, key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Before: tracebacks (ValueError, OverflowError) or runs that never ended."""
    path = scenario(tmp_path, **{where: text})
    status, _, err = cli(capsys, "run", path)
    one_line_error(status, err)
    assert f": {key}: " in err


@pytest.mark.parametrize("argv", [
    ["fuzz", "--runs", "99999999999999999999999999"], ["fuzz", "--jobs", "100000"],
    ["fuzz", "--seed", "-1"], ["fuzz", "--budget-s", "inf"], ["fuzz", "--budget-s", "nan"],
    ["fuzz", "--shard", "1/99999999999999999999"], ["fuzz", "--shard", "²/3"],
    ["fuzz", "--causes", "1000"],
    ["printer", "--pty", "--paper-m", "inf"], ["printer", "--pty", "--lines-per-s", "1e-300"],
    ["printer", "--pty", "--baudrate", "0"],
    ["printer", "--pty", "--baudrate", "99999999999999999999"],
    ["run", str(SALE), "--printer", "serial:/dev/null?baudrate=99999999999999999999"],
    ["run", str(SALE), "--printer", "serial:/dev/null?baudrate=²"],
    ["run", str(SALE), "--printer", "serial:/dev/null?baudrate=0"],
], ids=" ".join)
def test_a_flag_out_of_range_is_one_line(argv: list[str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = cli(capsys, *argv)
    one_line_error(status, err)
    assert out == ""


# ------------------------------------------------------------- what the wire carries


def test_a_status_sum_past_field_4_is_answered_96_not_an_internal_error() -> None:
    """Two postings of one refund (duplicate check off) sum past 12 digits: the host's
    0610 cannot carry it. Before: exit 3, "cannot encode ... field 4"."""
    result = run_scenario(scenario_from_dict({
        "format": 1, "bank": {"duplicate_check": False, "verify_mac": False,
                              "merchant_balance": "99999999999.00"},
        "cards": [{**CARD, "balance": "0.00"}],
        "steps": [{"do": "refund", "card": "alice", "amount": "9999999999.99"}],
        "until_s": 120,
    }))
    answers = [e.fields for e in result.trace if e.name == "bank.response_sent"]
    assert {"mti": "0610", "code": "96"}.items() <= next(
        a for a in answers if a["mti"] == "0610").items()


def test_the_host_answers_96_without_a_figure_it_cannot_encode() -> None:
    from devices.iso8583 import message  # noqa: PLC0415

    host = Acquirer({})
    request: message.Fields = {"t": "0800", "7": "1122090000", "11": "000001", "41": "TERM0001"}
    reply = host._answer(request, "00", {"4": "1" * 13})
    assert reply.code == "96"
    assert reply.response is not None
    assert message.decode(reply.response)["39"] == "96"
    assert "4" not in message.decode(reply.response)


def test_steps_totalling_past_a_batch_total_are_refused_at_load() -> None:
    step = {"do": "sale", "card": "alice", "amount": "9999999999.99"}
    with pytest.raises(ValueError, match=r"steps: the sales total .* 16 digits"):
        scenario_from_dict({"format": 1, "cards": [CARD], "steps": [step] * 10_001})
    scenario_from_dict({"format": 1, "cards": [CARD], "steps": [step] * 10_000})


# ------------------------------------------------------------------- markup


def test_user_text_is_shown_as_plain_text(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Before: a step id "[/red]" ended the report in a MarkupError traceback."""
    path = write(tmp_path / "markup.toml", """format = 1
name = "[/red] [bold]x"
[[cards]]
id = "[/red]"
pan = "4111111111111111"
balance = "100.00"
[[steps]]
id = "[bold]"
do = "sale"
card = "[/red]"
amount = "1.00"
""")
    status, out, err = cli(capsys, "run", path)
    assert (status, err) == (0, "")
    assert "receipt [bold] (" in out  # the panel title: markup before the fix
    assert "[/red] [bold]x" in out


def test_a_progress_bar_shows_a_name_as_plain_text(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    report = RunReport(COLLAPSE_AFTER + 1, verbose=False)
    with report.running():
        report.starting("[/red]")
        assert report._bar is not None
        report._bar.refresh()  # before: MarkupError
    assert "[/red]" in capsys.readouterr().err


# ---------------------------------------------------------------- quadratic loading


class _CountingList(list):  # type: ignore[type-arg]
    """A list that counts the items its slices copy."""

    copied = 0

    def __getitem__(self, index: Any) -> Any:
        got = super().__getitem__(index)
        if isinstance(index, slice):
            _CountingList.copied += len(got)
        return got


def _items_copied(monkeypatch: pytest.MonkeyPatch, n: int) -> int:
    """Step items the loader copies for a scenario of a sale and ``n`` refunds of it."""
    import msgspec  # noqa: PLC0415

    from emulator.scenario import load  # noqa: PLC0415

    convert = msgspec.convert

    def counting(data: Any, kind: Any, **options: Any) -> Any:
        raw = convert(data, kind, **options)
        if kind is load._Raw:
            return msgspec.structs.replace(raw, steps=_CountingList(raw.steps))
        return raw

    monkeypatch.setattr(load.msgspec, "convert", counting)
    steps = [{"id": "s", "do": "sale", "card": "alice", "amount": "1.00"}]
    steps += [{"do": "refund", "card": "alice", "amount": "0.01", "target": "s"}] * n
    _CountingList.copied = 0
    scenario_from_dict({"format": 1, "cards": [{**CARD, "balance": "1000.00"}],
                        "steps": steps})
    return _CountingList.copied


def test_loading_does_not_copy_the_steps_for_each_step(monkeypatch: pytest.MonkeyPatch,
                                                       ) -> None:
    """Before: each step copied the steps after it (400 steps: 80,000 items copied)."""
    assert _items_copied(monkeypatch, 400) <= 401


# ------------------------------------------------------------ messages that name the thing


def test_a_link_to_itself_is_a_loop_not_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    loop = tmp_path / "loop.toml"
    loop.symlink_to(loop)
    status, _, err = cli(capsys, "run", loop)
    one_line_error(status, err)
    assert "symbolic link loop" in err


def test_a_name_too_long_is_bad_input_in_one_short_line(
    tmp_path: Path, trace: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    long = "a" * 5000
    status, _, err = cli(capsys, "run", long)
    one_line_error(status, err)
    assert len(err) < 500
    assert "file name too long" in err
    header, _, rest = trace.read_text().partition("\n")
    header = header.replace(str(SALE), long).replace("sale_approved.toml", long)
    forged = write(tmp_path / "forged.jsonl", header + "\n" + rest)
    status, _, err = cli(capsys, "replay", forged)
    one_line_error(status, err)  # before: exit 3


def test_a_file_name_with_a_newline_stays_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = cli(capsys, "run", write(tmp_path / "two\nlines.toml", "x"))
    one_line_error(status, err)
    assert "two\\nlines.toml" in err


def test_a_trace_that_cannot_be_written_names_the_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    directory = tmp_path / "dir"
    directory.mkdir()
    status, _, err = cli(capsys, "fleet", SALE, "--terminals", "2", "--trace", directory)
    one_line_error(status, err, 3)
    assert err.startswith(f"posemu: {directory}: ")
    assert ".tmp" not in err
    status, _, err = cli(capsys, "fleet", SALE, "--terminals", "2", "--trace", "/dev/full")
    one_line_error(status, err, 3)  # before: "[Errno 28]" and /dev/full renamed over
    assert err == "posemu: /dev/full: No space left on device\n"
    assert not Path("/dev/full").is_file()


def test_load_scenario_reads_a_regular_file_as_before() -> None:
    assert load_scenario(SALE).name == "Approved sale, no fault"


def test_the_loading_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import loading  # noqa: PLC0415

    loading.main(["--steps", "40", "--runs", "1"])
    out = capsys.readouterr().out
    assert "40 steps" in out
    assert "target load time x for 2x steps at 40 <= 2.50x: " in out


def test_a_trace_that_cannot_be_created_names_the_trace(tmp_path: Path) -> None:
    """Before: the error named the hidden temporary file (``.t.jsonl.tmp``), as for a
    read-only ``--trace-dir``."""
    from emulator.engine.trace import write_atomic  # noqa: PLC0415

    plain = write(tmp_path / "plain", "a file, not a directory")

    with pytest.raises(OSError, match="Not a directory") as info:
        write_atomic(plain / "t.jsonl", b"x")
    assert info.value.filename == str(plain / "t.jsonl")

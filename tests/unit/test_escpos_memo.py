"""The ESC/POS memo: taking a piece from it does exactly what reading the piece does.

The reference is the printer core before the memo: the interpreter's lazy ``run`` over the
whole of each fed piece, every event acted on in turn (``PrinterCore._take``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.printer import stream as escpos_stream
from devices.printer.core import (
    CONDITIONS,
    JobDone,
    JobFailed,
    LinePrinted,
    Output,
    PrinterCore,
    StatusBack,
    StatusReply,
)
from devices.printer.stream import Interpreter


def reference_feed(core: PrinterCore, data: bytes) -> list[Output]:
    """``PrinterCore.feed`` without the memo: one lazy run over all of ``data``."""
    out: list[Output] = []
    if not core._off:
        core._take(core._interp.run(data), out)
    return out


def seen(core: PrinterCore) -> tuple[Any, ...]:
    """Everything observable about a core, its interpreter included."""
    interp = core._interp
    half_read = None if interp.tokens.idle else interp.tokens.start
    return (core.state, core.paper_m, core.moves, core.move_end, core.between_commands,
            core.job_active, core.asb_enabled, interp.pending, interp.codec, interp.spacing,
            interp.height, interp.barcode_dots, half_read)


def both(stream: list[bytes], paper_m: float = 20.0) -> list[list[Output]]:
    """Feed the pieces to a core with the memo and to the reference; they must agree."""
    core, ref = PrinterCore(paper_m=paper_m), PrinterCore(paper_m=paper_m)
    outs = []
    for piece in stream:
        out = core.feed(piece)
        assert out == reference_feed(ref, piece), piece
        assert seen(core) == seen(ref), piece
        outs.append(out)
    return outs


@pytest.fixture
def fresh_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty memo for this test (the shared one is left as it was)."""
    monkeypatch.setattr(escpos_stream, "_MEMO", {})


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The pieces the interpreter actually reads (not taken from the memo)."""
    read: list[bytes] = []
    real = Interpreter._run

    def counting(interp: Interpreter, data: bytes, base: int) -> Iterator[Any]:
        read.append(data)
        return real(interp, data, base)

    monkeypatch.setattr(Interpreter, "_run", counting)
    return read


# -- random streams, random pieces, faults -------------------------------------------------

_FRAGMENTS = [
    b"ab", b"TOTAL       1.00", b"50%", b"\xe9\x80 caf\x82", b" ", b"\n", b"\n", b"\n", b"\x0c",
    b"\t", b"\r", b"\x00", b"\x1b@", b"\x1bE\x01", b"\x1ba\x01", b"\x1b!\x00", b"\x1b!\x10",
    b"\x1b!\x20", b"\x1b!\n", b"\x1d!\x11", b"\x1d!\n", b"\x1bt\x00", b"\x1bt\x10", b"\x1bt%",
    b"\x1bt\n", b"\x1b3\n", b"\x1b3@", b"\x1b2", b"\x1bd\x00", b"\x1bd\x03", b"\x1bd\n",
    b"\x1bJ\x00", b"\x1bJ\n", b"\x1dV\x00", b"\x1dVA\n", b"\x1dh\n", b"\x1dk\x04A\nB\x00",
    b"\x1dkI\x03\n\x10\x04", b"\x1dv0\x00\x01\x00\x02\x00\n\n", b"\x1bD\n\x14\x00",
    b"\x10\x04\x01", b"\x10\x04\x04", b"\x1da\xff", b"\x1da\x00", b"\x1b\xff",
    b"\x1d(k\x03\x001Q0", b"\x1b*\x00\x02\x00\n\n",
]

_fragment = st.sampled_from(_FRAGMENTS)
_line = st.lists(st.one_of(_fragment, _fragment, _fragment, st.binary(max_size=6)),
                 max_size=6).map(lambda parts: b"".join(parts) + b"\n")


@settings(max_examples=300, deadline=None)
@given(st.lists(_line, min_size=1, max_size=6), st.lists(st.integers(0, 5), max_size=40),
       st.lists(st.integers(0, 4000), max_size=10),
       st.lists(st.tuples(st.integers(0, 10), st.sampled_from(CONDITIONS), st.booleans()),
                max_size=4),
       st.sampled_from([(20.0, 0.5), (20.0, 19.99), (0.1, 0.09), (0.02, 0.5)]))
def test_memo_gives_what_reading_gives(
    lines: list[bytes], order: list[int], cuts: list[int],
    faults: list[tuple[int, str, bool]], roll: tuple[float, float],
) -> None:
    stream = b"".join(lines[i % len(lines)] for i in order)  # lines repeat: memo hits
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    core, ref = PrinterCore(*roll), PrinterCore(*roll)  # some reach the near end
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        for when, name, active in faults:
            if when == i:
                assert core.set_condition(name, active) == ref.set_condition(name, active)
        assert core.feed(stream[a:b]) == reference_feed(ref, stream[a:b])
        assert seen(core) == seen(ref)


# -- what the memo must get right ----------------------------------------------------------


def test_a_repeated_receipt_is_not_read_again(reads: list[bytes]) -> None:
    receipt = (b"\x1b@\x1bE\x01\x1ba\x01SHOP\n\x1bE\x00TID 1\n\n\x1b!\x10TOTAL\n"
               b"\x1b!\x00\x1ba\x00STAN 000001\n\x1bd\x03\x1dV\x00")
    outs = both([receipt] * 3)
    assert outs[0][:-1] == outs[1][:-1] == outs[2][:-1]
    assert [o.moves for o in (outs[0][-1], outs[1][-1]) if isinstance(o, JobDone)] == [7, 14]
    reads.clear()
    core = PrinterCore()
    core.feed(receipt)
    assert core.feed(receipt) == outs[1]
    assert reads == []


def test_a_run_of_plain_lines_is_taken_at_once(reads: list[bytes]) -> None:
    """Several plain lines in one piece: the first ends the line being composed (and is as
    tall as its tallest text), the rest are new lines; none is read by the tokenizer."""
    outs = both([b"\x1b!\x10big", b" end\nnext\n\nlast\n", b"\x1b!\x00", b"a\nb\n"])
    assert outs[1] == [LinePrinted("big end", 60), LinePrinted("next", 60),
                       LinePrinted("", 30), LinePrinted("last", 60)]
    assert outs[3] == [LinePrinted("a", 30), LinePrinted("b", 30)]
    reads.clear()
    core = PrinterCore()
    assert core.feed(b"one\n\xe9t\xe9\ntwo\n") == [
        LinePrinted("one", 30), LinePrinted("\u0398t\u0398", 30), LinePrinted("two", 30)]
    assert reads == []


def test_every_code_page_reads_lf_and_only_lf_as_a_line_end() -> None:
    """What lets ``plain_lines`` decode a run of lines at once and split it after."""
    for codec in {"cp437", *escpos_stream._CODE_PAGES.values()}:
        assert b"\n".decode(codec) == "\n", codec
        assert "\n" not in bytes(range(0x20, 0x100)).decode(codec, "replace"), codec


def test_a_remembered_reset_or_cut_is_taken_without_reading(reads: list[bytes]) -> None:
    """A remembered piece that starts with ESC @ and ends with a cut is taken whole when no
    job is in progress; with a job in progress its reset fails the job, as reading it does."""
    head, tail = b"\x1b@\x1bE\x01SHOP\n", b"\x1bd\x02\x1dV\x00"
    both([head, b"x\n", tail] * 2)  # remembered
    outs = both([head, b"x\n", tail, b"half\n", head, tail])
    assert outs[2][-1] == JobDone("SHOP\nx\n\n", 4, 4)  # LF, LF, ESC d, GS V
    assert outs[4][0] == JobFailed("half", "reset")
    assert isinstance(outs[5][-1], JobDone)
    reads.clear()
    core = PrinterCore()
    core.feed(head + b"x\n")
    assert core.feed(tail)[-1] == JobDone("SHOP\nx\n\n", 4, 4)
    assert reads == []
    moved_after_cut = b"\x1bd\x01\x1dV\x00\x1bd\x00"  # ESC d 0 with no text: no event
    outs = both([b"x\n", moved_after_cut] * 3)
    assert [o.moves for out in outs for o in out if isinstance(o, JobDone)] == [3, 7, 11]


def test_a_line_feed_as_a_command_argument() -> None:
    stream = b"a\x1bd\nb\x1b3\nc\n\x1bJ\n\x1b!\nd\n\x1b2"  # ESC d/3/J/! 10, ESC 2
    outs = both([stream] * 3)
    assert outs[0] == outs[1] == outs[2]
    assert outs[0][:10] == [LinePrinted("a", 30)] + [LinePrinted("", 30)] * 9
    assert outs[0][10:] == [LinePrinted("bc", 10), LinePrinted("d", 10)]


@pytest.mark.usefixtures("fresh_memo")
def test_a_payload_with_line_feeds_is_never_remembered_in_halves() -> None:
    stream = b"x\n\x1dk\x04AB\nC\x00after\n\x1bD\n\x14\x00tab\n"
    outs = both([stream] * 2)
    assert outs[0] == outs[1]
    assert [o.text for o in outs[0] if isinstance(o, LinePrinted)] == ["x", "after", "tab"]
    halves = (b"\x1dk\x04AB\n", b"C\x00after\n", b"\x1bD\n", b"\x14\x00tab\n")
    assert not [key for key in escpos_stream._MEMO if key[0] in halves]


def test_a_reset_inside_a_piece() -> None:
    outs = both([b"one\nhalf", b"x\x1b@y\n\x1dV\x00"] * 2)
    assert outs[1][:2] == outs[3][:2] == [JobFailed("one", "reset"), LinePrinted("y", 30)]


def test_the_same_bytes_in_other_modes_do_other_things() -> None:
    outs = both([b"big\n\x82\n", b"\x1b!\x10\x1bt\x10", b"big\n\x82\n", b"half ", b"big\n",
                 b"\x1b!\x00big", b"\n", b"\x1b!\x10big\x1b!\x00", b"\n",
                 b"\x1b!\x10big\x1b!\x00", b" more\n"])
    assert outs[0] == [LinePrinted("big", 30), LinePrinted("é", 30)]
    assert outs[2] == [LinePrinted("big", 60), LinePrinted("\u201a", 60)]
    assert outs[4] == [LinePrinted("half big", 60)]
    assert outs[6] == [LinePrinted("big", 30)]
    assert outs[8] == [LinePrinted("big", 60)]  # the line is as tall as its tallest text
    assert outs[10] == [LinePrinted("big more", 60)]


def test_paper_running_out_in_a_remembered_line() -> None:
    line = b"\x1bE\x01a long line\n"
    both([line] * 3)  # remembered
    outs = both([b"x\n", line, line], paper_m=1.5 * 30 / 8000)
    assert outs[1] == [JobFailed("x", "paper_out")]


def test_faults_between_remembered_lines() -> None:
    lines = [b"\x1bE\x01head\n", b"plain\n", b"\x1dV\x00"]
    both(lines * 2)
    for fault in ("jam", "cover_open", "paper_out", "off"):
        core, ref = PrinterCore(), PrinterCore()
        for i, piece in enumerate(lines * 3):
            if i in (1, 4):
                assert core.set_condition(fault, i == 1) == ref.set_condition(fault, i == 1)
            assert core.feed(piece) == reference_feed(ref, piece)
            assert seen(core) == seen(ref)


def test_the_rest_of_a_failed_job_is_dropped_without_reading(reads: list[bytes]) -> None:
    """While a failed job's rest is dropped, remembered lines (a cut among them) and plain
    runs are taken without the tokenizer; the cut ends the dropping. So does a reset,
    which is read: the text after it prints."""
    lines = [b"\x1bE\x01head\n", b"plain\nrun\n", b"\x1ba\x00mid\x1bd\x01", b"\x1bE\x00no LF",
             b"\x1b@\x1bE\x01again\n", b"tail\n\x1dV\x00"]
    both(lines * 2)  # remembered
    core, ref = PrinterCore(), PrinterCore()
    for i, piece in enumerate(lines + lines):
        if i in (1, 7, 11):  # a jam fails the job in progress; cleared at once
            for name, active in (("jam", True), ("jam", False)):
                assert core.set_condition(name, active) == ref.set_condition(name, active)
        reads.clear()
        out = core.feed(piece)
        read = list(reads)
        assert out == reference_feed(ref, piece), piece
        assert seen(core) == seen(ref), piece
        if i in (1, 2, 3, 7, 8, 9, 11):  # dropped: a plain run, remembered lines, line and cut
            assert out == [], (i, piece)
            assert read == [], (i, piece)
        if i in (4, 10):  # the reset ends the dropping: "again" prints
            assert out == [LinePrinted("again", 30)], (i, piece)
    assert core.feed(b"x\n\x1dV\x00") == [LinePrinted("x", 30), JobDone("x", 1, 16)]


def test_status_back_and_queries_inside_remembered_lines() -> None:
    stream = b"\x1da\xff\x1b@text\n" + b"plain\n" * 3 + b"\x10\x04\x04more\n\x1dV\x00"
    outs = both([stream] * 4, paper_m=(4000 + 190) / 8000)  # near end at the 7th line
    assert [i for i, out in enumerate(outs) for o in out if isinstance(o, StatusBack)] == [
        0, 1, 1, 2, 3]
    assert outs[1][3] == StatusBack(bytes((0x10, 0, 0x03, 0)))
    assert [o for o in outs[1] if isinstance(o, StatusReply)] == [StatusReply(0x1E)]


@pytest.mark.usefixtures("fresh_memo")
def test_a_run_the_caller_acted_in_is_not_remembered() -> None:
    piece = b"\x1bE\x01ab\n"
    interp = Interpreter()
    events = interp.run(piece, remember=True)
    next(events)
    interp.drop_line()
    assert [e.text for e in events] == [""]
    assert Interpreter().recall(piece) is None
    list(Interpreter().run(piece, remember=True))
    memo = Interpreter().recall(piece)
    assert memo is not None
    assert memo.lines == (("ab", 30),)


@pytest.mark.usefixtures("fresh_memo")
def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(escpos_stream, "MEMO_LIMIT", 8)
    core = PrinterCore()
    for i in range(100):
        core.feed(b"\x1bE\x01line %d\n" % i)
        core.feed(b"plain %d\n" % i)
        assert len(escpos_stream._MEMO) <= 8
    escpos_stream._MEMO.clear()
    PrinterCore().feed(b"x" * 10_000 + b"\n" + b"\x1bE\x01" * 1000 + b"\n")
    assert not escpos_stream._MEMO


def test_commands_left_out_of_the_model_have_no_effect() -> None:
    for key in [*escpos_stream._LAYOUTS, b"\x1b\xff", b"\x1d\x01"]:
        if key in escpos_stream._MODEL_KEYS:
            continue
        interp = Interpreter()
        list(interp.run(b"\x1b!\x10\x1bt\x10\x1b3\x40ab"))
        before = (interp.codec, interp.spacing, interp.height, interp.barcode_dots,
                  interp.pending)
        assert interp._command(key, bytes(range(1, 9))) == (), key
        assert (interp.codec, interp.spacing, interp.height, interp.barcode_dots,
                interp.pending) == before, key

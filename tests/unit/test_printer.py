"""The ESC/POS printer core: status replies, jobs, paper, faults, decoding."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from devices.errors import PrinterDecodeError
from devices.printer.core import (
    CUT_MARK,
    JobDone,
    JobFailed,
    LinePrinted,
    Output,
    PrinterCore,
    StatusBack,
    StatusReply,
    decode_text,
    segments,
)
from devices.printer.receipt import make_dummy

MM_PER_LINE = 3.75  # 30 dots at 8 dots/mm


def dle_eot(n: int) -> bytes:
    return bytes((0x10, 0x04, n))


def replies(core: PrinterCore) -> list[int | None]:
    return [core.status(n) for n in (1, 2, 3, 4)]


def answered(outputs: list[Output]) -> list[int]:
    return [o.byte for o in outputs if isinstance(o, StatusReply)]


def receipt_stream(lines: int = 5) -> bytes:
    p = make_dummy()
    p.hw("INIT")
    p.set(align="center", bold=True)
    p.textln("SHOP")
    p.set(align="left", bold=False)
    for i in range(lines - 1):
        p.textln(f"line {i}")
    p.cut()
    return bytes(p.output)


def raster_with_status_query() -> bytes:
    image = Image.new("1", (16, 2), 1)
    for x, y in ((3, 0), (13, 0), (7, 1)):  # black pixels -> raster bytes 10 04 01 00
        image.putpixel((x, y), 0)
    p = make_dummy()
    p.image(image)
    p.textln("after")
    return bytes(p.output)


# -- status replies ---------------------------------------------------------------------


def test_idle_printer_answers_0x12_to_every_status_query() -> None:
    core = PrinterCore()
    assert core.feed(b"".join(dle_eot(n) for n in (1, 2, 3, 4))) == [StatusReply(0x12)] * 4
    assert core.state == "online"


def test_paper_out_answers_like_a_real_printer() -> None:
    core = PrinterCore()
    core.set_condition("paper_out", True)
    assert replies(core) == [0x1A, 0x32, 0x12, 0x7E]
    assert (core.status(4) or 0) & 0x72 == 0x72  # python-escpos paper_status() -> 0
    assert not core.online
    assert core.state == "paper_out"
    assert core.paper_m == 0


def test_cover_open_is_offline_with_cover_bit() -> None:
    core = PrinterCore()
    core.set_condition("cover_open", True)
    assert replies(core) == [0x1A, 0x16, 0x12, 0x12]
    assert core.state == "cover_open"


def test_jam_shows_as_autocutter_error() -> None:
    core = PrinterCore()
    core.set_condition("jam", True)
    assert replies(core) == [0x1A, 0x52, 0x1A, 0x12]
    assert core.state == "jam"


def test_jam_recovers_when_cleared_and_dle_enq_is_harmless() -> None:
    core = PrinterCore()
    core.set_condition("jam", True)
    core.set_condition("jam", False)
    assert core.feed(b"\x10\x05\x01\x10\x05\x02" + dle_eot(3)) == [StatusReply(0x12)]
    assert core.online


def test_powered_off_printer_answers_nothing() -> None:
    core = PrinterCore()
    core.set_condition("off", True)
    assert replies(core) == [None] * 4
    assert core.feed(dle_eot(1) + receipt_stream()) == []
    assert core.state == "off"
    core.set_condition("off", False)
    assert core.feed(dle_eot(1)) == [StatusReply(0x12)]


def test_paper_near_end_sets_0x0c_in_dle_eot_4_while_online() -> None:
    core = PrinterCore()
    core.set_condition("paper_low", True)
    assert replies(core) == [0x12, 0x12, 0x12, 0x1E]
    assert (core.status(4) or 0) & 0x1E == 0x1E  # python-escpos paper_status() -> 1
    assert core.online
    assert core.state == "paper_near_end"


def test_near_end_sensor_fires_when_the_roll_gets_short() -> None:
    core = PrinterCore(paper_m=0.6, near_end_m=0.5)
    assert core.status(4) == 0x12
    core.feed(b"x\n" * 30)  # 112.5 mm
    assert core.status(4) == 0x1E
    assert core.online


def test_status_query_outside_1_to_4_is_not_answered() -> None:
    assert PrinterCore().feed(dle_eot(0) + dle_eot(5)) == []


# -- binary payloads ----------------------------------------------------------------------


def test_status_query_inside_raster_image_is_not_answered() -> None:
    stream = raster_with_status_query()
    assert b"\x1dv0" in stream
    assert dle_eot(1) in stream.split(b"\x1dv0", 1)[1]
    assert answered(PrinterCore().feed(stream)) == []
    assert decode_text(stream) == "after"


def test_status_query_inside_native_qr_payload_is_not_answered() -> None:
    p = make_dummy()
    p.qr("\x10\x04\x01", native=True)
    stream = bytes(p.output)
    assert dle_eot(1) in stream
    assert answered(PrinterCore().feed(stream)) == []
    assert answered(PrinterCore().feed(stream + dle_eot(1))) == [0x12]


def test_status_query_inside_tab_stops_and_barcode_is_not_answered() -> None:
    stream = b"\x1bD\x10\x04\x01\x00" + b"\x1dk\x04\x10\x04\x02\x00" + b"\x1dkI\x03\x10\x04\x03"
    assert answered(PrinterCore().feed(stream)) == []


def test_unknown_command_is_read_as_two_bytes_without_effect() -> None:
    assert decode_text(b"\x1b\xffABC\n\x1d\x01DEF\n") == "ABC\nDEF"


# -- split streams ------------------------------------------------------------------------


def mixed_stream() -> bytes:
    p = make_dummy()
    p.qr("\x10\x04\x01", native=True)
    return receipt_stream() + dle_eot(1) + raster_with_status_query() + bytes(p.output) + (
        dle_eot(4) + b"\x1b@\x1bt\x10\x80\n" + b"\x1dV\x41\x10")


def test_stream_split_at_any_byte_gives_the_same_outputs() -> None:
    stream = mixed_stream()
    whole = PrinterCore().feed(stream)
    assert any(isinstance(o, JobDone) for o in whole)
    for cut in range(len(stream) + 1):
        core = PrinterCore()
        assert core.feed(stream[:cut]) + core.feed(stream[cut:]) == whole, cut


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=40))
def test_stream_fed_in_random_pieces_gives_the_same_outputs(cuts: list[int]) -> None:
    stream = mixed_stream()
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    core = PrinterCore()
    split = [o for a, b in itertools.pairwise(bounds) for o in core.feed(stream[a:b])]
    assert split == PrinterCore().feed(stream)


# -- jobs and faults ---------------------------------------------------------------------


def test_job_completes_only_through_the_cut() -> None:
    stream = receipt_stream()
    body, cut = stream[:-3], stream[-3:]
    assert cut == b"\x1dV\x00"
    core = PrinterCore()
    assert not any(isinstance(o, JobDone) for o in core.feed(body))
    assert core.job_active
    done = [o for o in core.feed(cut) if isinstance(o, JobDone)]
    assert len(done) == 1
    assert done[0].text.startswith("SHOP\nline 0\n")
    assert done[0].lines == 5 + 6  # text lines + the 6 fed by cut()
    assert not core.job_active


@pytest.mark.parametrize("fault", ["paper_out", "jam", "cover_open", "off"])
def test_fault_mid_job_fails_it_once_and_drops_the_rest(fault: str) -> None:
    pieces = segments(receipt_stream())
    core = PrinterCore()
    for piece in pieces[:3]:
        core.feed(piece)
    assert core.set_condition(fault, True) == [JobFailed("SHOP\nline 0\nline 1", fault)]
    rest = [o for piece in pieces[3:] for o in core.feed(piece)]
    assert not [o for o in rest if isinstance(o, JobDone | JobFailed | LinePrinted)]
    core.set_condition(fault, False)
    assert [o for o in core.feed(receipt_stream()) if isinstance(o, JobDone)]


def test_rest_of_failed_job_is_dropped_even_after_recovery() -> None:
    pieces = segments(receipt_stream())
    core = PrinterCore()
    core.feed(pieces[0])
    core.set_condition("jam", True)
    core.set_condition("jam", False)
    rest = [o for piece in pieces[1:] for o in core.feed(piece)]
    assert rest == []
    assert [o for o in core.feed(receipt_stream()) if isinstance(o, JobDone)]


def test_printing_while_offline_fails_the_job_once() -> None:
    core = PrinterCore()
    core.set_condition("cover_open", True)
    outputs = core.feed(receipt_stream() + dle_eot(1))
    assert outputs == [JobFailed("", "cover_open"), StatusReply(0x1A)]
    assert core.paper_m == 20.0


def test_reset_in_the_middle_of_a_job_fails_it() -> None:
    core = PrinterCore()
    core.feed(b"half\n")
    assert core.feed(b"\x1b@") == [JobFailed("half", "reset")]
    assert [o for o in core.feed(receipt_stream()) if isinstance(o, JobDone)]


def test_power_cycle_resets_modes() -> None:
    core = PrinterCore()
    core.feed(b"\x1b3\x50")  # 80-dot line spacing
    core.set_condition("off", True)
    core.set_condition("off", False)
    assert core.feed(b"x\n") == [LinePrinted("x", 30)]


# -- paper ---------------------------------------------------------------------------------


def test_receipt_consumes_paper_per_line() -> None:
    core = PrinterCore(paper_m=20.0)
    core.feed(receipt_stream(lines=10))
    assert core.paper_m == pytest.approx(20.0 - (10 + 6) * MM_PER_LINE / 1000)


@pytest.mark.parametrize(
    ("stream", "dots"),
    [
        (b"a\n", 30),
        (b"\x1b3\x40a\n\x1b2b\n", 64 + 30),
        (b"\x1bd\x03", 90),
        (b"\x1bJ\x11", 17),
        (b"\x1b!\x10big\n\x1b!\x00small\n", 60 + 30),
        (b"\x1d!\x01tall\n", 60),
        (b"x\n\x1dV\x41\x20", 30 + 32),
        (b"x\n\x1dV\x00", 30),
    ],
)
def test_paper_feed_per_command(stream: bytes, dots: int) -> None:
    core = PrinterCore(paper_m=1.0)
    core.feed(stream)
    assert core.paper_m == pytest.approx(1.0 - dots / 8000)


def test_running_out_mid_receipt_fails_the_job_and_enters_paper_out() -> None:
    core = PrinterCore(paper_m=3 * MM_PER_LINE / 1000 + 0.001)  # room for 3 lines
    outputs = core.feed(receipt_stream(lines=10))
    assert [o for o in outputs if isinstance(o, JobFailed)] == [
        JobFailed("SHOP\nline 0\nline 1", "paper_out")]
    assert not [o for o in outputs if isinstance(o, JobDone)]
    assert core.state == "paper_out"
    assert core.status(4) == 0x7E


def test_clearing_paper_out_loads_a_fresh_roll() -> None:
    core = PrinterCore(paper_m=5.0)
    core.set_condition("paper_out", True)
    core.set_condition("paper_out", False)
    assert core.paper_m == 5.0
    assert core.online


# -- automatic status back ------------------------------------------------------------------


def test_automatic_status_back_reports_changes() -> None:
    core = PrinterCore()
    assert core.feed(b"\x1da\xff") == [StatusBack(bytes((0x10, 0, 0, 0)))]
    assert core.asb_enabled
    assert core.set_condition("paper_out", True) == [StatusBack(bytes((0x18, 0, 0x0F, 0)))]
    assert core.set_condition("jam", True) == [StatusBack(bytes((0x18, 0x08, 0x0F, 0)))]
    assert core.set_condition("paper_low", True) == []
    core.feed(b"\x1da\x00")
    assert core.set_condition("jam", False) == []


# -- decode_text and segments ------------------------------------------------------------------


def test_decode_text_prints_lines_and_marks_cuts() -> None:
    assert decode_text(b"\x1b@\x1bE\x01Hi\n\x1bE\x00there\n\x1dV\x00tail") == (
        f"Hi\nthere\n{CUT_MARK}\ntail")


@pytest.mark.parametrize(
    ("page", "byte", "char"),
    [(0, 0x82, "é"), (16, 0x80, "€"), (19, 0xD5, "€"), (99, 0x82, "é"),
     (37, 0x25, "\u066a")],  # cp864 reads even ASCII "%" its own way
)
def test_decode_text_uses_the_selected_code_page(page: int, byte: int, char: str) -> None:
    assert decode_text(bytes((0x1B, 0x74, page, byte, 0x0A))) == char


def test_decode_text_of_python_escpos_code_page_switching() -> None:
    p = make_dummy()
    p.textln("Café 5 €, Zürich")
    assert decode_text(bytes(p.output)) == "Café 5 €, Zürich"


@pytest.mark.parametrize("tail", [b"\x1b", b"\x1b!", b"\x1dv0\x00\x01\x00\x02\x00\xff",
                                  b"\x1bD\x08", b"\x10\x04", b"\x1dV\x41"])
def test_decode_text_rejects_a_truncated_command(tail: bytes) -> None:
    with pytest.raises(PrinterDecodeError) as info:
        decode_text(b"ok\n" + tail)
    assert info.value.pos == 3


@given(st.binary(max_size=400))
def test_decode_text_raises_only_printer_decode_error(data: bytes) -> None:
    with contextlib.suppress(PrinterDecodeError):
        decode_text(data)


@given(st.binary(max_size=400), st.lists(st.sampled_from(
    ["paper_out", "paper_low", "jam", "cover_open", "off"]), max_size=3))
def test_feed_never_raises(data: bytes, faults: list[str]) -> None:
    core = PrinterCore(paper_m=0.05)
    for fault in faults:
        core.set_condition(fault, True)
    core.feed(data[: len(data) // 2])
    for fault in faults:
        core.set_condition(fault, False)
    core.feed(data[len(data) // 2:])


_OPS = st.one_of(
    st.text(max_size=30).map(lambda t: ("textln", t)),
    st.sampled_from([("cut", None), ("ln", 2), ("qr", "\x10\x04\x04"),
                     ("set", {"bold": True, "double_height": True}),
                     ("set", {"align": "center", "custom_size": True, "width": 2,
                              "height": 2})]),
)


@settings(deadline=None)
@given(st.lists(_OPS, max_size=12))
def test_segments_concatenate_to_dummy_made_stream(ops: list[tuple[str, object]]) -> None:
    p = make_dummy()
    for name, arg in ops:
        if name == "cut":
            p.cut()
        elif name == "qr":
            p.qr(arg, native=True)
        elif name == "set":
            assert isinstance(arg, dict)
            p.set(**arg)
        else:
            getattr(p, name)(arg)
    stream = bytes(p.output)
    pieces = segments(stream)
    assert b"".join(pieces) == stream
    assert all(pieces)
    whole = PrinterCore().feed(stream)
    core = PrinterCore()
    assert [o for piece in pieces for o in core.feed(piece)] == whole


def test_segments_end_at_paper_moves_and_never_split_payloads() -> None:
    image = raster_with_status_query()
    assert segments(b"a\nb\x0c\x1bd\x02\x1bJ\x05c") == [b"a\n", b"b\x0c", b"\x1bd\x02",
                                                          b"\x1bJ\x05", b"c"]
    assert segments(b"\x1dv0\x00\x01\x00\x02\x00\n\n") == [b"\x1dv0\x00\x01\x00\x02\x00\n\n"]
    start = image.index(b"\x1bt\x00after")
    assert segments(image) == [image[:start], image[start:]]

"""The live framings: round trips cut anywhere, the headers real hosts write, refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.errors import FramingError
from devices.net.framing import FRAMINGS, Frame, FrameReader, Framing, swap_tpdu, to_internal

NAMES = [k + s for k in FRAMINGS for s in ("", "+self")]
framings = st.builds(Framing.parse, st.sampled_from(NAMES), tpdu=st.booleans())
messages = st.binary(min_size=4, max_size=600)
tpdus = st.binary(min_size=5, max_size=5)


@given(framings, st.lists(st.tuples(messages, tpdus), min_size=1, max_size=5), st.data())
def test_frames_come_back_however_the_stream_is_cut(framing, sent, data):
    stream = b"".join(framing.encode(m, t) for m, t in sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    reader = FrameReader(framing)
    got: list[Frame] = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got.extend(reader.feed(stream[a:b]))
    assert got == [Frame(m, t if framing.tpdu else None) for m, t in sent]
    assert reader.pending == 0


@pytest.mark.parametrize(("name", "header"), [
    ("len2", b"\x01\x23"), ("len2le", b"\x23\x01"), ("bcd2", b"\x02\x91"),
    ("ascii4", b"0291"), ("hex4", b"0123"),
    ("len2+self", b"\x01\x25"), ("ascii4+self", b"0295"), ("hex4+self", b"0127"),
])
def test_headers_are_what_hosts_write(name, header):
    size = 291  # 0x0123
    assert Framing.parse(name).encode(b"0" * size)[: len(header)] == header


def test_a_tpdu_is_counted_and_swapped_in_the_answer():
    framing = Framing.parse("len2", tpdu=True)
    wire = framing.encode(b"0800", b"\x60\x00\x01\x00\x02")
    assert wire == b"\x00\x09\x60\x00\x01\x00\x020800"
    assert swap_tpdu(b"\x60\x00\x01\x00\x02") == b"\x60\x00\x02\x00\x01"


def test_internal_frames_are_the_simulations():
    assert to_internal(b"0800") == b"\x00\x040800"


@pytest.mark.parametrize(("name", "garbage", "says"), [
    ("ascii4", b"GET / HTTP/1.1\r\n", "not decimal digits"),
    ("hex4", b"zz00", "not hex digits"),
    ("bcd2", b"\x0a\x00", "not decimal digits"),
    ("len2", b"\xff\xff", "announces 65535 bytes"),
    ("len2", b"\x00\x01x", "announces 1 bytes"),
    ("len2+self", b"\x00\x01", "less than the header itself"),
])
def test_a_header_that_is_not_one_is_refused_naming_its_bytes(name, garbage, says):
    with pytest.raises(FramingError, match=says) as info:
        FrameReader(Framing.parse(name)).feed(garbage)
    assert garbage[:2].hex(" ").upper() in str(info.value)


def test_unknown_framings_are_refused():
    with pytest.raises(ValueError, match="one of: len2"):
        Framing.parse("vml")
    with pytest.raises(ValueError, match="only suffix"):
        Framing.parse("len2+other")


@given(framings, st.binary(max_size=64))
def test_the_reader_never_fails_otherwise(framing, junk):
    reader = FrameReader(framing)
    try:
        frames = reader.feed(junk)
    except FramingError:
        return
    assert all(len(f.message) >= 4 for f in frames)

"""devices.iso8583._codec against pyiso8583, the authority: same bytes, docs, spans and errors."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import iso8583
import iso8583.specs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.iso8583 import _codec as iso_codec
from devices.iso8583._codec import Codec, compile_spec
from devices.iso8583.message import SPEC

CODEC = Codec(SPEC)
PROPERTY = settings(max_examples=300, deadline=None)

Spans = dict[str, tuple[int, int]]


# -- pyiso8583 as the reference ------------------------------------------------


def wire_spans(doc_enc: dict[str, dict[str, bytes]]) -> Spans:
    """Spans from pyiso8583's doc_enc, walking the fields in wire order."""
    order: list[str] = [k for k in ("h", "t", "p", "1") if k in doc_enc]
    order += sorted((k for k in doc_enc if k.isdigit() and k != "1"), key=int)
    assert sorted(order) == sorted(doc_enc)
    spans: Spans = {}
    pos = 0
    for key in order:
        pos += len(doc_enc[key]["len"])
        spans[key] = (pos, pos + len(doc_enc[key]["data"]))
        pos += len(doc_enc[key]["data"])
    return spans


def ref_encode(doc: Any, spec: Any = SPEC) -> tuple[bytes, Spans]:
    raw, doc_enc = iso8583.encode(dict(doc) if isinstance(doc, dict) else doc, spec)
    return bytes(raw), wire_spans(doc_enc)


def ref_decode(raw: Any, spec: Any = SPEC) -> tuple[dict[str, str], Spans]:
    doc_dec, doc_enc = iso8583.decode(raw, spec)
    return doc_dec, wire_spans(doc_enc)


@contextmanager
def fast_path_only() -> Iterator[None]:
    """Fail if the codec calls pyiso8583 (i.e. leaves its fast path)."""
    with (
        mock.patch.object(iso8583, "encode", side_effect=AssertionError("encode fell back")),
        mock.patch.object(iso8583, "decode", side_effect=AssertionError("decode fell back")),
    ):
        yield


def assert_same_error(got: BaseException, expected: BaseException) -> None:
    assert type(got) is type(expected)
    assert got.args == expected.args
    if isinstance(expected, iso8583.DecodeError):
        assert isinstance(got, iso8583.DecodeError)
        assert (got.field, got.pos, got.msg) == (expected.field, expected.pos, expected.msg)
        assert (got.doc_dec, got.doc_enc, got.s) == (expected.doc_dec, expected.doc_enc, expected.s)
    if isinstance(expected, iso8583.EncodeError):
        assert isinstance(got, iso8583.EncodeError)
        assert (got.field, got.msg) == (expected.field, expected.msg)
        assert (got.doc_dec, got.doc_enc) == (expected.doc_dec, expected.doc_enc)


def assert_same(
    ours: Callable[[], tuple[Any, Spans]], reference: Callable[[], tuple[Any, Spans]]
) -> tuple[Any, Spans] | None:
    """Both raise the same error, or both return equal results (dict order included)."""
    try:
        expected = reference()
    except Exception as exc:
        with pytest.raises(type(exc)) as info:
            ours()
        assert_same_error(info.value, exc)
        return None
    got = ours()
    assert got == expected
    if isinstance(got[0], dict):
        assert list(got[0]) == list(expected[0])
    assert list(got[1]) == list(expected[1])
    return got


def assert_same_decode(raw: Any, codec: Codec = CODEC, spec: Any = SPEC) -> None:
    assert_same(lambda: codec.decode(raw), lambda: ref_decode(raw, spec))


def assert_same_encode(doc: Any, codec: Codec = CODEC, spec: Any = SPEC) -> None:
    before = copy.deepcopy(doc)
    assert_same(lambda: codec.encode(doc), lambda: ref_encode(doc, spec))
    assert doc == before  # never mutated (pyiso8583 would add "p"/"1")


# -- strategies ----------------------------------------------------------------

ASCII = st.characters(max_codepoint=127)
DIGITS = st.characters(min_codepoint=ord("0"), max_codepoint=ord("9"))


def text(
    size: int | tuple[int, int], alphabet: st.SearchStrategy[str] = ASCII
) -> st.SearchStrategy[str]:
    low, high = (size, size) if isinstance(size, int) else size
    return st.text(alphabet, min_size=low, max_size=high)


def hex_bytes(size: int | tuple[int, int]) -> st.SearchStrategy[str]:
    low, high = (size, size) if isinstance(size, int) else size
    return st.tuples(st.binary(min_size=low, max_size=high), st.booleans()).map(
        lambda pair: pair[0].hex().upper() if pair[1] else pair[0].hex()
    )


MTIS = st.one_of(st.sampled_from(["0200", "0210", "0400", "0410", "0500", "0510"]), text(4))

POSEMU_FIELDS: dict[str, st.SearchStrategy[str]] = {
    "2": text((0, 19), DIGITS),
    "3": text(6, DIGITS),
    "4": text(12, DIGITS),
    "7": text(10, DIGITS),
    "11": text(6, DIGITS),
    "12": text(6, DIGITS),
    "13": text(4, DIGITS),
    "14": text(4, DIGITS),
    "25": text(2, DIGITS),
    "37": text(12),
    "38": text(6),
    "39": text(2),
    "41": text(8),
    "42": text(15),
    "49": text(3, DIGITS),
    "64": hex_bytes(8),
    "74": text(10, DIGITS),
    "76": text(10, DIGITS),
    "86": text(16, DIGITS),
    "88": text(16, DIGITS),
    "90": text(42, DIGITS),
    "102": text((0, 28)),  # LLVAR in the secondary bitmap
    "128": text(16),
}


def spec_value(key: str) -> st.SearchStrategy[str]:
    """Any valid value of a field of SPEC."""
    field = SPEC[key]
    size = field["max_len"] if field["len_type"] == 0 else (0, field["max_len"])
    return hex_bytes(size) if field["data_enc"] == "b" else text(size)


SPEC_FIELDS = {k: spec_value(k) for k in SPEC if k.isdigit() and k not in ("1", "65")}


def shuffled(doc: dict[str, str]) -> st.SearchStrategy[dict[str, str]]:
    return st.permutations(list(doc.items())).map(dict)


VALID_DOCS: st.SearchStrategy[dict[str, str]] = st.one_of(
    st.fixed_dictionaries({"t": MTIS}, optional=POSEMU_FIELDS),
    st.sets(st.sampled_from(sorted(SPEC_FIELDS)), max_size=25).flatmap(
        lambda keys: st.fixed_dictionaries({"t": MTIS, **{k: SPEC_FIELDS[k] for k in keys}})
    ),
).flatmap(shuffled)

VALID_FRAMES = VALID_DOCS.map(lambda doc: ref_encode(doc)[0])

INTERESTING_BYTES = st.one_of(st.integers(0, 255), st.sampled_from(b"0123456789AFaf +-_\t\x80\xff"))


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(VALID_FRAMES))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "append"]))
        pos = draw(st.integers(0, len(raw)))
        if op == "flip" and pos < len(raw):
            raw[pos] ^= draw(st.integers(1, 255))
        elif op == "set" and pos < len(raw):
            raw[pos] = draw(INTERESTING_BYTES)
        elif op == "insert":
            raw[pos:pos] = bytes(draw(st.lists(INTERESTING_BYTES, min_size=1, max_size=3)))
        elif op == "delete":
            del raw[pos : pos + draw(st.integers(1, 3))]
        elif op == "truncate":
            del raw[pos:]
        elif op == "append":
            raw += draw(st.binary(min_size=1, max_size=4))
    return bytes(raw)


HEX_TEXT = st.text("0123456789ABCDEFabcdef ", min_size=16, max_size=16).map(str.encode)
RANDOM_FRAMES = st.one_of(
    st.binary(max_size=120),
    st.builds(
        lambda mti, p, tail: mti + p + tail,
        st.sampled_from([b"0200", b"0800"]),
        HEX_TEXT,
        st.binary(max_size=80),
    ),
)

BAD_VALUES: st.SearchStrategy[Any] = st.one_of(
    st.text(max_size=50),  # any unicode, any length
    st.text(ASCII, max_size=1100),  # too long for any field
    st.binary(max_size=20),
    st.integers(),
    st.none(),
    hex_bytes((0, 12)),
    st.text("0123456789abcdefABCDEFxX ", max_size=20),
)


@st.composite
def invalid_docs(draw: st.DrawFn) -> dict[Any, Any]:
    doc: dict[Any, Any] = dict(draw(VALID_DOCS))
    key = draw(
        st.one_of(
            st.sampled_from([*doc, "1", "65", "p", "h", "0", "129", "x"]),
            st.sampled_from(sorted(SPEC_FIELDS)),
        )
    )
    doc[key] = draw(st.one_of(BAD_VALUES, off_by_one(key)))
    if draw(st.booleans()):
        doc.pop("t", None)
    return doc


def wrong_sizes(key: str) -> list[int]:
    """One byte too long (or, for a fixed field, also one byte short) for field ``key``."""
    field = SPEC[key]
    sizes = [field["max_len"] + 1] + ([field["max_len"] - 1] if field["len_type"] == 0 else [])
    # (a length prefix cannot say 1000: pyiso8583 refuses to encode that)
    return [n for n in sizes if n >= 0 and (not field["len_type"] or n < 10 ** field["len_type"])]


def sized_value(key: str, size: int) -> st.SearchStrategy[str]:
    return hex_bytes(size) if SPEC[key]["data_enc"] == "b" else text(size)


def off_by_one(key: Any) -> st.SearchStrategy[str]:
    if not (isinstance(key, str) and key in SPEC and wrong_sizes(key)):
        return text(1)
    return st.sampled_from(wrong_sizes(key)).flatmap(lambda size: sized_value(key, size))


@st.composite
def frames_of_a_looser_spec(draw: st.DrawFn) -> bytes:
    """A frame with one field one byte longer (or a fixed one shorter) than SPEC allows."""
    key = draw(st.sampled_from([k for k in sorted(SPEC_FIELDS) if wrong_sizes(k)]))
    size = draw(st.sampled_from(wrong_sizes(key)))
    loose = copy.deepcopy(SPEC)
    loose[key]["max_len"] = size
    doc = dict(draw(VALID_DOCS))
    doc[key] = draw(sized_value(key, size))
    return ref_encode(doc, loose)[0]


# -- properties ----------------------------------------------------------------


@PROPERTY
@given(VALID_DOCS)
def test_encode_is_pyiso8583s_on_the_fast_path(doc: dict[str, str]) -> None:
    before = dict(doc)
    expected = ref_encode(doc)
    with fast_path_only():
        got = CODEC.encode(doc)
    assert got == expected
    assert list(got[1]) == list(expected[1])
    assert doc == before
    assert list(doc) == list(before)


@PROPERTY
@given(VALID_DOCS)
def test_decode_is_pyiso8583s_on_the_fast_path(doc: dict[str, str]) -> None:
    raw = ref_encode(doc)[0]
    expected = ref_decode(raw)
    with fast_path_only():
        got = CODEC.decode(raw)
        again = CODEC.decode(bytearray(raw))
    assert got == expected == again
    assert list(got[0]) == list(expected[0])
    assert list(got[1]) == list(expected[1])
    # Round trip: the decoded doc (binary fields in upper-case hex) encodes back.
    fields = {k: v for k, v in got[0].items() if k not in ("p", "1")}
    with fast_path_only():
        assert CODEC.encode(fields) == (raw, got[1])


@PROPERTY
@given(mutated_frames())
def test_decode_of_mutated_frames_matches(raw: bytes) -> None:
    assert_same_decode(raw)


@PROPERTY
@given(frames_of_a_looser_spec())
def test_decode_of_frames_with_wrong_lengths_matches(raw: bytes) -> None:
    assert_same_decode(raw)


@PROPERTY
@given(RANDOM_FRAMES)
def test_decode_of_random_bytes_matches(raw: bytes) -> None:
    assert_same_decode(raw)


@PROPERTY
@given(invalid_docs())
def test_encode_of_invalid_docs_matches(doc: dict[Any, Any]) -> None:
    assert_same_encode(doc)


# -- examples ------------------------------------------------------------------

SALE_0200 = {
    "t": "0200", "2": "4111111111111111", "3": "000000", "4": "000000001250",
    "7": "1122090000", "11": "000042", "12": "090000", "13": "1122", "14": "2812",
    "25": "00", "41": "TERM0001", "42": "MERCHANT0000001", "49": "978", "64": "0123456789ABCDEF",
}  # fmt: skip
SALE_0200_RAW = (
    b"0200723C008000C08001"
    b"164111111111111111000000000000001250112209000000004209000011222812"
    b"00TERM0001MERCHANT0000001978\x01#Eg\x89\xab\xcd\xef"
)
RESPONSE_0210 = {
    "t": "0210", "3": "000000", "4": "000000001250", "7": "1122090000", "11": "000042",
    "37": "000000000001", "38": "A1B2C3", "39": "00", "41": "TERM0001",
    "64": "fedcba9876543210", "90": "020000004211220900000000000000000000000000",
    "102": "12345",
}  # fmt: skip
RESPONSE_0210_RAW = (
    b"0210B22000000E8000010000004004000000"
    b"000000" b"000000001250" b"1122090000" b"000042" b"000000000001" b"A1B2C3" b"00" b"TERM0001"
    b"\xfe\xdc\xba\x98vT2\x10"
    b"020000004211220900000000000000000000000000"
    b"05" b"12345"
)  # fmt: skip


INT_KEY_DOC: dict[object, str] = {7: "x"}
INT_KEY_DOC.update(SALE_0200)


def test_real_0200() -> None:
    with fast_path_only():
        raw, spans = CODEC.encode(SALE_0200)
        doc, dec_spans = CODEC.decode(raw)
    assert raw == SALE_0200_RAW
    assert spans == dec_spans
    assert spans["t"] == (0, 4)
    assert spans["p"] == (4, 20)
    assert spans["2"] == (22, 38)  # after the "16" prefix
    assert spans["64"] == (len(raw) - 8, len(raw))
    assert doc == {"p": "723C008000C08001", **SALE_0200}
    assert raw[slice(*spans["42"])] == b"MERCHANT0000001"
    assert (raw, spans) == ref_encode(SALE_0200)


def test_real_0210_with_secondary_bitmap() -> None:
    with fast_path_only():
        raw, spans = CODEC.encode(RESPONSE_0210)
        doc, dec_spans = CODEC.decode(raw)
    assert raw == RESPONSE_0210_RAW
    assert spans == dec_spans
    assert spans["1"] == (20, 36)
    assert spans["102"] == (len(raw) - 5, len(raw))
    assert doc["1"] == "0000004004000000"
    assert doc["64"] == "FEDCBA9876543210"  # pyiso8583 decodes binary as upper-case hex
    assert doc == ref_decode(raw)[0]
    assert (raw, spans) == ref_encode(RESPONSE_0210)


def bitmap_frame(primary: bytes, rest: bytes, mti: bytes = b"0200") -> bytes:
    return mti + primary + rest


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            SALE_0200_RAW.replace(b"723C008000C08001", b"723c008000c08001"), id="lower-hex"
        ),
        pytest.param(
            SALE_0200_RAW.replace(b"723C008000C08001", b"723C 08000C08001"), id="space-bm"
        ),
        pytest.param(SALE_0200_RAW.replace(b"164111", b" 64111"), id="space-prefix"),
        pytest.param(bitmap_frame(b"4000000000000000", b" 5abcde"), id="space-prefix-ok"),
        pytest.param(bitmap_frame(b"4000000000000000", b"+5abcde"), id="plus-prefix"),
        pytest.param(bitmap_frame(b"4000000000000000", b"-1abc"), id="negative-prefix"),
        pytest.param(bitmap_frame(b"4000000000000000", b"1_"), id="underscore-prefix"),
        pytest.param(bitmap_frame(b"4000000000000000", b"20" + b"1" * 20), id="over-max"),
        pytest.param(bitmap_frame(b"4000000000000000", b"00"), id="empty-llvar"),
        pytest.param(bitmap_frame(b"4000000000000000", b"0512\xe94"), id="non-ascii"),
        pytest.param(bitmap_frame(b"4000000000000000", b"0512345x"), id="trailing"),
        pytest.param(bitmap_frame(b"4000000000000000", b"0512"), id="truncated"),
        pytest.param(bitmap_frame(b"4000000000000000", b"1"), id="short-prefix"),
        pytest.param(bitmap_frame(b"0000000000000000", b""), id="no-fields"),
        pytest.param(bitmap_frame(b"8000000000000000", b"0000000000000000"), id="empty-secondary"),
        pytest.param(bitmap_frame(b"8000000000000000", b"00000000000"), id="short-secondary"),
        pytest.param(bitmap_frame(b"8000000000000000", b"8" + b"0" * 31), id="tertiary-empty"),
        pytest.param(
            bitmap_frame(b"8000000000000000", b"8" + b"0" * 15 + b"8" + b"0" * 15),
            id="tertiary-field",
        ),
        pytest.param(bitmap_frame(b"0000000000000001", b"\x00" * 8), id="mac-only"),
        pytest.param(bitmap_frame(b"0000000000000001", b"\x00" * 8, b"02\xff0"), id="bad-mti"),
        pytest.param(b"020", id="short-mti"),
        pytest.param(b"0200400000000000", id="short-primary"),
        pytest.param(b"", id="empty"),
        pytest.param(bytearray(SALE_0200_RAW), id="bytearray"),
        pytest.param(memoryview(SALE_0200_RAW), id="memoryview"),
        pytest.param(SALE_0200_RAW.decode("latin-1"), id="str"),
    ],
)
def test_decode_edge_cases_match(raw: Any) -> None:
    assert_same_decode(raw)


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param({**SALE_0200, "2": "4" * 20}, id="llvar-too-long"),
        pytest.param({**SALE_0200, "4": "1250"}, id="fixed-too-short"),
        pytest.param({**SALE_0200, "4": "0" * 13}, id="fixed-too-long"),
        pytest.param({**SALE_0200, "41": "TERMé001"}, id="non-ascii"),
        pytest.param({**SALE_0200, "41": b"TERM0001"}, id="bytes-text"),
        pytest.param(
            {**SALE_0200, "64": bytes.fromhex("0123456789ABCDEF").hex().encode()},
            id="bytes-hex-mac",
        ),
        pytest.param({**SALE_0200, "64": "0123456789abcdef"}, id="lower-hex-mac"),
        pytest.param({**SALE_0200, "64": "0123456789ABCDE"}, id="odd-hex-mac"),
        pytest.param({**SALE_0200, "64": "0123456789ABCDEG"}, id="non-hex-mac"),
        pytest.param({**SALE_0200, "64": "00" * 9}, id="long-mac"),
        pytest.param({**SALE_0200, "64": "0123 4567 89AB CDEF"}, id="spaced-mac"),
        pytest.param({**SALE_0200, "64": "é" * 16}, id="non-ascii-mac"),
        pytest.param({**SALE_0200, "3": 0}, id="int-value"),
        pytest.param({**SALE_0200, "3": None}, id="none-value"),
        pytest.param({k: v for k, v in SALE_0200.items() if k != "t"}, id="no-mti"),
        pytest.param({**SALE_0200, "t": "020"}, id="short-mti"),
        pytest.param({**SALE_0200, "t": b"0200"}, id="bytes-mti"),
        pytest.param({**SALE_0200, "p": "whatever"}, id="given-p"),
        pytest.param({**SALE_0200, "1": "whatever"}, id="given-1"),
        pytest.param({**SALE_0200, "65": "whatever"}, id="given-65"),
        pytest.param({**SALE_0200, "h": "whatever"}, id="given-h"),
        pytest.param({**SALE_0200, "x": "ignored"}, id="unknown-key"),
        pytest.param({**SALE_0200, "0": "x"}, id="field-0"),
        pytest.param({**SALE_0200, "129": "x"}, id="field-129"),
        pytest.param({**SALE_0200, "007": "x"}, id="zero-padded-key"),
        pytest.param(INT_KEY_DOC, id="int-key"),
        pytest.param({"t": "0200"}, id="mti-only"),
        pytest.param({"t": "0200", "102": "x" * 29}, id="secondary-llvar-too-long"),
        pytest.param({"t": "0200", "105": "x" * 999}, id="max-lllvar"),
        pytest.param({"t": "0200", "105": "x" * 1000}, id="lllvar-too-long"),
        pytest.param({"t": "0200", "102": ""}, id="empty-secondary-llvar"),
        pytest.param({"t": "0200", "2": "1" * 19, "102": "x" * 28}, id="max-llvar"),
        pytest.param(list(SALE_0200.items()), id="not-a-dict"),
    ],
)
def test_encode_edge_cases_match(doc: Any) -> None:
    assert_same_encode(doc)


def test_other_specs_fall_back_to_pyiso8583() -> None:
    """A binary-bitmap spec and a spec with padding still give pyiso8583's results."""
    padded = copy.deepcopy(SPEC)
    padded["2"]["left_pad"] = "0"
    doc = {"t": "0200", "2": "4111111111111111", "3": "000000", "102": "12"}
    for spec in (iso8583.specs.default, padded):
        codec = compile_spec(spec)
        raw = ref_encode(doc, spec)[0]
        assert_same_encode(doc, codec, spec)
        assert_same_decode(raw, codec, spec)
        assert_same_decode(raw[:-1], codec, spec)
    codec = compile_spec(padded)  # field 2 goes through pyiso8583, other fields stay fast
    expected = ref_encode({"t": "0200", "3": "000000"})
    assert expected[0] == b"0200" + b"2000000000000000" + b"000000"
    with fast_path_only():
        assert codec.encode({"t": "0200", "3": "000000"}) == expected


def test_bitmap_caches_are_bounded() -> None:
    codec = Codec(SPEC)
    with mock.patch.object(iso_codec, "_CACHE_MAX", 2):
        for doc in (SALE_0200, RESPONSE_0210, {"t": "0800", "11": "000001"}, SALE_0200):
            expected_enc = ref_encode(doc)
            raw = expected_enc[0]
            expected_dec = ref_decode(raw)
            with fast_path_only():
                assert codec.encode(doc) == expected_enc
                assert codec.decode(raw) == expected_dec
    assert len(codec._encode_plans) == 2
    assert len(codec._primary_plans) == 2

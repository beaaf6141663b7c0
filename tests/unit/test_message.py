"""ISO 8583 frames: round trips, MAC, corruption, decode errors."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.errors import MessageError
from devices.iso8583.message import (
    corrupt,
    decode,
    encode,
    field_spans,
    mac_ok,
    mask_pan,
    original_data,
    parse_original,
    redact,
    response_mti,
)

KEY = b"0123456789abcdef"
SALE = {
    "t": "0200", "2": "4111111111111111", "3": "000000", "4": "000000001250",
    "7": "1122090000", "11": "000042", "12": "090000", "13": "1122", "14": "2812",
    "25": "00", "41": "TERM0001", "42": "MERCHANT0000001", "49": "978",
}
BATCH = {
    "t": "0500", "7": "1122180000", "11": "000043", "41": "TERM0001",
    "74": "0000000001", "76": "0000000002", "86": "0000000000000500",
    "88": "0000000000002500",
}


def test_round_trip_and_framing() -> None:
    frame = encode(SALE)
    assert int.from_bytes(frame[:2], "big") == len(frame) - 2
    assert frame[2:6] == b"0200"
    assert decode(frame) == SALE


def test_encode_does_not_mutate_input() -> None:
    fields = dict(SALE)
    encode(fields, KEY)
    assert fields == SALE


def test_secondary_bitmap_round_trip_with_mac() -> None:
    fields = dict(BATCH, **{"90": original_data("0200", "000042", "1122090000")})
    frame = encode(fields, KEY)
    out = decode(frame)
    mac = out.pop("64")
    assert isinstance(mac, bytes)
    assert len(mac) == 8
    assert out == fields
    assert mac_ok(frame, KEY)
    assert not mac_ok(frame, b"other key")


@pytest.mark.parametrize("fields", [SALE, BATCH], ids=["primary", "secondary"])
def test_mac_detects_any_single_flipped_byte(fields: dict[str, str]) -> None:
    frame = encode(fields, KEY)
    assert mac_ok(frame, KEY)
    for pos in range(2, len(frame)):
        for mask in (0x01, 0x80, 0xFF):
            bad = bytearray(frame)
            bad[pos] ^= mask
            assert not mac_ok(bytes(bad), KEY), (pos, mask)


def test_mac_is_hmac_sha256_of_the_zeroed_message() -> None:
    """The documented scheme, for each key (the keyed HMAC is set up once per key)."""
    for key in (KEY, b"other key", b"k" * 100):
        frame = encode(SALE, key)
        start, end = field_spans(frame)["64"]
        zeroed = frame[2:start] + bytes(8) + frame[end:]
        assert frame[start:end] == hmac.new(key, zeroed, hashlib.sha256).digest()[:8]


def test_decode_returns_a_fresh_dict_each_time() -> None:
    frame = encode(SALE, KEY)
    first = decode(frame)
    first["4"] = "999999999999"
    del first["2"]
    assert decode(frame) == {**SALE, "64": decode(frame)["64"]}


def test_mac_missing_is_not_ok() -> None:
    assert not mac_ok(encode(SALE), KEY)
    assert not mac_ok(b"\x00", KEY)


def test_corrupt_amount_still_decodes_with_another_amount() -> None:
    frame = encode(SALE, KEY)
    for seed in range(50):
        bad = corrupt(frame, random.Random(seed), field="4")
        assert len(bad) == len(frame)
        fields = decode(bad)
        assert fields["4"] != SALE["4"]
        assert str(fields["4"]).isdigit()
        rest = {k: v for k, v in fields.items() if k not in ("4", "64")}
        assert rest == {k: v for k, v in SALE.items() if k != "4"}
        assert not mac_ok(bad, KEY)


def test_corrupt_is_deterministic_and_spares_the_header() -> None:
    frame = encode(SALE)
    for seed in range(50):
        a = corrupt(frame, random.Random(seed), nbytes=3)
        assert a == corrupt(frame, random.Random(seed), nbytes=3)
        assert a[:2] == frame[:2]
        assert sum(x != y for x, y in zip(a, frame, strict=True)) == 3


def test_corrupt_field_errors() -> None:
    frame = encode(SALE)
    with pytest.raises(ValueError, match="not in the frame"):
        corrupt(frame, random.Random(0), field="90")
    with pytest.raises(ValueError, match="nothing to corrupt"):
        corrupt(b"\x00\x00", random.Random(0))


def test_corrupt_binary_field_flips_bytes() -> None:
    frame = encode(SALE, KEY)
    bad = corrupt(frame, random.Random(1), field="64")
    assert decode(bad)["64"] != decode(frame)["64"]


def test_field_spans_locate_data() -> None:
    frame = encode(SALE)
    start, end = field_spans(frame)["4"]
    assert frame[start:end] == b"000000001250"
    start, end = field_spans(frame)["2"]
    assert frame[start:end] == b"4111111111111111"


def test_bad_length_header() -> None:
    frame = encode(SALE)
    with pytest.raises(MessageError) as info:
        decode(frame[:-1])
    assert (info.value.field, info.value.pos) == ("header", 0)
    with pytest.raises(MessageError):
        decode(b"\x00")


def test_decode_error_carries_field_pos_partial() -> None:
    frame = encode(SALE)
    start, _ = field_spans(frame)["11"]
    bad = frame[:start] + b"\xff" + frame[start + 1 :]
    with pytest.raises(MessageError) as info:
        decode(bad)
    err = info.value
    assert err.field == "11"
    assert err.pos == start
    assert err.partial["t"] == "0200"
    assert err.partial["4"] == "000000001250"
    assert "11" not in err.partial
    assert err.__cause__ is not None


def test_non_digit_in_numeric_field_is_an_error() -> None:
    frame = encode(SALE)
    start, _ = field_spans(frame)["4"]
    bad = frame[:start] + b"X" + frame[start + 1 :]
    with pytest.raises(MessageError) as info:
        decode(bad)
    assert (info.value.field, info.value.pos) == ("4", start)
    assert info.value.partial["11"] == "000042"
    with pytest.raises(MessageError):
        encode(dict(SALE, **{"4": "00000000125X"}))


def test_truncated_message() -> None:
    frame = encode(SALE)
    body = frame[2:-2]
    with pytest.raises(MessageError) as info:
        decode(len(body).to_bytes(2, "big") + body)
    assert info.value.field == "49"


def test_encode_errors() -> None:
    with pytest.raises(MessageError) as info:
        encode(dict(SALE, **{"4": "1250"}))
    assert info.value.field == "4"
    with pytest.raises(TypeError):
        encode(dict(SALE, **{"41": b"TERM0001"}))


def test_a_third_bitmap_is_a_decode_error_not_a_crash() -> None:
    """Bit 65 set (say, by a flipped byte of the secondary bitmap) names fields 129 and up,
    which pyiso8583 looks up in the spec without catching its KeyError."""
    body = b"0200" + b"8000000000000000" + b"8400000000000000" + b"8000000000000000" + b"001"
    frame = len(body).to_bytes(2, "big") + body
    with pytest.raises(MessageError) as info:
        decode(frame)
    assert (info.value.field, info.value.pos) == ("1", 2 + 4 + 16)
    with pytest.raises(MessageError):
        field_spans(frame)
    assert not mac_ok(frame, KEY)


@given(st.binary(max_size=120))
def test_garbage_never_crashes(body: bytes) -> None:
    frame = len(body).to_bytes(2, "big") + body
    error: MessageError | None = None
    try:
        decode(frame)
    except MessageError as err:
        error = err
    assert error is None or error.pos is not None


@given(st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_random_corruption_is_detected_or_decodes(seed: int, nbytes: int) -> None:
    frame = encode(SALE, KEY)
    bad = corrupt(frame, random.Random(seed), nbytes=nbytes)
    assert bad != frame
    assert not mac_ok(bad, KEY)


def test_original_data_helpers() -> None:
    f90 = original_data("0200", 42, "1122090000")
    assert len(f90) == 42
    assert parse_original(f90) == ("0200", "000042", "1122090000")
    with pytest.raises(ValueError, match="MTI"):
        original_data("200", "000042", "1122090000")
    with pytest.raises(MessageError):
        parse_original("0200")


def test_response_mti() -> None:
    assert response_mti("0200") == "0210"
    assert response_mti("0201") == "0210"
    assert response_mti("0221") == "0230"
    assert response_mti("0401") == "0410"
    assert response_mti("0500") == "0510"
    assert response_mti("0210") is None
    assert response_mti("02X0") is None


def test_pan_is_masked() -> None:
    assert mask_pan("4111111111111111") == "411111******1111"
    shown = redact(decode(encode(SALE, KEY)))
    assert shown["2"] == "411111******1111"
    assert "4111111111111111" not in repr(shown)


def test_a_sale_encodes_and_decodes_each_frame_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 0200 and the 0210 are each encoded once and decoded once (the host's shell,
    core and MAC check share one decode), so the link carries bytes, not dicts."""
    from devices.iso8583 import message  # noqa: PLC0415
    from emulator.engine.world import run_scenario  # noqa: PLC0415
    from emulator.scenario.load import scenario_from_dict  # noqa: PLC0415

    calls: list[str] = []
    codec = message.CODEC
    real_encode, real_decode = codec.encode, codec.decode
    monkeypatch.setattr(message, "CODEC", type("Counting", (), {
        "encode": staticmethod(lambda doc: (calls.append("encode"), real_encode(doc))[1]),
        "decode": staticmethod(lambda raw: (calls.append("decode"), real_decode(raw))[1]),
    })())
    message._decode_raw.cache_clear()
    message._decode_checked.cache_clear()
    result = run_scenario(scenario_from_dict({
        "format": 1, "name": "one sale",
        "cards": [{"id": "a", "pan": "4111111111111111", "balance": "10.00"}],
        "steps": [{"do": "sale", "card": "a", "amount": "1.00"}],
    }))
    assert [s.end_state for s in result.steps] == ["approved"]
    assert sorted(calls) == ["decode", "decode", "encode", "encode"]

"""ISO 8583 (1987) frames as they travel between the terminal and the acquirer.

A message is a dict: ``"t"`` holds the MTI, ``"2"`` ... ``"128"`` the data
elements as strings, except the binary MAC (field 64), which is ``bytes``.
On the wire a frame is a 2-byte big-endian length header followed by the
message encoded with :data:`SPEC`: the bytes pyiso8583 makes, through the faster
:class:`devices.iso8583._codec.Codec` (pyiso8583 itself for anything unusual and every error).

Fields used by posemu:

==== ======================================== ==============================
 no   meaning                                  format
==== ======================================== ==============================
 t    message type (MTI)                       n4
 2    PAN                                      n..19 (LLVAR)
 3    processing code: 000000 sale,            n6
      200000 refund
 4    amount, minor units                      n12
 7    transmission date/time MMDDhhmmss        n10
 11   STAN                                     n6
 12   local time hhmmss / 13 local date MMDD   n6 / n4
 14   expiry YYMM                              n4
 25   POS condition code                       n2
 37   RRN (host)                               an12
 38   approval code (host)                     an6
 39   response code; in a 0400 the reversal    an2
      reason (:data:`REVERSAL_REASONS`)
 41   terminal id / 42 merchant id             ans8 / ans15
 49   currency (978 = EUR)                     n3
 64   MAC (:func:`encode`)                     b8
 74   credits (refunds), number                n10
 76   debits (sales), number                   n10
 86   credits (refunds), amount                n16
 88   debits (sales), amount                   n16
 90   original data elements                   n42
==== ======================================== ==============================

Numeric (``n``) fields and the MTI are checked to hold digits only, on encode
and on decode (pyiso8583 checks lengths and the bitmap, not contents).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import random
from collections.abc import Mapping
from typing import Any

import iso8583
from iso8583.specs import default_ascii

from devices.errors import MessageError
from devices.iso8583._codec import Codec, Spans

__all__ = [
    "CURRENCY_EUR",
    "NUMERIC_FIELDS",
    "PROC_REFUND",
    "PROC_SALE",
    "RESPONSE_CODES",
    "REVERSAL_REASONS",
    "SPEC",
    "Fields",
    "corrupt",
    "decode",
    "encode",
    "field_spans",
    "mac_ok",
    "mask_pan",
    "original_data",
    "parse_original",
    "redact",
    "response_mti",
]

Fields = dict[str, str | bytes]
"""A decoded message: ``"t"`` and field numbers to values (field 64 is bytes)."""

# A deep copy of pyiso8583's default_ascii spec. Changes (and only these):
# - field 64 (MAC) is 8 raw bytes (data_enc "b", max_len 8) instead of 16 ASCII
#   characters, so a message carries a real 64-bit MAC.
SPEC: dict[str, dict[str, Any]] = copy.deepcopy(default_ascii)
SPEC["64"].update(data_enc="b", len_type=0, max_len=8, desc="MAC (8 bytes, HMAC-SHA256/64)")

CODEC = Codec(SPEC)
"""Encodes and decodes with :data:`SPEC`: pyiso8583's bytes, faster
(:mod:`devices.iso8583._codec`)."""

BINARY_FIELDS = frozenset(k for k, v in SPEC.items() if v["data_enc"] == "b")
NUMERIC_FIELDS = frozenset(
    {"2", "3", "4", "7", "11", "12", "13", "14", "25", "49", "74", "76", "86", "88", "90"}
)
"""Fields whose content must be digits (plus the MTI ``t``)."""

PROC_SALE = "000000"
PROC_REFUND = "200000"
CURRENCY_EUR = "978"
MAC_LEN = 8
_HEADER = 2

RESPONSE_CODES: dict[str, str] = {
    "00": "approved",
    "01": "refer to issuer",
    "05": "do not honour",
    "10": "partial approval",
    "12": "invalid transaction",
    "13": "invalid amount",
    "14": "invalid card number",
    "25": "original not found",
    "30": "format error",
    "51": "insufficient funds",
    "54": "expired card",
    "63": "security violation",
    "68": "response received too late",
    "91": "issuer unavailable",
    "94": "duplicate transmission",
    "95": "reconcile error",
    "96": "system malfunction",
}

REVERSAL_REASONS: dict[str, str] = {
    "68": "timeout: no response to the original",
    "17": "customer cancellation / void",
    "06": "error: invalid or unreadable response",
    "21": "could not complete locally: receipt not printed, card removed",
}
"""Field 39 of a 0400/0401: why the terminal reverses."""


def mask_pan(pan: str) -> str:
    """At most the first six and last four digits: ``411111******1111``."""
    if len(pan) >= 13:
        return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
    return "*" * max(len(pan) - 4, 0) + pan[-4:]


def redact(fields: Fields) -> dict[str, str]:
    """A printable copy: PAN masked, binary fields in hex."""
    out: dict[str, str] = {}
    for key, value in fields.items():
        if isinstance(value, bytes):
            out[key] = value.hex().upper()
        elif key == "2":
            out[key] = mask_pan(value)
        else:
            out[key] = value
    return out


def response_mti(mti: str) -> str | None:
    """The response MTI for a request or advice (0200/0201 -> 0210, 0221 -> 0230), else None."""
    if len(mti) != 4 or not mti.isdigit() or mti[2] not in "02":
        return None
    return mti[:2] + str(int(mti[2]) + 1) + "0"


def original_data(mti: str, stan: str | int, f7: str) -> str:
    """Field 90: original MTI (4) + original STAN (6) + original field 7 (10) + 22 zeros."""
    stan = f"{int(stan):06d}" if isinstance(stan, int) else stan
    if not (len(mti) == 4 and len(stan) == 6 and len(f7) == 10):
        raise ValueError("original data: MTI n4, STAN n6, field 7 n10 expected")
    value = mti + stan + f7 + "0" * 22
    if not value.isdigit():
        raise ValueError("original data must be digits")
    return value


def parse_original(f90: str) -> tuple[str, str, str]:
    """Field 90 to (original MTI, original STAN, original field 7)."""
    if len(f90) != 42 or not f90.isdigit():
        raise MessageError("field 90 must be 42 digits", field="90")
    return f90[0:4], f90[4:10], f90[10:20]


def _check_content(fields: Mapping[str, str]) -> str | None:
    """The first field (wire order) whose content is not digits where digits are due."""
    bad = [key for key, value in fields.items()
           if (key == "t" or key in NUMERIC_FIELDS) and not (value.isascii() and value.isdigit())]
    return min(bad, key=_wire_rank) if bad else None


def _wire_rank(key: str) -> tuple[int, int]:
    head = ("h", "t", "p", "1")
    return (head.index(key), 0) if key in head else (len(head), int(key))


def encode(fields: Mapping[str, str | bytes], mac_key: bytes | None = None) -> bytes:
    """Encode and frame a message. With ``mac_key``, field 64 is set to the MAC.

    MAC scheme: the first 8 bytes of HMAC-SHA256(mac_key, M) where M is the
    encoded message (without the length header) carrying field 64 with its
    8 bytes set to zero. Bit 64 is set in the bitmap, so the bitmap is covered;
    the receiver recomputes M by zeroing those 8 bytes (:func:`mac_ok`). This
    works with or without a secondary bitmap (fields 65-128 follow field 64).
    """
    # Copied in C and edited in place (keys keep their order): cheaper than a loop that
    # builds the dict.
    doc: dict[str, Any] = dict(fields)
    for key in ("p", "1", "h"):
        doc.pop(key, None)
    for key, value in doc.items():
        if isinstance(value, bytes) and key not in BINARY_FIELDS:
            raise TypeError(f"field {key} takes str, not bytes")
    for key in BINARY_FIELDS:
        value = doc.get(key)
        if isinstance(value, bytes):
            doc[key] = value.hex()
    if mac_key is not None:
        doc["64"] = "00" * MAC_LEN
    bad = _check_content(doc)
    if bad is not None:
        raise MessageError(f"cannot encode: field {bad} must be digits", field=bad)
    try:
        msg, spans = CODEC.encode(doc)
    except iso8583.EncodeError as exc:
        raise MessageError(f"cannot encode: {exc}", field=exc.field) from exc
    if mac_key is not None:
        start, end = spans["64"]
        msg = msg[:start] + _mac(mac_key, msg) + msg[end:]
    if len(msg) > 0xFFFF:
        raise MessageError("cannot encode: message longer than 65535 bytes")
    return len(msg).to_bytes(_HEADER, "big") + msg


def _mac(key: bytes, zeroed_msg: bytes) -> bytes:
    mac = _keyed_hmac(key).copy()
    mac.update(zeroed_msg)
    return mac.digest()[:MAC_LEN]


@functools.lru_cache(maxsize=8)
def _keyed_hmac(key: bytes) -> hmac.HMAC:
    """HMAC-SHA256 with ``key`` set up once; :func:`_mac` copies it (cheaper than a new one)."""
    return hmac.new(key, digestmod=hashlib.sha256)


@functools.lru_cache(maxsize=32)
def _decode_raw(frame: bytes) -> tuple[dict[str, str], Spans]:
    """Check the header and decode; cached by the frame's bytes (read-only results), as
    the receiving host's shell, core and MAC check all read the same frame."""
    if len(frame) < _HEADER:
        raise MessageError("frame shorter than its length header", field="header", pos=0)
    declared = int.from_bytes(frame[:_HEADER], "big")
    if declared != len(frame) - _HEADER:
        raise MessageError(
            f"length header says {declared} bytes, frame has {len(frame) - _HEADER}",
            field="header",
            pos=0,
        )
    try:
        return CODEC.decode(frame[_HEADER:])
    except iso8583.DecodeError as exc:
        partial = {k: v for k, v in exc.doc_dec.items() if k != exc.field}
        raise MessageError(
            f"undecodable message: {exc.msg}",
            field=exc.field,
            pos=exc.pos + _HEADER,
            partial=dict(_public(partial)),
        ) from exc
    except KeyError as exc:  # pyiso8583 looks up field 129+ unguarded: no DecodeError
        raise MessageError(
            "undecodable message: the secondary bitmap sets bit 65 (a third bitmap, fields "
            f"129-192; field {exc.args[0]} named), which the spec does not have",
            field="1", pos=_HEADER + SPEC["t"]["max_len"] + SPEC["p"]["max_len"],
        ) from exc


def _public(doc_dec: dict[str, str]) -> Fields:
    """pyiso8583's dict without bitmaps/header, binary fields as bytes (in the same order)."""
    out: Fields = dict(doc_dec)  # copied in C, then edited in place: keys keep their order
    for key in ("p", "1", "h"):
        out.pop(key, None)
    for key in BINARY_FIELDS:
        value = out.get(key)
        if isinstance(value, str):
            out[key] = bytes.fromhex(value)
    return out


def decode(frame: bytes) -> Fields:
    """Check the length header and decode; any failure is a :class:`MessageError`.

    ``MessageError.pos`` counts from the start of the frame (header included);
    ``partial`` holds the fields that did decode (never the failing one).
    """
    return dict(_decode_checked(frame))  # a copy: the cached dict stays as decoded


@functools.lru_cache(maxsize=32)
def _decode_checked(frame: bytes) -> Fields:
    """:func:`decode`'s work, cached like :func:`_decode_raw`: the host's shell and core
    both decode each request (errors are not cached: each call raises afresh)."""
    doc_dec, spans = _decode_raw(frame)
    bad = _check_content(doc_dec)
    if bad is not None:
        partial = {k: v for k, v in doc_dec.items() if k != bad}
        raise MessageError(
            f"undecodable message: field {bad} is not numeric",
            field=bad,
            pos=spans[bad][0] + _HEADER,
            partial=dict(_public(partial)),
        )
    return _public(doc_dec)


def field_spans(frame: bytes) -> dict[str, tuple[int, int]]:
    """Where each field's data lies in ``frame`` (offsets include the length header)."""
    _, spans = _decode_raw(frame)
    return {k: (a + _HEADER, b + _HEADER) for k, (a, b) in spans.items()}


def mac_ok(frame: bytes, mac_key: bytes) -> bool:
    """True when the frame decodes, carries field 64 and its MAC matches (see :func:`encode`)."""
    try:
        _, spans = _decode_raw(frame)
    except MessageError:
        return False
    span = spans.get("64")
    if span is None:
        return False
    msg = frame[_HEADER:]
    start, end = span
    zeroed = msg[:start] + bytes(end - start) + msg[end:]
    return hmac.compare_digest(_mac(mac_key, zeroed), msg[start:end])


def corrupt(
    frame: bytes, rng: random.Random, nbytes: int = 1, field: str | None = None
) -> bytes:
    """Flip bytes of ``frame`` (never the length header); deterministic given ``rng``.

    Without ``field``: XOR a random non-zero mask into ``nbytes`` distinct random
    positions. With ``field``: replace up to ``nbytes`` digits inside that field's
    data by other digits, so the frame still decodes with a changed value (a
    field without digits, like the MAC, gets its bytes XORed instead). Raises
    ValueError when the frame has no body, or lacks the field / does not decode.
    """
    out = bytearray(frame)
    if field is None:
        positions = list(range(_HEADER, len(frame)))
        if not positions:
            raise ValueError("nothing to corrupt: empty frame")
        for pos in rng.sample(positions, min(nbytes, len(positions))):
            out[pos] ^= rng.randrange(1, 256)
        return bytes(out)
    try:
        spans = field_spans(frame)
    except MessageError as exc:
        raise ValueError(f"cannot corrupt field {field}: {exc}") from exc
    if field not in spans or spans[field][0] == spans[field][1]:
        raise ValueError(f"cannot corrupt field {field}: not in the frame")
    start, end = spans[field]
    digits = [p for p in range(start, end) if 0x30 <= out[p] <= 0x39]
    if not digits:
        for pos in rng.sample(range(start, end), min(nbytes, end - start)):
            out[pos] ^= rng.randrange(1, 256)
        return bytes(out)
    for pos in rng.sample(digits, min(nbytes, len(digits))):
        old = out[pos] - 0x30
        out[pos] = 0x30 + (old + rng.randrange(1, 10)) % 10
    return bytes(out)

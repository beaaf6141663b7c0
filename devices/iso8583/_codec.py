"""A fast ISO 8583 codec that returns byte-for-byte what pyiso8583 returns.

Why: every simulated exchange on the link encodes and decodes frames, and
pyiso8583 spends tens of microseconds per message re-reading the spec and
building its ``doc_enc`` dict field by field. :class:`Codec` compiles a
pyiso8583 spec once, caches the field layout of each bitmap it meets, and
handles the common case directly (about 5-7x faster).

pyiso8583 stays the authority, for specs and for errors: the fast path returns
a result only when it is certain pyiso8583 would return the identical one.
Anything else (invalid or unusual input, a spec feature the fast path does not
cover) is handed to ``iso8583.encode``/``iso8583.decode`` themselves, so errors
are exactly pyiso8583's (``EncodeError``/``DecodeError`` with their ``field``,
``pos`` and ``doc_dec``), and so is any result pyiso8583 accepts that the fast
path declined. ``tests/unit/test_iso_codec.py`` checks this differentially.

Fast path: no message header (``h`` max_len <= 0), ASCII MTI, ASCII hex
bitmaps (primary and secondary; a tertiary bitmap falls back), fields with
len_type 0 to 3, ASCII length prefixes, data_enc ``"ascii"`` or ``"b"``,
len_count ``"bytes"``, no padding; a doc to encode is a ``dict`` of ``str``.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from typing import Any

import iso8583

__all__ = ["Codec", "Spans", "compile_spec"]

Spans = dict[str, tuple[int, int]]
"""Data span (start, end) of each field in the message, length prefix excluded."""

_HEX_DIGITS = b"0123456789ABCDEFabcdef"
_FIELD_SPEC_KEYS = frozenset({"data_enc", "len_enc", "len_type", "max_len", "len_count", "desc"})
_CACHE_MAX = 512  # bitmap layouts kept per codec; beyond that they are computed per call

# Field kinds.
_FIXED = 0  # ASCII, fixed length
_VAR = 1  # ASCII, length prefix
_BINARY = 2  # data_enc "b" (hex str in the doc), fixed or prefixed

# Per field: (key, kind, len_type, limit). ``limit`` is the exact length of a
# fixed field, else the largest length its prefix may give.
_Field = tuple[str, int, int, int]
# Encode plan: (bitmap(s) as hex text, fields in wire order, spans of t/p/1, data start).
_EncodePlan = tuple[str, tuple[_Field, ...], Spans, int]
# Decode plan of a primary bitmap: (fields 2-64, secondary bitmap present).
_PrimaryPlan = tuple[tuple[_Field, ...], bool]


def _ascii(spec: Mapping[str, Mapping[str, Any]], key: str) -> bool:
    field = spec.get(key)
    return isinstance(field, Mapping) and field.get("data_enc") == "ascii"


def _compile_field(num: int, field: Any) -> _Field | None:
    """The fast-path tuple of a field, or None when pyiso8583 must handle it."""
    if not isinstance(field, Mapping) or not set(field) <= _FIELD_SPEC_KEYS:
        return None  # unknown keys, e.g. left_pad/right_pad
    len_type = field.get("len_type")
    max_len = field.get("max_len")
    if type(len_type) is not int or type(max_len) is not int or max_len < 0:
        return None
    if field.get("len_count", "bytes") != "bytes" or field.get("data_enc") not in ("ascii", "b"):
        return None
    if len_type == 0:
        limit = max_len
    elif 1 <= len_type <= 3 and field.get("len_enc") == "ascii":
        limit = min(max_len, 10**len_type - 1)  # pyiso8583 rejects a prefix that does not fit
    else:
        return None
    kind = _BINARY if field["data_enc"] == "b" else _VAR if len_type else _FIXED
    return (str(num), kind, len_type, limit)


def _spans(doc_enc: Mapping[str, Mapping[str, bytes]]) -> Spans:
    """Spans from pyiso8583's doc_enc, whose keys are in wire order."""
    spans: Spans = {}
    pos = 0
    for key, enc in doc_enc.items():
        pos += len(enc["len"])
        end = pos + len(enc["data"])
        spans[key] = (pos, end)
        pos = end
    return spans


class Codec:
    """Encoder/decoder for one pyiso8583 spec (which must not change afterwards)."""

    __slots__ = (
        "_by_key",
        "_by_num",
        "_encode_plans",
        "_fast",
        "_prefixes",
        "_primary_plans",
        "_secondary",
        "_secondary_plans",
        "spec",
    )

    def __init__(self, spec: Mapping[str, Mapping[str, Any]]) -> None:
        self.spec = spec
        header = spec.get("h")
        self._fast = (
            isinstance(header, Mapping)
            and type(header.get("max_len")) is int
            and header["max_len"] <= 0
            and _ascii(spec, "t")
            and _ascii(spec, "p")
        )
        self._secondary = _ascii(spec, "1")
        self._by_key: dict[str, tuple[int, _Field]] = {}
        self._by_num: list[_Field | None] = [None] * 129
        # Fields 1 and 65 are bitmaps: pyiso8583 drops them from a doc to encode.
        for num in (*range(2, 65), *range(66, 129)):
            info = _compile_field(num, spec.get(str(num)))
            if info is not None:
                self._by_key[info[0]] = (num, info)
                self._by_num[num] = info
        self._prefixes: tuple[tuple[str, ...], ...] = tuple(
            tuple(f"{n:0{width}d}" for n in range(10**width) if width) for width in range(4)
        )
        self._encode_plans: dict[tuple[str, ...], _EncodePlan] = {}
        self._primary_plans: dict[bytes, _PrimaryPlan] = {}
        self._secondary_plans: dict[bytes, tuple[_Field, ...]] = {}

    # -- encode --------------------------------------------------------------

    def encode(self, doc: dict[str, str]) -> tuple[bytes, Spans]:
        """``iso8583.encode(doc, spec)``'s bytes and each field's span; ``doc`` is not mutated."""
        if self._fast and type(doc) is dict:
            done = self._encode_fast(doc)
            if done is not None:
                return done
        # pyiso8583 adds "p"/"1" to the dict it encodes: give it a copy
        # (and anything that is not a dict as is, for its own TypeError).
        raw, doc_enc = iso8583.encode(dict(doc) if isinstance(doc, dict) else doc, self.spec)
        return bytes(raw), _spans(doc_enc)

    def _encode_plan(self, keys: tuple[str, ...]) -> _EncodePlan | None:
        """Bitmap text and field order for a doc with these keys, if all are fast-path fields."""
        if "t" not in keys:
            return None
        by_key = self._by_key
        fields: list[tuple[int, _Field]] = []
        for key in keys:
            if type(key) is not str:
                return None
            if key != "t":
                entry = by_key.get(key)
                if entry is None:
                    return None
                fields.append(entry)
        fields.sort()
        bitmap = 0
        for num, _ in fields:
            bitmap |= 1 << (128 - num)
        if bitmap & ((1 << 64) - 1):
            if not self._secondary:
                return None
            text = f"{(bitmap >> 64) | (1 << 63):016X}{bitmap & ((1 << 64) - 1):016X}"
            spans: Spans = {"t": (0, 4), "p": (4, 20), "1": (20, 36)}
        else:
            text = f"{bitmap >> 64:016X}"
            spans = {"t": (0, 4), "p": (4, 20)}
        plan = (text, tuple(info for _, info in fields), spans, 4 + len(text))
        if len(self._encode_plans) < _CACHE_MAX:
            self._encode_plans[keys] = plan
        return plan

    def _encode_fast(self, doc: dict[str, str]) -> tuple[bytes, Spans] | None:
        keys = tuple(doc)
        plan = self._encode_plans.get(keys) or self._encode_plan(keys)  # plans are truthy
        if plan is None:
            return None
        bitmap, fields, head_spans, pos = plan
        mti = doc["t"]
        if type(mti) is not str or len(mti) != 4 or not mti.isascii():
            return None
        parts = [mti, bitmap]
        append = parts.append
        spans = dict(head_spans)
        prefixes = self._prefixes
        a2b_hex = binascii.a2b_hex
        for key, kind, len_type, limit in fields:
            value = doc[key]
            if type(value) is not str:
                return None
            if kind == _FIXED:
                if len(value) != limit or not value.isascii():
                    return None
                size = limit
            else:
                if kind == _BINARY:
                    try:
                        value = a2b_hex(value).decode("latin-1")
                    except ValueError:  # odd length, non-hex, non-ASCII
                        return None
                elif not value.isascii():
                    return None
                size = len(value)
                if len_type:
                    if size > limit:
                        return None
                    append(prefixes[len_type][size])
                    pos += len_type
                elif size != limit:
                    return None
            append(value)
            end = pos + size
            spans[key] = (pos, end)
            pos = end
        # Everything is ASCII except binary data, carried as latin-1 code points.
        return "".join(parts).encode("latin-1"), spans

    # -- decode --------------------------------------------------------------

    def decode(self, raw: bytes | bytearray) -> tuple[dict[str, str], Spans]:
        """``iso8583.decode(raw, spec)``'s doc_dec (with "t", "p", "1") and each field's span."""
        if self._fast and isinstance(raw, (bytes, bytearray)):
            done = self._decode_fast(bytes(raw))
            if done is not None:
                return done
        doc_dec, doc_enc = iso8583.decode(raw, self.spec)
        return doc_dec, _spans(doc_enc)

    def _bitmap_fields(self, bitmap: bytes, offset: int) -> tuple[int, tuple[_Field, ...]] | None:
        """A bitmap's bits and its fields offset+2 .. offset+64, if all are fast-path fields."""
        # bytes.fromhex (pyiso8583's bitmap parser) also skips whitespace:
        # hex digits only here, pyiso8583 handles anything else.
        if len(bitmap) != 16 or bitmap.translate(None, _HEX_DIGITS):
            return None
        bits = int(bitmap, 16)
        fields: list[_Field] = []
        for n in range(2, 65):
            if bits >> (64 - n) & 1:
                info = self._by_num[offset + n]
                if info is None:
                    return None
                fields.append(info)
        return bits, tuple(fields)

    def _primary_plan(self, bitmap: bytes) -> _PrimaryPlan | None:
        parsed = self._bitmap_fields(bitmap, 0)
        if parsed is None:
            return None
        bits, fields = parsed
        plan = (fields, bool(bits >> 63))  # field 1: a secondary bitmap follows
        if len(self._primary_plans) < _CACHE_MAX:
            self._primary_plans[bitmap] = plan
        return plan

    def _secondary_plan(self, bitmap: bytes) -> tuple[_Field, ...] | None:
        parsed = self._bitmap_fields(bitmap, 64) if self._secondary else None
        # Field 65 set: a tertiary bitmap follows (fields 129-192), pyiso8583's job.
        if parsed is None or parsed[0] >> 63:
            return None
        if len(self._secondary_plans) < _CACHE_MAX:
            self._secondary_plans[bitmap] = parsed[1]
        return parsed[1]

    def _decode_fast(self, raw: bytes) -> tuple[dict[str, str], Spans] | None:
        primary = raw[4:20]
        plan = self._primary_plans.get(primary) or self._primary_plan(primary)
        if plan is None:
            return None
        fields, secondary = plan
        text = raw.decode("latin-1")
        doc = {"t": text[:4], "p": text[4:20]}
        spans: Spans = {"t": (0, 4), "p": (4, 20)}
        idx = 20
        if secondary:
            bitmap = raw[20:36]
            more = self._secondary_plans.get(bitmap)
            if more is None:
                more = self._secondary_plan(bitmap)
                if more is None:
                    return None
            fields += more
            doc["1"] = text[20:36]
            spans["1"] = (20, 36)
            idx = 36
        binaries: list[tuple[int, int]] = []
        for key, kind, len_type, limit in fields:
            # Slices past the end come back short: idx then ends up > len(raw).
            if kind == _FIXED:
                stop = idx + limit
                doc[key] = text[idx:stop]
            else:
                if len_type:
                    stop = idx + len_type
                    prefix = raw[idx:stop]
                    # pyiso8583 takes int() of the prefix, which also accepts
                    # " 5", "+5", "-1", "1_0": ASCII digits only here.
                    if not prefix.isdigit():
                        return None
                    size = int(prefix)
                    if size > limit:
                        return None
                    idx = stop
                else:
                    size = limit
                stop = idx + size
                if kind == _VAR:
                    doc[key] = text[idx:stop]
                else:
                    doc[key] = raw[idx:stop].hex().upper()
                    binaries.append((idx, stop))
            spans[key] = (idx, stop)
            idx = stop
        if idx != len(raw):
            return None
        # pyiso8583 decodes text strictly as ASCII: all but binary data must be.
        start = 0
        for begin, end in binaries:
            if not raw[start:begin].isascii():
                return None
            start = end
        if not raw[start:].isascii():
            return None
        return doc, spans


def compile_spec(spec: Mapping[str, Mapping[str, Any]]) -> Codec:
    """A :class:`Codec` for ``spec`` (a pyiso8583 spec dict)."""
    return Codec(spec)

"""The trace: canonical JSON Lines, its identity hash, listeners, atomic files, reading back."""

from __future__ import annotations

import errno
import hashlib
import json
import math
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from devices.errors import TraceError
from emulator.engine.trace import (
    AtomicFile,
    Event,
    Trace,
    canonical_json,
    micro_rounded,
    read_trace,
    write_atomic,
)


class Clock:
    """A settable clock standing in for the simpy Environment."""

    def __init__(self) -> None:
        self.now = 0.0


def make_trace(header: dict[str, object] | None = None) -> tuple[Trace, Clock]:
    clock = Clock()
    return Trace(clock, header=header), clock


def sample_trace(header: dict[str, object] | None = None) -> Trace:
    trace, clock = make_trace(header)
    trace.emit("terminal.txn_started", step="s1", amount_minor=1250)
    clock.now = 1.5
    trace.emit("card.read", card="alice")
    clock.now = 4.25
    trace.emit("printer.job_started", job=1, text="SALE\nAPPROVED")
    return trace


# ----------------------------------------------------------------- Event.to_json


def test_event_json_has_sorted_keys_and_no_spaces() -> None:
    event = Event(1.5, "card.read", {"zeta": 1, "alpha": "x y"})
    assert event.to_json() == (
        '{"component":"card","event":"read","fields":{"alpha":"x y","zeta":1},"t":1.5}'
    )


def test_event_json_does_not_depend_on_field_insertion_order() -> None:
    one = Event(2.0, "bank.response_sent", {"a": 1, "b": 2, "c": {"y": 1, "x": 2}})
    two = Event(2.0, "bank.response_sent", {"c": {"x": 2, "y": 1}, "b": 2, "a": 1})
    assert one.to_json() == two.to_json()


def test_event_json_rounds_time_to_microseconds() -> None:
    event = Event(0.1234567891, "terminal.timeout", {})
    assert json.loads(event.to_json())["t"] == 0.123457


def test_event_json_is_ascii_only() -> None:
    line = Event(0.0, "printer.job_done", {"text": "Caf\u00e9 \u20ac"}).to_json()
    line.encode("ascii")
    assert json.loads(line)["fields"]["text"] == "Caf\u00e9 \u20ac"


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(
    t=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    name=st.text(min_size=1),
    fields=st.dictionaries(st.text(), _VALUES, max_size=5),
)
def test_event_line_is_the_canonical_json_of_the_whole_event(
    t: float, name: str, fields: dict[str, object],
) -> None:
    """The line is built from its parts; it must equal the canonical form of the whole."""
    component, _, event = name.partition(".")
    whole = {"t": round(t, 6), "component": component, "event": event, "fields": fields}
    assert Event(t, name, fields).to_line() == canonical_json(whole)


def test_event_component_is_the_part_before_the_first_dot() -> None:
    assert Event(0.0, "terminal.txn_done", {}).component == "terminal"


# ------------------------------------------------------------------ lines and hash


def test_jsonl_starts_with_a_posemu_header_then_one_line_per_event() -> None:
    trace = sample_trace({"name": "demo", "seed": 7})
    lines = trace.to_jsonl().decode("ascii").splitlines()
    assert json.loads(lines[0]) == {"posemu_trace": 1, "name": "demo", "seed": 7}
    assert len(lines) == 1 + len(trace) == 4
    assert [json.loads(x)["event"] for x in lines[1:]] == ["txn_started", "read", "job_started"]
    assert trace.to_jsonl().endswith(b"}\n")


def test_sha256_is_the_hash_of_the_lines_after_the_header() -> None:
    trace = sample_trace({"name": "demo"})
    body = trace.to_jsonl().split(b"\n", 1)[1]
    assert trace.sha256() == hashlib.sha256(body).hexdigest()


def test_sha256_ignores_the_header() -> None:
    one = sample_trace({"name": "one", "seed": 1, "path": "a.toml"})
    two = sample_trace({"name": "two", "seed": 2, "path": "b.toml"})
    assert one.to_jsonl() != two.to_jsonl()
    assert one.sha256() == two.sha256()


def test_sha256_changes_when_any_event_differs() -> None:
    base = sample_trace()
    other, clock = make_trace()
    other.emit("terminal.txn_started", step="s1", amount_minor=1251)
    clock.now = 1.5
    other.emit("card.read", card="alice")
    clock.now = 4.25
    other.emit("printer.job_started", job=1, text="SALE\nAPPROVED")
    assert base.sha256() != other.sha256()


def test_events_carry_the_clock_time_when_emitted() -> None:
    trace = sample_trace()
    assert [(e.t, e.name) for e in trace] == [
        (0.0, "terminal.txn_started"), (1.5, "card.read"), (4.25, "printer.job_started"),
    ]


# --------------------------------------------------------------------- listeners


def test_listener_gets_only_events_of_its_name() -> None:
    trace, _ = make_trace()
    seen: list[Event] = []
    trace.subscribe("card.read", seen.append)
    trace.emit("terminal.txn_started", step="s1")
    trace.emit("card.read", card="alice")
    trace.emit("card.removed")
    assert [(e.name, e.fields) for e in seen] == [("card.read", {"card": "alice"})]


def test_listener_on_none_gets_every_event_in_order() -> None:
    trace, _ = make_trace()
    seen: list[str] = []
    trace.subscribe(None, lambda e: seen.append(e.name))
    trace.emit("terminal.txn_started")
    trace.emit("card.read")
    trace.emit("terminal.txn_done")
    assert seen == ["terminal.txn_started", "card.read", "terminal.txn_done"]


def test_listener_sees_the_event_already_recorded() -> None:
    trace, _ = make_trace()
    lengths: list[int] = []
    trace.subscribe("card.read", lambda _e: lengths.append(len(trace)))
    trace.emit("card.read")
    assert lengths == [1]


def test_unsubscribed_listener_gets_no_more_events() -> None:
    trace, _ = make_trace()
    kept: list[Event] = []
    removed: list[Event] = []
    trace.subscribe("card.read", kept.append)
    trace.subscribe("card.read", removed.append)
    trace.emit("card.read")
    trace.unsubscribe("card.read", removed.append)
    trace.emit("card.read")
    assert (len(kept), len(removed)) == (2, 1)


def test_unsubscribing_an_unknown_listener_is_harmless() -> None:
    trace, _ = make_trace()
    trace.unsubscribe("card.read", lambda _e: None)
    trace.emit("card.read")
    assert len(trace) == 1


def test_listener_may_unsubscribe_itself_without_others_missing_the_event() -> None:
    trace, _ = make_trace()
    calls: list[str] = []

    def once(_event: Event) -> None:
        calls.append("once")
        trace.unsubscribe("printer.job_started", once)

    trace.subscribe("printer.job_started", once)
    trace.subscribe("printer.job_started", lambda _e: calls.append("always"))
    trace.emit("printer.job_started")
    trace.emit("printer.job_started")
    assert calls == ["once", "always", "always"]


def test_listener_on_none_can_be_unsubscribed() -> None:
    trace, _ = make_trace()
    seen: list[Event] = []
    trace.subscribe(None, seen.append)
    trace.emit("card.read")
    trace.unsubscribe(None, seen.append)  # type: ignore[arg-type]
    trace.emit("card.read")
    assert len(seen) == 1


# ------------------------------------------------------------------ write_atomic


def test_write_atomic_writes_the_bytes_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "run.jsonl"
    write_atomic(target, b"first\n")
    assert target.read_bytes() == b"first\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.jsonl"]


def test_write_atomic_replaces_existing_content(tmp_path: Path) -> None:
    target = tmp_path / "run.jsonl"
    target.write_bytes(b"old content that is longer than the new one\n")
    write_atomic(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.jsonl"]


def test_write_atomic_failing_midway_leaves_neither_target_nor_temp_file(tmp_path: Path) -> None:
    def half_then_disk_full() -> None:
        with AtomicFile(tmp_path / "run.jsonl") as out:
            out.write(b"01234")
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        half_then_disk_full()
    assert list(tmp_path.iterdir()) == []


def test_a_streamed_trace_writes_the_same_bytes_and_hash_as_a_kept_one(tmp_path: Path) -> None:
    kept = sample_trace({"name": "demo"})
    clock = Clock()
    with AtomicFile(tmp_path / "s.jsonl") as sink:
        streamed = Trace(clock, {"name": "demo"}, sink=sink)
        for event in kept:
            clock.now = event.t
            streamed.emit(event.name, **event.fields)
    assert (tmp_path / "s.jsonl").read_bytes() == kept.to_jsonl()
    assert streamed.sha256() == kept.sha256()
    assert len(streamed) == len(kept) == 3
    assert streamed.events == []
    with pytest.raises(TraceError, match="keeps no events"):
        streamed.to_jsonl()


# -------------------------------------------------------------------- read_trace


def test_read_trace_round_trips_header_and_events(tmp_path: Path) -> None:
    trace = sample_trace({"name": "demo", "seed": 7, "profile": "robust", "path": None})
    path = tmp_path / "t.jsonl"
    write_atomic(path, trace.to_jsonl())
    header, events = read_trace(path)
    assert header == {"posemu_trace": 1, "name": "demo", "seed": 7, "profile": "robust",
                      "path": None}
    assert events == list(trace)


def test_read_trace_of_an_empty_run_has_no_events(tmp_path: Path) -> None:
    trace, _ = make_trace({"name": "empty"})
    path = tmp_path / "t.jsonl"
    path.write_bytes(trace.to_jsonl())
    assert read_trace(path) == ({"posemu_trace": 1, "name": "empty"}, [])


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (None, "missing file"),
        (b"", "empty file"),
        (b"this is not json\n", "non-JSON header"),
        (b'{"posemu_trace":1}\n{"t":0.0,"component":"card"\n', "truncated event line"),
        (b'{"posemu_trace":1}\nnot json either\n', "non-JSON event line"),
        (b'{"name":"x"}\n', "JSON header without the posemu marker"),
        (b'{"posemu_trace":2}\n', "another trace format"),
        (b"[1, 2, 3]\n", "header is not an object"),
        (b'{"t":0.0,"component":"card","event":"read","fields":{}}\n', "event as first line"),
        (b'{"posemu_trace":1}\n{"t":0.0,"component":"card"}\n', "event missing keys"),
        (b'{"posemu_trace":1}\n[0, "card", "read"]\n', "event is not an object"),
        (b'{"posemu_trace":1}\n{"t":"soon","component":"c","event":"e","fields":{}}\n',
         "event time not a number"),
        (b'{"posemu_trace":1}\n\xff\xfe\n', "not text"),
    ],
)
def test_read_trace_refuses_what_is_not_a_posemu_trace_with_trace_error(
    tmp_path: Path, content: bytes | None, what: str,
) -> None:
    path = tmp_path / "bad.jsonl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(TraceError) as info:
        read_trace(path)
    assert type(info.value) is TraceError, what
    assert str(path) in str(info.value), what


def test_read_trace_of_a_directory_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError):
        read_trace(tmp_path)


def _near_ties() -> st.SearchStrategy[float]:
    """Times a few doubles away from a half-microsecond tie, where rounding is hardest."""
    return st.builds(lambda whole, step: (whole + 0.5) / 1e6 + step * math.ulp(whole / 1e6),
                     st.integers(0, 2**41), st.integers(-4, 4))


@settings(max_examples=3000)
@given(st.one_of(st.floats(min_value=0.0, max_value=2e6), st.floats(min_value=0.0),
                 _near_ties(), st.integers(0, 10**9),
                 st.integers(0, 2**45).map(lambda k: k / 1e6)))
@example(0.0)
@example(0.0000005)  # a tie below the first microsecond
@example(5.839999999999997)
@example(4503599627.370496)  # 2**52 µs, where the quick way stops
@example(4503599627.3704955)
@example(10803576795.076519)  # beyond 2**53 µs the product is not exact to a whole µs
def test_times_are_rounded_as_round_rounds_them(t: float) -> None:
    quick, slow = micro_rounded(t), round(t, 6)
    assert (quick, type(quick), repr(quick)) == (slow, type(slow), repr(slow))

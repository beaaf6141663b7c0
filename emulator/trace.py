"""The trace: every event of a run, in order, and its canonical JSON Lines form.

An event is ``(t, name, fields)`` where ``name`` is ``component.event``. The
trace's SHA-256 over its canonical JSON Lines identifies the run. Listeners
(fault triggers) subscribe by event name; an event
nobody listens to costs one dict lookup and one list append.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from emulator.errors import TraceError


class Clock(Protocol):
    @property
    def now(self) -> float: ...


class Event(NamedTuple):
    """One thing that happened: simulated time, ``component.event`` name, fields."""

    t: float
    name: str
    fields: dict[str, Any]

    @property
    def component(self) -> str:
        return self.name.split(".", 1)[0]

    def to_json(self) -> str:
        """The canonical one-line JSON form (sorted keys, no spaces, time in µs)."""
        component, _, event = self.name.partition(".")
        return json.dumps(
            {"t": round(self.t, 6), "component": component, "event": event,
             "fields": self.fields},
            sort_keys=True, separators=(",", ":"), ensure_ascii=True,
        )


Listener = Callable[[Event], None]


class Trace:
    """Records events in simulated time and tells listeners about them."""

    def __init__(self, clock: Clock, header: dict[str, Any] | None = None) -> None:
        self._clock = clock
        self.header = header or {}
        self.events: list[Event] = []
        self._listeners: dict[str, list[Listener]] = {}
        self._any: list[Listener] = []

    def emit(self, name: str, **fields: Any) -> None:
        event = Event(self._clock.now, name, fields)
        self.events.append(event)
        listeners = self._listeners.get(name)
        if listeners:
            for listener in tuple(listeners):
                listener(event)
        for listener in self._any:
            listener(event)

    def subscribe(self, name: str | None, listener: Listener) -> None:
        """Call ``listener`` on every event ``name`` (every event when None)."""
        if name is None:
            self._any.append(listener)
        else:
            self._listeners.setdefault(name, []).append(listener)

    def unsubscribe(self, name: str | None, listener: Listener) -> None:
        listeners = self._any if name is None else self._listeners.get(name, [])
        if listener in listeners:
            listeners.remove(listener)

    def lines(self) -> Iterator[str]:
        """The canonical JSON Lines: a header line, then one line per event."""
        yield json.dumps({"posemu_trace": 1, **self.header}, sort_keys=True,
                         separators=(",", ":"))
        for event in self.events:
            yield event.to_json()

    def to_jsonl(self) -> bytes:
        return ("\n".join(self.lines()) + "\n").encode("ascii")

    def sha256(self) -> str:
        """SHA-256 of the event lines: the run's identity (the header only labels it)."""
        digest = hashlib.sha256()
        for line in islice(self.lines(), 1, None):
            digest.update(line.encode("ascii"))
            digest.update(b"\n")
        return digest.hexdigest()

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_trace(path: Path) -> tuple[dict[str, Any], list[Event]]:
    """Read a trace written by posemu: its header and its events."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"{path}: cannot read trace: {exc}") from exc
    rows = text.splitlines()
    try:
        header = json.loads(rows[0]) if rows else None
        if not isinstance(header, dict) or header.get("posemu_trace") != 1:
            raise TraceError(f"{path}:1: not a posemu trace")
        events = [_event(json.loads(row)) for row in rows[1:]]
    except (ValueError, KeyError, TypeError) as exc:
        raise TraceError(f"{path}: malformed trace: {exc}") from exc
    return header, events


def _event(row: dict[str, Any]) -> Event:
    return Event(float(row["t"]), f"{row['component']}.{row['event']}", dict(row["fields"]))


def names(events: Iterable[Event]) -> list[str]:
    return [e.name for e in events]

"""The trace: every event of a run, in order, and its canonical JSON Lines form.

An event is ``(t, name, fields)`` where ``name`` is ``component.event``. The
trace's SHA-256 over its canonical JSON Lines identifies the run. Listeners
(fault triggers, the oracle) subscribe by event name; an event nobody listens
to costs one dict lookup and one list append.

A trace either keeps its events in memory (the default: reports and replays
read them) or streams them (``sink``): each event is encoded once, when it
happens, written to the sink and folded into the running hash, and nothing
is kept, so a long run's memory stays flat.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NamedTuple, Protocol

import msgspec

from devices.errors import TraceError

_ENCODER = msgspec.json.Encoder(order="sorted")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def canonical_json(value: Any) -> bytes:
    """Compact JSON, keys sorted at every level, ASCII only (others as ``\\uXXXX``)."""
    raw = _ENCODER.encode(value)
    if raw.isascii():
        return raw
    return _NON_ASCII.sub(_escape, raw.decode("utf-8")).encode("ascii")


def _escape(match: re.Match[str]) -> str:
    return json.dumps(match.group(0))[1:-1]  # \\uXXXX, a surrogate pair above U+FFFF


@functools.lru_cache(maxsize=1024)
def _line_head(name: str) -> bytes:
    """An event line up to its fields: ``{"component":"..","event":"..","fields":``."""
    component, _, event = name.partition(".")
    return canonical_json({"component": component, "event": event})[:-1] + b',"fields":'


_HALVES_EXACT = float(2**52)
"""Below this, every integer and half-integer is a double."""


def micro_rounded(t: float) -> float:
    """``round(t, 6)``, the same value and type, about twice as fast.

    ``round`` rounds the exact decimal value of ``t`` to whole µs. ``t * 1e6`` is that
    product rounded to a double, and rounding to a double never moves a number past a
    half-integer that is itself a double: so unless the product landed exactly on one,
    its nearest integer is ``round``'s. Dividing that integer by 1e6 (both exact
    doubles) then rounds as reading it back from decimal does. Exact halves, and
    other values, go to ``round``.
    """
    if type(t) is float:
        scaled = t * 1e6
        if 0.0 < scaled < _HALVES_EXACT:
            whole = round(scaled)
            if abs(scaled - whole) != 0.5:
                return whole / 1e6
    return round(t, 6)


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

    def to_line(self) -> bytes:
        """The canonical one-line JSON form (sorted keys, no spaces, time in µs):
        ``canonical_json`` of ``{"component", "event", "fields", "t"}``, built from its
        parts, as the four keys are already in sorted order."""
        return b"".join((_line_head(self.name), canonical_json(self.fields), b',"t":',
                         _ENCODER.encode(micro_rounded(self.t)), b"}"))

    def to_json(self) -> str:
        return self.to_line().decode("ascii")


Listener = Callable[[Event], None]


class Listeners:
    """Who listens to what: listeners by event name, and those on every event."""

    def __init__(self) -> None:
        self.named: dict[str, list[Listener]] = {}
        self.every: list[Listener] = []

    def add(self, name: str | None, listener: Listener) -> None:
        if name is None:
            self.every.append(listener)
        else:
            self.named.setdefault(name, []).append(listener)

    def remove(self, name: str | None, listener: Listener) -> None:
        listeners = self.every if name is None else self.named.get(name, [])
        if listener in listeners:
            listeners.remove(listener)

    def tell(self, event: Event) -> None:
        """Call the listeners of ``event``'s name, then those on every event."""
        listeners = self.named.get(event.name)
        if listeners:
            for listener in tuple(listeners):
                listener(event)
        if self.every:
            for listener in tuple(self.every):
                listener(event)


class Trace:
    """Records events in simulated time and tells listeners about them.

    With ``sink`` (a binary file), the header and every event line are written
    to it as they happen and the events are not kept.
    """

    def __init__(
        self, clock: Clock, header: dict[str, Any] | None = None,
        sink: IO[bytes] | None = None,
    ) -> None:
        self._clock = clock
        self.header = header or {}
        self.events: list[Event] = []
        self._listeners = Listeners()
        self._sink = sink
        self._digest = hashlib.sha256()
        self._count = 0
        if sink is not None:
            sink.write(self.header_line() + b"\n")

    @property
    def streaming(self) -> bool:
        return self._sink is not None

    def emit(self, name: str, **fields: Any) -> None:
        # tuple.__new__ is what Event(...) calls, minus a Python-level __new__ around it
        event = tuple.__new__(Event, (self._clock.now, name, fields))
        self._count += 1
        if self._sink is None:
            self.events.append(event)
        else:
            line = event.to_line() + b"\n"
            self._digest.update(line)
            self._sink.write(line)
        listeners = self._listeners
        if listeners.every or name in listeners.named:  # most events have no listener
            listeners.tell(event)

    def subscribe(self, name: str | None, listener: Listener) -> None:
        """Call ``listener`` on every event ``name`` (every event when None)."""
        self._listeners.add(name, listener)

    def unsubscribe(self, name: str | None, listener: Listener) -> None:
        self._listeners.remove(name, listener)

    def header_line(self) -> bytes:
        return canonical_json({"posemu_trace": 1, **self.header})

    def lines(self) -> Iterator[str]:
        """The canonical JSON Lines: a header line, then one line per event."""
        self._kept()
        yield self.header_line().decode("ascii")
        for event in self.events:
            yield event.to_json()

    def to_jsonl(self) -> bytes:
        """The canonical JSON Lines as one byte string (a kept trace)."""
        out = io.BytesIO()
        self.write_to(out)
        return out.getvalue()

    def write_to(self, out: IO[bytes]) -> None:
        """Write the canonical JSON Lines to ``out`` a line at a time (a kept trace)."""
        self._kept()
        out.write(self.header_line() + b"\n")
        for event in self.events:
            out.write(event.to_line() + b"\n")

    def sha256(self) -> str:
        """SHA-256 of the event lines: the run's identity (the header only labels it)."""
        if self._sink is not None:
            return self._digest.hexdigest()
        digest = hashlib.sha256()
        for event in self.events:
            digest.update(event.to_line() + b"\n")
        return digest.hexdigest()

    def _kept(self) -> None:
        if self._sink is not None:
            raise TraceError("a streamed trace keeps no events: read the file it was written to")

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Event]:
        self._kept()
        return iter(self.events)


class Discard(io.BytesIO):
    """A sink that keeps nothing: a trace streamed into it is only hashed and counted."""

    def write(self, data: Any, /) -> int:
        return 0


class AtomicFile:
    """A file that appears at ``path`` only when the block that writes it succeeds.

    Writes go to a temporary file beside ``path``; on success it is renamed over
    ``path``, on failure it is removed, so a reader never sees half a file. A ``path``
    that is a device or a pipe (``/dev/stdout``, a FIFO) is written directly: renaming
    over it would replace the device. Errors name ``path``, never the temporary file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp = path.with_name(f".{path.name}.tmp")
        self._file: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        try:
            if _is_stream(self.path):
                self._tmp = self.path
            self._file = open(self._tmp, "wb")
        except OSError as err:
            raise self._named(err) from err
        return self._file

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._file is not None
        try:
            self._file.close()
            if kind is None and self._tmp != self.path:
                os.replace(self._tmp, self.path)
        except OSError as err:
            raise self._named(err) from err
        finally:
            if self._tmp != self.path:
                with contextlib.suppress(OSError):
                    self._tmp.unlink()
        if isinstance(exc, OSError) and exc.filename in (None, str(self._tmp)):
            raise self._named(exc) from exc  # a write failed (a full disk): name the file

    def _named(self, err: OSError) -> OSError:
        """``err`` naming the file the user asked for, not the temporary one."""
        return type(err)(err.errno, err.strerror or str(err), str(self.path))


def _is_stream(path: Path) -> bool:
    """Whether ``path`` exists and is neither a regular file nor a directory."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    with AtomicFile(path) as out:
        out.write(data)


def unused_name(stem: str, taken: set[str]) -> str:
    """``stem``, or ``stem-2``, ``stem-3``, ... if taken; the name returned is taken too."""
    name, n = stem, 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}"
    taken.add(name)
    return name


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

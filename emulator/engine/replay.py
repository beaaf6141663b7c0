"""``posemu replay``: run a trace's scenario again and compare the event lines.

A trace names its scenario file, seed and profile in its header; a fleet's
trace names its number of terminals too, and is replayed as a fleet of that
many. The trace is read once, a line at a time, as the new run's lines come
(as the new run writes them), so it may be a pipe, and replaying a long run
takes the memory of running it and no disk.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from devices.errors import TraceError
from emulator.engine.world import run_scenario
from emulator.judge.result import Result
from emulator.scenario.load import load_scenario
from emulator.scenario.model import Scenario
from emulator.scenario.profiles import PROFILES

if TYPE_CHECKING:
    from emulator.engine.fleet import FleetResult, TerminalVerdict

MAX_LINE_BYTES = 1024 * 1024
"""The longest trace line read (an event line is a few hundred bytes)."""


@dataclass(frozen=True)
class Difference:
    """The first event (numbered from 0) where the traces differ; None: no event there."""

    index: int
    old: str | None
    new: str | None

    @property
    def line(self) -> int:
        """Its line in the trace file (the header is line 1)."""
        return self.index + 2


@dataclass(frozen=True)
class Replay:
    """A trace set against a new run of its scenario."""

    scenario: Scenario
    terminals: int | None  # None: a single run's trace
    old_events: int
    old_sha256: str
    new_events: int
    new_sha256: str
    first_difference: Difference | None
    result: Result | None = None      # the new run (a single run's trace)
    fleet: FleetResult | None = None  # the new run (a fleet's trace)

    @property
    def identical(self) -> bool:
        """The same event lines: the same SHA-256."""
        return self.old_sha256 == self.new_sha256


class _OldTrace:
    """The trace being replayed, read a line at a time: each line checked, counted and
    hashed as it is read."""

    def __init__(self, file: IO[bytes], path: Path) -> None:
        self.path = path
        self._rows = self._read(file)
        first = next(self._rows, None)
        try:
            header = json.loads(first) if first is not None else None
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            header = None
        if not isinstance(header, dict) or header.get("posemu_trace") != 1:
            raise TraceError(f"{path}:1: not a posemu trace (no trace header)")
        self.header: dict[str, Any] = header
        self.events = 0
        self._digest = hashlib.sha256()

    def _read(self, file: IO[bytes]) -> Iterator[str]:
        number = 0
        try:  # a line is read up to MAX_LINE_BYTES + 1: /dev/zero holds no newline
            for number, raw in enumerate(iter(lambda: file.readline(MAX_LINE_BYTES + 1), b""),
                                         start=1):
                if len(raw) > MAX_LINE_BYTES:
                    raise TraceError(f"{self.path}:{number}: not a posemu trace (a line longer "
                                     f"than {MAX_LINE_BYTES // 1024 // 1024} MiB)")
                if not raw.isascii():
                    raise TraceError(f"{self.path}:{number}: not a posemu trace (not ASCII text)")
                yield raw.decode("ascii").removesuffix("\n")
        except OSError as exc:
            raise TraceError(f"{self.path}:{number + 1}: cannot read trace: "
                             f"{exc.strerror or exc}") from exc

    def next_event(self) -> str | None:
        """The next event line exactly as written; None at the end."""
        row = next(self._rows, None)
        if row is None:
            return None
        self.events += 1
        if not _is_event(row):
            raise TraceError(f"{self.path}:{self.events + 1}: malformed trace event")
        self._digest.update(f"{row}\n".encode("ascii"))
        return row

    @property
    def sha256(self) -> str:
        """SHA-256 of the event lines read so far."""
        return self._digest.hexdigest()


def _is_event(row: str) -> bool:
    """Whether ``row`` is an event line: JSON with t, component, event and fields."""
    try:
        event = json.loads(row)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return False
    return (isinstance(event, dict) and isinstance(event.get("t"), int | float)
            and isinstance(event.get("component"), str)
            and isinstance(event.get("event"), str) and isinstance(event.get("fields"), dict))


class _Comparison:
    """The new run's event lines, set one by one against the old trace's."""

    def __init__(self, old: _OldTrace) -> None:
        self.old = old
        self.new_events = 0
        self.first: Difference | None = None
        self._digest = hashlib.sha256()  # the run's trace hash: the same lines, hashed alike

    def add(self, new: str) -> None:
        """The new run's next event line."""
        old = self.old.next_event()
        if self.first is None and old != new:
            self.first = Difference(self.new_events, old, new)  # new's index: events so far
        self.new_events += 1
        self._digest.update(f"{new}\n".encode("ascii"))

    @property
    def new_sha256(self) -> str:
        """SHA-256 of the new run's event lines."""
        return self._digest.hexdigest()

    def finish(self) -> None:
        """The new run has ended: read the rest of the old trace."""
        while (old := self.old.next_event()) is not None:
            if self.first is None:  # the old trace goes on: its event just read is the first
                self.first = Difference(self.old.events - 1, old, None)


class _ComparingSink(io.BytesIO):
    """A fleet's trace sink that keeps nothing: each event line is compared as written."""

    def __init__(self, comparison: _Comparison) -> None:
        super().__init__()
        self._comparison = comparison
        self._header = True  # the trace writes its header line first
        self._partial = b""

    def write(self, data: Any, /) -> int:
        *lines, self._partial = (self._partial + bytes(data)).split(b"\n")
        for line in lines:
            if self._header:
                self._header = False
            else:
                self._comparison.add(line.decode("ascii"))
        return len(data)


def header_scenario(path: Path, header: dict[str, Any], override: Path | None) -> Scenario:
    """The scenario a trace header names, with the header's seed and profile."""
    seed, profile, source = header.get("seed"), header.get("profile"), header.get("path")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TraceError(f"{path}:1: seed: missing or not an integer")
    if not isinstance(profile, str) or profile not in PROFILES:
        raise TraceError(f"{path}:1: profile: missing or unknown ({json.dumps(profile)})")
    if override is not None:
        return _firmware(load_scenario(override).with_overrides(seed=seed, profile=profile),
                         header)
    if not isinstance(source, str) or not source:
        raise TraceError(f"{path}:1: path: the trace names no scenario file (use --scenario)")
    if not _is_file(source):
        raise TraceError(f"{path}:1: path: scenario file {source} not found (run from the "
                         "directory the trace was written in, or use --scenario FILE)")
    return _firmware(load_scenario(source).with_overrides(seed=seed, profile=profile), header)


def _firmware(scenario: Scenario, header: dict[str, Any]) -> Scenario:
    """``scenario`` run by the plug-in firmware the header names (``--firmware``), if any."""
    ref = header.get("firmware")
    if isinstance(ref, str) and (scenario.firmware is None or scenario.firmware.ref != ref):
        from emulator.firmware.plugin import with_firmware  # noqa: PLC0415

        return with_firmware(scenario, ref)
    return scenario


def _is_file(name: str) -> bool:
    """Whether ``name`` is a file (False for a name too long, a link loop, ...)."""
    try:
        return Path(name).is_file()
    except OSError:
        return False


def header_terminals(path: Path, header: dict[str, Any]) -> int | None:
    """A fleet trace's number of terminals; None for a single run's trace (no
    ``terminals``, or null as ``posemu replay --json`` reports a single run)."""
    terminals = header.get("terminals")
    if terminals is None:
        return None
    from emulator.engine.fleet import MAX_TERMINALS  # noqa: PLC0415  (fleets only)

    if (not isinstance(terminals, int) or isinstance(terminals, bool)
            or not 1 <= terminals <= MAX_TERMINALS):
        raise TraceError(f"{path}:1: terminals: not a whole number from 1 to {MAX_TERMINALS:,} "
                         f"({json.dumps(terminals)})")
    return terminals


def replay(path: Path, override: Path | None = None,
           runner: Callable[[Scenario], Result] = run_scenario,
           on_terminal: TerminalVerdict | None = None) -> Replay:
    """Run the scenario (or fleet) ``path``'s header names again; compare the traces.
    ``runner`` runs a single scenario (the HTML report's keeps the printer's bytes);
    ``on_terminal`` is told each terminal's verdict of a fleet (as ``run_fleet`` tells)."""
    try:
        file = path.open("rb")
    except OSError as exc:
        raise TraceError(f"{path}: cannot read trace: {exc.strerror or exc}") from exc
    with file:
        old = _OldTrace(file, path)
        terminals = header_terminals(path, old.header)
        scenario = header_scenario(path, old.header, override)
        comparison = _Comparison(old)
        result = fleet = None
        if terminals is None and runner is run_scenario:  # streamed: compared as it runs
            result = run_scenario(scenario, trace_sink=_ComparingSink(comparison))
        elif terminals is None:  # a runner that keeps the trace (the HTML report's)
            result = runner(scenario)
            for event in result.trace:  # each line made once, not again to hash
                comparison.add(event.to_json())
        else:
            from emulator.engine.fleet import run_fleet  # noqa: PLC0415  (fleets only)

            fleet = run_fleet(scenario, terminals, trace_sink=_ComparingSink(comparison),
                              on_terminal=on_terminal)
        comparison.finish()
    return Replay(scenario, terminals, old.events, old.sha256, comparison.new_events,
                  comparison.new_sha256, comparison.first, result, fleet)

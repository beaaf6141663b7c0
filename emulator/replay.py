"""``posemu replay``: run a trace's scenario again and compare the event lines.

A trace names its scenario file, seed and profile in its header; a fleet's
trace names its number of terminals too, and is replayed as a fleet. Both
traces are read a line at a time (a fleet's new trace goes to a temporary
file), so replaying a long fleet run takes no more memory than running it.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from emulator.errors import TraceError
from emulator.profiles import PROFILES
from emulator.scenario import Scenario, load_scenario
from emulator.world import run_scenario


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

    @property
    def identical(self) -> bool:
        return self.old_sha256 == self.new_sha256


def _rows(lines: Iterable[bytes], path: Path) -> Iterator[tuple[int, str]]:
    """Each line (1-based number, text without its newline); TraceError if not ASCII."""
    for number, raw in enumerate(lines, start=1):
        if not raw.isascii():
            raise TraceError(f"{path}:{number}: not a posemu trace (not ASCII text)")
        yield number, raw.decode("ascii").removesuffix("\n")


def _is_event(row: str) -> bool:
    try:
        event = json.loads(row)
    except ValueError:
        return False
    return (isinstance(event, dict) and isinstance(event.get("t"), int | float)
            and isinstance(event.get("component"), str)
            and isinstance(event.get("event"), str) and isinstance(event.get("fields"), dict))


def _events(file: IO[bytes], path: Path) -> Iterator[str]:
    """The event lines after the header, exactly as written."""
    rows = _rows(file, path)
    next(rows, None)
    for _, row in rows:
        yield row


def read_header(path: Path) -> dict[str, Any]:
    """The trace's header, after checking every line; TraceError names the bad line."""
    try:
        with path.open("rb") as file:
            rows = _rows(file, path)
            first = next(rows, None)
            try:
                header = json.loads(first[1]) if first is not None else None
            except ValueError:
                header = None
            if not isinstance(header, dict) or header.get("posemu_trace") != 1:
                raise TraceError(f"{path}:1: not a posemu trace (no trace header)")
            for number, row in rows:
                if not _is_event(row):
                    raise TraceError(f"{path}:{number}: malformed trace event")
    except OSError as exc:
        raise TraceError(f"{path}: cannot read trace: {exc.strerror or exc}") from exc
    return header


def header_scenario(path: Path, header: dict[str, Any], override: Path | None) -> Scenario:
    """The scenario a trace header names, with the header's seed and profile."""
    seed, profile, source = header.get("seed"), header.get("profile"), header.get("path")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TraceError(f"{path}:1: seed: missing or not an integer")
    if not isinstance(profile, str) or profile not in PROFILES:
        raise TraceError(f"{path}:1: profile: missing or unknown ({profile!r})")
    if override is not None:
        return load_scenario(override).with_overrides(seed=seed, profile=profile)
    if not isinstance(source, str) or not source:
        raise TraceError(f"{path}:1: path: the trace names no scenario file (use --scenario)")
    if not Path(source).is_file():
        raise TraceError(f"{path}:1: path: scenario file {source} not found (run from the "
                         "directory the trace was written in, or use --scenario FILE)")
    return load_scenario(source).with_overrides(seed=seed, profile=profile)


def header_terminals(path: Path, header: dict[str, Any]) -> int | None:
    """A fleet trace's number of terminals; None for a single run's trace."""
    from emulator.fleet import MAX_TERMINALS  # noqa: PLC0415  (fleets only)

    if "terminals" not in header:
        return None
    terminals = header["terminals"]
    if (not isinstance(terminals, int) or isinstance(terminals, bool)
            or not 1 <= terminals <= MAX_TERMINALS):
        raise TraceError(f"{path}:1: terminals: not a whole number from 1 to {MAX_TERMINALS:,} "
                         f"({terminals!r})")
    return terminals


def compare(old: Iterable[str], new: Iterable[str]) -> tuple[int, str, int, Difference | None]:
    """Old events counted and hashed, new events counted, and the first difference."""
    digest = hashlib.sha256()
    old_count = new_count = index = 0
    first: Difference | None = None
    olds, news = iter(old), iter(new)
    while True:
        a, b = next(olds, None), next(news, None)
        if a is None and b is None:
            return old_count, digest.hexdigest(), new_count, first
        if a is not None:
            digest.update(f"{a}\n".encode("ascii"))
            old_count += 1
        if b is not None:
            new_count += 1
        if first is None and a != b:
            first = Difference(index, a, b)
        index += 1


def replay(path: Path, override: Path | None = None) -> Replay:
    """Run the scenario (or fleet) ``path``'s header names again; compare the traces."""
    header = read_header(path)
    scenario = header_scenario(path, header, override)
    terminals = header_terminals(path, header)
    with path.open("rb") as old:
        if terminals is None:
            result = run_scenario(scenario)
            counts = compare(_events(old, path), (event.to_json() for event in result.trace))
            new_sha = result.trace_sha256
        else:
            from emulator.fleet import run_fleet  # noqa: PLC0415  (fleets only)

            with tempfile.TemporaryFile() as sink:
                new_sha = run_fleet(scenario, terminals, trace_sink=sink).trace_sha256
                sink.seek(0)
                counts = compare(_events(old, path), _events(sink, Path("(new trace)")))
    old_events, old_sha, new_events, first = counts
    return Replay(scenario, terminals, old_events, old_sha, new_events, new_sha, first)

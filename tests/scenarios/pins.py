"""What the pinned-behaviour test pins, and how to write the pins anew.

Every library scenario, ``FUZZ_RUNS`` generated fuzz scenarios (fixed campaign
seeds, both profiles) and a few fleets are run, and each run's identity is kept
as ``trace_sha256`` plus the SHA-256 of its JSON result. A refactor keeps every
one of them; a commit that changes behaviour on purpose writes them anew with
``python tests/scenarios/pins.py`` and says why in its message.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support import LIBRARY, ROOT

PINS = Path(__file__).with_name("pinned.json")

FUZZ_SEEDS = {"naive": 2020, "robust": 2021}  # campaign seed per profile
FUZZ_RUNS = 200  # runs per profile
FUZZ_CHUNK = 50  # runs per test item
FLEETS = (  # library scenario, terminals
    ("sale_network_delay_retry.toml", 40),
    ("sale_paper_jam.toml", 25),
    ("settle_partial_approval.toml", 30),
)


def digest(data: Any) -> str:
    """SHA-256 of ``data`` as canonical JSON."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def library_pin(name: str) -> list[str]:
    """A library scenario's trace hash and result hash (its path left out)."""
    from emulator import load_scenario, run_scenario  # noqa: PLC0415

    result = run_scenario(load_scenario(LIBRARY / name))
    data = result.to_json()
    del data["path"]
    return [result.trace_sha256, digest(data)]


def fuzz_pins(profile: str, start: int, stop: int) -> Iterator[list[str]]:
    """Runs ``start`` to ``stop`` of the pinned campaign of ``profile``."""
    from emulator import run_scenario  # noqa: PLC0415
    from emulator.fuzz.workload import draw, make_workload  # noqa: PLC0415

    workload = make_workload(None, "built-in", profile, {})
    for index in range(start, stop):
        result = run_scenario(workload.scenario(draw(workload, FUZZ_SEEDS[profile], index)))
        yield [result.trace_sha256, digest(result.to_json())]


def fleet_pin(name: str, terminals: int) -> list[str]:
    """A fleet's streamed trace (its bytes hashed, the header's path left out) and its
    JSON result."""
    from emulator import load_scenario, run_fleet  # noqa: PLC0415

    sink = io.BytesIO()
    result = run_fleet(load_scenario(LIBRARY / name), terminals, trace_sink=sink)
    header, events = sink.getvalue().split(b"\n", 1)
    head = json.loads(header)
    del head["path"]
    data = result.to_json()
    del data["path"]
    return [hashlib.sha256(digest(head).encode() + events).hexdigest(), digest(data)]


def compute() -> dict[str, Any]:
    """Every pin, as the test compares them."""
    return {
        "library": {p.name: library_pin(p.name) for p in sorted(LIBRARY.glob("*.toml"))},
        "fuzz": {profile: list(fuzz_pins(profile, 0, FUZZ_RUNS)) for profile in FUZZ_SEEDS},
        "fleet": {f"{name}x{n}": fleet_pin(name, n) for name, n in FLEETS},
    }


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from emulator.engine.trace import write_atomic

    write_atomic(PINS, (json.dumps(compute(), indent=1, sort_keys=True) + "\n").encode())
    print(f"wrote {PINS.relative_to(ROOT)}")

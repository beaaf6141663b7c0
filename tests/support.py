"""What many tests share: the project's paths and small scenario builders."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

    from emulator.engine.trace import Event
    from emulator.judge.result import Result

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "scenarios"
LIBRARY_FILES = sorted(LIBRARY.glob("*.toml"))
JAM = LIBRARY / "sale_paper_jam.toml"


def fleet_runs(path: Path) -> bool:
    """Whether ``posemu fleet`` runs this scenario file: its steps are all at fixed times
    (no chained step, no retry)."""
    from emulator.scenario.load import load_scenario  # noqa: PLC0415

    return all(s.after is None and s.retry_of is None for s in load_scenario(path).steps)


def fleet_files() -> list[Path]:
    """The library files a fleet runs (the others need `posemu run`)."""
    return [p for p in LIBRARY_FILES if fleet_runs(p)]
DOCS = ROOT / "docs"
POSEMU = Path(sys.executable).with_name("posemu")
"""The console script of the interpreter running the tests."""


def sale(step: str = "s1", *, card: str = "alice", amount: str = "10.00",
         at_s: float = 0.0) -> dict[str, Any]:
    """A ``[[steps]]`` table: a sale of ``amount`` on ``card`` at ``at_s``."""
    return {"id": step, "do": "sale", "card": card, "amount": amount, "at_s": at_s}


def end_states(result: Result) -> dict[str, str]:
    """Step id -> end state of a single run."""
    return {s.id: s.end_state for s in result.steps}


def fields_of(events: Iterable[Event], name: str) -> list[dict[str, Any]]:
    """The fields of every event called ``name``, in trace order."""
    return [e.fields for e in events if e.name == name]


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """Run ``posemu ARGS`` in-process: exit status, stdout, stderr."""
    from emulator.cli.main import main  # noqa: PLC0415 - only the CLI tests need it

    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse's own exits
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err

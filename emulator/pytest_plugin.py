"""pytest plugin: ``pytest scenarios/`` runs each scenario file as one test item.

Registered as the ``pytest11`` entry point ``posemu``, so it loads in every
pytest run where posemu is installed (``-p no:posemu`` turns it off). Loading
it is cheap: the engine (simpy, devices, oracle) is imported only when a
scenario item runs.

A ``.toml`` file is a scenario when it has a top-level ``format = ...`` key or
a ``[[steps]]`` table; the check is textual, so a scenario with a TOML syntax
error is still collected and fails with its one-line message. pyproject.toml
is never collected. Each file gives one item named after the scenario and
marked ``posemu``. ``--posemu-seed`` and ``--posemu-profile`` (or the ini
options ``posemu_seed`` and ``posemu_profile``) override every scenario's
seed and profile for the session.
"""

from __future__ import annotations

import os
import re
import tomllib
from argparse import ArgumentTypeError
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr, TracebackStyle

    from emulator.judge.result import Result

_SCENARIO_LINE = re.compile(
    r"""^[ \t]*(?:["']?format["']?[ \t]*=|\[\[[ \t]*["']?steps["']?[ \t]*\]\])""", re.MULTILINE
)
_TABLE_LINE = re.compile(r"^[ \t]*\[", re.MULTILINE)
_NEVER = frozenset({"pyproject.toml"})


def _profiles() -> tuple[str, ...]:
    from emulator.scenario.profiles import PROFILES  # noqa: PLC0415  (light: dataclasses only)

    return tuple(PROFILES)


def _seed(text: str) -> int:
    """argparse/ini type of a seed: an integer >= 0."""
    try:
        seed = int(text)
    except ValueError:
        raise ArgumentTypeError(f"not an integer: {text!r}") from None
    if seed < 0:
        raise ArgumentTypeError(f"must be >= 0: {seed}")
    return seed


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("posemu", "posemu scenario files")
    group.addoption(
        "--posemu-seed", type=_seed, default=None, metavar="N",
        help="run every scenario with this seed instead of its own",
    )
    group.addoption(
        "--posemu-profile", choices=_profiles(), default=None,
        help="run every scenario with this firmware profile (its [terminal] knobs still apply)",
    )
    parser.addini("posemu_seed", "seed for every scenario (as --posemu-seed)", type="string")
    parser.addini(
        "posemu_profile", "firmware profile for every scenario (as --posemu-profile)",
        type="string",
    )


def _overrides(config: pytest.Config) -> tuple[int | None, str | None]:
    """The session's (seed, profile) overrides: command line first, then ini."""
    seed: int | None = config.getoption("posemu_seed")
    profile: str | None = config.getoption("posemu_profile")
    if seed is None and (ini_seed := str(config.getini("posemu_seed")).strip()):
        try:
            seed = _seed(ini_seed)
        except ArgumentTypeError as err:
            raise pytest.UsageError(f"posemu_seed: {err}") from None
    if profile is None and (ini_profile := str(config.getini("posemu_profile")).strip()):
        if ini_profile not in _profiles():
            choices = ", ".join(_profiles())
            raise pytest.UsageError(f"posemu_profile: unknown {ini_profile!r} (one of {choices})")
        profile = ini_profile
    return seed, profile


_OVERRIDES = pytest.StashKey[tuple[int | None, str | None]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "posemu: a posemu scenario file run as a test")
    config.stash[_OVERRIDES] = _overrides(config)


def pytest_report_header(config: pytest.Config) -> str | None:
    seed, profile = config.stash[_OVERRIDES]
    if seed is None and profile is None:
        return None
    parts = ([] if seed is None else [f"seed {seed}"]) + (
        [] if profile is None else [f"profile {profile}"]
    )
    return f"posemu: every scenario runs with {', '.join(parts)}"


def is_scenario_text(text: str) -> bool:
    """Whether TOML text looks like a scenario: top-level ``format =`` or ``[[steps]]``."""
    for m in _SCENARIO_LINE.finditer(text):
        if m[0].lstrip().startswith("[["):
            return True
        table = _TABLE_LINE.search(text, 0, m.start())
        if table is None:  # `format =` before any table header: a top-level key
            return True
    return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    if file_path.suffix != ".toml" or file_path.name in _NEVER:
        return None
    text = _read(file_path)
    if text is None or not is_scenario_text(text):
        return None
    file: ScenarioFile = ScenarioFile.from_parent(parent, path=file_path)
    return file


def _read(path: Path) -> str | None:
    """The text of a regular file of bounded size (never a FIFO that would block)."""
    from devices.errors import ScenarioError  # noqa: PLC0415  (light: no simulation)
    from emulator.scenario.source import read_scenario_bytes  # noqa: PLC0415

    try:
        return read_scenario_bytes(str(path)).decode("utf-8-sig", errors="replace")
    except ScenarioError:
        return None


def _name_of(text: str, path: Path) -> str:
    """The scenario's ``name`` (the file stem if absent or unreadable), safe in a node id."""
    try:
        name = tomllib.loads(text).get("name")
    except (tomllib.TOMLDecodeError, RecursionError):  # the item reports it when it runs
        name = None
    if not isinstance(name, str) or not name.strip():
        name = path.stem
    return " ".join(name.split()).replace("::", ":")


class ScenarioFile(pytest.File):
    """A scenario file: one item, named after the scenario and marked ``posemu``."""

    def collect(self) -> list[ScenarioItem]:
        item: ScenarioItem = ScenarioItem.from_parent(
            self, name=_name_of(_read(self.path) or "", self.path)
        )
        item.add_marker("posemu")
        return [item]


class ScenarioFailed(Exception):
    """A scenario ran but did not meet its ``[expect]`` (or, without one, found anomalies)."""

    def __init__(self, result: Result) -> None:
        self.result = result
        super().__init__("; ".join(result.failures))


class ScenarioItem(pytest.Item):
    """Load, run and judge one scenario file."""

    def runtest(self) -> None:
        from emulator.engine.world import run_scenario  # noqa: PLC0415
        from emulator.scenario.load import load_scenario  # noqa: PLC0415  (engine loads lazily)

        scenario = load_scenario(self.path)
        seed, profile = self.config.stash[_OVERRIDES]
        if seed is not None or profile is not None:
            scenario = scenario.with_overrides(seed=seed, profile=profile)
        result = run_scenario(scenario)
        self.user_properties.extend([
            ("seed", scenario.seed), ("profile", scenario.profile),
            ("trace_sha256", result.trace_sha256),
        ])
        if not result.passed:
            raise ScenarioFailed(result)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: TracebackStyle | None = None,
    ) -> str | TerminalRepr:
        from devices.errors import ScenarioError  # noqa: PLC0415

        err = excinfo.value
        if isinstance(err, ScenarioFailed):
            return describe_failure(err.result, self._shown_path())
        if isinstance(err, ScenarioError):
            if err.path == str(self.path):
                err.path = self._shown_path()
            return str(err)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name

    def _shown_path(self) -> str:
        """The file as the user would type it: relative to where pytest was started."""
        try:
            return os.path.relpath(self.path, self.config.invocation_params.dir)
        except ValueError:  # another drive on Windows
            return str(self.path)


def describe_failure(result: Result, path: str) -> str:
    """The failure report: what differed, the anomalies found, each step's end state."""
    from emulator.money import format_minor  # noqa: PLC0415

    s = result.scenario
    lines = [
        *result.failures,  # first: pytest's short summary shows the first line
        "",
        f"scenario: {s.name}",
        f"file:     {path} (seed {s.seed}, profile {s.profile})",
        "anomalies found:",
        *(f"  {a.kind} at {a.step}: {a.detail}" for a in result.anomalies),
    ]
    if not result.anomalies:
        lines.append("  (none)")
    lines.append("end states:")
    for step in result.steps:
        amount = "" if step.amount_minor is None else f" {format_minor(step.amount_minor)}"
        lines.append(f"  {step.id} ({step.do}{amount}): {step.end_state}")
    if not result.steps:
        lines.append("  (no steps)")
    lines.append("balances:")
    for who, after in result.balances_minor.items():
        before = result.balances_before_minor.get(who)
        was = "" if before is None or before == after else f"{format_minor(before)} -> "
        lines.append(f"  {who}: {was}{format_minor(after)}")
    lines.append(f"trace sha256: {result.trace_sha256}")
    return "\n".join(lines)

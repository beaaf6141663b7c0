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
seed and profile for the session; ``--posemu-firmware MODULE:FACTORY`` (ini
``posemu_firmware``) runs every scenario with a plug-in firmware (docs/firmware.md).
``--posemu-html DIR`` writes the HTML report of each
scenario that fails into DIR, with an index (:mod:`emulator.report.html.plugin`).
"""

from __future__ import annotations

import os
import re
import tomllib
from argparse import ArgumentTypeError
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    """argparse/ini type of a seed (:mod:`emulator.scenario.seeds`: light, no engine)."""
    from emulator.scenario.seeds import parse_seed  # noqa: PLC0415

    return parse_seed(text)


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
    group.addoption(
        "--posemu-firmware", default=None, metavar="MODULE:FACTORY",
        help="run every scenario with this plug-in firmware instead of posemu's own "
             "(docs/firmware.md)",
    )
    group.addoption(
        "--posemu-html", type=Path, default=None, metavar="DIR",
        help="write the HTML report of each failed scenario (and an index) here",
    )
    parser.addini("posemu_seed", "seed for every scenario (as --posemu-seed)", type="string")
    parser.addini("posemu_firmware", "plug-in firmware for every scenario (as "
                  "--posemu-firmware)", type="string")
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
_FIRMWARE = pytest.StashKey[str | None]()


def _firmware(config: pytest.Config) -> str | None:
    """The session's plug-in firmware (command line first, then ini), loaded once here so
    that one that cannot be loaded stops the session with one line."""
    ref: str | None = config.getoption("posemu_firmware") or (
        str(config.getini("posemu_firmware")).strip() or None)
    if ref is not None:
        from devices.errors import UsageError  # noqa: PLC0415
        from emulator.firmware.plugin import load_factory  # noqa: PLC0415

        try:
            load_factory(ref)
        except UsageError as err:
            raise pytest.UsageError(f"--posemu-firmware: {err}") from None
    return ref


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "posemu: a posemu scenario file run as a test")
    config.stash[_OVERRIDES] = _overrides(config)
    config.stash[_FIRMWARE] = _firmware(config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """With ``--posemu-html``: the index of the pages written (once, not by xdist workers)."""
    html = session.config.getoption("posemu_html", None)
    if html is not None and not hasattr(session.config, "workerinput") and html.is_dir():
        from emulator.report.html.plugin import finish  # noqa: PLC0415

        finish(html)


def pytest_report_header(config: pytest.Config) -> str | None:
    seed, profile = config.stash[_OVERRIDES]
    firmware = config.stash[_FIRMWARE]
    if seed is None and profile is None and firmware is None:
        return None
    parts = ([] if seed is None else [f"seed {seed}"]) + (
        [] if profile is None else [f"profile {profile}"]
    ) + ([] if firmware is None else [f"firmware {firmware}"])
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

    def __init__(self, result: Result, page: Path | None = None) -> None:
        self.result = result
        self.page = page  # its HTML report (--posemu-html)
        super().__init__("; ".join(result.failures))


class ScenarioItem(pytest.Item):
    """Load, run and judge one scenario file."""

    def runtest(self) -> None:
        from emulator.engine.trace import Discard  # noqa: PLC0415
        from emulator.engine.world import run_scenario  # noqa: PLC0415
        from emulator.scenario.load import load_scenario  # noqa: PLC0415  (engine loads lazily)

        scenario = load_scenario(self.path)
        seed, profile = self.config.stash[_OVERRIDES]
        firmware = self.config.stash[_FIRMWARE]
        if firmware is not None or scenario.firmware is not None:
            from emulator.firmware.plugin import choose_firmware  # noqa: PLC0415

            scenario = choose_firmware(scenario, firmware, profile)
        if seed is not None or profile is not None:
            scenario = scenario.with_overrides(seed=seed, profile=profile)
        html, page = self.config.getoption("posemu_html"), None
        if html is not None:  # the run that keeps the printer's bytes (same trace)
            from emulator.report.html.plugin import run_reported  # noqa: PLC0415

            result, page = run_reported(scenario, html, self.nodeid)
        else:  # nothing here reads the events: hashed as they happen, never kept
            result = run_scenario(scenario, trace_sink=Discard())
        self.user_properties.extend([
            ("seed", scenario.seed), ("profile", scenario.runs_as),
            ("trace_sha256", result.trace_sha256),
        ])
        if not result.passed:
            raise ScenarioFailed(result, page)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: TracebackStyle | None = None,
    ) -> str | TerminalRepr:
        from devices.errors import ScenarioError, UsageError  # noqa: PLC0415

        err = excinfo.value
        if isinstance(err, ScenarioFailed):
            return describe_failure(err.result, self._shown_path(), err.page)
        if isinstance(err, UsageError):  # --posemu-profile with a plug-in firmware
            return str(err)
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


def describe_failure(result: Result, path: str, page: Path | None = None) -> str:
    """The failure report: what differed, the anomalies found, each step's end state."""
    from emulator.money import format_minor  # noqa: PLC0415

    s = result.scenario
    lines = [
        *result.failures,  # first: pytest's short summary shows the first line
        "",
        f"scenario: {s.name}",
        f"file:     {path} (seed {s.seed}, "
        f"{'profile ' + s.profile if s.firmware is None else 'firmware ' + s.firmware.ref})",
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
    if page is not None:
        lines.append(f"html report: {page}")
    return "\n".join(lines)


@pytest.fixture
def posemu_acquirer(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """Start posemu's live acquirer in-process on 127.0.0.1, a free port (docs/live.md).

    ``acquirer = posemu_acquirer("bank.toml")`` (a path or a scenario dict; ``framing=``,
    ``tpdu=``, ``tls=`` an ``ssl.SSLContext``) serves at ``acquirer.address`` at once;
    ``acquirer.stop()`` returns its result (``anomalies``, ``balances_minor``,
    ``postings``, ``passed``). Whatever the test did not stop is stopped after it, and
    fails the test when the outside oracle found what ``[expect]`` does not list.
    """
    from emulator.live.acquirer import LiveAcquirer, Running  # noqa: PLC0415  (live mode only)

    started: list[Running] = []

    def start(scenario: str | os.PathLike[str] | dict[str, Any], *, framing: str = "len2",
              tpdu: bool = False, tls: Any = None) -> Running:
        from devices.net.framing import Framing  # noqa: PLC0415
        from emulator.scenario.load import load_scenario, scenario_from_dict  # noqa: PLC0415

        loaded = (scenario_from_dict(scenario) if isinstance(scenario, dict)
                  else load_scenario(scenario))
        run = Running(LiveAcquirer(loaded, Framing.parse(framing, tpdu=tpdu), tls))
        started.append(run.__enter__())
        return run

    yield start
    failures = []
    for run in started:
        if run.stopped_by_test:
            continue
        done = run.close()
        if not done.passed:
            failures.extend(done.failures)
    if failures:
        pytest.fail("posemu acquirer: " + "; ".join(failures), pytrace=False)

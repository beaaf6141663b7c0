"""The docs say what the code does: names, values, examples and outputs are checked here."""

from __future__ import annotations

import ast
import dataclasses
import doctest
import json
import re
from pathlib import Path
from typing import Any

import pytest

from emulator.cli.main import main
from emulator.engine.world import run_scenario
from emulator.scenario.catalogue import FAULTS, TRIGGER_EVENTS
from emulator.scenario.load import parse_scenario
from emulator.scenario.profiles import KNOBS, PROFILES, SETTINGS, Policy
from tests.scenarios import test_knobs
from tests.support import ROOT

README = ROOT / "README.md"
PROFILES_MD = ROOT / "docs" / "profiles.md"
ARCHITECTURE_MD = ROOT / "docs" / "architecture.md"
DOCS = (README, PROFILES_MD, ARCHITECTURE_MD)
DEVICES = ("card", "printer", "network", "bank", "terminal", "fault")

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_EMIT = re.compile(r"\.emit\(\s*\"([a-z_]+\.[a-z_]+)\"")
_DOTTED = re.compile(rf"`((?:{'|'.join(DEVICES)})\.[a-z_]+)`")


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def blocks(path: Path, lang: str) -> list[str]:
    """The bodies of the fenced code blocks of ``lang`` in ``path``."""
    return [body for kind, body in _FENCE.findall(text(path)) if kind == lang]


def table_rows(path: Path) -> dict[str, list[str]]:
    """Markdown table rows keyed by their first cell without backticks."""
    rows: dict[str, list[str]] = {}
    for line in text(path).splitlines():
        if line.startswith("|") and not line.startswith("| ---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows.setdefault(cells[0].strip("`"), cells)
    return rows


def toml_value(value: object) -> str:
    """A knob value as written in TOML, in backticks: `true`, `"reprint"`."""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def emitted_events() -> set[str]:
    """Every trace event name the packages emit."""
    names: set[str] = set()
    for package in ("emulator", "devices"):
        for source in sorted((ROOT / package).rglob("*.py")):
            names.update(_EMIT.findall(text(source)))
    return names


def section(path: Path, heading: str) -> str:
    """The text under ``heading`` up to the next heading of any level."""
    body = text(path)
    start = body.index(heading + "\n") + len(heading) + 1
    following = re.search(r"^#", body[start:], re.MULTILINE)
    return body[start : start + following.start()] if following else body[start:]


# ------------------------------------------------------------- docs/profiles.md


@pytest.mark.parametrize("name", sorted(KNOBS))
def test_knob_row_gives_robust_and_naive_values_and_guarded_anomaly(name: str) -> None:
    knob = KNOBS[name]
    row = table_rows(PROFILES_MD).get(name)
    assert row is not None, f"no table row for knob {name} in docs/profiles.md"
    assert row[1:] == [toml_value(knob.robust), toml_value(knob.naive), f"`{knob.guards}`"]


@pytest.mark.parametrize("name", sorted(KNOBS))
def test_knob_has_a_section_naming_the_faults_of_its_test_case(name: str) -> None:
    cases: dict[str, tuple[dict[str, Any], str]] = test_knobs.CASES
    body = section(PROFILES_MD, f"### `{name}`")
    scenario, anomaly = cases[name]
    assert f"`{anomaly}`" in body
    for fault in scenario["faults"]:
        assert f"`{fault['fault']}`" in body, f"{name}: {fault['fault']} not described"


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_setting_row_gives_the_policy_default(name: str) -> None:
    default = {f.name: f.default for f in dataclasses.fields(Policy)}[name]
    row = table_rows(PROFILES_MD).get(name)
    assert row is not None, f"no table row for setting {name} in docs/profiles.md"
    assert row[1] == toml_value(default)


def test_profiles_doc_names_no_knob_setting_or_profile_that_does_not_exist() -> None:
    known = {*KNOBS, *SETTINGS, *PROFILES}
    names = {k for k, cells in table_rows(PROFILES_MD).items() if cells[0].startswith("`")}
    assert names <= known
    headings = set(re.findall(r"^### `(\w+)`$", text(PROFILES_MD), re.MULTILINE))
    assert headings == set(KNOBS)


def test_profiles_doc_lists_both_profiles() -> None:
    rows = table_rows(PROFILES_MD)
    assert set(PROFILES) <= set(rows)


# ------------------------------------------------------------------- README.md


def test_readme_quick_start_is_make_run_and_make_test() -> None:
    body = text(README)
    assert "make run" in body
    assert "make test" in body
    assert blocks(README, "sh")[0].strip().splitlines() == ["make run", "make test"]


def test_makefile_has_the_targets_the_readme_names() -> None:
    makefile = text(ROOT / "Makefile")
    assert re.search(r"^run:", makefile, re.MULTILINE)
    assert re.search(r"^test:", makefile, re.MULTILINE)


def test_every_scenario_path_in_readme_exists() -> None:
    paths = set(re.findall(r"scenarios/[\w./-]+\.toml", text(README)))
    assert paths
    for path in sorted(paths):
        assert (ROOT / path).is_file(), path


def test_every_file_the_docs_point_to_exists() -> None:
    for doc in DOCS:
        for path in set(re.findall(r"`((?:emulator|devices|docs|tests)/[\w./]+)`", text(doc))):
            assert (ROOT / path).exists(), f"{doc.name}: {path}"


def _command(block: str) -> str:
    return block.partition("\n")[0].removeprefix("$ .venv/bin/posemu ")


@pytest.mark.parametrize("block", blocks(README, "console"), ids=_command)
def test_readme_console_output_is_what_posemu_prints(
    block: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    command, *shown = block.rstrip("\n").split("\n")
    assert command.startswith("$ .venv/bin/posemu ")
    argv, _, pipe = command.removeprefix("$ .venv/bin/posemu ").partition(" | ")
    monkeypatch.chdir(ROOT)
    assert main(argv.split()) == 0
    out = capsys.readouterr().out
    if pipe:
        assert pipe == "python3 -m json.tool"
        assert json.loads("\n".join(shown)) == json.loads(out)
    else:
        assert [line.rstrip() for line in out.splitlines()] == shown


def test_readme_trace_excerpt_is_the_start_of_the_real_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    (excerpt,) = blocks(README, "text")
    monkeypatch.chdir(ROOT)
    assert main(["run", "scenarios/sale_paper_jam.toml", "--trace-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    lines = (tmp_path / "sale_paper_jam.jsonl").read_text(encoding="ascii").splitlines()
    shown = excerpt.rstrip("\n").split("\n")
    assert lines[: len(shown)] == shown


def test_readme_python_example_runs_as_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    (example,) = blocks(README, "pycon")
    monkeypatch.chdir(ROOT)
    test = doctest.DocTestParser().get_doctest(example, {}, "README", str(README), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


# ------------------------------------------------------------------- all docs


def test_toml_examples_in_docs_are_valid_scenarios_that_pass() -> None:
    examples = [(doc, b) for doc in DOCS for b in blocks(doc, "toml") if "format =" in b]
    assert examples
    for doc, example in examples:
        result = run_scenario(parse_scenario(example, path=doc.name))
        assert result.passed, (doc.name, result.failures)


def test_every_fault_and_event_name_in_docs_exists() -> None:
    events = {*TRIGGER_EVENTS, *emitted_events()}
    for doc in DOCS:
        for name in set(_DOTTED.findall(text(doc))):
            assert name in FAULTS or name in events, f"{doc.name}: unknown name `{name}`"


# ------------------------------------------------- boundaries docs/architecture.md states


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(text(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def sources(package: str) -> list[Path]:
    """Every module of ``package``, sub-packages included."""
    return sorted((ROOT / package).rglob("*.py"))


def test_oracle_imports_neither_simpy_nor_the_devices() -> None:
    """The oracle and what it imports are pure: no simpy, and of ``devices`` only the
    error tree (a leaf module)."""
    judge = ("emulator/judge/oracle.py", "emulator/engine/trace.py", "devices/errors.py")
    for module in judge:
        for name in imported_modules(ROOT / module):
            assert name.split(".")[0] != "simpy", (module, name)
            assert not name.startswith("devices") or name == "devices.errors", (module, name)


PRINTER_MODULES = {"receipt.py", "serial_port.py", "virtual.py"}


def test_only_the_printer_modules_import_escpos_and_serial() -> None:
    for source in [*sources("emulator"), *sources("devices")]:
        if source.name not in PRINTER_MODULES or source.parent.name != "printer":
            roots = {n.split(".")[0] for n in imported_modules(source)}
            assert not roots & {"escpos", "serial"}, source


def test_devices_is_the_lower_layer() -> None:
    """``devices`` never imports ``emulator``, not even for type checking."""
    modules = sources("devices")
    assert len(modules) > 20
    for source in modules:
        assert not {n for n in imported_modules(source) if n.split(".")[0] == "emulator"}, source


def classes(path: Path) -> list[ast.ClassDef]:
    return [node for node in ast.walk(ast.parse(text(path))) if isinstance(node, ast.ClassDef)]


def test_no_two_classes_share_a_name() -> None:
    seen: dict[str, Path] = {}
    for source in [*sources("devices"), *sources("emulator")]:
        for node in classes(source):
            assert node.name not in seen, f"{node.name}: {seen[node.name]} and {source}"
            seen[node.name] = source


def test_every_error_class_is_in_the_one_error_tree() -> None:
    """Errors are declared in devices/errors.py, each drawn in its docstring's tree."""
    from devices import errors  # noqa: PLC0415

    tree = errors.__doc__ or ""
    for source in [*sources("devices"), *sources("emulator")]:
        for node in classes(source):
            if node.name.endswith("Error") and node.name != "PosemuError":
                assert source == ROOT / "devices" / "errors.py", f"{node.name} in {source}"
                assert issubclass(getattr(errors, node.name), errors.PosemuError), node.name
                assert f" {node.name} " in tree, f"{node.name} is not drawn in the tree"
    assert tree.split("\n\n")[1].split()[0] == "PosemuError"  # the root heads the tree

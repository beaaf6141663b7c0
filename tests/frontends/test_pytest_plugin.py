"""The pytest plugin: scenario files as test items, their reports, options, xdist."""

from __future__ import annotations

from pathlib import Path

import pytest

import emulator.engine.world  # imported here, in-process runs reuse them instead of re-importing
import emulator.money
import emulator.scenario.model
from emulator.pytest_plugin import is_scenario_text
from tests.support import LIBRARY

pytest_plugins = ["pytester"]


PLAIN_SALE = """\
format = 1
name = "Plain sale"

[[cards]]
id = "alice"
pan = "4111111111111111"
balance = "100.00"

[[steps]]
id = "s1"
do = "sale"
card = "alice"
amount = "12.50"

[expect]
anomalies = []
end_states = { s1 = "approved" }
balances = { alice = "87.50" }
"""

# Seed story 4, prevented: the robust firmware reverses after the bank's late answer.
TIMEOUT_PREVENTED = """\
format = 1
name = "Late answer, reversed"

[terminal]
profile = "robust"
request_retries = 0

[[cards]]
id = "dave"
pan = "4012888888881881"
balance = "80.00"

[[steps]]
id = "s1"
do = "sale"
card = "dave"
amount = "30.00"

[[faults]]
fault = "bank.timeout"
on = "bank.request_received"
delay_s = 45
count = 1

[expect]
anomalies = []
end_states = { s1 = "declined" }
balances = { dave = "80.00" }
"""

PYPROJECT = """\
[project]
name = "shop"
format = "not a scenario either"

[tool.pytest.ini_options]
addopts = ["--strict-markers"]
"""


@pytest.fixture(autouse=True)
def _lean_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs skip hypothesis's plugin (re-imported on every in-process run) and the cache."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest -p no:cacheprovider")


def _library() -> list[Path]:
    return sorted(LIBRARY.rglob("*.toml"))


# ------------------------------------------------- the project's own library


def test_the_scenario_library_passes_through_the_plugin(pytester: pytest.Pytester) -> None:
    files = _library()
    assert files
    result = pytester.runpytest_subprocess(str(LIBRARY))
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=len(files))


def test_the_library_passes_under_xdist_with_the_same_items(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        str(LIBRARY), "-n", "2", "-p", "xdist",
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines([f"*2 workers [[]{len(_library())} items[]]*"])
    result.assert_outcomes(passed=len(_library()))


# ------------------------------------------------------------- collection


def test_a_passing_scenario_is_one_passed_item(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", sale=PLAIN_SALE)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["sale.toml::Plain sale PASSED*"])


def test_items_are_named_after_the_scenario_or_else_the_file(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", named=PLAIN_SALE)
    pytester.makefile(".toml", unnamed=PLAIN_SALE.replace('name = "Plain sale"\n', ""))
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["named.toml::Plain sale", "unnamed.toml::unnamed"])
    assert result.ret == pytest.ExitCode.OK


def test_pyproject_and_other_toml_files_are_never_collected(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject=PYPROJECT)
    pytester.makefile(".toml", config='[server]\nformat = "json"\nport = 8080\n')
    pytester.makefile(".toml", settings='title = "x"\n\n[[servers]]\nname = "a"\n')
    assert pytester.runpytest().ret == pytest.ExitCode.NO_TESTS_COLLECTED
    pytester.makefile(".toml", sale=PLAIN_SALE)
    result = pytester.runpytest("--collect-only", "-q")
    assert [line for line in result.outlines if "::" in line] == ["sale.toml::Plain sale"]


@pytest.mark.parametrize(
    ("text", "scenario"),
    [
        ("format = 1\n", True),
        ("\ufeff  format=1\n[expect]\n", True),
        ('"format" = 2\n', True),
        ("[[steps]]\nid = 's1'\n", True),
        ("[ [steps] ]\n", False),
        ("[tool.x]\nformat = 1\n", False),
        ("[server]\nformat = 'json'\n", False),
        ("formats = 1\n", False),
        ("# format = 1\n", False),
        ("", False),
    ],
)
def test_what_counts_as_a_scenario_file(text: str, *, scenario: bool) -> None:
    assert is_scenario_text(text.removeprefix("\ufeff")) is scenario


def test_plain_pytest_in_a_project_collects_only_what_its_testpaths_say(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".toml", pyproject='[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    pytester.mkdir("tests")
    pytester.makepyfile(**{"tests/test_one": "def test_one():\n    pass\n"})
    pytester.mkdir("scenarios")
    (pytester.path / "scenarios" / "sale.toml").write_text(PLAIN_SALE)
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.runpytest("scenarios").assert_outcomes(passed=1)
    result = pytester.runpytest("tests", "scenarios", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["tests/test_one.py::test_one", "scenarios/sale.toml::Plain sale"])


def test_items_carry_the_posemu_marker(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", sale=PLAIN_SALE)
    pytester.makepyfile(test_other="def test_other():\n    pass\n")
    pytester.runpytest("--strict-markers", "-m", "posemu").assert_outcomes(passed=1, deselected=1)
    pytester.runpytest("-m", "not posemu").assert_outcomes(passed=1, deselected=1)


def test_collecting_does_not_import_the_engine(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", sale=PLAIN_SALE)
    pytester.makeconftest(
        "import sys\n"
        "def pytest_collection_finish(session):\n"
        "    heavy = sorted(m for m in ('simpy', 'emulator.engine.world',\n"
        "                               'emulator.scenario.model') if m in sys.modules)\n"
        "    print('HEAVY', heavy)\n"
    )
    result = pytester.runpytest_subprocess("--collect-only", "-s")
    result.stdout.fnmatch_lines(["HEAVY []"])


def test_a_liveness_scenario_fails_on_not_quiet_unless_expected(
    pytester: pytest.Pytester,
) -> None:
    # the sale's approved receipt: no paper, held 300 s, more than the bound after the horizon
    busy = PLAIN_SALE.replace("[expect]", "[printer]\npaper_m = 0.05\n\n"
                              "[liveness]\nhorizon_s = 60\nquiet_s = 100\n\n[expect]")
    assert busy != PLAIN_SALE
    expected = busy.replace("anomalies = []", 'anomalies = ["in_doubt", "not_quiet"]')
    unchecked = "\n".join(line for line in expected.splitlines()
                          if not line.startswith(("end_states", "balances")))
    pytester.makefile(".toml", busy=busy, expected=unchecked)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*expected.toml::Plain sale PASSED*"])
    result.stdout.fnmatch_lines(["  not_quiet at s1: owes reversal for s1; owes held_receipt "
                                 "for s1; step s1 still running"])


# ---------------------------------------------------------------- reports


def test_a_failed_expectation_lists_what_differed_and_the_anomalies(
    pytester: pytest.Pytester,
) -> None:
    story = TIMEOUT_PREVENTED.replace('profile = "robust"', 'profile = "naive"')
    pytester.makefile(".toml", story=story)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*_ Late answer, reversed _*",
        "anomalies: expected [[][]], found [[]'charged_shown_unpaid'[]]",
        "end_states.s1: expected declined, found charged_shown_unpaid",
        "balances.dave: expected 80.00, found 50.00",
        "scenario: Late answer, reversed",
        "file:     story.toml (seed 0, profile naive)",
        "anomalies found:",
        "  charged_shown_unpaid at s1: *30.00*",
        "end states:",
        "  s1 (sale 30.00): charged_shown_unpaid",
        "balances:",
        "  dave: 80.00 -> 50.00",
        "trace sha256: *",
        "FAILED story.toml::Late answer, reversed - anomalies: expected*",
    ])
    out = result.stdout.str()
    assert "Traceback" not in out
    assert "runtest" not in out
    assert "pytest_plugin.py" not in out


def test_without_expect_any_anomaly_fails(pytester: pytest.Pytester) -> None:
    story = TIMEOUT_PREVENTED.replace('profile = "robust"', 'profile = "naive"')
    pytester.makefile(".toml", story=story[: story.index("[expect]")])
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["unexpected anomaly charged_shown_unpaid at s1: *"])


def test_a_broken_scenario_is_collected_and_fails_with_its_one_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".toml", broken='format = 1\nname = "Broken"\n\n[[steps]\nid = "s1"\n')
    pytester.makefile(".toml", typo=PLAIN_SALE.replace("\n\n", "\nsede = 3\n\n", 1))
    pytester.makefile(".toml", deep="format = 1\nx = " + "[" * 5000 + "]" * 5000 + "\n")
    result = pytester.runpytest()
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines([
        "*_ broken _*",
        "broken.toml:4: invalid TOML*",
        "*_ deep _*",
        "deep.toml: invalid TOML: arrays or tables nested too deeply",
        "*_ Plain sale _*",
        "typo.toml: sede: *",
    ])
    assert "Traceback" not in result.stdout.str()
    assert "scenario.py" not in result.stdout.str()


def test_an_engine_bug_keeps_its_traceback(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(_scenario: object, **_options: object) -> None:
        raise RuntimeError("engine bug")

    monkeypatch.setattr(emulator.engine.world, "run_scenario", boom)
    pytester.makefile(".toml", sale=PLAIN_SALE)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*raise RuntimeError*", "E * RuntimeError: engine bug"])


# ---------------------------------------------------------------- options


def test_profile_option_turns_a_prevented_story_red(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", story=TIMEOUT_PREVENTED)
    pytester.runpytest().assert_outcomes(passed=1)
    result = pytester.runpytest("--posemu-profile", "naive")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "posemu: every scenario runs with profile naive",
        "file:     story.toml (seed 0, profile naive)",
    ])


def test_seed_option_reaches_the_run(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", sale=PLAIN_SALE)
    reprec = pytester.inline_run("--posemu-seed", "42")
    reports = [r for r in reprec.getreports("pytest_runtest_logreport") if r.when == "call"]
    assert len(reports) == 1
    assert reports[0].passed
    properties = dict(reports[0].user_properties)
    assert properties["seed"] == 42
    assert properties["profile"] == "robust"
    assert len(str(properties["trace_sha256"])) == 64


def test_seed_option_shows_in_a_failure_report(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", sale=PLAIN_SALE.replace('"87.50"', '"87.00"'))
    result = pytester.runpytest("--posemu-seed", "7", "--posemu-profile", "robust")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "posemu: every scenario runs with seed 7, profile robust",
        "balances.alice: expected 87.00, found 87.50",
        "file:     sale.toml (seed 7, profile robust)",
    ])


def test_ini_options_override_like_the_command_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", story=TIMEOUT_PREVENTED)
    pytester.makeini("[pytest]\nposemu_profile = naive\nposemu_seed = 3\n")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["file:     story.toml (seed 3, profile naive)"])
    pytester.runpytest("--posemu-profile", "robust").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (["--posemu-profile", "weird"], "", "*--posemu-profile: invalid choice: 'weird'*"),
        (["--posemu-seed", "-1"], "",
         "*--posemu-seed: must be an integer from 0 to 9223372036854775807, not -1*"),
        (["--posemu-seed", str(2**63)], "",
         f"*--posemu-seed: must be an integer from 0 to {2**63 - 1}, not {2**63}*"),
        (["--posemu-seed", "x"], "", "*--posemu-seed: not an integer: 'x'*"),
        ([], "posemu_profile = weird", "*posemu_profile: unknown 'weird' (one of robust, naive)*"),
        ([], "posemu_seed = -2", "*posemu_seed: must be an integer from 0 to *, not -2*"),
    ],
)
def test_bad_option_values_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], ini: str, message: str,
) -> None:
    pytester.makefile(".toml", sale=PLAIN_SALE)
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])

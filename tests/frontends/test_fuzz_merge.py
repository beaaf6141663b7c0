"""`posemu fuzz merge`: four shards merged are the unsharded campaign, file for file."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support import LIBRARY, ROOT, cli

BASE = LIBRARY / "sale_bank_timeout_no_reversal.toml"
CAMPAIGN = [str(BASE), "--runs", "34", "--seed", "1"]  # found in runs 0 (shard 1), 3 (4)
TIMINGS = ("jobs", "search_s", "runs_per_s", "shards")


def comparable(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary without what depends on the machine or the directory written to."""
    out = {k: v for k, v in summary.items() if k not in TIMINGS}
    out["findings"] = [{k: v for k, v in f.items() if k not in ("shrink_s", "file")}
                       for f in summary["findings"]]
    return out


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("campaign")
    from emulator.cli.main import main  # noqa: PLC0415

    assert main(["fuzz", *CAMPAIGN, "--out", str(root / "whole"), "--json"]) == 1
    parts = [root / f"shard{i}" for i in range(1, 5)]
    for i, part in enumerate(parts, start=1):
        main(["fuzz", *CAMPAIGN, "--shard", f"{i}/4", "--out", str(part), "--json"])
    return root / "whole", parts


def test_four_shards_merged_equal_the_unsharded_campaign(
    shards: tuple[Path, list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    whole, parts = shards
    capsys.readouterr()
    status, out, err = cli(capsys, "fuzz", "merge", *parts, "--out", tmp_path, "--json")
    assert (status, err) == (1, "")
    merged = json.loads(out)
    expected = json.loads((whole / "summary.json").read_text())
    assert comparable(merged) == comparable(expected)
    coverage = merged["coverage"]  # issue 27's counts added up too, not just copied
    assert any(coverage["points"].values())
    assert any(n for row in coverage["fault_steps"].values() for n in row.values())
    assert sum(coverage["points"].values()) > max(
        sum(json.loads((p / "summary.json").read_text())["coverage"]["points"].values())
        for p in parts)
    assert [f["run"] for f in merged["findings"]] == [0, 3]  # from shards 1 and 4
    assert [len(list(p.glob("*.toml"))) for p in parts] == [1, 0, 0, 1]
    assert all(f["verified"] for f in merged["findings"])
    files = sorted(p.name for p in whole.glob("*.toml"))
    assert files == sorted(p.name for p in tmp_path.glob("*.toml"))
    for name in files:  # byte for byte, the description included
        assert (tmp_path / name).read_bytes() == (whole / name).read_bytes()
    assert json.loads((tmp_path / "summary.json").read_text()) == merged


def test_a_liveness_campaigns_not_quiet_survives_the_merge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    # the bound too short for the settlement at 600 s: every run is not quiet
    campaign = ["fuzz", "--workload", "basic", "--liveness", "--horizon-s", "400",
                "--quiet-s", "200.3", "--runs", "2", "--causes", "1"]
    whole, parts = tmp_path / "whole", [tmp_path / "shard1", tmp_path / "shard2"]
    assert cli(capsys, *campaign, "--out", whole)[0] == 1
    for i, part in enumerate(parts, start=1):
        cli(capsys, *campaign, "--shard", f"{i}/2", "--out", part)
    status, out, _ = cli(capsys, "fuzz", "merge", *parts, "--out", tmp_path / "merged",
                         "--json")
    assert status == 1
    merged = json.loads(out)
    assert merged["anomaly_runs"]["not_quiet"] == {"runs": 2, "first": 0}
    found = [f for f in merged["findings"] if f["anomaly"] == "not_quiet"]
    assert [f["verified"] for f in found] == [True]
    assert (tmp_path / "merged" / "not_quiet.toml").read_bytes() == (
        whole / "not_quiet.toml").read_bytes()


def test_merge_without_out_prints_a_report(
    shards: tuple[Path, list[Path]], capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = cli(capsys, "--debug", "fuzz", "merge", *shards[1])
    assert status == 1
    assert out.startswith("posemu fuzz merge: 4 shards, 34 runs")
    assert "charged_shown_unpaid: in " in out


@pytest.mark.parametrize("case", ["missing", "twice", "other", "not_a_shard", "broken"])
def test_a_wrong_set_of_shards_is_one_line(
    case: str, shards: tuple[Path, list[Path]], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    whole, parts = shards
    dirs = {"missing": parts[:3], "twice": [*parts, parts[0]], "other": [*parts[:3], whole],
            "not_a_shard": [*parts[:3], tmp_path], "broken": [*parts[:3], tmp_path]}[case]
    if case == "broken":
        shutil.copy(parts[3] / "summary.json", tmp_path / "summary.json")
        data = json.loads((tmp_path / "summary.json").read_text())
        del data["coverage"]
        (tmp_path / "summary.json").write_text(json.dumps(data))
    status, out, err = cli(capsys, "fuzz", "merge", *dirs)
    assert (status, out) == (2, "")
    assert err.startswith("posemu: ")
    assert err.count("\n") == 1


def _doc_commands() -> list[list[str]]:
    """The posemu command lines of docs/fuzzing.md's CI and Kubernetes examples."""
    text = (ROOT / "docs" / "fuzzing.md").read_text(encoding="utf-8")
    section = text[text.index("## Campaigns over many machines"):text.index("## Measured")]
    section = section.replace("${{ matrix.shard }}", "2")
    section = section.replace("$((JOB_COMPLETION_INDEX + 1))", "2")
    section = re.sub(r"\n\s+--out", " --out", section)  # a folded YAML line
    blocks = re.findall(r"^```(?:yaml|sh)\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    found = re.findall(r"(?:\.venv/bin/)?posemu (fuzz [^\n|]*)", "".join(blocks))
    return [shlex.split(line) for line in found]


def test_the_ci_and_kubernetes_examples_use_valid_command_lines() -> None:
    from emulator.cli.main import build_parser  # noqa: PLC0415
    from emulator.fuzz.merge import build_parser as merge_parser  # noqa: PLC0415

    commands = _doc_commands()
    assert len([c for c in commands if c[1] == "merge"]) == 2  # CI, Kubernetes
    assert len([c for c in commands if "--shard" in c]) == 2
    for argv in commands:
        if argv[1] == "merge":
            args = merge_parser().parse_args(argv[2:])
            assert [p.name for p in args.shards] == [f"shard-{i}" for i in range(1, 5)]
        else:
            args = build_parser().parse_args(argv)
            assert (args.shard, args.seed, args.runs) == ("2/4", 7, 40000)

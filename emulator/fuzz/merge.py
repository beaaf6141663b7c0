"""``posemu fuzz merge DIR...``: the shards of one campaign, combined into what the whole
campaign would have written.

Each DIR is the ``--out`` of one ``posemu fuzz --shard I/N`` (its finding files and its
``summary.json``). The shards must be the same campaign (workload, profile, overrides,
seed, runs, causes) and together all N of them. Counts are added, coverage joined, and the
findings of a kind deduplicated by cause: the one from the earliest run first (the run the
whole campaign would have shrunk), then, up to ``causes``, the next earliest whose fault
kinds do not include a cause already kept. Each kept file is written again to ``--out``
with the description the whole campaign gives it, and run again to check it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

from devices.errors import UsageError, one_line
from emulator.fuzz.command import SUMMARY_FILE

_SAME = ("workload", "profile", "overrides", "seed", "causes")
_SAME_WHEN_GIVEN = ("firmware", "terminals", "liveness")  # a campaign's mode
EXIT_CLEAN, EXIT_FOUND, EXIT_INPUT = 0, 1, 2
_MAX_SUMMARY = 64 * 2**20


def build_parser() -> argparse.ArgumentParser:
    """``posemu fuzz merge DIR... [--out DIR] [--json]``."""
    from emulator.cli.main import _Parser  # noqa: PLC0415 - one-line errors, exit 2

    parser = _Parser(prog="posemu fuzz merge",
                     description="combine the --out directories of a campaign's shards")
    parser.add_argument("shards", nargs="+", type=Path, metavar="DIR",
                        help="the --out directory of each shard (with its summary.json)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="write the merged finding files and summary.json here")
    parser.add_argument("--json", action="store_true", help="the summary as one JSON object")
    parser.add_argument("--debug", action="store_true", help="accepted, as by every command")
    return parser


def read_summary(directory: Path) -> dict[str, Any]:
    """A shard's ``summary.json``; UsageError when it is missing or not one."""
    path = directory / SUMMARY_FILE
    try:
        if not path.is_file():
            raise UsageError(f"{path}: no such file: give the --out directory of a shard")
        with path.open("rb") as f:
            text = f.read(_MAX_SUMMARY + 1)
        if len(text) > _MAX_SUMMARY:
            raise UsageError(f"{path}: larger than {_MAX_SUMMARY // 2**20} MiB: not a summary")
        data = json.loads(text)
    except (OSError, ValueError, RecursionError) as exc:
        if isinstance(exc, UsageError):
            raise
        raise UsageError(f"{path}: not a posemu fuzz summary ({exc})") from exc
    if not isinstance(data, dict) or not all(k in data for k in (*_SAME, "shard", "runs")):
        raise UsageError(f"{path}: not a posemu fuzz summary")
    return data


def _shard(data: dict[str, Any], where: Path) -> tuple[int, int]:
    i, _, n = str(data["shard"]).partition("/")
    if not (i.isdigit() and n.isdigit()):
        raise UsageError(f"{where}: shard {data['shard']!r} is not I/N")
    return int(i), int(n)


def check_shards(summaries: list[tuple[Path, dict[str, Any]]]) -> int:
    """The number of shards N; UsageError unless they are 1/N to N/N of one campaign."""
    first_dir, first = summaries[0]
    seen: dict[int, Path] = {}
    total = _shard(first, first_dir)[1]
    for directory, data in summaries:
        for key in (*_SAME, *_SAME_WHEN_GIVEN):
            if data.get(key) != first.get(key):
                raise UsageError(f"{directory}: another campaign than {first_dir} ({key} "
                                 f"{json.dumps(data[key])[:60]} != {json.dumps(first[key])[:60]})")
        i, n = _shard(data, directory)
        if n != total:
            raise UsageError(f"{directory}: shard {i}/{n} of another split than {first_dir} "
                             f"(of {total})")
        if i in seen:
            raise UsageError(f"{directory}: shard {i}/{n} given twice (also {seen[i]})")
        seen[i] = directory
    missing = sorted(set(range(1, total + 1)) - set(seen))
    if missing:
        raise UsageError(f"shard{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(f'{i}/{total}' for i in missing)} missing")
    return total


def _cause(finding: dict[str, Any]) -> frozenset[str]:
    return frozenset(str(f["fault"]) for f in finding["faults"])


def merge_findings(summaries: list[dict[str, Any]], causes: int,
                   kinds: list[str]) -> list[dict[str, Any]]:
    """Per anomaly kind (in ``kinds`` order), up to ``causes`` findings of distinct causes,
    earliest run first."""
    merged: list[dict[str, Any]] = []
    for kind in kinds:
        candidates = sorted((f for s in summaries for f in s["findings"]
                             if f["anomaly"] == kind), key=lambda f: int(f["run"]))
        kept: list[frozenset[str]] = []
        for finding in candidates:
            if len(kept) == causes:
                break
            if not any(c <= _cause(finding) for c in kept):
                kept.append(_cause(finding))
                merged.append(finding)
    return merged


def merge(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary the whole campaign would have written (timings: the shards' sums)."""
    first = summaries[0]
    anomaly_runs: dict[str, dict[str, int]] = {}
    for data in summaries:
        for kind, seen in data["anomaly_runs"].items():
            total = anomaly_runs.setdefault(kind, {"runs": 0, "first": int(seen["first"])})
            total["runs"] += int(seen["runs"])
            total["first"] = min(total["first"], int(seen["first"]))
    from emulator.scenario.catalogue import EXPECTABLE  # noqa: PLC0415

    kinds = [k for k in EXPECTABLE if k in anomaly_runs]  # not_quiet too
    fault_kinds = list(first["coverage"]["faults"])  # those the campaign draws, in order
    end_states = list(first["coverage"]["end_states"])
    fired: Counter[str] = Counter()
    states: Counter[str] = Counter()
    points: Counter[str] = Counter()
    pairs: dict[str, Counter[str]] = {k: Counter() for k in first["coverage"].get(
        "fault_steps", {})}
    for data in summaries:
        fired.update(data["coverage"]["faults"])
        states.update(data["coverage"]["end_states"])
        points.update(data["coverage"].get("points", {}))
        for kind, row in data["coverage"].get("fault_steps", {}).items():
            pairs[kind].update(row)
    columns = list(next(iter(first["coverage"].get("fault_steps", {}).values()), {}))
    coverage: dict[str, Any] = {
        "faults": {k: fired[k] for k in fault_kinds},
        "end_states": {s: states[s] for s in end_states},
        "fault_steps": {k: {c: row[c] for c in columns} for k, row in pairs.items()},
        "points": {p: points[p] for p in first["coverage"].get("points", {})},
    }
    checked = sum(int(s.get("determinism", {}).get("checked", 0)) for s in summaries)
    differences = sum(int(s.get("determinism", {}).get("differences", 0)) for s in summaries)
    runs = sum(int(s["runs"]) for s in summaries)
    search_s = round(sum(float(s["search_s"]) for s in summaries), 3)
    command = re.sub(r" --shard \d+/\d+", "", str(first.get("command") or ""))
    from emulator.fuzz.campaign import coverage_warnings  # noqa: PLC0415
    from emulator.fuzz.sometimes import IDLE  # noqa: PLC0415

    step_kinds = tuple(c for c in columns if c != IDLE)
    return {
        **{k: first[k] for k in ("workload", "profile") if k in first},
        **{k: first[k] for k in ("firmware",) if k in first},
        **{k: first[k] for k in ("overrides", "seed")},
        "shard": "1/1", "jobs": sum(int(s["jobs"]) for s in summaries), "runs": runs,
        **{k: first[k] for k in ("terminals", "liveness") if k in first},
        "search_s": search_s, "runs_per_s": round(runs / search_s, 1) if search_s else None,
        "anomaly_runs": {k: anomaly_runs[k] for k in kinds},
        "findings": merge_findings(summaries, int(first["causes"]), kinds),
        "coverage": coverage,
        "warnings": coverage_warnings(runs, coverage["faults"], coverage["end_states"],
                                      step_kinds, coverage["fault_steps"], coverage["points"]),
        "errors": sorted((e for s in summaries for e in s["errors"]), key=lambda e: e["run"]),
        "determinism": {"checked": checked, "differences": differences},
        "interrupted": any(s.get("interrupted") for s in summaries),
        "causes": first["causes"], "command": command,
        "shards": len(summaries),
    }


def write_merged(merged: dict[str, Any], out: Path) -> None:
    """Each kept finding's file, described as the whole campaign describes it, to ``out``;
    each is run again (``verified``)."""
    from emulator.engine.trace import write_atomic  # noqa: PLC0415
    from emulator.fuzz.findings import (  # noqa: PLC0415
        CARD_NUMBERS,
        describe_finding,
        to_toml,
        verify,
    )

    out.mkdir(parents=True, exist_ok=True)
    seen: Counter[str] = Counter()
    for finding in merged["findings"]:
        source = finding["file"]
        if not source:
            raise UsageError(f"finding of run {finding['run']} has no file: was the shard "
                             "run with --out?")
        try:
            doc = tomllib.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"{source}: cannot read the finding ({exc})") from exc
        kind = finding["anomaly"]
        found = (merged["anomaly_runs"][kind]["runs"], merged["runs"])
        shrunk = (finding["faults_before"], finding["faults_after"], finding["shrink_runs"])
        how = merged["command"] or f"posemu fuzz --seed {merged['seed']} --runs {found[1]}"
        mode = str(doc.get("description", "")).partition(CARD_NUMBERS + "\n")[2]  # fleet, liveness
        doc["description"] = describe_finding(kind, merged["seed"], (1, 1), found,
                                              finding["run"], shrunk, merged["workload"],
                                              how) + mode
        seen[kind] += 1
        path = out / (kind + (f"_{seen[kind]}" if seen[kind] > 1 else "") + ".toml")
        write_atomic(path, to_toml(doc).encode("utf-8"))
        finding["file"] = str(path)
        finding["verified"] = verify(path, kind, int(merged.get("terminals") or 1))
    write_atomic(out / SUMMARY_FILE, json.dumps(merged, indent=1).encode())


def show(merged: dict[str, Any]) -> None:
    """The merged campaign, for a person."""
    print(f"posemu fuzz merge: {merged['shards']} shards, {merged['runs']} runs "
          f"({merged['search_s']:.1f} s searching in all), seed {merged['seed']}, "
          f"workload {merged['workload']}, profile {merged['profile']}")
    if not merged["anomaly_runs"]:
        print("no anomaly found")
    for kind, seen in merged["anomaly_runs"].items():
        print(f"{kind}: in {seen['runs']} run{'s' if seen['runs'] != 1 else ''}, "
              f"first run {seen['first']}")
        for f in (f for f in merged["findings"] if f["anomaly"] == kind):
            print(f"  run {f['run']}: {f['faults_before']} faults shrunk to "
                  f"{f['faults_after']}" + (f" -> {f['file']}" if f["file"] else ""))
    for error in merged["errors"]:
        print(f"error in run {error['run']}: {error['error']}")
    fired, states = merged["coverage"]["faults"], merged["coverage"]["end_states"]
    print(f"coverage: {sum(1 for n in fired.values() if n)} of {len(fired)} fault kinds "
          f"fired, {sum(1 for n in states.values() if n)} of {len(states)} end states reached")
    for warning in merged["warnings"]:
        print(f"warning: {warning}")
    if merged["interrupted"]:
        print("interrupted: a shard was interrupted; this is the campaign so far")


def main(argv: list[str]) -> int:
    """``posemu fuzz merge``: 0 no anomaly, 1 anomalies (or errors), 2 bad input."""
    args = build_parser().parse_args(argv)
    try:
        summaries = [(d, read_summary(d)) for d in args.shards]
        check_shards(summaries)
        try:
            merged = merge([s for _, s in summaries])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UsageError(f"a summary.json is not one posemu fuzz wrote ({exc!r})") from exc
        if args.out is not None:
            write_merged(merged, args.out)
    except UsageError as exc:
        print(f"posemu: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_INPUT
    try:
        if args.json:
            print(json.dumps(merged), flush=True)
        else:
            show(merged)
            sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly
        from emulator.cli.main import EXIT_IO, _silence_stdout  # noqa: PLC0415

        _silence_stdout()
        return EXIT_IO
    return EXIT_FOUND if merged["anomaly_runs"] or merged["errors"] else EXIT_CLEAN

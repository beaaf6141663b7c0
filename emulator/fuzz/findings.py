"""Findings as scenario files, the report and the JSON summary."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from emulator.engine.fleet import run_fleet
from emulator.engine.trace import write_atomic
from emulator.engine.world import run_scenario
from emulator.fuzz.campaign import Finding, Report
from emulator.fuzz.liveness import NOT_QUIET
from emulator.fuzz.sometimes import IDLE, POINTS
from emulator.fuzz.workload import Fault, draw
from emulator.scenario.load import load_scenario

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
_HEAD = ("format", "name", "description", "seed", "start", "until_s")


def to_toml(doc: dict[str, Any]) -> str:
    """A scenario document as TOML: scalars, then tables, arrays of tables, [expect]."""
    lines: list[str] = []
    for key in _HEAD:
        if key in doc:
            lines.append(f"{_key(key)} = {_value(doc[key], multiline=key == 'description')}")
    for key, value in doc.items():
        if key in _HEAD or key == "expect":
            continue
        if isinstance(value, dict):
            lines += ["", f"[{_key(key)}]", *_pairs(value)]
        elif isinstance(value, list):
            for table in value:
                lines += ["", f"[[{_key(key)}]]", *_pairs(table)]
    if "expect" in doc:
        lines += ["", "[expect]", *_pairs(doc["expect"])]
    return "\n".join(lines) + "\n"


def _pairs(table: dict[str, Any]) -> list[str]:
    return [f"{_key(k)} = {_value(v)}" for k, v in table.items() if v is not None]


def _key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key)


def _value(value: Any, multiline: bool = False) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        if multiline and "\n" in value:
            body = value.replace("\\", "\\\\").replace('"', '\\"')
            return f'"""\n{body}"""'
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _seconds(value: float) -> str:
    return f"{value:g} s"


def describe(fault: Fault) -> str:
    """``bank.timeout on bank.request_received (2nd, step s1) for 45 s: delay_s=45``."""
    if "on" in fault:
        extra = [f"#{fault['nth']}"] if fault.get("nth", 1) != 1 else []
        extra += [f"step {fault['step']}"] if "step" in fault else []
        when = f"on {fault['on']}" + (f" ({', '.join(extra)})" if extra else "")
    else:
        when = f"at {_seconds(fault['at_s'])}"
    text = f"{fault['fault']} {when}"
    if "for_s" in fault:
        text += f" for {_seconds(fault['for_s'])}"
    params = [f"{k}={_value(v) if isinstance(v, bool) else v}" for k, v in fault.items()
              if k not in ("fault", "on", "at_s", "nth", "step", "for_s")]
    return text + (f": {', '.join(params)}" if params else "")


# ------------------------------------------------------------------ files


def document(report: Report, finding: Finding) -> dict[str, Any]:
    """The scenario file of a finding: the workload, the minimal faults, [expect]."""
    config, candidate = report.config, finding.shrunk.candidate
    runs = report.anomaly_runs()[finding.anomaly]
    how = report.command or f"posemu fuzz --seed {config.seed} --runs {report.runs}"
    description = describe_finding(
        finding.anomaly, config.seed, config.shard, (len(runs), report.runs), finding.run,
        (finding.before, len(candidate.faults), finding.shrunk.runs),
        report.workload.label, how)
    if report.workload.terminals > 1:
        description += (
            f"Fleet: the run was a fleet of {report.workload.terminals} terminals; "
            f"posemu fleet FILE --terminals {report.workload.terminals} shows it, "
            "[expect] is what posemu run shows.\n")
    live = report.workload.liveness
    if live is not None:
        who = "every terminal" if report.workload.terminals > 1 else "the terminal"
        description += (
            f"Liveness: faults stop at {live.horizon_s:g} s and {who} must be quiet "
            f"{live.quiet_s:g} s later ([liveness]); posemu run FILE judges it.\n")
        if finding.anomaly == NOT_QUIET:
            description += f"Not quiet at {live.end_s:g} s: {finding.not_quiet}.\n"
    tables = _tables(report)
    return {  # no name: a scenario is named after its file
        "format": 1, "description": description, "seed": candidate.seed,
        **tables, "faults": [dict(f) for f in candidate.faults],
        "expect": {"anomalies": finding.anomalies, "end_states": finding.end_states,
                   "balances": finding.balances},
    }


def _tables(report: Report) -> dict[str, Any]:
    """The workload's tables a written file holds (it has its own head)."""
    return {k: v for k, v in report.workload.tables.items()
            if k not in ("format", "name", "description", "seed")}


CARD_NUMBERS = "Card numbers are generated test numbers, not those of the base scenario."
"""The last line of a finding's description before what its campaign's mode adds."""


def describe_finding(anomaly: str, seed: int, shard: tuple[int, int],
                     found: tuple[int, int], first: int, shrunk: tuple[int, int, int],
                     label: str, how: str) -> str:
    """A finding file's description: ``found`` = (runs showing it, runs), ``shrunk`` =
    (faults before, faults after, shrink runs)."""
    part = "" if shard == (1, 1) else f" (shard {shard[0]}/{shard[1]})"
    return (
        f"{anomaly}: found by posemu fuzz with campaign seed {seed}{part}, "
        f"in {found[0]} of {found[1]} runs, first in run {first}; shrunk from "
        f"{shrunk[0]} faults to {shrunk[1]} ({shrunk[2]} runs).\n"
        f"Workload: {label}. Search again: {how}\n"
        f"{CARD_NUMBERS}\n"
    )


def write_findings(report: Report, out: Path) -> None:
    """One file per finding, named after its anomaly; each is run again to check it."""
    write_differences(report, out)
    writer = FindingWriter(out)
    for finding in report.findings:
        writer(report, finding)


def write_differences(report: Report, out: Path) -> None:
    """Each run ``--check-determinism`` saw hash differently, to run again and compare."""
    if report.differences:
        out.mkdir(parents=True, exist_ok=True)
    for diff in report.differences:  # the run itself, to run again and compare
        candidate = draw(report.workload, report.config.seed, diff.run)
        tables = _tables(report)
        doc = {"format": 1, "description": (
            f"Run {diff.run} of posemu fuzz campaign seed {report.config.seed}: its trace "
            f"hashed {diff.first} in one process and {diff.second} in another.\n"),
            "seed": candidate.seed, **tables, "faults": [dict(f) for f in candidate.faults]}
        write_atomic(out / f"nondeterministic_run{diff.run}.toml", to_toml(doc).encode())


class FindingWriter:
    """Writes each finding to ``out`` as it is confirmed: ``anomaly.toml``, then
    ``anomaly_2.toml``, ... (a cause of a kind is always shrunk after the ones before)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.seen: Counter[str] = Counter()

    def __call__(self, report: Report, finding: Finding) -> None:
        """Write ``finding``'s file and run it again to check that it reproduces."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.seen[finding.anomaly] += 1
        n = self.seen[finding.anomaly]
        path = self.out / (finding.anomaly + (f"_{n}" if n > 1 else "") + ".toml")
        write_atomic(path, to_toml(document(report, finding)).encode("utf-8"))
        finding.path = str(path)
        finding.verified = verify(path, finding.anomaly, report.workload.terminals)


def verify(path: Path, anomaly: str, terminals: int) -> bool:
    """Whether the finding file at ``path`` passes ``posemu run`` and still shows
    ``anomaly`` as its campaign's runs did (a fleet of ``terminals``; a liveness run's
    file carries its ``[liveness]``)."""
    scenario = load_scenario(path)
    result = run_scenario(scenario)
    if terminals > 1:
        return result.passed and anomaly in run_fleet(scenario, terminals).anomaly_counts
    return result.passed and anomaly in {a.kind for a in result.anomalies}


# ------------------------------------------------------------------ output


def summary(report: Report) -> dict[str, Any]:
    """The ``--json`` object."""
    config = report.config
    return {
        "workload": report.workload.label,
        "profile": report.workload.tables["terminal"].get("profile"),
        **({"firmware": fw} if (fw := report.workload.tables["terminal"].get("firmware")) else {}),
        "overrides": {k: v for k, v in report.workload.tables["terminal"].items()
                      if k not in ("profile", "firmware")},
        "seed": config.seed, "shard": f"{config.shard[0]}/{config.shard[1]}",
        "jobs": config.jobs, "runs": report.runs, "terminals": report.workload.terminals,
        "liveness": None if report.workload.liveness is None
        else msgspec.structs.asdict(report.workload.liveness),
        "search_s": round(report.search_s, 3),
        "runs_per_s": round(report.runs / report.search_s, 1) if report.search_s else None,
        "anomaly_runs": {k: {"runs": len(v), "first": v[0]}
                         for k, v in report.anomaly_runs().items()},
        "findings": [
            {"anomaly": f.anomaly, "run": f.run, "faults_before": f.before,
             "faults_after": len(f.shrunk.candidate.faults), "seed": f.shrunk.candidate.seed,
             "faults": list(f.shrunk.candidate.faults), "anomalies": f.anomalies,
             "end_states": f.end_states, "shrink_runs": f.shrunk.runs,
             "shrink_s": round(f.shrunk.seconds, 3), "file": f.path, "verified": f.verified}
            for f in report.findings
        ],
        "coverage": {"faults": report.fired(), "end_states": report.end_states(),
                     "fault_steps": report.pairs(), "points": report.points()},
        "warnings": report.warnings(),
        "errors": [{"run": i, "error": e} for i, e in report.errors()],
        "determinism": {"checked": report.checked, "differences": len(report.differences)},
        "interrupted": report.interrupted,
        "causes": config.causes,
        "command": report.command,
    }


def show(report: Report) -> None:
    """The human report on standard output."""
    config, runs = report.config, report.runs
    rate = runs / report.search_s if report.search_s else 0.0
    shard = "" if config.shard == (1, 1) else f", shard {config.shard[0]}/{config.shard[1]}"
    print(f"posemu fuzz: {runs} runs in {report.search_s:.1f} s ({rate:.0f} runs/s, "
          f"{config.jobs} job{'s' if config.jobs > 1 else ''}), seed {config.seed}{shard}, "
          f"workload {report.workload.label}, {_runs_as(report.workload.tables['terminal'])}"
          + _mode(report))
    failing = report.anomaly_runs()
    if not failing:
        print("no anomaly found")
    for anomaly, indices in failing.items():
        print(f"{anomaly}: in {_plural(len(indices), 'run')}, first run {indices[0]}")
        for f in (f for f in report.findings if f.anomaly == anomaly):
            faults = f.shrunk.candidate.faults
            print(f"  run {f.run}: {_plural(f.before, 'fault')} shrunk to {len(faults)} in "
                  f"{f.shrunk.seconds:.1f} s ({f.shrunk.runs} runs), seed "
                  f"{f.shrunk.candidate.seed}")
            for fault in faults:
                print(f"    {describe(fault)}")
            if f.path is not None:
                print(f"    -> {f.path}" + ("" if f.verified else " (NOT reproduced!)"))
    for index, error in report.errors():
        print(f"error in run {index}: {error}")
    if report.checked:
        print(f"determinism: {_plural(report.checked, 'run')} run again in two fresh "
              f"processes, {len(report.differences)} with a different trace")
    fired, states = report.fired(), report.end_states()
    print(f"coverage: {sum(1 for n in fired.values() if n)} of {len(fired)} fault kinds "
          f"fired, {sum(1 for n in states.values() if n)} of {len(states)} end states reached")
    print("  fired: " + ", ".join(f"{k} {n}" for k, n in fired.items() if n))
    print("  end states: " + ", ".join(f"{s} {n}" for s, n in states.items()))
    show_pairs(report)
    points = report.points()
    width = max(len(p) for p in points)
    print("  sometimes points (runs that reached each):")
    for name, n in points.items():
        print(f"    {name:<{width}} {n:>9}  {POINTS[name].where}")
    for warning in report.warnings():
        print(f"warning: {warning}")
    if report.interrupted:
        found = _plural(len(report.findings), "finding")
        print(f"interrupted: the {_plural(runs, 'run')} and {found} above are the campaign so far")



def _mode(report: Report) -> str:
    workload = report.workload
    if workload.terminals > 1:
        return f", fleets of {workload.terminals} terminals"
    live = workload.liveness
    return "" if live is None else (f", liveness (faults stop at {live.horizon_s:g} s, quiet "
                                    f"within {live.quiet_s:g} s)")


def show_pairs(report: Report) -> None:
    """The fault kind x step kind table: runs in which the fault started during each."""
    pairs = report.pairs()
    columns = [*report.step_kinds(), IDLE]
    width = max(len(k) for k in pairs)
    cells = [max(7, len(c)) for c in columns]
    print("  fault kind x step kind it started in (runs):")
    print(f"    {'':<{width}} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, cells,
                                                                       strict=True)))
    for kind, row in pairs.items():
        print(f"    {kind:<{width}} " + " ".join(f"{row[c]:>{w}}" for c, w in zip(
            columns, cells, strict=True)))


def _runs_as(terminal: dict[str, Any]) -> str:
    """``profile robust``, or ``firmware module:factory`` for a plug-in."""
    if "firmware" in terminal:
        return f"firmware {terminal['firmware']}"
    return f"profile {terminal['profile']}"

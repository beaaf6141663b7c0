"""A fleet's report page: counts, not lanes.

How many steps ended in each of ``BUCKETS`` slices of simulated time, by end state (the
oracle's verdict for each terminal, as the fleet is judged), timed by the fleet's trace
file read a line at a time (``terminal.txn_done``), drawn as stacked bars. From the
fleet's result: its end states and anomalies counted, the first anomalies found, and the
balances.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from devices.errors import TraceError
from emulator.money import format_minor
from emulator.report.html.page import IndexEntry, page

if TYPE_CHECKING:
    from emulator.engine.fleet import FleetResult

__all__ = ["BUCKETS", "fleet_page", "over_time"]

BUCKETS = 40
_COLOURS = ("#2f9e44", "#1971c2", "#f08c00", "#e03131", "#7048e8", "#0b7285", "#868e96",
            "#c2255c", "#5c940d", "#e8590c")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def over_time(trace: Path, until: float = 0.0,
              end_states: Mapping[tuple[str, str], str] | None = None,
              ) -> tuple[float, list[Counter[str]]]:
    """The run's end (``until``, or its last txn_done if later) and, per slice of the time
    to then, how many steps ended in it: by their end state when ``end_states`` gives
    (terminal, step) -> end state (a step that never showed done counts at the end),
    else by the result the terminal showed (``terminal.txn_done``)."""
    done: dict[tuple[str, str], tuple[float, str]] = {}
    end = until
    try:
        with trace.open("rb") as file:
            next(file, None)  # the header
            for raw in file:  # only the txn_done lines are parsed: a fleet's is long
                if b'"txn_done"' not in raw:
                    continue
                event = json.loads(raw)
                t, fields = float(event["t"]), event["fields"]
                end = max(end, t)
                done[(str(fields.get("tid", "")), str(fields.get("step", "")))] = (
                    t, str(fields.get("result", "?")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TraceError(f"{trace}: cannot read the fleet's trace: {exc}") from exc
    ended: list[tuple[float, str]]
    if end_states:
        ended = [(done.get(key, (end, ""))[0], state) for key, state in end_states.items()]
    else:
        ended = list(done.values())
    buckets: list[Counter[str]] = [Counter() for _ in range(BUCKETS)]
    width = end / BUCKETS if end > 0 else 1.0
    for t, name in ended:
        buckets[min(BUCKETS - 1, int(t / width))][name] += 1
    return end, buckets


def _chart(end: float, buckets: list[Counter[str]]) -> str:
    names = sorted({name for b in buckets for name in b})
    colour = {name: _COLOURS[i % len(_COLOURS)] for i, name in enumerate(names)}
    tallest = max((sum(b.values()) for b in buckets), default=0) or 1
    w, h, left, bar = 880, 240, 60, 880 // BUCKETS
    parts = []
    for k, bucket in enumerate(buckets):
        y = float(h)
        for name in names:
            n = bucket.get(name, 0)
            if not n:
                continue
            height = n / tallest * (h - 20)
            y -= height
            t0, t1 = end / BUCKETS * k, end / BUCKETS * (k + 1)
            parts.append(
                f'<rect class="bar" data-state="{_e(name)}" x="{left + k * bar}" y="{y:.1f}" '
                f'width="{bar - 2}" height="{height:.1f}" fill="{colour[name]}"><title>'
                f"{t0:.1f}-{t1:.1f} s: {n:,} {_e(name)}</title></rect>")
    axis = (f'<line x1="{left}" y1="{h}" x2="{left + w}" y2="{h}" stroke="#5b6475"/>'
            f'<text x="{left}" y="{h + 16}" font-size="11">0 s</text>'
            f'<text x="{left + w}" y="{h + 16}" font-size="11" text-anchor="end">'
            f"{end:.1f} s</text>"
            f'<text x="{left - 6}" y="24" font-size="11" text-anchor="end">{tallest:,}</text>')
    legend = "".join(
        f'<span class="key"><i style="background:{colour[n]}"></i>{_e(n)}</span>' for n in names)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="fleet-chart" width="{left + w + 10}"'
            f' height="{h + 24}" role="img" aria-label="results over time">{axis}'
            f'{"".join(parts)}</svg><p class="legend">{legend}</p>')


def _counts(title: str, counts: Counter[str], key: str) -> str:
    rows = "".join(f'<tr data-{key}="{_e(k)}"><td>{_e(k)}</td><td class="num">{n:,}</td></tr>'
                   for k, n in sorted(counts.items()))
    return (f'<h2>{_e(title)}</h2><table class="counts {key}"><tbody>'
            f'{rows or "<tr><td>none</td></tr>"}</tbody></table>')


def fleet_page(result: FleetResult, trace: Path, entry: IndexEntry | None = None,
               end_states: Mapping[tuple[str, str], str] | None = None) -> str:
    """The summary page of a fleet run whose trace is ``trace``; ``end_states``: each
    (terminal, step)'s, for the chart (else it counts the results the terminals showed)."""
    end, buckets = over_time(trace, result.sim_time_s, end_states)
    by = "end state" if end_states else "the result shown"
    s = result.scenario
    first = "".join(f"<li>{_e(a.terminal)} {_e(a.step)}: {_e(a.kind)}: {_e(a.detail)}</li>"
                    for a in result.anomalies)
    before = result.balances_before_minor
    balances = "".join(
        f'<tr><td>{_e(k)}</td><td class="num">{format_minor(before.get(k, 0))}</td>'
        f'<td class="num">{format_minor(v)}</td></tr>'
        for k, v in result.balances_minor.items())
    verdict = "fail" if result.anomaly_total else "pass"
    body = (
        f'<header><h1>{_e(s.name)}: fleet of {result.terminals:,} terminals</h1>'
        f'<p class="meta"><code>{_e(s.path or "")}</code> · '
        f'{"firmware" if s.firmware else "profile"} <b>{_e(s.runs_as)}</b> · '
        f"seed {s.seed} · {result.transactions:,} transactions · {result.events:,} events · "
        f"{result.sim_time_s:.2f} simulated s</p>"
        f'<p class="verdict {verdict}" id="verdict">{result.anomaly_total:,} anomalies</p>'
        '<p class="back"><a href="index.html">all reports</a></p></header>'
        f'<section id="over-time"><h2>Steps ended, by {by}, over simulated time</h2>'
        f"{_chart(end, buckets)}</section>"
        f'<section id="counts">{_counts("End states", result.end_states, "state")}'
        f'{_counts("Anomalies", result.anomaly_counts, "anomaly")}'
        + (f"<h3>First anomalies</h3><ul>{first}</ul>" if first else "")
        + '</section><section id="balances"><h2>Balances</h2><table><thead><tr>'
        "<th>account</th><th>before</th><th>after</th></tr></thead>"
        f"<tbody>{balances}</tbody></table></section>")
    return page(f"{s.name}: fleet of {result.terminals}", body, entry)

"""The report's pages: one self-contained HTML file per run, and an index.

A page holds everything inline (style, a few lines of script, the SVG, receipts' images as
``data:`` URIs): it opens from disk with no network. Sections: the verdict and what
failed, the steps, balances before and after, each anomaly with what ``posemu explain``
says of it and the knobs that prevent it, the sequence diagram (simulated time, or idle
time compressed), the receipts, and every event of the trace.
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass

from emulator.engine.trace import Event
from emulator.judge.result import Result
from emulator.money import format_minor
from emulator.report.html.diagram import diagram
from emulator.report.html.receipts import jobs_of, receipt_html
from emulator.report.html.style import CSS, SCRIPT

__all__ = ["ENTRY_META", "IndexEntry", "index_page", "page", "scenario_page"]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


ENTRY_META = "posemu-entry"
"""The name of the ``<meta>`` that holds a page's index entry as JSON (read back by
:func:`~emulator.report.html.writer.write_index`)."""


def page(title: str, body: str, entry: IndexEntry | None = None) -> str:
    """A whole HTML document around ``body``, with the report's style and script."""
    meta = "" if entry is None else (
        f'<meta name="{ENTRY_META}" content="{_e(json.dumps(dataclasses.asdict(entry)))}">')
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">{meta}'
            f"<title>{_e(title)}</title><style>{CSS}</style></head>"
            f'<body>{body}<script>{SCRIPT}</script></body></html>\n')


def _money(minor: int | None) -> str:
    return "" if minor is None else format_minor(minor)


def _steps(result: Result) -> str:
    rows = "".join(
        f'<tr data-step="{_e(s.id)}"><td>{_e(s.id)}</td><td>{_e(s.do)}</td>'
        f'<td class="num">{_money(s.amount_minor)}</td>'
        f'<td class="state {_e(s.end_state)}">{_e(s.end_state)}</td><td>{_e(s.stan)}</td>'
        f"<td>{_e(s.rrn)}</td></tr>"
        for s in result.steps)
    return ('<section id="steps"><h2>Steps</h2><table><thead><tr><th>step</th><th>do</th>'
            '<th>amount</th><th>end state</th><th>STAN</th><th>RRN</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></section>")


def _balances(result: Result) -> str:
    before, after = result.balances_before_minor, result.balances_minor
    names = list(dict.fromkeys([*before, *after]))
    rows = []
    for name in names:
        b, a = before.get(name, 0), after.get(name, 0)
        change = a - b
        css = "up" if change > 0 else "down" if change < 0 else ""
        sign = "+" if change > 0 else ""
        rows.append(f'<tr data-account="{_e(name)}"><td>{_e(name)}</td>'
                    f'<td class="num">{format_minor(b)}</td><td class="num">{format_minor(a)}'
                    f'</td><td class="num {css}">{sign}{format_minor(change)}</td></tr>')
    return ('<section id="balances"><h2>Balances</h2><table><thead><tr><th>account</th>'
            '<th>before</th><th>after</th><th>change</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></section>')


def _anomalies(result: Result) -> str:
    from emulator.cli.main import explain_data  # noqa: PLC0415  (the ``posemu explain`` text)

    if not result.anomalies:
        return '<section id="anomalies"><h2>Anomalies</h2><p class="none">none</p></section>'
    items = []
    for n, anomaly in enumerate(result.anomalies):
        about = explain_data(anomaly.kind)
        knobs = "".join(
            f'<li class="knob"><code>{_e(k["name"])}</code>: robust <code>'
            f'{_e(json.dumps(k["robust"]))}</code> ({_e(k["robust_means"])}) prevents it; '
            f'naive <code>{_e(json.dumps(k["naive"]))}</code> ({_e(k["naive_means"])}) lets '
            f'it happen.<br><span class="help">{_e(k["help"])}</span></li>'
            for k in about["knobs"])
        knobs = f"<ul>{knobs}</ul>" if knobs else "<p>no profile knob guards against it</p>"
        items.append(
            f'<article class="anomaly" id="anomaly-{n}" data-kind="{_e(anomaly.kind)}">'
            f"<h3>⚠ {_e(anomaly.kind)} at {_e(anomaly.step)}</h3>"
            f'<p class="detail">{_e(anomaly.detail)}</p>'
            f'<p class="explain"><b>means:</b> {_e(about["meaning"])}'
            + (f'<br><b>story:</b> seed story “{_e(about["story"])}”' if about["story"] else "")
            + f"</p><p><b>prevented by:</b></p>{knobs}</article>")
    return f'<section id="anomalies"><h2>Anomalies</h2>{"".join(items)}</section>'


def _diagrams(result: Result) -> str:
    events = result.trace.events
    compressed = diagram(events, result.anomalies, compress=True)
    plain = diagram(events, result.anomalies, compress=False)
    return ('<section id="diagram"><h2>Sequence</h2><input type="checkbox" id="compress" '
            'checked><label class="toggle" for="compress"> compress idle time (gaps over '
            '5 s drawn short)</label><div class="diagrams">'
            f"{compressed}{plain}</div>"
            '<pre id="event" class="event" aria-live="polite">click an arrow or a dot '
            "for its event</pre></section>")


def _trace_table(events: Sequence[Event]) -> str:
    rows = "".join(
        f'<tr id="ev-{i}"><td class="num">{e.t:.3f}</td><td>{_e(e.name)}</td>'
        f"<td><code>{_e(json.dumps(e.fields, sort_keys=True))}</code></td></tr>"
        for i, e in enumerate(events))
    return (f'<section id="trace"><details><summary>Trace: {len(events)} events</summary>'
            '<table class="trace"><thead><tr><th>t (s)</th><th>event</th><th>fields</th>'
            f"</tr></thead><tbody>{rows}</tbody></table></details></section>")


def scenario_page(result: Result, jobs: Sequence[bytes], entry: IndexEntry | None = None) -> str:
    """One run's report page (``entry``: its line in the index, kept in the page)."""
    s = result.scenario
    verdict = result.verdict
    failures = "".join(f"<li>{_e(f)}</li>" for f in result.failures)
    receipts = "".join(receipt_html(job) for job in jobs_of(result.trace.events, jobs))
    header = (
        f'<header><h1>{_e(s.name)}</h1><p class="meta"><code>{_e(s.path or "")}</code> · '
        f"{'firmware' if s.firmware else 'profile'} <b>{_e(s.runs_as)}</b> · seed {s.seed} · "
        f"{result.events} events · "
        f"{result.sim_time_s:.2f} simulated s · trace sha256 <code>"
        f'{_e(result.trace_sha256[:16])}…</code></p><p class="verdict {verdict}" '
        f'id="verdict">verdict {verdict.upper()}</p>'
        + (f'<ul class="failures">{failures}</ul>' if failures else "")
        + (f'<p class="description">{_e(s.description)}</p>' if s.description else "")
        + '<p class="back"><a href="index.html">all scenarios</a></p></header>')
    body = (header + _steps(result) + _balances(result) + _anomalies(result)
            + _diagrams(result)
            + '<section id="receipts"><h2>Receipts</h2><div class="receipts">'
            + (receipts or '<p class="none">no print job</p>') + "</div></section>"
            + _trace_table(result.trace.events))
    return page(f"{s.name}: {verdict}", body, entry)


@dataclass(frozen=True)
class IndexEntry:
    """One line of the index: a page and what it reports."""

    href: str
    name: str
    path: str
    profile: str
    seed: int
    verdict: str
    anomalies: tuple[str, ...]
    events: int


def index_page(entries: Sequence[IndexEntry], title: str = "posemu report") -> str:
    """The index: one row per page, failed ones first marked."""
    passed = sum(e.verdict == "pass" for e in entries)
    rows = "".join(
        f'<tr class="{_e(e.verdict)}"><td><a href="{_e(e.href)}">{_e(e.name)}</a></td>'
        f"<td><code>{_e(e.path)}</code></td><td>{_e(e.profile)}</td>"
        f'<td class="num">{e.seed}</td><td class="verdict {_e(e.verdict)}">'
        f"{_e(e.verdict.upper())}</td><td>{_e(', '.join(e.anomalies) or '-')}</td>"
        f'<td class="num">{e.events}</td></tr>'
        for e in entries)
    body = (f"<header><h1>{_e(title)}</h1><p class=\"meta\">{len(entries)} report(s): "
            f"{passed} passed, {len(entries) - passed} failed</p></header>"
            '<table class="index"><thead><tr><th>scenario</th><th>file</th><th>profile</th>'
            "<th>seed</th><th>verdict</th><th>anomalies</th><th>events</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")
    return page(title, body)

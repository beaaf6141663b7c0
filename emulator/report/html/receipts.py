"""The report's receipts: each print job as it came out of the printer, as HTML.

The bytes the printer received are laid out by :mod:`devices.printer.paper` (the printer
core's parse); the trace says how each job ended: cut (``printer.job_done``), or cut
short (``printer.job_failed``, whose ``text`` holds the lines that came out). Text is
HTML text in its size, weight and alignment; images, barcodes and QR codes are PNG
images inline (drawn by :mod:`devices.printer.render`, imported only for them). A job
whose bytes were not kept (a bench run's real printer) shows the text of its trace.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass

from devices.printer.paper import (
    DOTS,
    BarcodeRow,
    BitmapRow,
    CutRow,
    FeedRow,
    QrRow,
    Row,
    Span,
    TextRow,
    cut_short,
    lay_out,
)
from emulator.engine.trace import Event

__all__ = ["Job", "jobs_of", "receipt_html"]


@dataclass(frozen=True)
class Job:
    """One print job: when it started, for which step, how it ended, what came out."""

    number: int
    t: float
    step: str
    slip: str
    outcome: str   # done | failed | unfinished
    reason: str    # why it failed ("" when done)
    rows: tuple[Row, ...]


def _text_rows(text: str) -> list[Row]:
    return [TextRow((Span(line),), "left", 30) for line in text.split("\n")] if text else []


def jobs_of(events: Sequence[Event], data: Sequence[bytes]) -> list[Job]:
    """The print jobs of a trace, with the bytes each was given (``data[n-1]`` for job
    n; missing: the trace's text is shown instead)."""
    started: dict[int, Event] = {}
    ended: dict[int, Event] = {}
    for e in events:
        job = e.fields.get("job")
        if not isinstance(job, int):
            continue
        if e.name == "printer.job_started":
            started[job] = e
        elif e.name in ("printer.job_done", "printer.job_failed") and job not in ended:
            ended[job] = e
    jobs = []
    for number, start in sorted(started.items()):
        end = ended.get(number)
        outcome = "unfinished" if end is None else end.name.split("_", 1)[1]
        text = str(end.fields.get("text", "")) if end is not None else ""
        if number <= len(data):
            rows = lay_out(data[number - 1])
            if outcome != "done":
                rows = cut_short(rows, len(text.split("\n")) if text else 0)
        else:
            rows = _text_rows(text) + ([CutRow(False)] if outcome == "done" else [])
        jobs.append(Job(number, start.t, str(start.fields.get("step", "")),
                        str(start.fields.get("slip", "")), outcome,
                        str(end.fields.get("reason", "")) if end is not None else "",
                        tuple(rows)))
    return jobs


def _span(span: Span) -> str:
    css = [c for c, on in (("b", span.bold), ("u", span.underline), ("r", span.reverse)) if on]
    if span.width > 1:
        css.append(f"w{min(span.width, 8)}")
    if span.height > 1:
        css.append(f"h{min(span.height, 8)}")
    text = html.escape(span.text.expandtabs(8))
    return f'<span class="{" ".join(css)}">{text}</span>' if css else text


def _image(row: BitmapRow | BarcodeRow | QrRow) -> str:
    from devices.printer.render import png_bytes  # noqa: PLC0415  (Pillow: only for images)

    kind = {BitmapRow: "image", BarcodeRow: "barcode", QrRow: "qr"}[type(row)]
    about = "" if isinstance(row, BitmapRow) else html.escape(row.data, quote=True)
    from devices.printer.render import symbol_image  # noqa: PLC0415

    image = symbol_image(row)
    png = base64.b64encode(png_bytes(image)).decode("ascii")
    share = min(100.0, image.width / DOTS * 100)  # as wide on the paper as it is printed
    return (f'<div class="prow {row.align} {kind}"><img alt="{kind} {about}" '
            f'data-data="{about}" style="width:{share:.1f}%" '
            f'src="data:image/png;base64,{png}"></div>')


def receipt_html(job: Job) -> str:
    """One receipt: a paper strip with its rows, then a cut mark or a torn edge."""
    parts: list[str] = []
    for row in job.rows:
        if isinstance(row, TextRow):
            tall = max((s.height for s in row.spans), default=1)
            style = f' style="min-height:{row.dots / 8:.2f}mm"' if row.dots and tall == 1 else ""
            body = "".join(_span(s) for s in row.spans) or "&#8203;"
            parts.append(f'<div class="prow {row.align} t{min(tall, 8)}"{style}>{body}</div>')
        elif isinstance(row, FeedRow):
            parts.append(f'<div class="feed" style="height:{row.dots / 8:.2f}mm"></div>')
        elif isinstance(row, CutRow):
            parts.append('<div class="cut" title="cut">✂</div>')
        else:
            parts.append(_image(row))
    if not any(isinstance(r, TextRow | BitmapRow | BarcodeRow | QrRow) for r in job.rows):
        parts.insert(0, '<div class="prow left nothing">(nothing printed)</div>')
    if job.outcome != "done":
        why = job.reason or "never finished"
        parts.append(f'<div class="torn" title="cut short: {html.escape(why)}"></div>'
                     f'<div class="tornlbl">CUT SHORT: {html.escape(why)}</div>')
    caption = (f"job {job.number} · {html.escape(job.step)} · {html.escape(job.slip)} · "
               f"t = {job.t:.3f} s · "
               + ("cut" if job.outcome == "done" else f"cut short ({html.escape(job.reason)})"))
    return (f'<figure class="receipt {job.outcome}" data-step="{html.escape(job.step)}" '
            f'data-job="{job.number}"><div class="paper">{"".join(parts)}</div>'
            f"<figcaption>{caption}</figcaption></figure>")

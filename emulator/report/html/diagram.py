"""The sequence diagram of one run, as SVG, drawn from its trace alone.

Lanes, left to right: card, terminal, link, bank, printer. Time runs down. Every event
is a dot on its lane (hover: the event; click: the page shows it whole); ISO 8583 frames
are arrows from the network's ``sent`` to its ``delivered`` (or a cross where ``lost``),
labelled MTI, STAN, amount and response code; a print job is an arrow from the terminal
to the printer; the operator's steps start and end on ruled lines; faults are shaded
spans on the lane they hit; the bank's postings are marked where money moved; and the
oracle's anomalies are pinned at the end of their step.

Time is simulated time, each event at least ``ROW`` pixels below the one before; with
``compress`` a gap longer than ``IDLE_S`` is drawn short and labelled with its length.
"""

from __future__ import annotations

import html
import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from emulator.engine.trace import Event
from emulator.judge.oracle import Anomaly
from emulator.money import format_minor

__all__ = ["IDLE_S", "LANES", "diagram"]

LANES = ("card", "terminal", "link", "bank", "printer")
_COMPONENT_LANE = {"card": "card", "terminal": "terminal", "network": "link", "bank": "bank",
                   "printer": "printer", "fault": "terminal"}
_FAULT_LANE = {"card": "card", "printer": "printer", "network": "link", "bank": "bank",
               "terminal": "terminal"}
_DEVICE_OF = {"to_bank": ("terminal", "bank"), "to_terminal": ("bank", "terminal")}

ROW = 18            # pixels between two events, at least
IDLE_S = 5.0        # compressed: longer gaps are drawn IDLE_PX high
IDLE_PX = 36
_AXIS = 78          # the time axis, left of the lanes
_LANE_W = 170
_TOP = 46           # lane headers
_BOTTOM = 30
_WIDTH = _AXIS + _LANE_W * len(LANES) + 40


def _x(lane: str) -> int:
    return _AXIS + _LANE_W * LANES.index(lane) + _LANE_W // 2


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _amount(fields: dict[str, object]) -> str:
    minor = fields.get("amount_minor")
    return format_minor(minor) if isinstance(minor, int) else ""


@dataclass
class _Svg:
    """SVG elements collected in drawing order (spans first, then lines, then marks)."""

    back: list[str] = field(default_factory=list)
    middle: list[str] = field(default_factory=list)
    front: list[str] = field(default_factory=list)


class _Drawing:
    def __init__(self, events: Sequence[Event], compress: bool) -> None:
        self.events = events
        self.ys = _rows([e.t for e in events], compress)
        self.gaps = _gaps([e.t for e in events], self.ys) if compress else []
        self.end_y = (self.ys[-1] if self.ys else _TOP) + ROW * 2
        self.svg = _Svg()

    # -- helpers -------------------------------------------------------------------------

    def title(self, i: int) -> str:
        e = self.events[i]
        return _esc(json.dumps({"t": e.t, "event": e.name, "fields": e.fields},
                               sort_keys=True))

    def dot(self, i: int, lane: str, css: str = "dot") -> None:
        self.svg.front.append(
            f'<circle class="{css} ev" data-event="{i}" cx="{_x(lane)}" cy="{self.ys[i]}" r="4">'
            f"<title>{self.title(i)}</title></circle>")

    def label(self, x: float, y: float, text: str, css: str = "lbl",
              anchor: str = "start") -> None:
        self.svg.front.append(f'<text class="{css}" x="{x:.1f}" y="{y:.1f}" '
                              f'text-anchor="{anchor}">{_esc(text)}</text>')

    def arrow(self, i: int, j: int | None, source: str, target: str, text: str, css: str,
              *, end_y: float | None = None, extra: str = "") -> None:
        """An arrow from ``source`` at event i's row to ``target`` at event j's (or
        ``end_y``), labelled at its middle."""
        x1, y1 = _x(source), self.ys[i]
        x2 = _x(target)
        y2 = self.ys[j] if j is not None else (end_y if end_y is not None else y1)
        lost = "lost" in css.split()
        marker = "" if lost else ' marker-end="url(#head)"'
        shorten = 0 if lost else (6 if x2 > x1 else -6)
        shown = i if j is None else j  # a frame's arrow shows where it ended
        self.svg.middle.append(
            f'<g class="{css} ev" data-event="{shown}"{extra}>'
            f'<line x1="{x1}" y1="{y1}" x2="{x2 - shorten}" y2="{y2}"{marker}/>'
            f"<title>{self.title(shown)}</title></g>")
        if lost:
            self.svg.middle.append(
                f'<path class="cross" d="M{x2 - 5},{y2 - 5}l10,10m0,-10l-10,10"/>')
        # the label sits over the arrow's first third: the link's dots are at its middle
        mx, my = x1 + (x2 - x1) * 0.3, y1 + (y2 - y1) * 0.3 - 5
        self.label(mx, my, text, "albl", "middle")

    # -- the parts -----------------------------------------------------------------------

    def lanes(self) -> None:
        for lane in LANES:
            x = _x(lane)
            self.svg.back.append(
                f'<g class="lane" data-lane="{lane}"><line class="lifeline" x1="{x}" y1="{_TOP}" '
                f'x2="{x}" y2="{self.end_y}"/><rect class="lanehead" x="{x - 52}" y="6" '
                f'width="104" height="24" rx="4"/><text class="lanename" x="{x}" y="23" '
                f'text-anchor="middle">{lane}</text></g>')

    def axis(self) -> None:
        last: float | None = None
        for i, e in enumerate(self.events):
            if e.t != last:
                self.label(_AXIS - 8, self.ys[i] + 4, f"{e.t:.3f}", "tick", "end")
                last = e.t
        for y0, y1, seconds in self.gaps:
            mid = (y0 + y1) / 2
            self.svg.back.append(
                f'<g class="idle"><rect x="{_AXIS - 70}" y="{y0 + 6}" '
                f'width="{_WIDTH - _AXIS + 60}" height="{max(2, y1 - y0 - 12)}"/>'
                f'<text x="{_AXIS - 8}" y="{mid + 4}" text-anchor="end">'
                f"⋯ {seconds:.1f} s</text></g>")

    def steps(self) -> None:
        for i, e in enumerate(self.events):
            step = e.fields.get("step", "")
            if e.name == "terminal.txn_started":
                what = f"▶ {step}: {e.fields.get('do', '')} {_amount(e.fields)}".rstrip()
                css = "step start"
            elif e.name == "terminal.txn_done":
                what = f"■ {step}: {e.fields.get('result', '')} {_amount(e.fields)}".rstrip()
                css = "step end"
            else:
                continue
            y = self.ys[i] - ROW / 2
            self.svg.back.append(
                f'<g class="step-boundary {css.split()[1]}" data-step="{_esc(step)}">'
                f'<line x1="{_AXIS}" y1="{y}" x2="{_WIDTH - 10}" y2="{y}"/></g>')
            self.label(_AXIS + 4, y - 3, what, "steplbl")

    def faults(self) -> None:
        open_: dict[object, int] = {}
        spans: list[tuple[int, int | None]] = []
        for i, e in enumerate(self.events):
            if e.name == "fault.started":
                open_[e.fields.get("index")] = len(spans)
                spans.append((i, None))
            elif e.name == "fault.cleared" and e.fields.get("index") in open_:
                k = open_.pop(e.fields.get("index"))
                spans[k] = (spans[k][0], i)
        for start, stop in spans:
            name = str(self.events[start].fields.get("fault", ""))
            lane = _FAULT_LANE.get(name.split(".", maxsplit=1)[0], "terminal")
            y0 = self.ys[start]
            y1 = self.ys[stop] if stop is not None else self.end_y - ROW / 2
            x = _x(lane) - _LANE_W // 2 + 8
            self.svg.back.append(
                f'<g class="fault-span ev" data-event="{start}" data-fault="{_esc(name)}">'
                f'<rect x="{x}" y="{y0}" width="{_LANE_W - 16}" height="{max(4, y1 - y0)}"/>'
                f"<title>{self.title(start)}</title></g>")
            self.label(x + 3, y0 + 11, f"⚡ {name}", "faultlbl")

    def frames(self) -> None:
        """Arrows for ISO 8583 frames (network events), print jobs and card actions."""
        amounts: dict[tuple[object, object], str] = {}
        codes: dict[tuple[object, object], str] = {}
        in_flight: dict[tuple[object, object, object], list[int]] = {}
        last_sent: dict[tuple[object, object, object], int] = {}
        drawn: set[int] = set()
        for i, e in enumerate(self.events):
            f = e.fields
            if e.name in ("terminal.request_sent", "terminal.reversal_sent"):
                amounts[(f.get("mti"), f.get("stan"))] = _amount(f)
            elif e.name in ("bank.response_sent", "bank.response_withheld"):
                codes[(f.get("mti"), f.get("stan"))] = str(f.get("code", ""))
            elif e.name == "network.sent":
                key = (f.get("direction"), f.get("mti"), f.get("stan"))
                in_flight.setdefault(key, []).append(i)
                last_sent[key] = i
            elif e.name in ("network.delivered", "network.lost", "network.corrupted"):
                key = (f.get("direction"), f.get("mti"), f.get("stan"))
                queue = in_flight.get(key)
                sent = queue.pop(0) if queue else last_sent.get(key)
                if sent is None:
                    continue
                source, target = _DEVICE_OF.get(str(f.get("direction")), ("terminal", "bank"))
                frame = (f.get("mti"), f.get("stan"))
                parts = [f"{f.get('mti')}", f"#{f.get('stan')}"]
                if amounts.get(frame):
                    parts.append(amounts[frame])
                if codes.get(frame):
                    parts.append(f"rc {codes[frame]}")
                text = " ".join(parts)
                kind = e.name.split(".")[1]
                if kind == "lost":
                    self.arrow(sent, i, source, "link", text + " lost", "arrow frame lost",
                               extra=f' data-mti="{_esc(f.get("mti"))}"')
                else:
                    css = "arrow frame" + (" corrupted" if kind == "corrupted" else "")
                    self.arrow(sent, i, source, target, text, css,
                               extra=f' data-mti="{_esc(f.get("mti"))}"')
                drawn.add(sent)
        for i, e in enumerate(self.events):
            f = e.fields
            if e.name == "printer.job_started":
                self.arrow(i, None, "terminal", "printer",
                           f"receipt {f.get('slip', '')} ({f.get('step', '')})", "arrow print")
            elif e.name in ("card.read", "card.pin_entered", "card.read_failed"):
                text = {"card.read": "card read", "card.pin_entered": "PIN",
                        "card.read_failed": "read failed"}[e.name]
                css = "arrow card" + (" failed" if e.name == "card.read_failed" else "")
                self.arrow(i, None, "card", "terminal", text, css)

    def marks(self) -> None:
        for i, e in enumerate(self.events):
            lane = _COMPONENT_LANE.get(e.component, "terminal")
            css = "dot"
            y = self.ys[i]
            f = e.fields
            if e.name in ("bank.posted", "bank.reversed"):
                sign = "+" if e.name == "bank.posted" else "↩"
                css = "money"
                self.label(_x("bank") + 9, y + 4,
                           f"{sign} {_amount(f)} {f.get('kind', '')} #{f.get('stan', '')}",
                           "moneylbl")
            elif e.name == "printer.job_done":
                css = "ok"
                self.label(_x("printer") + 9, y + 4, "✓ printed, cut", "oklbl")
            elif e.name == "printer.job_failed":
                css = "bad"
                self.label(_x("printer") + 9, y + 4, f"✕ {f.get('reason', '')}", "badlbl")
            elif e.name == "printer.state":
                self.label(_x("printer") + 9, y + 4, f"state {f.get('state', '')}", "lbl")
            elif e.name.startswith("terminal.") and e.name not in (
                    "terminal.txn_started", "terminal.txn_done", "terminal.request_sent",
                    "terminal.reversal_sent", "terminal.response_received"):
                self.label(_x("terminal") + 9, y + 4, e.name.split(".", 1)[1], "lbl")
            elif e.name == "card.removed":
                self.label(_x("card") + 9, y + 4, f"removed ({f.get('why', '')})", "lbl")
            elif e.name == "bank.refused":
                css = "bad"
                self.label(_x("bank") + 9, y + 4, "refused", "badlbl")
            self.dot(i, lane, css)

    def anomalies(self, anomalies: Iterable[Anomaly]) -> None:
        done: dict[str, int] = {}  # a step's txn_done, else its last event: the pin's row
        last: dict[str, int] = {}
        for i, e in enumerate(self.events):
            step = e.fields.get("step")
            if isinstance(step, str):
                last[step] = i
                if e.name == "terminal.txn_done":
                    done[step] = i
        for n, anomaly in enumerate(anomalies):
            at = done.get(anomaly.step, last.get(anomaly.step))
            y = self.ys[at] if at is not None else self.end_y - ROW
            x = _x("terminal") - 24 - 10 * n
            self.svg.front.append(
                f'<a href="#anomaly-{n}"><g class="anomaly-pin" data-kind="{_esc(anomaly.kind)}" '
                f'data-step="{_esc(anomaly.step)}"><path d="M{x},{y} l-7,-16 a8,8 0 1 1 14,0 z"/>'
                f'<text x="{x}" y="{y - 15}" text-anchor="middle">!</text>'
                f"<title>{_esc(anomaly.kind)} at {_esc(anomaly.step)}: {_esc(anomaly.detail)}"
                "</title></g></a>")
            self.label(_AXIS + 4, y + 4 + 12 * n, f"⚠ {anomaly.kind}", "anomalylbl")

    def render(self, anomalies: Iterable[Anomaly], css: str) -> str:
        self.lanes()
        self.axis()
        self.steps()
        self.faults()
        self.frames()
        self.marks()
        self.anomalies(anomalies)
        height = self.end_y + _BOTTOM
        return (f'<svg xmlns="http://www.w3.org/2000/svg" class="sequence {css}" '
                f'width="{_WIDTH}" height="{height}" viewBox="0 0 {_WIDTH} {height}" '
                'role="img" aria-label="sequence diagram">'
                '<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
                'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z"/>'
                "</marker></defs>"
                + "".join(self.svg.back) + "".join(self.svg.middle) + "".join(self.svg.front)
                + "</svg>")


def _rows(times: Sequence[float], compress: bool) -> list[float]:
    """Each event's y: simulated time scaled to fit, each at least ROW below the last."""
    if not times:
        return []
    span = times[-1] - times[0]
    if compress:
        busy = sum(min(b - a, IDLE_S) for a, b in itertools.pairwise(times))
        scale = min(60.0, 600.0 / busy) if busy > 0 else 0.0
    else:
        scale = min(60.0, 1200.0 / span) if span > 0 else 0.0
    ys = [float(_TOP + ROW)]
    for a, b in itertools.pairwise(times):
        dt = b - a
        step = IDLE_PX if compress and dt > IDLE_S else dt * scale
        ys.append(ys[-1] + (ROW + step if dt > 0 else ROW))
    return ys


def _gaps(times: Sequence[float], ys: Sequence[float]) -> list[tuple[float, float, float]]:
    """The compressed gaps: (y above, y below, seconds)."""
    return [(ys[k], ys[k + 1], times[k + 1] - times[k]) for k in range(len(times) - 1)
            if times[k + 1] - times[k] > IDLE_S]


def diagram(events: Sequence[Event], anomalies: Sequence[Anomaly], *,
            compress: bool = False) -> str:
    """The run's sequence diagram as one ``<svg>`` element (no external references)."""
    return _Drawing(events, compress).render(
        anomalies, "compressed" if compress else "simulated")

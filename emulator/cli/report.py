"""Human output of the ``posemu`` command line, drawn with rich.

Only the CLI imports this module, and only for human output, so ``--json``
never loads rich. Colour is rich's call: none when the stream is not a
terminal, none under ``NO_COLOR``.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO, cast

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from emulator.engine.trace import Event
from emulator.engine.world import LONG_RUN_STEPS
from emulator.judge.result import Result
from emulator.money import format_minor

COLLAPSE_AFTER = 3
"""With more scenarios than this, each one is a single line unless ``--verbose``."""

NOISE = frozenset({"network.sent", "network.delivered"})
"""Events the timeline leaves out unless ``--verbose``."""

_FIRST = ("step", "do", "mti", "stan", "orig_stan", "code", "result", "state", "slip",
          "reason", "fault", "amount_minor", "card", "why", "kind")
_HIDDEN = frozenset({"f7", "orig_f7", "size", "job", "index", "text", "receipt_of"})
_STYLE = {"terminal": "cyan", "card": "magenta", "printer": "yellow", "bank": "green",
          "network": "blue", "fault": "bold red"}
_VERDICT = {"pass": "bold green", "fail": "bold red"}


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """Let the CLI handle a closed pipe (exit status 3) instead of exiting here."""
        raise BrokenPipeError


class _Trimmed(io.TextIOBase):
    """A text stream that drops the spaces rich pads each line with, before its newline."""

    def __init__(self, stream: Callable[[], TextIO]) -> None:
        self._stream = stream  # looked up at each write: tests swap sys.stdout
        self._tail = ""

    def write(self, text: str) -> int:
        *lines, self._tail = (self._tail + text).split("\n")
        if lines:
            self._stream().write("".join(line.rstrip(" ") + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        if self._tail:
            self._stream().write(self._tail)
            self._tail = ""
        self._stream().flush()

    def isatty(self) -> bool:
        return False


def console(*, stderr: bool = False) -> Console:
    """A console that prints data as given: no markup, emoji or highlighting.

    Not a terminal: 80 columns (or ``COLUMNS``), whatever the other streams are,
    so piped output is the same everywhere, and no trailing spaces.
    """
    out = _Console(stderr=stderr, markup=False, emoji=False, highlight=False)
    if not out.is_terminal:
        if not os.environ.get("COLUMNS", "").isdigit():
            out.width = 80
        out.file = cast(TextIO, _Trimmed(lambda: sys.stderr if stderr else sys.stdout))
    return out


# ------------------------------------------------------------------- posemu run


@dataclass(frozen=True)
class Printed:
    """A receipt as it came out of the printer; ``failed`` names why it was cut short."""

    step: str
    slip: str
    text: str
    failed: str | None


def printed(events: Iterable[Event]) -> list[Printed]:
    """Every receipt the printer produced, complete or cut short, in order."""
    out: list[Printed] = []
    for e in events:
        if e.name in ("printer.job_done", "printer.job_failed"):
            f = e.fields
            failed = None if e.name == "printer.job_done" else str(f.get("reason") or "failed")
            out.append(Printed(str(f.get("step", "?")), str(f.get("slip", "")),
                               str(f.get("text") or ""), failed))
    return out


def details(event: Event) -> str:
    """The fields of an event that matter, as ``key=value`` words."""
    f = event.fields
    keys = [k for k in _FIRST if k in f]
    keys += sorted(k for k in f if k not in _FIRST and k not in _HIDDEN)
    words: list[str] = []
    for key in keys:
        value = f[key]
        if value is None or value is False or value == "":
            continue
        if value is True:
            words.append(key)
        elif key.endswith("_minor") and isinstance(value, int):
            words.append(f"{key.removesuffix('_minor') if key == 'amount_minor' else key}="
                         f"{format_minor(value)}")
        else:
            words.append(f"{key}={value}")
    return " ".join(words)


def timeline(result: Result, *, verbose: bool) -> Table:
    """Simulated time, component, event and its key fields, one row per event."""
    table = Table("t (s)", "component", "event", "details", title="timeline",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.columns[0].justify = "right"
    for e in result.trace:
        if verbose or e.name not in NOISE:
            component, _, name = e.name.partition(".")
            style = _STYLE.get(component, "")
            table.add_row(f"{e.t:.3f}", Text(component, style), Text(name, style),
                          Text(details(e)))
    return table


def receipt(p: Printed) -> Panel:
    """A receipt-shaped panel of the decoded text; a torn edge when it was cut short."""
    lines = p.text.rstrip("\n").split("\n") if p.text else []
    width = max([32, *map(len, lines)])
    body = Text("\n".join(lines))
    if p.failed:
        if not lines:
            body.append("(nothing printed)", "dim")
        body.append("\n" + "/\\" * (width // 2), "red")
    return Panel(
        body, box=box.SQUARE, expand=False, padding=(0, 1),
        title=Text(f"receipt {p.step} ({p.slip})"),  # a str title would be read as markup
        subtitle=Text(f"CUT SHORT: {p.failed}" if p.failed else "cut"),
        border_style="red" if p.failed else "dim",
    )


def balances(result: Result) -> Table:
    """Each account before and after the run."""
    table = Table("account", "before", "after", "change", title="balances",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in table.columns[1:]:
        column.justify = "right"
    for account, after in result.balances_minor.items():
        before = result.balances_before_minor.get(account, after)
        change = after - before
        table.add_row(account, format_minor(before), format_minor(after),
                      f"{'+' if change > 0 else ''}{format_minor(change)}" if change else "")
    return table


def headline(result: Result) -> Text:
    """``PASS  path  (profile, seed N)``."""
    s = result.scenario
    text = Text(result.verdict.upper(), _VERDICT[result.verdict])
    text.append(f"  {s.path or s.name}  ({s.runs_as}, seed {s.seed})")
    return text


def _heading(name: str, rest: str = "") -> Text:
    """A section heading, with what follows it on the same line."""
    text = Text(name, "italic")
    if rest:
        text.append(f" {rest}")
    return text


def _anomaly_words(result: Result) -> str:
    kinds = [a.kind for a in result.anomalies]
    return ", ".join(kinds) if kinds else "none"


class RunReport:
    """What ``posemu run`` prints: each scenario as it ends, then a summary table."""

    def __init__(self, total: int, *, verbose: bool, quiet: bool = False) -> None:
        self.out = console()
        self.total = total
        self.verbose = verbose
        self.quiet = quiet
        """``-q``: one line a passing scenario, a failing one in full, no summary table."""
        self.detailed = not quiet and (verbose or total <= COLLAPSE_AFTER)
        self.results: list[Result] = []
        self._bar: Progress | None = None

    @contextmanager
    def running(self) -> Iterator[None]:
        """Show a progress bar on stderr for a long batch when stderr is a terminal."""
        if self.total <= COLLAPSE_AFTER or not sys.stderr.isatty():
            yield
            return
        bar = Progress(
            TextColumn("running"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.description}", markup=False), console=console(stderr=True),
            transient=True,
            redirect_stdout=sys.stdout.isatty(), redirect_stderr=False,
        )
        with bar:
            bar.add_task("", total=self.total)
            self._bar = bar
            try:
                yield
            finally:
                self._bar = None

    def starting(self, name: str) -> None:
        """Name the scenario about to run on the progress bar."""
        if self._bar is not None:
            self._bar.update(self._bar.task_ids[0], description=name)

    def add(self, result: Result) -> None:
        """Print one scenario: in full, or as one line in a long batch."""
        self.results.append(result)
        if self.detailed or (self.quiet and not result.passed):
            self._detail(result)
        else:
            line = headline(result)
            line.append(f"  anomalies: {_anomaly_words(result)}  {result.events} events"
                        f"  {result.sim_time_s:.2f} s")
            self.out.print(line, soft_wrap=True)
            for failure in result.failures:
                self.out.print(f"    - {failure}", soft_wrap=True)
        if self._bar is not None:
            self._bar.advance(self._bar.task_ids[0])

    def _detail(self, result: Result) -> None:
        out, s = self.out, result.scenario
        title = Text(s.path or s.name, "bold")
        title.append(f"  {s.name}  ({s.runs_as}, seed {s.seed})" if s.path else
                     f"  ({s.runs_as}, seed {s.seed})")
        out.rule()
        out.print(title, soft_wrap=True)
        if result.trace.streaming:  # a long run: its events were written, not kept
            out.print(_heading("timeline and receipts",
                               f"{result.events:,} events, not kept: a run of more than "
                               f"{LONG_RUN_STEPS:,} steps streams its trace (--trace-dir "
                               "writes it)"), soft_wrap=True)
        else:
            out.print(timeline(result, verbose=self.verbose))
            receipts = printed(result.trace)
            out.print(_heading("receipts", "" if receipts else "none"))
            for p in receipts:
                out.print(receipt(p))
        out.print(balances(result))
        out.print(_heading("anomalies", "" if result.anomalies else "none"))
        for a in result.anomalies:
            line = Text("  ")
            line.append(a.kind, "bold red")
            line.append(f" at {a.step}: {a.detail}")
            out.print(line, soft_wrap=True)
        verdict = _heading("verdict")
        verdict.append(f" {result.verdict.upper()}", _VERDICT[result.verdict])
        if result.failures:
            verdict.append(f"  ({len(result.failures)} expectation(s) not met)")
        out.print(verdict)
        for failure in result.failures:
            out.print(f"  - {failure}", soft_wrap=True)
        out.print()

    def summary(self) -> None:
        """The table over every scenario run (with ``quiet``, only its last line)."""
        passed = sum(r.passed for r in self.results)
        counts = (f"{len(self.results)} scenario(s): {passed} passed, "
                  f"{len(self.results) - passed} failed")
        if self.quiet:
            self.out.print(counts, soft_wrap=True)
            return
        table = Table("scenario", "profile", "seed", "verdict", "anomalies", "events",
                      "sim time", title="summary", title_justify="left",
                      box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
                      caption=counts, caption_justify="left")
        for column in table.columns:
            column.no_wrap = True
        for column in table.columns[4:]:
            column.justify = "right"
        for r in self.results:
            s = r.scenario
            table.add_row(s.name, s.runs_as, str(s.seed),
                          Text(r.verdict.upper(), _VERDICT[r.verdict]),
                          str(len(r.anomalies)),
                          str(r.events), f"{r.sim_time_s:.2f} s")
        self._unwrapped(table)

    def _unwrapped(self, table: Table) -> None:
        """Print ``table`` as wide as its longest row needs, so no name wraps."""
        width = self.out.width
        unbounded = self.out.options.update(width=10_000)
        self.out.width = max(width, self.out.measure(table, options=unbounded).maximum)
        try:
            self.out.print(table)
        finally:
            self.out.width = width


@contextmanager
def fleet_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar on standard error for ``posemu fleet``: wiring, then running."""
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=console(stderr=True), transient=True)
    with bar:
        task = bar.add_task("wiring terminals", total=None)

        def tell(phase: str, done: int, total: int) -> None:
            what = "terminals wired" if phase == "wiring" else "steps done"
            bar.update(task, description=what, completed=done, total=total)

        yield tell


# ----------------------------------------------------- faults, profiles, explain


def _value(value: object) -> str:
    """A value as written in TOML (``true``, ``"reprint"``); None is ``none``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def show_faults(faults: list[dict[str, Any]]) -> None:
    """The fault catalogue: each fault, then its parameters."""
    table = Table("fault / parameter", "kind", "default", "help", box=box.SIMPLE_HEAD,
                  pad_edge=False, show_edge=False, title="faults", title_justify="left")
    for fault in faults:
        table.add_row(Text(fault["name"], "bold"), "", "", fault["help"])
        for p in fault["params"]:
            table.add_row(f"  {p['name']}", p["kind"], _value(p["default"]), p["help"])
    console().print(table)


def _profile_words(values: dict[str, Any], knobs: list[dict[str, Any]]) -> str:
    """How a profile sets the knobs: ``every knob robust`` or the exceptions."""
    for base in ("robust", "naive"):
        odd = [k["name"] for k in knobs if values[k["name"]] != k[base]]
        if len(odd) <= len(knobs) // 2:
            return f"every knob {base}" + (f" except {', '.join(odd)}" if odd else "")
    return "mixed"


def _knob(out: Console, k: dict[str, Any], *, guards: bool, indent: int = 2) -> None:
    """A knob: name, its robust and naive values and what they mean."""
    name = Text(" " * indent)
    name.append(k["name"], "bold")
    if guards:
        name.append(f"  guards {k['guards']}")
    out.print(name, soft_wrap=True)
    for value in ("robust", "naive"):
        out.print(f"{' ' * (indent + 2)}{value:<6} {_value(k[value])}: {k[value + '_means']}",
                  soft_wrap=True)
    out.print(Padding(Text(k["help"], "dim"), (0, 0, 0, indent + 2)))


def show_profiles(data: dict[str, Any]) -> None:
    """Profiles, every knob with its values and what it guards, settings with defaults."""
    out = console()
    out.print(Text("profiles", "italic"))
    width = max(map(len, data["profiles"]))
    for name, values in data["profiles"].items():
        out.print(f"  {name:<{width}}  {_profile_words(values, data['knobs'])}", soft_wrap=True)
    out.print()
    out.print(Text("knobs", "italic"))
    for k in data["knobs"]:
        _knob(out, k, guards=True)
    out.print()
    settings = Table("setting", "default", "meaning", box=box.SIMPLE_HEAD, pad_edge=False,
                     show_edge=False, title="settings (shared by every profile)",
                     title_justify="left")
    for s in data["settings"]:
        settings.add_row(Text(s["name"], "bold"), _value(s["default"]), s["help"])
    out.print(settings)


def show_explain(data: dict[str, Any]) -> None:
    """One anomaly: meaning, seed story, and the knobs that prevent it."""
    out = console()
    out.print(Text(data["name"], "bold red"))
    out.print(f"  means: {data['meaning']}", soft_wrap=True)
    story = f'seed story "{data["story"]}"' if data["story"] else "not one of the seed stories"
    out.print(f"  story: {story}", soft_wrap=True)
    if not data["knobs"]:
        out.print("  prevented by: no knob")
        return
    out.print("  prevented by these knobs (robust prevents it, naive lets it happen):")
    for k in data["knobs"]:
        _knob(out, k, guards=False, indent=4)


def show_anomalies(anomalies: list[dict[str, Any]]) -> None:
    """Every anomaly: its name, meaning and seed story, and the knobs that prevent it."""
    out = console()
    for data in anomalies:
        out.print(Text(data["name"], "bold red"))
        story = f' (seed story "{data["story"]}")' if data["story"] else ""
        out.print(f"  {data['meaning']}{story}", soft_wrap=True)
        knobs = ", ".join(k["name"] for k in data["knobs"]) or "no knob"
        out.print(f"  prevented by: {knobs}", soft_wrap=True)
    out.print()
    out.print("posemu explain ANOMALY: one of them, its knobs in full")

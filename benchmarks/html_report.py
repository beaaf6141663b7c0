"""HTML reports: what ``--html DIR`` adds to ``posemu run`` over the scenario library.

Runs ``posemu run --json PATH`` and ``posemu run --json PATH --html DIR`` as fresh
processes of this virtualenv, in turn, after one untimed warm-up of each, and prints the
medians of their wall times, the difference (target: under 2 s for the whole library),
the size of the report, and the in-process cost of the pages alone (the runs kept, each
page built from its run: diagram, receipts, anomalies explained).

    .venv/bin/python benchmarks/html_report.py [--runs N] [--path scenarios/]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.coldstart import posemu_command, timed
from benchmarks.common import machine, spread, verdict

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 2.0


def pages_alone(path: Path) -> tuple[int, float]:
    """The scenarios under ``path`` run once, then their pages built and written, timed
    alone: (pages, seconds)."""
    from emulator import load_scenario  # noqa: PLC0415
    from emulator.cli.main import scenario_files  # noqa: PLC0415
    from emulator.report.html import HtmlReport, run_recorded  # noqa: PLC0415

    runs = [run_recorded(load_scenario(p)) for p in scenario_files([str(path)])]
    with tempfile.TemporaryDirectory() as out:
        report = HtmlReport(Path(out))
        started = time.perf_counter()
        for run in runs:
            report.add(run.result, run.jobs)
        report.finish()
        return len(runs), time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each (default 7)")
    parser.add_argument("--path", type=Path, default=ROOT / "scenarios",
                        help="what posemu runs (default: the scenario library)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    with tempfile.TemporaryDirectory() as out:
        plain = [*posemu_command(), "run", "--json", str(args.path)]
        html = [*plain, "--html", out]
        timed(plain)  # warm-up: the page cache, .pyc files
        timed(html)
        without: list[float] = []
        with_html: list[float] = []
        for _ in range(args.runs):
            without.append(timed(plain))
            with_html.append(timed(html))
        pages = sorted(Path(out).glob("*.html"))
        size = sum(p.stat().st_size for p in pages)
    extra = statistics.median(with_html) - statistics.median(without)
    count, alone = pages_alone(args.path)
    print(machine())
    print(f"runs: {args.runs} of each, alternated, after one warm-up of each")
    print(f"posemu run: {' '.join(plain[1:])}")
    print(f"without --html wall s (median of {args.runs}): {spread(without, '.3f')}")
    print(f"with --html wall s (median of {args.runs}): {spread(with_html, '.3f')}")
    print(f"--html adds s: {extra:.3f}")
    print(f"report: {len(pages)} files, {size / 1024:,.0f} KiB")
    print(f"pages alone: {count} pages in {alone:.3f} s ({alone / max(count, 1) * 1000:.1f} ms "
          "a page)")
    print(verdict("seconds --html adds", extra, TARGET_S, at_least=False, fmt=".3f"))


if __name__ == "__main__":
    main()

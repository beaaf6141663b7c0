"""Cold start: ``posemu run <small scenario>`` vs importing posemu's dependencies.

Both run as fresh processes of this virtualenv, in turn (posemu, baseline,
posemu, ...) after one untimed warm-up of each: ``posemu run
scenarios/sale_approved.toml`` through the console script a user runs, and
``python -c "import simpy, iso8583, escpos.printer, rich"``. Prints the
medians, their ratio (target <= 1.3) and which heavy modules ``posemu run``
imported (from one extra run with ``-X importtime``). The runs may write
bytecode caches (``PYTHONDONTWRITEBYTECODE`` is dropped from their
environment), as on a user's machine: pip compiled the dependencies when it
installed them, and without a cache every run of posemu compiled its own
modules (1.12-1.26 of the bare imports instead of 1.04, in a sandbox that sets it).

    .venv/bin/python benchmarks/coldstart.py [--runs N] [--scenario FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import machine, spread, verdict

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "sale_approved.toml"
BASELINE = "import simpy, iso8583, escpos.printer, rich"
HEAVY = ("hypothesis", "serial", "PIL", "qrcode", "escpos", "rich")
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
"""The runs' environment: bytecode caches written, as a user's python does by default."""
TARGET = 1.3


def posemu_command() -> list[str]:
    """How a user starts posemu: the console script next to this python, else ``-m``."""
    script = Path(sys.executable).with_name("posemu")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "emulator.cli.main"]


def timed(command: list[str]) -> float:
    """Wall seconds of one run of ``command``; it must succeed."""
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, check=False, cwd=ROOT, env=ENV,
                          timeout=120)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)}: exit status {proc.returncode}\n"
                         f"{proc.stderr.decode(errors='replace')}")
    return elapsed


def imported(args: list[str]) -> dict[str, float]:
    """``posemu ARGS`` under ``-X importtime``: each module imported -> its own import ms."""
    command = posemu_command()
    if command[0] != sys.executable:  # the console script is a python file
        command = [sys.executable, *command]
    command = [command[0], "-X", "importtime", *command[1:], *args]
    proc = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT,
                          env=ENV, timeout=120)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)}: exit status {proc.returncode}\n{proc.stderr}")
    modules: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            own, _cumulative, name = line.removeprefix("import time:").split("|")
            if own.strip().isdigit():
                modules[name.strip()] = int(own) / 1000
    return modules


def heavy_line(label: str, modules: dict[str, float]) -> str:
    """Which of HEAVY were imported (with the import ms of their own modules) and which not."""
    own: dict[str, float] = {}
    for module, ms in modules.items():
        own[module.split(".")[0]] = own.get(module.split(".")[0], 0.0) + ms
    found = [f"{name} ({own[name]:.0f} ms)" for name in HEAVY if name in modules]
    absent = [name for name in HEAVY if name not in modules]
    fuzz = sorted(m for m in modules if m.startswith("emulator.fuzz.command"))
    fuzz_ms = sum(modules[m] for m in fuzz)
    return (f"{label} imported: {', '.join(found) or 'none of them'}; not imported: "
            f"{', '.join(absent) or 'none'}; fuzzer modules: "
            f"{f'{len(fuzz)} ({fuzz_ms:.0f} ms own)' if fuzz else 'none'}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each (default 15)")
    parser.add_argument("--scenario", type=Path, default=SCENARIO,
                        help="the scenario posemu runs (default scenarios/sale_approved.toml)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    posemu = [*posemu_command(), "run", str(args.scenario)]
    baseline = [sys.executable, "-c", BASELINE]
    timed(posemu)  # warm-up: the page cache, .pyc files
    timed(baseline)
    runs: list[float] = []
    base: list[float] = []
    for _ in range(args.runs):
        runs.append(timed(posemu) * 1000)
        base.append(timed(baseline) * 1000)
    ratio = statistics.median(runs) / statistics.median(base)
    print(machine())
    print(f"runs: {args.runs} of each, alternated, after one warm-up of each")
    print(f"posemu run: {' '.join(posemu)}")
    print(f"baseline: python -c \"{BASELINE}\"")
    print(f"posemu run wall ms (median of {args.runs}): {spread(runs)}")
    print(f"baseline wall ms (median of {args.runs}): {spread(base)}")
    print(f"ratio posemu run / baseline: {ratio:.2f}")
    print(heavy_line("posemu run", imported(["run", str(args.scenario)])))
    print(heavy_line("posemu run --json", imported(["run", "--json", str(args.scenario)])))
    print(verdict("ratio posemu run / baseline", ratio, TARGET, at_least=False))


if __name__ == "__main__":
    main()

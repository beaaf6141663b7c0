"""A scenario in real time with a real (or virtual) ESC/POS printer in the loop.

``posemu run FILE --printer serial:<device>`` lands here. The world is the usual one
(:class:`~emulator.engine.world.World`, its unit built by
:func:`~emulator.engine.wiring.wire_unit`) on a ``simpy.rt.RealtimeEnvironment`` (factor 1,
not strict) with a :class:`~devices.printer.serial_port.SerialPrinter` in place of the
simulated printer. What the printer reports enters the model as the matching printer fault: a
``fault.started`` / ``fault.cleared`` event with ``source="printer"``, and the fault put on
the printer as an :class:`~devices.fault.ActiveFault` like a scheduled one, so the
terminal's status checks see it. Printer faults scheduled in the file are refused.

The run ends at the file's ``until_s``; without one, as soon as the terminal is idle
(every step started, the terminal powered and waiting for the next step, nothing owed:
no queued reversal or advice, no held receipt) and no ``at_s`` fault is still to come, or
at the latest ``BENCH_HORIZON_S`` after the last scheduled moment. The printer's poller is
closed then (it would keep the run going for ever).

A hardware failure (``DeviceError``) or Ctrl-C keeps what happened: the trace so far, ending
with a ``bench.aborted`` event that holds the terminal's journal, is written atomically to
the path the caller chose, and the error names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import simpy
import simpy.rt

from devices.errors import DeviceError, ScenarioError
from devices.fault import ActiveFault
from emulator.engine.trace import write_atomic
from emulator.engine.world import World

if TYPE_CHECKING:
    from devices.printer.serial_port import SerialPrinter
    from emulator.engine.trace import Trace
    from emulator.firmware.terminal import Terminal
    from emulator.judge.result import Result
    from emulator.scenario.model import Scenario

__all__ = ["BENCH_HORIZON_S", "IDLE_CHECK_S", "refuse_printer_faults", "run_bench"]

BENCH_HORIZON_S = 600.0
"""Without ``until_s``, a bench run ends this long after its last scheduled moment at most."""
IDLE_CHECK_S = 0.05
"""How often (real seconds) a run without ``until_s`` checks whether the terminal is idle."""


def refuse_printer_faults(scenario: Scenario) -> None:
    """ScenarioError for the first printer fault the file schedules (the printer has its own),
    or for a plug-in firmware (a bench run is posemu's own terminal's)."""
    if scenario.firmware is not None:
        raise ScenarioError("a plug-in firmware runs in simulated time only: run without "
                            "--printer", path=scenario.path, key="terminal.firmware")
    for fault in scenario.faults:
        if fault.fault.startswith("printer."):
            raise ScenarioError(
                f"{fault.fault} cannot be scheduled with --printer: the real printer reports "
                "its own faults (remove it, or run without --printer)",
                path=scenario.path, key=f"faults[{fault.index}].fault")


def run_bench(scenario: Scenario, spec: str, partial: Path) -> Result:
    """Run ``scenario`` in real time with the printer at ``spec``; judge it as usual.

    On a DeviceError (or Ctrl-C) the trace so far goes to ``partial`` and the error,
    re-raised, names it. ``spec`` must already be valid (``parse_spec``).
    """
    refuse_printer_faults(scenario)
    env = simpy.rt.RealtimeEnvironment(factor=1.0, strict=False)
    bench = Bench(scenario, spec)
    world: World | None = None
    try:
        world = World(scenario, env=env, printer=bench.make_printer)
        env.sync()  # real time starts now, not when the environment was made
        until: float | simpy.Event = (
            scenario.until_s if scenario.until_s is not None
            else env.process(until_idle(world)))
        return world.run(until=until)
    except DeviceError as exc:
        where = bench.save(partial, world, str(exc))
        raise DeviceError(f"{exc}; {where}") from exc
    except KeyboardInterrupt as exc:
        where = bench.save(partial, world, "interrupted")
        raise KeyboardInterrupt(where) from exc
    finally:
        bench.close()


class Bench:
    """The serial printer of one bench run and the faults it reported."""

    def __init__(self, scenario: Scenario, spec: str) -> None:
        self.scenario = scenario
        self.spec = spec
        self.trace: Trace | None = None
        self.printer: SerialPrinter | None = None
        self._reported: dict[str, ActiveFault] = {}

    def make_printer(self, env: simpy.Environment, trace: Trace) -> SerialPrinter:
        """World's printer factory: the serial printer, its reports wired to ``_report``."""
        from devices.printer.serial_port import SerialPrinter  # noqa: PLC0415  (loads pyserial)

        self.trace = trace  # kept first: a port that cannot be opened still leaves a trace
        self.printer = SerialPrinter(env, trace, self.spec, on_fault=self._report,
                                     lines_per_s=self.scenario.printer.lines_per_s)
        return self.printer

    def _report(self, kind: str, active: bool) -> None:
        """The printer reports ``kind`` starting or ending: a printer fault in the model."""
        assert self.trace is not None
        assert self.printer is not None
        if active and kind not in self._reported:
            fault = self._reported[kind] = ActiveFault(kind)
            self.trace.emit("fault.started", fault=kind, source="printer")
            self.printer.apply(fault)
        elif not active and kind in self._reported:
            fault = self._reported.pop(kind)
            self.trace.emit("fault.cleared", fault=kind, source="printer")
            self.printer.clear(fault)

    def save(self, path: Path, world: World | None, reason: str) -> str:
        """Write the trace so far (and the journal) to ``path``; where it went, for the user."""
        if self.trace is None:
            return "no trace was started"
        journal = {} if world is None else _journal(cast("Terminal", world.terminal))
        self.trace.emit("bench.aborted", reason=reason, **journal)
        try:
            write_atomic(path, self.trace.to_jsonl())
        except OSError as exc:
            return f"trace so far not saved ({path}: {exc.strerror or exc})"
        return f"trace so far in {path}"

    def close(self) -> None:
        if self.printer is not None:
            self.printer.close()


def until_idle(world: World) -> Generator[simpy.Event, Any, None]:
    """Ends once the terminal is idle with nothing left to do, or at the bench horizon."""
    scenario, env = world.scenario, world.env
    last = max([s.at_s for s in scenario.steps]
               + [f.at_s for f in scenario.faults if f.at_s is not None], default=0.0)
    while env.now < last + BENCH_HORIZON_S:
        yield env.timeout(IDLE_CHECK_S)
        if env.now > last and _idle(cast("Terminal", world.terminal)) and world.operator.idle:
            return


def _idle(terminal: Terminal) -> bool:
    """Powered, waiting for a step with none queued, owing nothing."""
    steps = terminal.steps
    return (terminal.powered and not steps.items and bool(steps.get_queue)
            and not terminal.unresolved())


def _journal(terminal: Terminal) -> dict[str, Any]:
    """The terminal's journal as trace fields: transactions and queued messages."""
    journal = terminal.journal
    return {
        "txns": {step: dataclasses.asdict(record) for step, record in journal.disk.txns.items()},
        "queue": [dataclasses.asdict(entry) for entry in journal.queue()],
    }

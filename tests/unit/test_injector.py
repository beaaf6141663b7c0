"""The fault injector on its own: when each fault reaches its device, when it leaves it,
which device gets it, and what the trace says about it."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from devices.fault import ActiveFault
from emulator.engine.injector import Injector
from emulator.engine.trace import Event, Trace
from emulator.scenario.load import scenario_from_dict
from emulator.scenario.model import FaultSpec

DEVICES = ("card", "printer", "network", "bank", "terminal")


class Target:
    """A device that records what the injector does to it, in its own list and in a log
    shared by all targets and the event emitters (for the order across them)."""

    def __init__(self, env: simpy.Environment, name: str, log: list[tuple[Any, ...]]) -> None:
        self.env = env
        self.name = name
        self.log = log
        self.applied: list[tuple[float, str, dict[str, object]]] = []
        self.cleared: list[tuple[float, str, dict[str, object]]] = []

    def apply(self, fault: ActiveFault) -> None:
        self.applied.append((self.env.now, fault.kind, dict(fault.params)))
        self.log.append((self.env.now, "apply", fault.kind))

    def clear(self, fault: ActiveFault) -> None:
        self.cleared.append((self.env.now, fault.kind, dict(fault.params)))
        self.log.append((self.env.now, "clear", fault.kind))


class Rig:
    """An environment, a real trace, one recording target per device and the injector."""

    def __init__(self, *faults: dict[str, Any], steps: tuple[str, ...] = ()) -> None:
        self.env = simpy.Environment()
        self.trace = Trace(self.env)
        self.log: list[tuple[Any, ...]] = []
        self.targets = {name: Target(self.env, name, self.log) for name in DEVICES}
        self.specs = fault_specs(*faults, steps=steps)
        self.injector = Injector(self.env, self.trace, dict(self.targets), self.specs)

    def emit_at(self, *events: tuple[float, str, dict[str, Any]]) -> None:
        """Emit each ``(t, name, fields)`` at its time from a process, logging that the
        emitter went on right after each one."""

        def emitter() -> Generator[simpy.Event, Any, None]:
            for t, name, fields in events:
                yield self.env.timeout(t - self.env.now)
                self.trace.emit(name, **fields)
                self.log.append((self.env.now, "emitter went on", name))

        self.env.process(emitter())

    def events(self, *names: str) -> list[Event]:
        return [e for e in self.trace.events if e.name in names]


def fault_specs(*faults: dict[str, Any], steps: tuple[str, ...] = ()) -> tuple[FaultSpec, ...]:
    """The faults as the scenario loader validates them (steps are sales, so `step` may
    name them)."""
    scenario = scenario_from_dict({
        "format": 1,
        "cards": [{"id": "alice", "pan": "4111111111111111", "balance": "100.00"}],
        "steps": [{"id": s, "do": "sale", "card": "alice", "amount": "1.00"} for s in steps],
        "faults": list(faults),
    })
    return scenario.faults


def test_fault_at_at_s_is_applied_then_cleared_after_for_s() -> None:
    """A timed fault reaches its device at ``at_s``, leaves it ``for_s`` later, and the
    trace says so at both moments."""
    rig = Rig({"fault": "network.down", "at_s": 2.0, "for_s": 3.0})
    network = rig.targets["network"]
    rig.env.run(until=1.999)
    assert (network.applied, rig.trace.events) == ([], [])
    rig.env.run()
    assert network.applied == [(2.0, "network.down", {})]
    assert network.cleared == [(5.0, "network.down", {})]
    assert [(e.t, e.name, e.fields) for e in rig.trace.events] == [
        (2.0, "fault.started", {"fault": "network.down", "index": 0, "for_s": 3.0}),
        (5.0, "fault.cleared", {"fault": "network.down", "index": 0}),
    ]


def test_fault_started_names_the_parameters_set_and_the_device_gets_them_all() -> None:
    """The device receives every parameter (defaults included, unset ones as None);
    ``fault.started`` lists those that have a value."""
    rig = Rig(
        {"fault": "network.drop", "at_s": 1.0, "direction": "to_bank", "count": 2},
        {"fault": "bank.timeout", "at_s": 1.0},
    )
    rig.env.run()
    assert rig.targets["network"].applied == [
        (1.0, "network.drop", {"direction": "to_bank", "count": 2})]
    assert rig.targets["bank"].applied == [(1.0, "bank.timeout", {"delay_s": None, "count": 0})]
    assert [e.fields for e in rig.events("fault.started")] == [
        {"fault": "network.drop", "index": 0, "for_s": None, "direction": "to_bank", "count": 2},
        {"fault": "bank.timeout", "index": 1, "for_s": None, "count": 0},
    ]


def test_fault_without_for_s_is_never_cleared() -> None:
    """Without ``for_s`` a fault stays on its device for the rest of the run."""
    rig = Rig({"fault": "printer.cover_open", "at_s": 1.0},
              {"fault": "card.read_error", "on": "terminal.txn_started"})
    rig.emit_at((3.0, "terminal.txn_started", {"step": "s1"}),
                (10_000.0, "terminal.txn_done", {"step": "s1"}))
    rig.env.run()
    assert rig.env.now == 10_000.0
    assert rig.targets["printer"].applied == [(1.0, "printer.cover_open", {})]
    assert rig.targets["card"].applied == [(3.0, "card.read_error", {})]
    assert [t.cleared for t in rig.targets.values()] == [[]] * len(DEVICES)
    assert rig.events("fault.cleared") == []


def test_on_trigger_fires_on_the_nth_occurrence_only_and_only_once() -> None:
    """With ``on`` and ``nth`` the fault starts at the nth such event, never before and
    never again at the later ones, even after it has cleared."""
    rig = Rig({"fault": "network.drop", "on": "terminal.request_sent", "nth": 3, "for_s": 0.5})
    rig.emit_at(*[(float(t), "terminal.request_sent", {"step": f"s{t}"}) for t in range(1, 7)])
    rig.env.run()
    network = rig.targets["network"]
    assert [(t, kind) for t, kind, _ in network.applied] == [(3.0, "network.drop")]
    assert [(t, kind) for t, kind, _ in network.cleared] == [(3.5, "network.drop")]
    assert [e.t for e in rig.events("fault.started")] == [3.0]


def test_on_trigger_is_not_fired_when_the_nth_event_never_comes() -> None:
    """Fewer events than ``nth``: the fault never starts."""
    rig = Rig({"fault": "card.removed_early", "on": "card.read", "nth": 3})
    rig.emit_at((1.0, "card.read", {"card": "alice"}), (2.0, "card.read", {"card": "alice"}),
                (3.0, "card.removed", {"card": "alice"}))
    rig.env.run()
    assert rig.targets["card"].applied == []
    assert rig.events("fault.started") == []


def test_on_trigger_counts_only_events_of_its_name() -> None:
    """Other events, even with the same fields, do not count towards ``nth``."""
    rig = Rig({"fault": "bank.down", "on": "terminal.request_sent", "nth": 2})
    rig.emit_at((1.0, "terminal.request_sent", {"step": "s1"}),
                (2.0, "terminal.reversal_sent", {"step": "s1"}),
                (3.0, "terminal.txn_done", {"step": "s1"}),
                (4.0, "terminal.request_sent", {"step": "s2"}))
    rig.env.run()
    assert [t for t, _, _ in rig.targets["bank"].applied] == [4.0]


def test_step_counts_only_the_events_of_that_step() -> None:
    """With ``step``, only trigger events carrying ``step=`` that step count towards
    ``nth``."""
    rig = Rig({"fault": "network.down", "on": "terminal.request_sent", "step": "s2", "nth": 2},
              steps=("s1", "s2"))
    rig.emit_at((1.0, "terminal.request_sent", {"step": "s1"}),
                (2.0, "terminal.request_sent", {"step": "s2"}),
                (3.0, "terminal.request_sent", {"step": "s1"}),
                (4.0, "terminal.request_sent", {"step": "s1"}),
                (5.0, "terminal.request_sent", {"step": "s2"}),
                (6.0, "terminal.request_sent", {"step": "s2"}))
    rig.env.run()
    assert [t for t, _, _ in rig.targets["network"].applied] == [5.0]


def test_fault_on_a_trigger_acts_during_the_triggering_event() -> None:
    """A fault triggered by an event is on its device before the emitter goes on, and
    ``fault.started`` follows the triggering event in the trace; ``for_s`` counts from
    then."""
    rig = Rig({"fault": "printer.paper_jam", "on": "printer.job_started", "for_s": 2.0})
    rig.emit_at((4.0, "printer.job_started", {"job": 1}))
    rig.env.run()
    assert rig.log == [
        (4.0, "apply", "printer.paper_jam"),
        (4.0, "emitter went on", "printer.job_started"),
        (6.0, "clear", "printer.paper_jam"),
    ]
    assert [(e.t, e.name) for e in rig.trace.events] == [
        (4.0, "printer.job_started"), (4.0, "fault.started"), (6.0, "fault.cleared")]


def test_power_loss_is_delivered_at_the_same_time_after_the_triggering_event() -> None:
    """``terminal.power_loss`` reaches the terminal at the trigger's simulated time but
    only after the process that emitted the trigger has gone on (it cannot interrupt
    itself); another fault on the same event is applied at once."""
    rig = Rig({"fault": "terminal.power_loss", "on": "terminal.request_sent", "for_s": 60.0},
              {"fault": "network.down", "on": "terminal.request_sent"})
    rig.emit_at((7.0, "terminal.request_sent", {"step": "s1"}))
    rig.env.run()
    assert rig.log == [
        (7.0, "apply", "network.down"),
        (7.0, "emitter went on", "terminal.request_sent"),
        (7.0, "apply", "terminal.power_loss"),
        (67.0, "clear", "terminal.power_loss"),
    ]
    assert [(e.t, e.name, e.fields.get("fault")) for e in rig.trace.events] == [
        (7.0, "terminal.request_sent", None),
        (7.0, "fault.started", "terminal.power_loss"),
        (7.0, "fault.started", "network.down"),
        (67.0, "fault.cleared", "terminal.power_loss"),
    ]


def test_faults_due_at_the_same_instant_keep_their_file_order() -> None:
    """Timed faults start in time order and, at the same instant, in file order; those
    clearing at the same instant clear in the order they started; two faults on the
    same event start in file order."""
    rig = Rig(
        {"fault": "card.read_error", "at_s": 4.0, "for_s": 1.0},
        {"fault": "printer.paper_out", "at_s": 4.0, "for_s": 1.0},
        {"fault": "bank.down", "at_s": 1.0, "for_s": 4.0},
        {"fault": "network.down", "at_s": 4.0, "for_s": 1.0},
        {"fault": "bank.respond", "on": "terminal.txn_started"},
        {"fault": "card.removed_early", "on": "terminal.txn_started"},
    )
    rig.emit_at((8.0, "terminal.txn_started", {"step": "s1"}))
    rig.env.run()
    assert [(t, what, kind) for t, what, kind in rig.log if what != "emitter went on"] == [
        (1.0, "apply", "bank.down"),
        (4.0, "apply", "card.read_error"),
        (4.0, "apply", "printer.paper_out"),
        (4.0, "apply", "network.down"),
        (5.0, "clear", "bank.down"),
        (5.0, "clear", "card.read_error"),
        (5.0, "clear", "printer.paper_out"),
        (5.0, "clear", "network.down"),
        (8.0, "apply", "bank.respond"),
        (8.0, "apply", "card.removed_early"),
    ]
    assert [e.fields["index"] for e in rig.events("fault.started")] == [2, 0, 1, 3, 4, 5]


def test_the_device_prefix_routes_each_fault_to_its_target() -> None:
    """Each fault goes to the device named before the dot, and to no other."""
    kinds = {"card": "card.read_error", "printer": "printer.offline",
             "network": "network.latency", "bank": "bank.down",
             "terminal": "terminal.power_loss"}
    rig = Rig(*({"fault": kind, "at_s": float(i)} for i, kind in enumerate(kinds.values())))
    rig.env.run()
    assert {name: [kind for _, kind, _ in t.applied] for name, t in rig.targets.items()} == {
        name: [kind] for name, kind in kinds.items()}
    assert rig.targets["network"].applied[0][2] == {
        "delay_s": 1.0, "jitter_s": 0.0, "direction": "both"}

"""The fuzz workload and the swarm draw of fault schedules.

A run is a :class:`Candidate`: the scenario seed and a tuple of faults, each a
``[[faults]]`` table as a dict. :func:`draw` makes run ``index`` of a campaign
from ``(campaign seed, index)`` alone, so any run can be drawn again anywhere.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec

from devices.iso8583.message import mask_pan
from emulator.money import format_minor
from emulator.scenario.catalogue import FAULTS, FLEET_DEVICE, TRIGGER_EVENTS
from emulator.scenario.events import CATALOGUE
from emulator.scenario.load import scenario_from_dict
from emulator.scenario.model import (
    DEFAULT_START,
    BankSpec,
    Liveness,
    MerchantSpec,
    NetworkSpec,
    PrinterSpec,
    Scenario,
)
from emulator.scenario.profiles import PROFILES

Fault = dict[str, Any]
"""One ``[[faults]]`` table: ``fault``, a trigger, ``for_s`` and non-default params."""

TEST_PREFIX = "999999"
"""Card numbers the fuzzer writes: this prefix (no issuer uses it), the card's index,
a Luhn check digit. A user's PANs never leave the process."""

KINDS: tuple[str, ...] = tuple(k for k, f in FAULTS.items()
                               if f.device != FLEET_DEVICE and not f.connection)
"""The fault kinds a run draws from: one terminal's simulated ones (fleet faults are
``posemu fleet``'s, connection faults live mode's)."""
DEVICES: tuple[str, ...] = tuple(dict.fromkeys(FAULTS[k].device for k in KINDS))
EVENTS: tuple[str, ...] = tuple(TRIGGER_EVENTS)
DIRECTIONS = ("to_bank", "to_terminal", "both")
_MONEY = frozenset({"offline_floor"})
DECLINES = ("05", "51", "54", "30")
UNCERTAIN = ("91", "96")
CORRUPT_FIELDS = (0, 4, 11, 39, 41)


class Candidate(NamedTuple):
    """A fault schedule to run: the scenario seed and the faults."""

    seed: int
    faults: tuple[Fault, ...]


@dataclass(frozen=True, eq=False)
class Workload:
    """What every run of a campaign does, as scenario tables (no faults, no expect)."""

    label: str  # "built-in" or the base file's path
    tables: dict[str, Any]
    step_ids: tuple[str, ...]
    step_at: tuple[float, ...]  # each step's at_s
    amounts: tuple[int, ...]  # sale and refund amounts, minor units
    liveness: Liveness | None = None  # posemu fuzz --liveness: faults stop, then quiet
    terminals: int = 1  # posemu fuzz --terminals: each run a fleet of this many

    @property
    def seed(self) -> int:
        return int(self.tables.get("seed", 0))

    def scenario(self, candidate: Candidate) -> Scenario:
        """The scenario of one run (a fault drawn that never fires fails nothing: each is
        ``optional``)."""
        return scenario_from_dict({
            **self.tables, "seed": candidate.seed,
            "faults": [{**f, "optional": True} for f in candidate.faults],
        })

    def possible(self, fault: Fault) -> bool:
        """Whether ``fault`` could fire: a ``step`` its ``on`` event can belong to (a
        fault that could not is refused as a scenario file; the draw leaves it out)."""
        step, on = fault.get("step"), fault.get("on")
        if step is None or on is None:
            return True
        event = CATALOGUE[on]
        kinds = {t["id"]: t["do"] for t in self.tables["steps"]}
        return event.has_step and kinds.get(step) in event.kinds


def sample_pan(index: int, length: int = 16) -> str:
    """A Luhn-valid test card number: TEST_PREFIX, ``index``, check digit."""
    body = f"{TEST_PREFIX}{index:0{length - len(TEST_PREFIX) - 1}d}"
    total = 0
    for i, ch in enumerate(reversed(body)):
        digit = int(ch) * (2 - i % 2)
        total += digit - 9 if digit > 9 else digit
    return body + str(-total % 10)


BUILTIN: dict[str, Any] = {
    "format": 1,
    "name": "fuzz-workload",
    "description": "posemu fuzz's built-in workload",
    "terminal": {"profile": "robust", "offline_floor": "25.00"},
    "cards": [
        {"id": "alice", "pan": sample_pan(1), "balance": "200.00"},
        {"id": "bob", "pan": sample_pan(2), "balance": "100.00"},
        {"id": "carol", "pan": sample_pan(3), "balance": "50.00", "blocked": True},
    ],
    "steps": [
        {"id": "s1", "do": "sale", "card": "alice", "amount": "20.00", "at_s": 0},
        {"id": "s2", "do": "sale", "card": "alice", "amount": "30.00", "at_s": 60},
        {"id": "s3", "do": "sale", "card": "carol", "amount": "30.00", "at_s": 80},
        {"id": "r1", "do": "refund", "card": "bob", "amount": "10.00", "at_s": 200},
        {"id": "v1", "do": "void", "target": "s2", "at_s": 300},
        {"id": "s4", "do": "sale", "card": "bob", "amount": "15.00", "at_s": 400},
        {"id": "st", "do": "settle", "at_s": 600},
    ],
}
"""Sales (the first and the last under the offline floor; the third right after the
second, for as much, on a blocked card, so declined), a refund, a void and a
settle: every knob's anomaly is within reach."""

BUILTIN_FULL: dict[str, Any] = {
    **BUILTIN,
    "description": "posemu fuzz's built-in workload (full)",
    "cards": [
        *BUILTIN["cards"],
        {"id": "dave", "pan": sample_pan(4), "balance": "80.00"},
        {"id": "erin", "pan": sample_pan(5), "balance": "150.00"},
    ],
    "steps": [
        {"id": "s1", "do": "sale", "card": "alice", "amount": "20.00", "at_s": 0},
        {"id": "s2", "do": "sale", "card": "alice", "amount": "30.00", "at_s": 60},
        {"id": "s3", "do": "sale", "card": "carol", "amount": "30.00", "at_s": 80},
        {"id": "p1", "do": "reprint", "at_s": 110},
        {"id": "r1", "do": "refund", "card": "bob", "amount": "10.00", "at_s": 200},
        {"id": "p2", "do": "reprint", "target": "s2", "at_s": 250},
        {"id": "v1", "do": "void", "target": "s2", "at_s": 300},
        {"id": "s4", "do": "sale", "card": "bob", "amount": "15.00", "at_s": 400},
        {"id": "s5", "do": "sale", "card": "dave", "amount": "12.00", "at_s": 500},
        {"id": "r2", "do": "refund", "card": "alice", "amount": "5.00", "target": "s1",
         "at_s": 520},
        {"id": "s6", "do": "sale", "card": "erin", "amount": "24.00", "at_s": 540},
        {"id": "v2", "do": "void", "target": "s5", "at_s": 560},
        {"id": "st", "do": "settle", "at_s": 600},
        {"id": "s7", "do": "sale", "card": "erin", "amount": "60.00", "at_s": 700},
        {"id": "p3", "do": "reprint", "at_s": 720},
        {"id": "st2", "do": "settle", "at_s": 800},
    ],
}
"""The basic workload's steps at their times, and around them: reprints (of the last
receipt, after a declined sale and after a new batch's first sale, and of a named
sale), a second refund (of s1, after whatever the faults did to it) and void (of an
offline-floor sale of a third card, its advice perhaps still queued), a fourth card's
sale just under the floor right before the settlement (store-and-forward pending at
settlement), a sale after the first batch closed and a second settlement."""

BUILTINS: dict[str, dict[str, Any]] = {"full": BUILTIN_FULL, "basic": BUILTIN}
"""The built-in workloads by name: ``full`` (``posemu fuzz``'s default) reaches every
step kind and clean end state; ``basic`` is the first one, which the pinned fuzz runs
of tests/scenarios/pinned.json keep drawing from."""


def to_tables(scenario: Scenario, terminal: dict[str, Any]) -> dict[str, Any]:
    """A validated scenario as TOML tables, cards renumbered with test PANs."""
    ids: dict[str, str] = {}
    cards = []
    for i, card in enumerate(scenario.cards, start=1):
        ids[card.id] = f"card{i}" if card.id == mask_pan(card.pan) else card.id
        table: dict[str, Any] = {
            "id": ids[card.id], "pan": sample_pan(i, len(card.pan)),
            "balance": format_minor(card.balance_minor),
        }
        if card.expiry is not None:
            table["expiry"] = card.expiry
        if card.blocked:
            table["blocked"] = True
        cards.append(table)
    steps = []
    for step in scenario.steps:
        table = {"id": step.id, "do": step.do, "at_s": step.at_s}
        if step.card is not None:
            table["card"] = ids[step.card]
        if step.amount_minor is not None:
            table["amount"] = format_minor(step.amount_minor)
        if step.target is not None:
            table["target"] = step.target
        if step.after is not None:  # a chained step: no at_s
            del table["at_s"]
            table.update(after=step.after, delay_s=step.delay_s)
            if step.if_screen is not None:
                table["if_screen"] = list(step.if_screen)
        if step.retry_of is not None:
            table["retry_of"] = step.retry_of
        steps.append(table)
    tables: dict[str, Any] = {"format": 1, "name": scenario.name,
                              "description": scenario.description, "seed": scenario.seed}
    if scenario.start != DEFAULT_START:
        tables["start"] = scenario.start
    if scenario.liveness is not None:  # it ends the run: no until_s
        tables["liveness"] = msgspec.structs.asdict(scenario.liveness)
    elif scenario.until_s is not None:
        tables["until_s"] = scenario.until_s
    tables["terminal"] = terminal
    bank = scenario.bank
    if bank != BankSpec():
        tables["bank"] = {"duplicate_check": bank.duplicate_check, "verify_mac": bank.verify_mac,
                          "processing_s": bank.processing_s,
                          "merchant_balance": format_minor(bank.merchant_balance_minor)}
    for name, spec, default in (("network", scenario.network, NetworkSpec()),
                                ("printer", scenario.printer, PrinterSpec()),
                                ("merchant", scenario.merchant, MerchantSpec())):
        if spec != default:
            tables[name] = msgspec.structs.asdict(spec)
    tables["cards"] = cards
    tables["steps"] = steps
    return tables


def make_workload(base: Scenario | None, label: str, profile: str | None,
                  sets: dict[str, Any], firmware: str | None = None,
                  builtin: str = "basic") -> Workload:
    """The campaign's workload: the base (or the built-in one named ``builtin``) with
    profile and knob overrides, or run by the plug-in ``firmware`` (the base's own
    plug-in when None).

    Raises ScenarioError when an override is unknown or has a bad value.
    """
    built_in = base is None
    if base is None:
        base = scenario_from_dict(BUILTINS[builtin])
    terminal: dict[str, Any] = {"profile": profile or base.profile}
    for name, value in base.overrides.items():  # money in minor units: back to a string
        terminal[name] = format_minor(value) if name in _MONEY and isinstance(value, int) else value
    if firmware is not None or base.firmware is not None:  # a plug-in takes its own settings
        own = base.firmware.table if base.firmware is not None and firmware is None else (
            {} if built_in else {k: v for k, v in terminal.items() if k != "profile"})
        terminal = {"firmware": firmware or base.firmware.ref, **own}  # type: ignore[union-attr]
    terminal.update(sets)
    tables = to_tables(base, terminal)
    checked = scenario_from_dict(tables)  # validates the overrides
    assert checked.profile in PROFILES
    return Workload(
        label=label, tables=tables,
        step_ids=tuple(s.id for s in checked.steps),
        step_at=tuple(s.at_s for s in checked.steps),
        amounts=tuple(s.amount_minor for s in checked.steps if s.amount_minor is not None),
        liveness=checked.liveness,  # a base with [liveness]: a liveness campaign
    )


# ------------------------------------------------------------------ the draw


def run_rng(campaign_seed: int, index: int) -> random.Random:
    """The random source of run ``index`` (the same in every process and version)."""
    return random.Random(f"posemu-fuzz:{campaign_seed}:{index}")


def draw(workload: Workload, campaign_seed: int, index: int) -> Candidate:
    """Run ``index``, swarm style: first which devices and fault kinds are enabled,
    the trigger style, time scale and step this run favours, then each fault."""
    rng = run_rng(campaign_seed, index)
    devices = [d for d in DEVICES if rng.random() < 0.5] or [rng.choice(DEVICES)]
    enabled: dict[str, list[str]] = {}
    for device in devices:
        kinds = [k for k in KINDS if FAULTS[k].device == device]
        enabled[device] = [k for k in kinds if rng.random() < 0.5] or [rng.choice(kinds)]
    style = _Style(
        p_event=rng.choice((0.2, 0.5, 0.8)), scale=rng.choice((5.0, 30.0, 120.0, 400.0)),
        focus=rng.randrange(len(workload.step_ids)) if workload.step_ids else -1,
    )
    count = 1 + min(int(rng.expovariate(0.4)), 4)
    faults = tuple(
        _fault(rng, rng.choice(enabled[rng.choice(devices)]), workload, style)
        for _ in range(count)
    )
    seed = rng.randrange(1 << 16)
    faults = tuple(f for f in faults if workload.possible(f))
    if workload.terminals > 1:
        swizzle = fleet_fault(campaign_seed, index, workload)
        faults += (swizzle,) if swizzle is not None else ()
    return Candidate(seed, faults)


SWIZZLE = "fleet.swizzle_clog"


def fleet_fault(campaign_seed: int, index: int, workload: Workload) -> Fault | None:
    """The swizzle-clog a fleet run adds, drawn from a random source of its own (so the
    run's other faults are those of a single-terminal campaign), or None (half the runs)."""
    rng = random.Random(f"posemu-fuzz-fleet:{campaign_seed}:{index}")
    if rng.random() < 0.5:
        return None
    at = rng.choice(workload.step_at or (0.0,))
    fault: Fault = {"fault": SWIZZLE, "at_s": round(at + rng.uniform(0, 5), 1),
                    "for_s": round(rng.uniform(1, 60), 1)}
    terminals = rng.randrange(workload.terminals + 1)  # 0: half the fleet
    if terminals:
        fault["terminals"] = terminals
    interval = rng.choice((0.5, 1.0, 5.0))
    if interval != 1.0:
        fault["interval_s"] = interval
    return fault


class _Style(NamedTuple):
    """What one run favours: event triggers or times, a time scale, one step."""

    p_event: float
    scale: float
    focus: int  # index of the step most faults aim at (-1: no steps)


def _fault(rng: random.Random, kind: str, workload: Workload, style: _Style) -> Fault:
    fault: Fault = {"fault": kind}
    scale = style.scale
    steps = len(workload.step_ids)
    # the focus step or the one after it, or any step
    aim = (min(style.focus + rng.choice((0, 0, 1)), steps - 1) if rng.random() < 0.6
           else rng.randrange(steps)) if steps else -1
    if rng.random() < style.p_event:
        fault["on"] = rng.choice(EVENTS)
        if aim >= 0 and rng.random() < 0.4:
            fault["step"] = workload.step_ids[aim]
        nth = 1 + min(int(rng.expovariate(0.8)), 5)
        if nth > 1:
            fault["nth"] = nth
    else:
        anchor = workload.step_at[aim] if aim >= 0 and rng.random() < 0.85 else 0.0
        offset = rng.choice((0.0, rng.uniform(0, 3), rng.uniform(0, scale)))
        fault["at_s"] = round(anchor + offset, 1)
    fault["for_s"] = round(rng.uniform(0.5, 2 * scale), 1)
    for name, value in _params(rng, kind, workload, scale).items():
        if value != _default(kind, name):
            fault[name] = value
    return fault


def _default(kind: str, name: str) -> object:
    return next(p.default for p in FAULTS[kind].params if p.name == name)


def _params(rng: random.Random, kind: str, workload: Workload, scale: float) -> dict[str, Any]:
    direction = rng.choice(DIRECTIONS)
    if kind == "network.drop":
        return {"direction": direction, "count": rng.choice((1, 1, 2, 3))}
    if kind == "network.latency":
        jitter = round(rng.uniform(0, 5), 1) if rng.random() < 0.3 else 0.0
        return {"delay_s": round(rng.uniform(0.5, scale), 1), "jitter_s": jitter,
                "direction": direction}
    if kind == "network.duplicate":
        return {"direction": direction, "count": rng.choice((0, 1, 1, 2))}
    if kind == "network.corrupt":
        return {"direction": direction, "count": rng.choice((1, 1, 2)),
                "bytes": rng.choice((1, 1, 2, 3)), "field": rng.choice(CORRUPT_FIELDS)}
    if kind == "bank.timeout":
        delay = None if rng.random() < 0.4 else round(rng.uniform(1, 2 * scale), 1)
        return {"delay_s": delay, "count": rng.choice((0, 1, 1, 2))}
    if kind == "bank.respond":
        params: dict[str, Any] = {"count": rng.choice((0, 1, 1, 2))}
        roll = rng.random()
        if roll < 0.35:
            params["code"] = rng.choice(DECLINES)
        elif roll < 0.75:  # posted: an internal error after the money moved
            params["code"] = rng.choice(UNCERTAIN)
            params["posted"] = rng.random() < 0.5
        else:
            amount = rng.choice(workload.amounts or (1000,))
            params["code"] = "10"
            params["amount"] = format_minor(max(100, amount // rng.choice((2, 3, 4)) // 100 * 100))
        return params
    return {}

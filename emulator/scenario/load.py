"""Scenario files: TOML in, one validated frozen `Scenario` out (contract section 1).

Two stages. msgspec converts the TOML tables to the raw structs below, which
check types, ranges and unknown keys (the fault structs are generated from the
catalogue, the ``[terminal]`` struct from the policy fields). Then `_build`
cross-checks what types cannot say (ids, triggers, step rules, money) and makes
the output model. Every mistake is one `ScenarioError`: file, key path and, for
TOML syntax, the line; a full card number never appears in it.
"""

from __future__ import annotations

import functools
import operator
import os
import re
import tomllib
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import msgspec
from msgspec import UNSET, Meta, UnsetType

from devices.errors import ScenarioError
from devices.iso8583.message import mask_pan
from emulator.money import format_minor, parse_minor
from emulator.scenario.catalogue import (
    END_STATES,
    EXPECTABLE,
    FAULTS,
    STEP_KINDS,
    TRIGGER_EVENTS,
    Param,
)
from emulator.scenario.events import CATALOGUE
from emulator.scenario.model import (
    DEFAULT_START,
    DIRECTIONS,
    FORMAT,
    MAX_AMOUNT_MINOR,
    MONEY_KNOBS,
    PARAM_TYPES,
    RECEIPT_FAILURE,
    AnomalyName,
    BankSpec,
    CardSpec,
    Count,
    Duration,
    EventName,
    ExpectSpec,
    FaultName,
    FaultSpec,
    Label,
    Liveness,
    MerchantSpec,
    Money,
    NetworkSpec,
    PrinterSpec,
    ProfileName,
    Scenario,
    Seconds,
    StepKind,
    StepSpec,
    Table,
    unknown_choice,
)
from emulator.scenario.profiles import POLICY_FIELDS, PROFILES, make_policy
from emulator.scenario.ranges import (
    MAX_BALANCE_MINOR,
    MAX_BATCH_MINOR,
    SETTING_TYPES,
    start_error,
    too_many_periods,
)
from emulator.scenario.screens import SCREENS, SLIPS
from emulator.scenario.seeds import MAX_SEED
from emulator.scenario.source import read_scenario_bytes

# ------------------------------------------------------------ raw TOML shape


class _TerminalBase(Table, frozen=True):
    profile: ProfileName = "robust"


class _Bank(Table, frozen=True):
    duplicate_check: bool = True
    verify_mac: bool = True
    processing_s: Seconds = 0.2
    merchant_balance: Money = "0.00"
    retention_s: Seconds = 86_400.0
    mac_key: Annotated[str, Meta(pattern=r"^([0-9a-fA-F]{2}){8,64}$")] | None = None
    in_doubt_after_s: Seconds | None = None


class _Card(Table, frozen=True):
    pan: Annotated[str, Meta(pattern=r"^[0-9]{12,19}$")]
    id: Label | None = None
    balance: Money = "0.00"
    expiry: Annotated[str, Meta(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")] | None = None
    blocked: bool = False


class _Step(Table, frozen=True):
    do: StepKind
    id: Label | None = None
    at_s: Seconds | None = None  # 0 unless chained
    card: str | None = None
    amount: Money | None = None
    target: str | None = None
    after: str | None = None
    delay_s: Seconds | None = None
    if_screen: list[str] | None = None  # each checked in _step, to name the one at fault
    retry_of: str | None = None


class _FaultBase(Table, frozen=True):
    on: EventName | None = None
    at_s: Seconds | None = None
    nth: Annotated[int, Meta(ge=1)] = 1
    for_s: Duration | None = None
    step: str | None = None
    optional: bool = False


class _Expect(Table, frozen=True):
    anomalies: list[AnomalyName] | None = None
    # values checked one by one in _build: msgspec cannot name the dict key at fault
    end_states: dict[str, Any] | None = None
    balances: dict[str, Any] | None = None
    screens: dict[str, Any] | None = None
    receipts: dict[str, Any] | None = None
    faults_fired: list[FaultName] | None = None


def _knob_type(name: str, kind: type) -> Any:
    if name == "on_receipt_failure":
        return Literal[RECEIPT_FAILURE]
    if name in MONEY_KNOBS:
        return Money
    if name in SETTING_TYPES:
        return SETTING_TYPES[name]
    return {float: Duration, int: Count}.get(kind, kind)


def _param_type(param: Param) -> Any:
    kind = PARAM_TYPES[param.kind]
    return kind if param.default is not None else kind | None


_FAULT_STRUCTS: dict[str, type[msgspec.Struct]] = {
    name: msgspec.defstruct(
        "_Fault_" + name.replace(".", "_"),
        [(p.name, _param_type(p), p.default) for p in kind.params],
        bases=(_FaultBase,), tag_field="fault", tag=name, frozen=True, kw_only=True,
        forbid_unknown_fields=True,
    )
    for name, kind in FAULTS.items()
}

if TYPE_CHECKING:
    _Terminal = _TerminalBase
    _Fault = _FaultBase
else:
    _Terminal = msgspec.defstruct(
        "_Terminal",
        [(n, _knob_type(n, t) | UnsetType, UNSET) for n, t in POLICY_FIELDS.items()],
        bases=(_TerminalBase,), frozen=True, kw_only=True, forbid_unknown_fields=True,
    )
    _Fault = functools.reduce(operator.or_, _FAULT_STRUCTS.values())  # tagged on `fault`


class _Raw(Table, frozen=True):
    format: int
    name: str | None = None
    description: str = ""
    seed: Annotated[int, Meta(ge=0, le=MAX_SEED)] = 0
    start: datetime = DEFAULT_START
    until_s: Duration | None = None
    terminal: _Terminal = msgspec.field(default_factory=_Terminal)
    bank: _Bank = msgspec.field(default_factory=_Bank)
    network: NetworkSpec = msgspec.field(default_factory=NetworkSpec)
    printer: PrinterSpec = msgspec.field(default_factory=PrinterSpec)
    merchant: MerchantSpec = msgspec.field(default_factory=MerchantSpec)
    cards: list[_Card] = msgspec.field(default_factory=list)
    steps: list[_Step] = msgspec.field(default_factory=list)
    faults: list[_Fault] = msgspec.field(default_factory=list)
    expect: _Expect | None = None
    liveness: Liveness | None = None


_SECTIONS: dict[str, type[msgspec.Struct]] = {
    "terminal": _Terminal, "bank": _Bank, "network": NetworkSpec, "printer": PrinterSpec,
    "merchant": MerchantSpec, "cards": _Card, "steps": _Step, "expect": _Expect,
    "liveness": Liveness,
}

# ------------------------------------------------------------------- messages

_CHOICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "fault": ("fault", tuple(FAULTS)),
    "on": ("trigger event", tuple(TRIGGER_EVENTS)),
    "do": ("step kind", STEP_KINDS),
    "profile": ("profile", tuple(PROFILES)),
    "anomalies": ("anomaly", EXPECTABLE),
    "faults_fired": ("fault", tuple(FAULTS)),
    "direction": ("direction", DIRECTIONS),
    "on_receipt_failure": ("value", RECEIPT_FAILURE),
}
_FORMATS = {
    "pan": "must be a card number of 12 to 19 digits",
    "expiry": 'must be "YYYY-MM"',
    "code": 'must be a two-digit response code, e.g. "05"',
    "name": "must be 1 to 40 printable ASCII characters",
    "merchant_id": "must be 1 to 15 printable ASCII characters",
    "terminal_id": "must be 1 to 8 printable ASCII characters",
}
_TYPE_NAMES = {
    "int": "an integer", "float": "a number", "str": "a string", "bool": "a boolean",
    "object": "a table", "array": "an array", "datetime": "a date-time", "date": "a date",
    "time": "a time",
}
_Path = list[str | int]


def _mask_digits(text: str) -> str:
    """Mask anything that could be a card number."""
    return re.sub(r"\d{12,}", lambda m: mask_pan(m.group()), text)


def _key(path: _Path) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _lookup(data: object, path: _Path) -> object:
    for part in path:
        if isinstance(part, int) and isinstance(data, list) and part < len(data):
            data = data[part]
        elif isinstance(part, str) and isinstance(data, dict):
            data = data.get(part)
        else:
            return None
    return data


def _type_names(spec: str) -> str:
    parts = [p for p in spec.split(" | ") if p != "null"]
    if set(parts) == {"int", "float", "str"}:
        return 'an amount like "12.50"'
    return " or ".join(_TYPE_NAMES.get(p, p) for p in parts)


def _explain(err: msgspec.ValidationError, data: object) -> tuple[str, str]:
    """msgspec's message and ``$.faults[2].fault`` path as (key path, message)."""
    text, _, where = str(err).partition(" - at `$")
    path: _Path = [name or int(i) for name, i in re.findall(r"\.(\w+)|\[(\d+)\]", where)]
    last = next((p for p in reversed(path) if isinstance(p, str)), "")
    if m := re.fullmatch(r"Object contains unknown field `(.*)`", text):
        names = [p for p in path if isinstance(p, str)]
        struct = _Raw if not names else _SECTIONS.get(names[0])
        if names[:1] == ["faults"]:
            struct = _FAULT_STRUCTS.get(str(_lookup(data, [*path, "fault"])))
        known = struct.__struct_fields__ if struct else ()
        known_keys = unknown_choice("key", m[1], known).replace("; one of:", "; known:")
        return _key([*path, m[1]]), known_keys
    if m := re.fullmatch(r"Object missing required field `(.*)`", text):
        return _key([*path, m[1]]), "missing (required)"
    if text.startswith(("Invalid enum value", "Invalid value")):
        what, choices = _CHOICES.get(last, ("value", ()))
        return _key(path), unknown_choice(what, _lookup(data, path), choices)
    if m := re.fullmatch(r"Expected `([^`]*)`, got `([^`]*)`", text):
        return _key(path), f"expected {_type_names(m[1])}, got {_type_names(m[2])}"
    if m := re.fullmatch(r"Expected `\w+` ([<>]=?) (\S+)", text):
        bound = float(m[2])
        return _key(path), f"must be {m[1]} {int(bound) if bound.is_integer() else bound}"
    if m := re.fullmatch(r"Expected `str` of length ([<>]=) (\d+)", text):
        if m[1] == ">=" and m[2] == "1":
            return _key(path), "must not be empty"
        return _key(path), f"must be {'at least' if m[1] == '>=' else 'at most'} {m[2]} characters"
    if text.startswith("Expected `str` matching regex"):
        return _key(path), _FORMATS.get(last, "has the wrong format")
    return _key(path), text[:1].lower() + text[1:]


class _Checker:
    """Raises the one ScenarioError of a scenario (PANs masked); resolves references."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.cards: dict[str, str] = {}  # card id or PAN -> card id
        self.card_ids: set[str] = set()
        self.steps: dict[str, StepSpec] = {}

    def fail(self, key: str | None, message: str) -> NoReturn:
        key = _mask_digits(key) if key else None
        raise ScenarioError(_mask_digits(message), path=self.path, key=key)

    def money(self, value: Money, key: str, low: int | None = None, high: int | None = None) -> int:
        """Exact minor units, within [low, high]."""
        try:
            minor = parse_minor(value)
        except ValueError as err:
            if str(err).startswith("too large"):
                self.fail(key, f"{err}: money is at most {format_minor(MAX_BALANCE_MINOR)}")
            self.fail(key, f'{err}; write a decimal string like "12.50"')
        if low is not None and minor < low:
            self.fail(key, "must be more than 0" if low == 1 else f"must be at least {low}")
        if high is not None and minor > high:
            self.fail(key, "too large (ISO 8583 field 4 holds 12 digits)")
        if abs(minor) > MAX_BALANCE_MINOR:
            self.fail(key, f"too large: money is at most {format_minor(MAX_BALANCE_MINOR)} "
                      "either way")
        return minor

    def choice(self, value: object, what: str, choices: tuple[str, ...], key: str) -> str:
        if not isinstance(value, str) or value not in choices:
            self.fail(key, unknown_choice(what, value, choices))
        return value

    def card(self, value: str, key: str) -> str:
        """The card id that a card id or PAN names."""
        if value not in self.cards:
            self.fail(key, unknown_choice("card", value, tuple(dict.fromkeys(self.cards.values()))))
        return self.cards[value]

    def step(self, value: str, key: str) -> str:
        return self.choice(value, "step", tuple(self.steps), key)


def _luhn_ok(pan: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(pan)):
        digit = int(ch) * (1 + i % 2)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


# ---------------------------------------------------------------- cross-checks

# step kind -> (keys it needs, keys it accepts) among card, amount, target
_STEP_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "sale": (frozenset({"card", "amount"}), frozenset({"card", "amount"})),
    "refund": (frozenset({"card", "amount"}), frozenset({"card", "amount", "target"})),
    "void": (frozenset({"target"}), frozenset({"target", "card"})),
    "reprint": (frozenset(), frozenset({"target"})),
    "settle": (frozenset(), frozenset()),
}
# step kind -> the kinds of step its target may name
_TARGETS = {"refund": ("sale",), "void": ("sale",), "reprint": ("sale", "refund", "void")}


def _card(c: _Checker, rc: _Card, key: str) -> CardSpec:
    if not _luhn_ok(rc.pan):
        c.fail(f"{key}.pan", f"card number {mask_pan(rc.pan)} fails the Luhn check")
    if rc.pan in c.cards:
        c.fail(f"{key}.pan", f"duplicate card number {mask_pan(rc.pan)}")
    card_id = mask_pan(rc.pan) if rc.id is None else rc.id
    if rc.id is not None and (rc.id == "merchant" or re.fullmatch(r"[0-9]{12,19}", rc.id)):
        c.fail(f"{key}.id", f"{rc.id!r} cannot be a card id")
    if card_id in c.card_ids:
        c.fail(f"{key}.id", f"duplicate card id {card_id!r}")
    c.cards[card_id] = c.cards[rc.pan] = card_id
    c.card_ids.add(card_id)
    return CardSpec(
        id=card_id, pan=rc.pan, balance_minor=c.money(rc.balance, f"{key}.balance", low=0),
        expiry=rc.expiry, blocked=rc.blocked,
    )


def _step(c: _Checker, rs: _Step, i: int, later: Counter[str | None],
          until: tuple[float, str] | None) -> StepSpec:
    key = f"steps[{i}]"
    step_id = f"t{i + 1}" if rs.id is None else rs.id
    if step_id in c.steps:
        c.fail(f"{key}.id", f"duplicate step id {step_id!r}")
    if until is not None and rs.at_s is not None and rs.at_s > until[0]:
        c.fail(f"{key}.at_s", f"after {until[1]} = {until[0]:g}")
    _chain(c, rs, key, later)
    given = {k for k in ("card", "amount", "target") if getattr(rs, k) is not None}
    needs, accepts = _STEP_KEYS[rs.do]
    for k in sorted(needs - given):
        c.fail(f"{key}.{k}", f"missing: a {rs.do} needs `{k}`")
    for k in sorted(given - accepts):
        c.fail(f"{key}.{k}", f"a {rs.do} takes no `{k}`")
    if rs.target is not None:
        target = c.steps[_earlier(c, rs.target, f"{key}.target", later)]
        if target.do not in _TARGETS[rs.do]:
            c.fail(f"{key}.target", f"a {rs.do} cannot target a {target.do} ({target.id!r})")
    amount = None
    if rs.amount is not None:
        amount = c.money(rs.amount, f"{key}.amount", low=1, high=MAX_AMOUNT_MINOR)
    step = StepSpec(
        id=step_id, at_s=rs.at_s or 0.0, do=rs.do, amount_minor=amount, target=rs.target,
        card=None if rs.card is None else c.card(rs.card, f"{key}.card"),
        after=rs.after, delay_s=rs.delay_s or 0.0, retry_of=rs.retry_of,
        if_screen=None if rs.if_screen is None else tuple(rs.if_screen),
    )
    if step.retry_of is not None:
        original = c.steps[step.retry_of]
        if step.do != "sale" or original.do != "sale":
            c.fail(f"{key}.retry_of", f"a retry is a sale run again: {step.id!r} and "
                   f"{original.id!r} must both be sales")
        if step.card != original.card:
            c.fail(f"{key}.card", f"a retry charges the card of {original.id!r} "
                   f"({original.card!r}), not {step.card!r}")
    c.steps[step_id] = step
    return step


def _totals(c: _Checker, steps: list[StepSpec]) -> None:
    """The sales, and the refunds, of all steps fit a batch total (16 digits)."""
    for kind in ("sale", "refund"):
        total = sum(s.amount_minor or 0 for s in steps if s.do == kind)
        if total > MAX_BATCH_MINOR:
            c.fail("steps", f"the {kind}s total {format_minor(total)}: more than a batch "
                   f"total carries (ISO 8583 fields 86/88 hold 16 digits, "
                   f"{format_minor(MAX_BATCH_MINOR)})")


def _earlier(c: _Checker, value: str, key: str, later: Counter[str | None]) -> str:
    """``value``, which must name a step before this one (``later``: the ids to come)."""
    if value not in c.steps and later[value] > 0:
        c.fail(key, f"{value!r} must name an earlier step")
    return c.step(value, key)


def _chain(c: _Checker, rs: _Step, key: str, later: Counter[str | None]) -> None:
    """``after`` / ``delay_s`` / ``if_screen`` / ``retry_of`` name earlier steps and go
    together."""
    if rs.after is None:
        for k in ("delay_s", "if_screen"):
            if getattr(rs, k) is not None:
                c.fail(f"{key}.{k}", f"`{k}` goes with `after` (a chained step)")
    else:
        if rs.at_s is not None:
            c.fail(f"{key}.at_s", "a chained step starts `delay_s` after its `after` step: "
                   "no `at_s`")
        _earlier(c, rs.after, f"{key}.after", later)
        for j, screen in enumerate(rs.if_screen or ()):
            c.choice(screen, "screen", tuple(SCREENS), f"{key}.if_screen[{j}]")
    if rs.retry_of is not None:
        _earlier(c, rs.retry_of, f"{key}.retry_of", later)


def _fault(c: _Checker, rf: _FaultBase, i: int) -> FaultSpec:
    key = f"faults[{i}]"
    name = str(type(rf).__struct_config__.tag)
    if (rf.on is None) == (rf.at_s is None):
        both = "both `on` and `at_s` given" if rf.on else "neither `on` nor `at_s` given"
        c.fail(key, f"{both}: a fault takes exactly one trigger")
    if rf.at_s is not None and rf.nth != 1:
        c.fail(f"{key}.nth", "`nth` counts `on` events: it does not go with `at_s`")
    if rf.step is not None:
        if rf.on is None:
            c.fail(f"{key}.step", "`step` restricts an `on` trigger, not `at_s`")
        event = CATALOGUE[rf.on]
        if not event.has_step:
            c.fail(f"{key}.step", f"{rf.on} belongs to no step: `step` can never match it")
        step = c.steps[c.step(rf.step, f"{key}.step")]
        if step.do not in event.kinds:
            c.fail(f"{key}.step", f"a {step.do} ({step.id!r}) has no {rf.on}: this fault "
                   "could never fire")
    params: dict[str, object] = {}
    for p in FAULTS[name].params:
        value = getattr(rf, p.name)
        if p.kind == "money" and value is not None:
            value = c.money(value, f"{key}.{p.name}", low=1, high=MAX_AMOUNT_MINOR)
        params[p.name] = value
    return FaultSpec(
        index=i, fault=name, on=rf.on, at_s=rf.at_s, nth=rf.nth, for_s=rf.for_s,
        params=params, step=rf.step, optional=rf.optional,
    )


def _expect(c: _Checker, rx: _Expect) -> ExpectSpec:
    end_states = balances = None
    if rx.end_states is not None:
        end_states = {
            c.step(k, f"expect.end_states.{k}"):
            c.choice(v, "end state", END_STATES, f"expect.end_states.{k}")
            for k, v in rx.end_states.items()
        }
    if rx.balances is not None:
        balances = {}
        for k, v in rx.balances.items():
            owner = k if k == "merchant" else c.card(k, f"expect.balances.{k}")
            if owner in balances:
                c.fail(f"expect.balances.{k}", f"{owner!r} is given twice")
            balances[owner] = c.money(v, f"expect.balances.{k}")
    anomalies = None if rx.anomalies is None else tuple(rx.anomalies)
    screens = receipts = None
    if rx.screens is not None:
        screens = {
            c.step(k, f"expect.screens.{k}"):
            c.choice(v, "screen", tuple(SCREENS), f"expect.screens.{k}")
            for k, v in rx.screens.items()
        }
    if rx.receipts is not None:
        receipts = {}
        for k, v in rx.receipts.items():
            where = f"expect.receipts.{k}"
            if not isinstance(v, list):
                c.fail(where, 'expected a list of slips, e.g. ["approved"] ([] for none)')
            receipts[c.step(k, where)] = tuple(
                c.choice(slip, "slip", tuple(SLIPS), f"{where}[{j}]") for j, slip in enumerate(v))
    fired = None if rx.faults_fired is None else tuple(rx.faults_fired)
    return ExpectSpec(anomalies=anomalies, end_states=end_states, balances=balances,
                      screens=screens, receipts=receipts, faults_fired=fired)


def _build(raw: _Raw, path: str | None) -> Scenario:
    c = _Checker(path)
    overrides: dict[str, object] = {}
    for name in POLICY_FIELDS:
        value = getattr(raw.terminal, name)
        if value is not UNSET:
            money = name in MONEY_KNOBS
            overrides[name] = c.money(value, f"terminal.{name}", low=0) if money else value
    cards = tuple(_card(c, rc, f"cards[{i}]") for i, rc in enumerate(raw.cards))
    until = _until(c, raw)
    later = Counter(rs.id for rs in raw.steps)  # ids of the steps not yet built
    steps: list[StepSpec] = []
    todo = raw.steps  # emptied as built: a long file's steps are held once, not twice
    todo.reverse()
    while todo:
        rs = todo.pop()
        later[rs.id] -= 1
        steps.append(_step(c, rs, len(steps), later, until))
    _totals(c, steps)
    faults = tuple(_fault(c, rf, i) for i, rf in enumerate(raw.faults))
    _after_horizon(c, raw.liveness, faults)
    start = raw.start
    if start.tzinfo is not None:  # the simulated clock is naive UTC
        start = start.astimezone(UTC).replace(tzinfo=None)
    if (why := start_error(start)) is not None:
        c.fail("start", why)
    policy = make_policy(raw.terminal.profile, overrides)
    if (too_many := too_many_periods(policy, overrides)) is not None:
        c.fail(*too_many)
    stem = os.path.splitext(os.path.basename(path))[0] if path else "scenario"
    merchant_balance = c.money(raw.bank.merchant_balance, "bank.merchant_balance")
    return Scenario(
        path=path, name=stem if raw.name is None else raw.name, description=raw.description,
        seed=raw.seed, start=start, until_s=None if until is None else until[0],
        profile=raw.terminal.profile,
        policy=policy, overrides=overrides,
        bank=BankSpec(
            duplicate_check=raw.bank.duplicate_check, verify_mac=raw.bank.verify_mac,
            processing_s=raw.bank.processing_s, merchant_balance_minor=merchant_balance,
            retention_s=raw.bank.retention_s, mac_key=raw.bank.mac_key,
            in_doubt_after_s=raw.bank.in_doubt_after_s,
        ),
        network=raw.network, printer=raw.printer, merchant=raw.merchant,
        cards=cards, steps=tuple(steps), faults=faults,
        expect=None if raw.expect is None else _expect(c, raw.expect), liveness=raw.liveness,
    )


def _until(c: _Checker, raw: _Raw) -> tuple[float, str] | None:
    """When the run ends and what says so: ``until_s``, or ``[liveness]`` (the two do
    not go together)."""
    live = raw.liveness
    if live is None:
        return None if raw.until_s is None else (raw.until_s, "the horizon until_s")
    if raw.until_s is not None:
        c.fail("until_s", "a [liveness] run ends at liveness.horizon_s + liveness.quiet_s: "
               "leave out until_s")
    if live.end_s <= 0:
        c.fail("liveness.quiet_s", "liveness.horizon_s + liveness.quiet_s must be more than 0")
    return live.end_s, "the end of the run, liveness.horizon_s + liveness.quiet_s"


def _after_horizon(c: _Checker, live: Liveness | None, faults: tuple[FaultSpec, ...]) -> None:
    """No fault due after the liveness horizon, where none starts (but an optional one)."""
    for f in faults:
        if live is not None and f.at_s is not None and f.at_s > live.horizon_s \
                and not f.optional:
            c.fail(f"faults[{f.index}].at_s", f"after the liveness horizon "
                   f"(liveness.horizon_s = {live.horizon_s:g}), where no fault starts: it "
                   "would never fire (mark it `optional = true` if that is meant)")


# ------------------------------------------------------------------ entry points


def scenario_from_dict(data: dict[str, Any], path: str | None = None) -> Scenario:
    """Validate a scenario given as the TOML document's tables (e.g. built in Python)."""
    return _from_tables(data, path, owned=False)


def _from_tables(data: dict[str, Any], path: str | None, *, owned: bool) -> Scenario:
    """:func:`scenario_from_dict`; ``owned``: nobody else reads ``data``, which is emptied
    once converted, so a long file's tables are let go before its model is built."""
    c = _Checker(path)
    if not isinstance(data, dict):
        c.fail(None, f"a scenario is a table of keys, not {type(data).__name__}")
    if "format" not in data:
        c.fail("format", f"missing (required): write `format = {FORMAT}` at the top")
    fmt = data["format"]
    if isinstance(fmt, bool) or fmt != FORMAT:
        c.fail("format", f"unsupported format {fmt!r}: this posemu reads format {FORMAT}")
    firmware = None
    if isinstance(data.get("terminal"), dict) and "firmware" in data["terminal"]:
        from emulator.firmware.plugin import terminal_plugin  # noqa: PLC0415  (plug-ins only)

        data, firmware = terminal_plugin(data, path)
    try:
        raw = msgspec.convert(data, _Raw, strict=True)
    except msgspec.ValidationError as err:
        key, message = _explain(err, data)
        c.fail(key or None, message)
    if owned:
        data.clear()
    scenario = _build(raw, path)
    return scenario if firmware is None else msgspec.structs.replace(scenario, firmware=firmware)


def parse_scenario(text: str, path: str | None = None) -> Scenario:
    """Validate a scenario from TOML text; ``path`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        message = str(err)
        m = re.search(r" \(at line (\d+), column (\d+)\)$", message)
        line = int(m[1]) if m else text.count("\n") + 1
        where = f" (column {m[2]})" if m else " (at the end of the file)"
        message = message[: m.start()] if m else message.removesuffix(" (at end of document)")
        detail = message[:1].lower() + message[1:]
        raise ScenarioError(f"invalid TOML: {detail}{where}", path=path, line=line) from err
    except RecursionError as err:  # tomllib parses nested arrays and tables recursively
        raise ScenarioError("invalid TOML: arrays or tables nested too deeply",
                            path=path) from err
    return _from_tables(data, path, owned=True)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate a scenario file; any problem is one ScenarioError."""
    name = os.fspath(path)
    content = read_scenario_bytes(name)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = content[: err.start].count(b"\n") + 1
        raise ScenarioError("not UTF-8 text", path=name, line=line) from err
    del content  # the text is all that is read from here on
    return parse_scenario(text, name)

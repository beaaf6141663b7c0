"""The scenario model: one validated, frozen :class:`Scenario` and the specs it holds
(contract section 1). :mod:`emulator.scenario.load` makes one from a TOML file.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from msgspec import Meta

from devices.errors import ScenarioError
from devices.iso8583.message import mask_pan
from devices.printer.limits import MAX_LINES_PER_S, MAX_PAPER_M, MIN_LINES_PER_S
from emulator.scenario.catalogue import (
    EXPECTABLE,
    FAULTS,
    STEP_KINDS,
    TRIGGER_EVENTS,
)
from emulator.scenario.profiles import PROFILES, Policy, make_policy

FORMAT = 1
DEFAULT_START = datetime(2026, 11, 22, 9, 0, 0)
MAX_AMOUNT_MINOR = 999_999_999_999  # ISO 8583 field 4 holds 12 digits
DIRECTIONS = ("to_bank", "to_terminal", "both")
RECEIPT_FAILURE = ("reprint", "undo", "ignore")
MONEY_KNOBS = frozenset({"offline_floor"})
QUIET_S = 600.0
"""``[liveness] quiet_s`` by default: ten store-and-forward retries of the robust profile,
twice its receipt hold."""




# ------------------------------------------------------------------- model

_MAX_S = 1e9
Seconds = Annotated[float, Meta(ge=0, le=_MAX_S)]  # finite: NaN fails ge, inf fails le
Duration = Annotated[float, Meta(gt=0, le=_MAX_S)]
Count = Annotated[int, Meta(ge=0)]
Money = str | int | float  # a decimal string ("12.50"), parsed exactly by parse_minor
Label = Annotated[str, Meta(min_length=1, max_length=64)]
Metres = Annotated[float, Meta(ge=0, le=MAX_PAPER_M)]
PARAM_TYPES: dict[str, Any] = {
    "seconds": Seconds, "count": Count, "money": Money, "bool": bool,
    "direction": Literal[DIRECTIONS], "code": Annotated[str, Meta(pattern=r"^[0-9]{2}$")],
    "field": Annotated[int, Meta(ge=0, le=128)],
}

if TYPE_CHECKING:
    StepKind = str
    ProfileName = str
    EventName = str
    AnomalyName = str
    FaultName = str
else:
    StepKind = Literal[STEP_KINDS]
    ProfileName = Literal[tuple(PROFILES)]
    EventName = Literal[tuple(TRIGGER_EVENTS)]
    AnomalyName = Literal[EXPECTABLE]
    FaultName = Literal[tuple(FAULTS)]


class Table(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A frozen record; as a TOML table, unknown keys are errors."""


class CardSpec(Table, frozen=True):
    """A cardholder account and its card."""

    id: str
    pan: str
    balance_minor: int
    expiry: str | None = None  # "YYYY-MM"
    blocked: bool = False

    def __repr__(self) -> str:  # reprs end up in test reports: never the full PAN
        return f"CardSpec(id={self.id!r}, pan={mask_pan(self.pan)!r}, ...)"


class StepSpec(Table, frozen=True):
    """One operator action at a simulated time."""

    id: str
    at_s: float
    do: str  # one of STEP_KINDS
    card: str | None = None  # a card id
    amount_minor: int | None = None
    target: str | None = None  # a step id
    after: str | None = None  # chained: starts `delay_s` after this step showed its outcome
    delay_s: float = 0.0
    if_screen: tuple[str, ...] | None = None  # chained: only if `after` showed one of these
    retry_of: str | None = None  # the cashier's retry of this step: one purchase


class FaultSpec(Table, frozen=True):
    """One scheduled fault: trigger, duration and the fault's own parameters."""

    index: int  # position in the file
    fault: str  # a key of FAULTS
    on: str | None = None  # a key of TRIGGER_EVENTS ...
    at_s: float | None = None  # ... or an absolute simulated time
    nth: int = 1
    for_s: float | None = None
    params: dict[str, object] = {}
    step: str | None = None  # restricts an `on` trigger to this step's events
    optional: bool = False  # may never fire without failing the run


class BankSpec(Table, frozen=True):
    """The acquirer host."""

    duplicate_check: bool = True
    verify_mac: bool = True
    processing_s: float = 0.2
    merchant_balance_minor: int = 0
    retention_s: float = 86_400.0  # how long a closed batch's transactions are remembered
    mac_key: str | None = None  # hex; None: posemu's test key
    in_doubt_after_s: float | None = None  # live acquirer's oracle window; None: its default


class NetworkSpec(Table, frozen=True):
    """The link between terminal and host (also the raw `[network]` table)."""

    latency_s: Seconds = 0.12
    jitter_s: Seconds = 0.0


class PrinterSpec(Table, frozen=True):
    """The receipt printer (also the raw `[printer]` table)."""

    paper_m: Metres = 20.0
    near_end_m: Metres = 0.5
    lines_per_s: Annotated[float, Meta(ge=MIN_LINES_PER_S, le=MAX_LINES_PER_S)] = 20.0


class MerchantSpec(Table, frozen=True):
    """Receipt header and ISO 8583 fields 41/42 (also the raw `[merchant]` table)."""

    name: Annotated[str, Meta(pattern=r"^[ -~]{1,40}$")] = "POSEMU DEMO SHOP"
    merchant_id: Annotated[str, Meta(pattern=r"^[ -~]{1,15}$")] = "MERCHANT0000001"
    terminal_id: Annotated[str, Meta(pattern=r"^[ -~]{1,8}$")] = "TERM0001"


class ExpectSpec(Table, frozen=True):
    """What must be true at the end; None = not checked."""

    anomalies: tuple[str, ...] | None = None
    end_states: dict[str, str] | None = None  # step id -> end state
    balances: dict[str, int] | None = None  # card id or "merchant" -> minor units
    screens: dict[str, str] | None = None  # step id -> screen (emulator.scenario.screens)
    receipts: dict[str, tuple[str, ...]] | None = None  # step id -> slips, in print order
    faults_fired: tuple[str, ...] | None = None  # fault names, as a multiset


class Liveness(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``[liveness]``: every fault stops at ``horizon_s`` (none starts after it, those in
    force are cleared), and ``quiet_s`` later, when the run ends, the terminal must be
    quiet (:mod:`emulator.engine.liveness`); also the raw TOML table."""

    horizon_s: Seconds
    quiet_s: Seconds = QUIET_S

    @property
    def end_s(self) -> float:
        """When the run ends and the terminal is judged."""
        return self.horizon_s + self.quiet_s


class FirmwareSpec(Table, frozen=True):
    """A plug-in firmware (``[terminal] firmware``): its ``package.module:factory``, the
    ``[terminal]`` keys as written and its settings as validated (docs/firmware.md)."""

    ref: str
    table: dict[str, object] = {}
    settings: dict[str, object] = {}


class Scenario(Table, frozen=True):
    """A validated scenario: the starting world, the steps, the faults, the expectations."""

    path: str | None
    name: str
    description: str
    seed: int
    start: datetime
    until_s: float | None
    profile: str
    policy: Policy
    overrides: dict[str, object]  # the knobs the file set under [terminal]
    bank: BankSpec
    network: NetworkSpec
    printer: PrinterSpec
    merchant: MerchantSpec
    cards: tuple[CardSpec, ...]
    steps: tuple[StepSpec, ...]
    faults: tuple[FaultSpec, ...]
    expect: ExpectSpec | None
    firmware: FirmwareSpec | None = None  # a plug-in in place of posemu's own terminal
    liveness: Liveness | None = None  # [liveness]; until_s is then its end_s

    @property
    def runs_as(self) -> str:
        """What runs as the terminal: the profile of posemu's own, or a plug-in's factory."""
        return self.profile if self.firmware is None else self.firmware.ref

    def with_overrides(self, *, seed: int | None = None, profile: str | None = None) -> Scenario:
        """This scenario with another seed and/or profile (the file's knobs re-applied)."""
        if profile is not None and profile not in PROFILES:
            raise ScenarioError(unknown_choice("profile", profile, tuple(PROFILES)), path=self.path)
        profile = self.profile if profile is None else profile
        return msgspec.structs.replace(
            self, seed=self.seed if seed is None else seed, profile=profile,
            policy=make_policy(profile, self.overrides),
        )


def unknown_choice(what: str, value: object, choices: tuple[str, ...]) -> str:
    """``unknown fault 'x' (did you mean 'y'?)``, or the list of choices."""
    import difflib  # noqa: PLC0415 - only on errors: it costs ~10 ms to import

    close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; one of: {', '.join(choices)}"
    return f"unknown {what} {value!r}" + (hint if choices else "")

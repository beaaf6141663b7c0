"""The event contract between a terminal's firmware and the oracle (docs/firmware.md).

The oracle judges a run from the trace alone, so a firmware must say what it did in
events it knows: which events, with which fields, and one outcome per operator step.
:class:`Contract` checks a firmware's events as they are emitted; :func:`audit` checks a
whole trace afterwards (how posemu's own terminal is held to the same contract). Pure:
no simpy, no devices.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devices.errors import FirmwareError

if TYPE_CHECKING:
    from emulator.engine.trace import Event

RESULTS: dict[str, tuple[str, ...]] = {
    "sale": ("approved", "declined", "failed", "cancelled", "refused"),
    "refund": ("refunded", "refund_failed", "refused"),
    "void": ("voided", "void_pending", "void_failed", "refused"),
    "reprint": ("reprinted", "reprint_failed"),
    "settle": ("settled", "out_of_balance", "settle_failed", "refused"),
}
"""The results ``terminal.txn_done`` may show for each kind of step."""

SLIPS = ("approved", "declined", "copy", "notice")
"""What a print job is (its ``slip``): the approved receipt of ``receipt_of``, a declined
one, a copy of ``receipt_of``'s receipt, or any other notice (a "check with bank" slip)."""


@dataclass(frozen=True)
class EventRule:
    """An event a firmware may emit: the fields it must carry, and what it tells."""

    required: tuple[str, ...]
    meaning: str


EVENTS: dict[str, EventRule] = {
    "terminal.request_sent": EventRule(
        ("step", "mti", "stan", "f7"),
        "a request of a step is about to be sent: emit it before `transport.send`; a "
        "financial one (0200, 0201, 0220, 0221) ties the bank's postings under its STAN and "
        "field 7 to the step"),
    "terminal.response_received": EventRule(
        ("mti", "stan", "code"), "a response arrived and decoded (values may be null)"),
    "terminal.timeout": EventRule(("step", "stan"), "no answer came in time"),
    "terminal.reversal_sent": EventRule(
        ("step", "mti", "stan"), "a reversal or void (0400, 0401) of a step is sent"),
    "terminal.txn_done": EventRule(
        ("step", "do", "result"),
        "the outcome the terminal shows for a step: exactly one while the step runs; "
        "`amount_minor` (what was shown approved), `code` and, for a void, `target` "
        "(the sale) go with it"),
    "terminal.note": EventRule((), "anything else the firmware wants in the trace"),
}
"""Events a firmware emits; the oracle reads ``request_sent``, ``reversal_sent`` and
``txn_done``, the rest serve as fault triggers and for the reader of the trace."""

NOTES: frozenset[str] = frozenset({
    "terminal.advice_done", "terminal.advice_unsettled", "terminal.amount_mismatch",
    "terminal.offline_approved", "terminal.queue_expired", "terminal.receipt_held",
    "terminal.refused", "terminal.response_ignored", "terminal.response_invalid",
    "terminal.retry_as_new", "terminal.retry_refused", "terminal.reversal_abandoned",
    "terminal.reversal_done", "terminal.reversal_overwritten", "terminal.reversal_queued",
    "terminal.reversal_unsettled",
})
"""Further notes posemu's own terminal emits: known, free in their fields."""

FINANCIAL: frozenset[bytes] = frozenset({b"0200", b"0201", b"0220", b"0221"})
"""Requests that move money: each must be announced by ``terminal.request_sent`` with its
STAN and field 7, or the oracle could not tie the bank's postings to a step."""
_ANNOUNCED_KEPT = 16  # recent announcements kept: a request is sent right after its own

HARNESS: frozenset[str] = frozenset({
    "terminal.txn_started", "terminal.power_lost", "terminal.rebooted", "terminal.unresolved",
})
"""What posemu emits around a firmware (never the firmware itself)."""

_DIGITS = {"mti": 4, "stan": 6, "f7": 10}  # fields of so many digits, as strings
_FORMAT_NAMES = {"mti": "4 digits", "stan": "6 digits", "f7": "10 digits (MMDDhhmmss)"}


def known(name: str) -> bool:
    """Whether a firmware may emit event ``name``."""
    return name in EVENTS or name in NOTES


class Contract:
    """Checks one firmware's events against the contract, step by step.

    The harness calls :meth:`begin` when a step starts, :meth:`check` with each event
    the firmware emits and :meth:`end` when the firmware's ``run`` returns (or
    :meth:`abandon` when power was lost). A broken rule raises :class:`FirmwareError`
    and is kept in :attr:`violation`, so a firmware that catches it is still caught.
    """

    def __init__(self) -> None:
        self.steps: dict[str, str] = {}  # step id -> do, every step started
        self.current: str | None = None
        self.shown = 0  # outcomes shown for the current step while it runs
        self.violation: FirmwareError | None = None
        self.announced: deque[tuple[str, str]] = deque(maxlen=_ANNOUNCED_KEPT)

    def fail(self, rule: str, detail: str, step: str | None = None) -> FirmwareError:
        """Record the first broken rule and return it (to raise)."""
        error = FirmwareError(rule, detail, step=self.current if step is None else step)
        if self.violation is None:
            self.violation = error
        return error

    def begin(self, step: str, do: str) -> None:
        self.steps[step] = do
        self.current = step
        self.shown = 0

    def abandon(self) -> None:
        """The current step was cut short by a power loss: no outcome is owed for it."""
        self.current = None

    def end(self) -> None:
        """The firmware's ``run`` of the current step returned: it must have shown one."""
        step, self.current = self.current, None
        if self.violation is not None:
            raise self.violation
        if step is not None and self.shown == 0:
            raise self.fail("one outcome per step",
                            "run() returned without emitting terminal.txn_done for it", step)

    def check(self, name: str, fields: Mapping[str, Any]) -> None:
        """One event the firmware emits; FirmwareError when it breaks a rule."""
        if name in HARNESS:
            raise self.fail("events posemu emits", f"{name} is emitted by posemu, not the "
                            "firmware")
        if name not in EVENTS and name not in NOTES:
            raise self.fail("known events", f"{name!r} is not an event of the contract "
                            "(terminal.note takes anything else)")
        rule = EVENTS.get(name)
        if rule is None:  # a note: its fields are free, but a step it names has started
            step = fields.get("step")
            if step is not None and step not in self.steps:
                raise self.fail("known steps", f"{name} names step {step!r}, which has not "
                                "started")
            return
        for field in rule.required:
            if field not in fields:
                raise self.fail("required fields", f"{name} without `{field}`")
        for field, digits in _DIGITS.items():
            if field not in fields:
                continue
            value = fields[field]
            if value is None and name == "terminal.response_received":
                continue
            if not (isinstance(value, str) and len(value) == digits and value.isascii()
                    and value.isdigit()):
                raise self.fail("field formats", f"{name}: `{field}` must be "
                                f"{_FORMAT_NAMES[field]} as a string, not {value!r}")
        step = fields.get("step")
        if step is not None and step not in self.steps:
            raise self.fail("known steps", f"{name} names step {step!r}, which has not started")
        if name == "terminal.txn_done":
            self._outcome(fields)
        elif name == "terminal.request_sent":
            self.announced.append((fields["stan"], fields["f7"]))

    def check_request(self, mti: str, stan: object, f7: object) -> None:
        """A financial request about to be sent: announced with its STAN and field 7?"""
        if (stan, f7) not in self.announced:
            raise self.fail("announced requests", f"a {mti} (STAN {stan}, field 7 {f7}) sent "
                            "without terminal.request_sent naming them")

    def check_print(self, about: Mapping[str, Any]) -> None:
        """A print job's labels: ``step``, ``receipt_of`` (started steps) and ``slip``."""
        for field in ("step", "receipt_of", "slip"):
            if field not in about:
                raise self.fail("print jobs", f"printer.print_job without `{field}=`")
        if about["slip"] not in SLIPS:
            raise self.fail("print jobs", f"slip {about['slip']!r} is not one of "
                            f"{', '.join(SLIPS)}")
        for field in ("step", "receipt_of"):
            if about[field] not in self.steps:
                raise self.fail("known steps", f"print job's `{field}` names "
                                f"{about[field]!r}, which has not started")

    def _outcome(self, fields: Mapping[str, Any]) -> None:
        step, do, result = fields["step"], fields["do"], fields["result"]
        if do != self.steps[step]:
            raise self.fail("outcomes", f"terminal.txn_done says do={do!r} for step {step!r}, "
                            f"a {self.steps[step]}")
        if result not in RESULTS[do]:
            raise self.fail("outcomes", f"result {result!r} is not one a {do} shows: "
                            f"{', '.join(RESULTS[do])}")
        amount = fields.get("amount_minor")
        if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)
                                   or amount < 0):
            raise self.fail("field formats", f"`amount_minor` must be whole minor units, "
                            f"not {amount!r}")
        if result == "voided" and not fields.get("target"):
            raise self.fail("required fields", "a void shown voided names its sale: `target`")
        if step == self.current:
            self.shown += 1
            if self.shown > 1:
                raise self.fail("one outcome per step",
                                "terminal.txn_done emitted twice while the step ran")


def audit(events: Iterable[Event]) -> list[FirmwareError]:
    """Check a whole trace's terminal events after the fact (posemu's own terminal is held
    to the contract this way): every broken rule, in trace order."""
    contract = Contract()
    found: list[FirmwareError] = []

    def end() -> None:
        try:
            contract.end()
        except FirmwareError as exc:
            found.append(exc)
            contract.violation = None

    for event in events:
        name, fields = event.name, event.fields
        try:
            if name == "terminal.txn_started":
                if contract.current is not None:
                    end()
                contract.begin(fields["step"], fields["do"])
            elif name == "terminal.power_lost":
                contract.abandon()
            elif name == "printer.job_started":
                contract.check_print(fields)
            elif name.startswith("terminal.") and name not in HARNESS:
                if fields.get("late") or fields.get("recovered"):  # shown between steps
                    contract.current = None
                contract.check(name, fields)
        except FirmwareError as exc:
            found.append(exc)
            contract.violation = None
    if contract.current is not None:
        end()
    return found

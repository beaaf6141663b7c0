"""The oracle: what the terminal showed and printed against what the bank did.

Pure: it reads trace events, nothing else (no simpy, no devices, not the bank's
ledger: the money the bank moved is what its ``bank.posted`` and ``bank.reversed``
events say, and :mod:`emulator.judge.reconcile` checks the ledger against them). For
every step it gives an end state, and it lists the anomalies with the contract's names.

How a sale is judged (money = postings of the step's requests still standing
at the end; receipt = an approved receipt for the step completed through its
cut, the sale's own or a reprint):

- charged by more than one standing posting: ``duplicate_charge``;
- shown approved: nothing stands -> ``paid_not_charged`` (or ``voided`` when a
  void went through); a different amount stands -> ``wrong_amount``; no
  receipt -> ``charged_no_receipt``; else ``approved``;
- shown anything else (or nothing, the terminal died): money stands ->
  ``in_doubt`` while the terminal still owes the host a message for it,
  ``charged_shown_unpaid`` otherwise; no money -> ``in_doubt`` while owed,
  else ``cancelled`` when the terminal showed it cancelled or refused it (or it
  never went online), ``declined`` otherwise.

Refunds mirror sales (``duplicate_refund``, ``refund_shown_failed_but_credited``).

One purchase run twice: a sale marked ``retry_of`` another is the cashier's retry of
it (a chain of retries is one purchase). Each sale of a purchase charged after the
first one charged is a ``duplicate_charge`` at that sale.

A chained step its operator skipped (``operator.skipped``) is ``skipped``.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from emulator.engine.trace import Event
from emulator.money import format_minor
from emulator.scenario.screens import NO_SCREEN, screen_of, slip_of

if TYPE_CHECKING:
    from emulator.scenario.model import Scenario

_FINANCIAL = ("0200", "0201", "0220", "0221")
BANK_EVENTS = ("bank.posted", "bank.reversed")
"""What the host traces of the money it moves: kind, stan, f7, amount_minor."""
_Amounts = tuple[int, ...]
UNATTRIBUTED = "unattributed_posting"
"""A fleet's finding for money the bank moved under a key no step still judged holds."""


def _key(stan: str, f7: str) -> str:
    """A request's key, STAN then field 7, as one shared string (compact: a long run's
    oracle keeps one per transaction)."""
    return sys.intern(stan + f7)


@dataclass(frozen=True)
class StepView:
    """What the oracle needs of a scenario step."""

    id: str
    do: str
    amount_minor: int | None
    target: str | None = None
    retry_of: str | None = None  # the step this one is the cashier's retry of


def step_views(scenario: Scenario) -> list[StepView]:
    """The scenario's steps as the oracle reads them."""
    return [StepView(s.id, s.do, s.amount_minor, s.target, s.retry_of) for s in scenario.steps]


@dataclass(frozen=True)
class Anomaly:
    """One anomaly: its kind, the step, and why the oracle called it (a fuzz campaign's
    :class:`~emulator.fuzz.campaign.Finding` is a run that showed one)."""

    kind: str
    step: str
    detail: str


@dataclass(slots=True)
class _Seen:
    keys: tuple[str, ...] = ()  # _key(stan, f7) of its financial requests
    shown: str | None = None
    shown_minor: int | None = None
    code: str = ""
    online: bool = False
    receipt_done: bool = False
    receipt: str | None = None
    owed: bool = False
    target: str | None = None
    screen: str = NO_SCREEN  # what the terminal last showed for it
    slips: tuple[str, ...] = ()  # kept with receipts: the slips printed, in order
    skipped: bool = False


_NOTHING = _Seen()
"""The record of a step nothing was seen of (never changed)."""


@dataclass(frozen=True)
class Verdict:
    """The oracle's answer: end state per step (in step order) and the anomalies."""

    end_states: dict[str, str]
    anomalies: tuple[Anomaly, ...]
    receipts: dict[str, str | None]
    stans: dict[str, str]
    screens: dict[str, str] = field(default_factory=dict)
    slips: dict[str, tuple[str, ...]] = field(default_factory=dict)


def judge(steps: Iterable[StepView], events: Iterable[Event]) -> Verdict:
    """Give every step its end state and list the anomalies."""
    observer = Observer()
    read = _READ
    for event in events:
        if event.name in read:  # most events are not read: skip the call
            observer.observe(event)
    return observer.verdict(steps)


class Observer:
    """:func:`judge` one event at a time: fold events as they happen, judge when asked.

    It keeps a small record per step (the keys of its financial requests, what
    the terminal showed, whether an approved receipt was cut) and the amounts
    standing per key (from ``bank.posted`` and ``bank.reversed``), no events, so
    it can listen to a streamed trace.
    With ``keep_receipts=False`` it does not keep receipt text either (the
    verdict's receipts are all None); the end states and anomalies are the same.

    :meth:`verdict` judges every step at the end. :meth:`judge_final` judges
    steps that nothing can change any more and forgets them, so a long run's
    record stays small (a fleet calls it at each settlement). Money the bank
    moves under a key no held step's request carries (a key mangled on the way, or
    a request of a step judged while it could still reach the bank) is kept apart:
    :meth:`unattributed`.
    """

    EVENTS: tuple[str, ...] = (
        "terminal.request_sent", "terminal.reversal_sent", "terminal.txn_done",
        "printer.job_done", "printer.job_failed",
        "terminal.unresolved", "bank.posted", "bank.reversed", "operator.skipped",
    )
    """The only events :meth:`observe` reads: a listener may subscribe to just these."""

    def __init__(self, *, keep_receipts: bool = True) -> None:
        self.keep_receipts = keep_receipts
        self._seen: dict[str, _Seen] = defaultdict(_Seen)
        self._voided: set[str] = set()
        self._standing: dict[str, _Amounts] = {}  # every key a held step's request carried
        self._late: dict[str, tuple[tuple[str, int], ...]] = {}  # (kind, +/-amount) by key

    def __len__(self) -> int:
        """How many steps it holds a record for."""
        return len(self._seen)

    @property
    def keys(self) -> int:
        """How many request keys it holds standing amounts for."""
        return len(self._standing)

    def observe(self, event: Event) -> None:
        """Fold one trace event in (a listener: ``trace.subscribe(None, observer.observe)``)."""
        name = event.name
        f = event.fields
        seen = self._seen
        if name in BANK_EVENTS:
            self._bank(name, _key(f["stan"], f["f7"]), f["kind"], f["amount_minor"])
        elif name == "terminal.request_sent":
            view = seen[f["step"]]
            if f.get("mti") in _FINANCIAL:
                key = _key(f["stan"], f["f7"])
                self._standing.setdefault(key, ())
                if key not in view.keys:
                    view.keys = (*view.keys, key)
            view.online = True
        elif name == "terminal.reversal_sent":
            seen[f["step"]].online = True
        elif name == "terminal.txn_done":
            view = seen[f["step"]]
            view.shown = f["result"]
            view.shown_minor = f.get("amount_minor")
            view.code = f.get("code", "")
            view.target = f.get("target")
            if f["result"] == "voided" and f.get("target"):
                self._voided.add(f["target"])
            view.screen = screen_of(f)
        elif name == "printer.job_done":
            if self.keep_receipts:
                view = seen[f["step"]]
                view.receipt = f.get("text")
                view.slips = (*view.slips, slip_of(f, done=True))
            if f.get("slip") in ("approved", "copy"):
                seen[f["receipt_of"]].receipt_done = True
        elif name == "printer.job_failed":
            if self.keep_receipts:
                view = seen[f["step"]]
                if f.get("text"):
                    view.receipt = f["text"]
                view.slips = (*view.slips, slip_of(f, done=False))
        elif name == "terminal.unresolved":
            seen[f["step"]].owed = True
        elif name == "operator.skipped":
            seen[f["step"]].skipped = True

    def _bank(self, name: str, key: str, kind: str, amount: int) -> None:
        """Fold a posting or a reversal into the key's standing amounts (or, for a key
        no held step carries or a reversal of nothing standing under it, into the
        unattributed ones)."""
        amounts = self._standing.get(key)
        if amounts is not None:
            if name == "bank.posted":
                self._standing[key] = (*amounts, amount)
                return
            if amount in amounts:
                rest = list(amounts)
                rest.remove(amount)
                self._standing[key] = tuple(rest)
                return
            # nothing of that amount stands under the key here: not this step's money
        late = list(self._late.get(key, ()))
        if name == "bank.reversed" and (kind, amount) in late:
            late.remove((kind, amount))
        else:
            late.append((kind, amount if name == "bank.posted" else -amount))
        self._late[key] = tuple(late)

    def verdict(self, steps: Iterable[StepView]) -> Verdict:
        """End state per step and the anomalies, the money standing being what this
        observer folded from the bank's events."""
        steps = list(steps)
        seen = self._seen
        voided = self._voided
        standing = self._standing
        end_states: dict[str, str] = {}
        findings: list[Anomaly] = []
        charged: dict[str, list[str]] = {}  # a purchase's first sale -> its sales charged
        purchases = _purchases(steps)
        for step in steps:
            state, found = _judge_step(step, seen[step.id], seen, standing, voided)
            if step.do == "sale" and any(standing.get(k) for k in seen[step.id].keys):
                first = charged.setdefault(purchases.get(step.id, step.id), [])
                if first:
                    detail = (f"the cashier's retry of {step.retry_of}: the customer was "
                              f"charged at {', '.join(first)} too, for one purchase")
                    found = [Anomaly("duplicate_charge", step.id, detail), *found]
                    state = "duplicate_charge"
                first.append(step.id)
            end_states[step.id] = state
            findings.extend(found)
        return Verdict(
            end_states=end_states,
            anomalies=tuple(findings),
            receipts={s.id: seen[s.id].receipt for s in steps},
            stans={s.id: seen[s.id].keys[0][:6] if seen[s.id].keys else "" for s in steps},
            screens={s.id: seen[s.id].screen for s in steps},
            slips={s.id: seen[s.id].slips for s in steps},
        )

    def judge_final(self, steps: Sequence[StepView]) -> list[tuple[str, list[Anomaly]]]:
        """End state and findings of each of ``steps``, then forget them: their records,
        their keys' standing amounts, their void marks.

        Only for steps nothing can change any more: no event of theirs is still to
        come, and no void still to be judged targets one of them.
        """
        seen, standing, voided = self._seen, self._standing, self._voided
        judged = [_judge_step(step, seen.get(step.id, _NOTHING), seen, standing, voided)
                  for step in steps]
        for step in steps:
            view = seen.pop(step.id, None)
            if view is not None:
                for key in view.keys:
                    standing.pop(key, None)
            voided.discard(step.id)
        return judged

    def unattributed(self) -> list[Anomaly]:
        """Money that stands under keys no held step's request carried: a key mangled on
        the way, or a request of a step judged while it could still reach the bank (the
        bank took it as a new transaction; a fleet holds its steps until nothing can)."""
        found = []
        for key, moves in self._late.items():
            total = sum(amount for _, amount in moves)
            if total:
                kinds = "/".join(sorted({kind for kind, _ in moves}))
                found.append(Anomaly(
                    UNATTRIBUTED, "",
                    f"{format_minor(total)} ({kinds}) stands under STAN {key[:6]}, field 7 "
                    f"{key[6:]}, which no request of a step still to be judged carried: a key "
                    "mangled on the way"))
        return found


_READ = frozenset(Observer.EVENTS)
"""What :func:`judge` hands its observer (the other events would be ignored)."""


def _purchases(steps: list[StepView]) -> dict[str, str]:
    """Each retry's purchase: its step id -> the first step of the ``retry_of`` chain
    (a retry names an earlier step, so the chain ends)."""
    first: dict[str, str] = {}
    for step in steps:
        if step.retry_of is not None:
            first[step.id] = first.get(step.retry_of, step.retry_of)
    return first


def _judge_step(
    step: StepView, view: _Seen, seen: dict[str, _Seen],
    standing: dict[str, _Amounts], voided: set[str],
) -> tuple[str, list[Anomaly]]:
    if view.skipped:
        return "skipped", []
    if step.do in ("sale", "refund"):
        return _judge_money(step, view, standing, voided)
    if step.do == "void":
        target = step.target or ""
        moved = [a for k in seen.get(target, _NOTHING).keys for a in standing.get(k, ())]
        if view.shown in ("voided", "void_pending") and moved:
            if view.owed:
                return _flag("in_doubt", step, "the void was never delivered")
            return _flag("charged_shown_unpaid", step,
                         f"void shown done but {format_minor(sum(moved))} of {target} still stands")
        if view.shown in ("voided", "void_pending"):
            return "voided", []
        if view.owed:
            return _flag("in_doubt", step, "the void was never delivered")
        return ("declined" if view.shown == "void_failed" else "cancelled"), []
    if step.do == "reprint":
        return ("reprinted" if view.shown == "reprinted" else "reprint_failed"), []
    if view.shown == "out_of_balance":
        return _flag("batch_out_of_balance", step,
                     f"host answered {view.code}: terminal and bank totals differ")
    return ("settled" if view.shown == "settled" else "settle_failed"), []


def _judge_money(
    step: StepView, view: _Seen, standing: dict[str, _Amounts], voided: set[str],
) -> tuple[str, list[Anomaly]]:
    sale = step.do == "sale"
    moved = [a for k in view.keys for a in standing.get(k, ())]
    total = sum(moved)
    found: list[Anomaly] = []
    if len(moved) > 1:
        kind = "duplicate_charge" if sale else "duplicate_refund"
        found.append(Anomaly(kind, step.id, f"{len(moved)} postings stand: {_amounts(moved)}"))
    shown_ok = view.shown == ("approved" if sale else "refunded")
    if shown_ok:
        shown = view.shown_minor if view.shown_minor is not None else step.amount_minor or 0
        if not moved:
            if step.id in voided:
                return "voided", found
            found.append(Anomaly("paid_not_charged", step.id,
                                 f"shown approved for {format_minor(shown)}, nothing moved"))
        elif len(moved) == 1 and total != shown:
            found.append(Anomaly("wrong_amount", step.id,
                                 f"shown {format_minor(shown)}, bank moved {format_minor(total)}"))
        elif sale and not view.receipt_done:
            found.append(Anomaly("charged_no_receipt", step.id,
                                 f"charged {format_minor(total)}, no approved receipt printed"))
    elif moved:
        if view.owed:
            found.append(Anomaly(
                "in_doubt", step.id,
                f"{format_minor(total)} stands, the terminal still owes a message"))
        else:
            shown_as = view.shown or "nothing (terminal lost it)"
            kind = "charged_shown_unpaid" if sale else "refund_shown_failed_but_credited"
            found.append(Anomaly(kind, step.id,
                                 f"shown {shown_as}, yet {format_minor(total)} moved"))
    elif view.owed:
        found.append(Anomaly("in_doubt", step.id, "a message for it was never delivered"))
    if found:
        return found[0].kind, found
    if shown_ok:
        return ("approved" if sale else "refunded"), []
    if not sale:
        return "refund_failed", []
    if view.shown in ("cancelled", "refused"):
        return "cancelled", []
    return ("declined" if view.online else "cancelled"), []


def _flag(kind: str, step: StepView, detail: str) -> tuple[str, list[Anomaly]]:
    return kind, [Anomaly(kind, step.id, detail)]


def _amounts(values: list[int]) -> str:
    return " + ".join(format_minor(v) for v in values)

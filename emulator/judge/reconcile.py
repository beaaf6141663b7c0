"""The bank's ledger against the trace: the trace is what a run is judged from, the
ledger only bears witness.

The oracle (:mod:`emulator.judge.oracle`) judges a single run, as every terminal of a
fleet, from trace events alone; the money the bank moved is what its ``bank.posted`` and
``bank.reversed`` events say. The bank's ledger is then checked against those events,
and where they disagree :func:`reconcile` raises
:class:`~devices.errors.LedgerMismatchError` (a bug of posemu: a posting the host did
not trace, or traced wrong) instead of the ledger being a second way to judge:

- postings made: the ledger's count of postings ever made, one ``bank.posted`` each;
- what stands per key (STAN and field 7 of the request, the terminal id left aside as
  the oracle leaves it): the same amounts of the same kinds, and no event reversing
  what never stood;
- the merchant's balance: it moved by what the events say stands (sales and advices
  in, refunds out). The cards together moved by the opposite, since money is conserved
  (:class:`~devices.errors.ConservationError` otherwise); the events do not name cards.

Retention: with ``[bank] retention_s`` the bank forgets a settled transaction's
postings (their money stays moved). A single run keeps what the bank forgot
(``World.retired``, told by ``Acquirer.on_retire``), so its ledger side is every posting
ever made, retired or still held: the check is complete however long the run, and
that the witness is complete is checked too (postings kept = postings ever made). A
fleet keeps no postings and no events (its memory does not grow with its length), so
it checks what it can count as the run goes: the postings made and the merchant's
balance (:class:`BankMoves` with ``keyed=False``).

RRNs: the bank's events carry none (kind, STAN, field 7, amount), so a single run reads
each step's RRN off the postings this check has just found to agree with the events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from devices.errors import LedgerMismatchError
from emulator.engine.trace import Event
from emulator.judge.oracle import BANK_EVENTS
from emulator.money import format_minor

_Entry = tuple[str, str, str, int]  # stan, f7, kind, amount


class Booking(NamedTuple):
    """One posting as the bank's ledger holds it at the end of a run."""

    stan: str
    f7: str
    kind: str  # sale | refund | advice
    amount_minor: int
    standing: bool


class BankMoves:
    """What a trace says the bank did, folded one ``bank.posted`` / ``bank.reversed``
    event at a time (a listener: ``trace.subscribe(name, moves.observe)``): postings
    made, how far the merchant's balance moved, and what stands per key (not with
    ``keyed=False``: a fleet)."""

    def __init__(self, *, keyed: bool = True) -> None:
        self.posted = 0
        self.merchant_minor = 0
        self.standing: Counter[_Entry] | None = Counter() if keyed else None

    def observe(self, event: Event) -> None:
        """Fold one of :data:`BANK_EVENTS` in."""
        f = event.fields
        kind, amount = f["kind"], f["amount_minor"]
        sign = -1
        if event.name == "bank.posted":
            sign = 1
            self.posted += 1
        self.merchant_minor += sign * (-amount if kind == "refund" else amount)
        if self.standing is not None:
            self.standing[f["stan"], f["f7"], kind, amount] += sign

    @classmethod
    def of(cls, events: Iterable[Event]) -> BankMoves:
        """The moves of a kept trace's ``events``."""
        moves = cls()
        observe, bank = moves.observe, BANK_EVENTS
        for event in events:
            if event.name in bank:  # most events are not the bank's: skip the call
                observe(event)
        return moves


def reconcile(
    moves: BankMoves, *, made: int, merchant_moved: int,
    bookings: Iterable[Booking] | None, what: str,
) -> None:
    """Raise LedgerMismatchError unless the ledger agrees with the trace's ``moves``.

    ``made`` is the ledger's count of postings ever made, ``merchant_moved`` how far the
    ledger moved the merchant's balance over the run, ``bookings`` every posting the
    ledger made (None: not kept, so nothing is compared per key). ``what`` names the run.
    """
    differ = []
    if moves.posted != made:
        differ.append(f"the ledger made {made} postings, the trace posted {moves.posted}")
    if moves.merchant_minor != merchant_moved:
        differ.append(f"the merchant's balance moved {format_minor(merchant_moved)}, "
                      f"the trace says {format_minor(moves.merchant_minor)}")
    if bookings is not None and moves.standing is not None:
        kept = 0
        ledger: Counter[_Entry] = Counter()  # what stands in the ledger, less the trace's
        for b in bookings:  # read once: a long run's postings are not copied
            kept += 1
            if b.standing:
                ledger[b.stan, b.f7, b.kind, b.amount_minor] += 1
        if kept != made:
            differ.append(f"the ledger kept {kept} of the {made} postings it made")
        never = sorted(entry for entry, n in moves.standing.items() if n < 0)
        if never:
            differ.append(f"the trace reverses what never stood: {_entries(never)}")
        for entry, n in moves.standing.items():
            if n > 0:
                ledger[entry] -= n
        ledger_only, trace_only = +ledger, -ledger  # only what differs is copied
        if ledger_only or trace_only:
            differ.append(f"standing in the ledger only: {_entries(ledger_only)}; "
                          f"in the trace only: {_entries(trace_only)}")
    if differ:
        raise LedgerMismatchError(f"{what}: the bank's ledger and the trace disagree: "
                                  + "; ".join(differ))


def _entries(entries: Iterable[_Entry]) -> str:
    """``sale 12.50 (STAN 000001, field 7 0101120000), ...`` or ``nothing``."""
    shown = [f"{kind} {format_minor(amount)} (STAN {stan}, field 7 {f7})"
             for stan, f7, kind, amount in sorted(entries)]
    return ", ".join(shown) or "nothing"

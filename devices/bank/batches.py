"""The acquirer host's batches and its memory over time, terminal by terminal.

:class:`Batches` holds each terminal's open batch: its number (1 before the first
close) and its totals, kept as postings and reversals come (:meth:`Batches.tally`)
rather than summed from the ledger. It answers the 0500 batch close (74/76/86/88;
missing fields count as 0) against those totals: 00 and close, or 95 (stays open);
the 0510 carries the host's own totals, and a copy of a close already answered 00
gets the same answer.

It holds what the host remembers: a record of each financial request (what a repeat
or a status query is answered from), the batch closes it answered 00, and the
reversals that found no original (so that the original, if it comes, is answered 68).
With ``retention_s`` the host forgets a transaction (its record and its postings)
once its batch is closed and ``retention_s`` has passed since it was first seen, as
a real host's duplicate window ends: a copy arriving later is a new transaction, a
reversal or status query for it finds nothing (25). So with a batch close it
answered 00, ``retention_s`` after answering it: a copy arriving later is weighed as
a new close (the 0500 names no batch, so it closes the open one if the totals
match). So too with a reversal that found no original, ``retention_s`` after it
came: an original arriving later is a new transaction. The acquirer calls
:meth:`Batches.retire` for a terminal's request that decodes and passes the MAC
check, before that request is weighed (one that fails is weighed against nothing
remembered). What the host remembers is then about ``retention_s`` of work,
however long the run. Balances keep what the postings did; ``on_retire`` is told
what was forgotten.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias

from devices.bank.ledger import Kind, Ledger, Posting, TxnKey
from devices.iso8583.message import Fields

if TYPE_CHECKING:
    from devices.bank.acquirer import Reply

    _Answer: TypeAlias = Callable[[Fields, str, Fields], Reply]
    """Builds the response to a request from its code and the fields the host adds."""

_Store: TypeAlias = dict[TxnKey, tuple[datetime, Any]]


@dataclass(slots=True)
class _Record:
    """The host's memory of a financial request, for duplicates and status queries."""

    mti_class: str  # "020" or "022"
    kind: Kind
    pan: str = field(repr=False)
    amount_minor: int
    code: str
    response: bytes
    at: datetime  # when the host first saw it
    batch: int  # the terminal's open batch then


class Batches:
    """Each terminal's open batch and totals, its closes, and what the host remembers."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        retention_s: float | None = None,
        on_retire: Callable[[list[Posting]], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.retention = None if retention_s is None else timedelta(seconds=retention_s)
        self.on_retire = on_retire
        self.records: dict[TxnKey, _Record] = {}
        self.orphans: dict[TxnKey, tuple[datetime, None]] = {}  # reversals, no original yet
        self._batch: dict[str, int] = {}  # terminal id -> its open batch number
        # Kept (when, what) by key, and with retention forgotten in turn (_keep, retire):
        self._closes: dict[TxnKey, tuple[datetime, Reply]] = {}  # batch closes answered 00
        self._kept: dict[str, deque[tuple[datetime, _Store, TxnKey]]] = {}  # by terminal
        self._totals: dict[str, tuple[int, int, int, int]] = {}  # open batch, by terminal
        self._held: dict[str, deque[TxnKey]] = {}  # each terminal's records, oldest first

    def remembered(self) -> tuple[int, int, int]:
        """How many transactions, batch closes and reversals that found no original the
        host remembers (retention bounds all three)."""
        return len(self.records), len(self._closes), len(self.orphans)

    def open_batch(self, terminal_id: str) -> int:
        """The number of the terminal's open batch (1 before its first close)."""
        return self._batch.get(terminal_id, 1)

    def host_totals(self, terminal_id: str) -> tuple[int, int, int, int]:
        """(credits count, debits count, credits amount, debits amount) of the open batch:
        refunds are credits (to cards), sales and advices debits."""
        return self._totals.get(terminal_id, (0, 0, 0, 0))

    def tally(self, posting: Posting, sign: int) -> None:
        """Count a posting into (or, reversed, out of) its terminal's open batch totals:
        only open-batch postings are ever reversed, so the totals stay exact."""
        cn, dn, ca, da = self.host_totals(posting.terminal_id)
        amount = sign * posting.amount_minor
        if posting.kind == "refund":
            cn, ca = cn + sign, ca + amount
        else:
            dn, da = dn + sign, da + amount
        self._totals[posting.terminal_id] = (cn, dn, ca, da)

    def remember(self, key: TxnKey, mti: str, kind: Kind, pan: str, amount: int, code: str,
                 response: bytes | None, now: datetime) -> None:
        """Keep what a repeat or a status query of ``key`` is answered from."""
        if key not in self.records:
            self._held.setdefault(key[0], deque()).append(key)
        self.records[key] = _Record(mti[:3], kind, pan, amount, code, response or b"",
                                    now, self.open_batch(key[0]))

    def orphan(self, key: TxnKey, now: datetime) -> None:
        """Keep a reversal of ``key`` that found no original: the original is late (68)."""
        self._keep(self.orphans, key, None, now)

    def retire(self, tid: str, cutoff: datetime) -> None:
        """Forget ``tid``'s transactions first seen before ``cutoff`` in a closed batch, and
        its batch closes answered and reversals without original seen before ``cutoff``."""
        kept = self._kept.get(tid)
        while kept and kept[0][0] < cutoff:
            _, store, key = kept.popleft()
            # gone already if an orphan's original came; kept again only after this turn
            # (an orphan's key comes back only once the original's record is forgotten)
            store.pop(key, None)
        held = self._held.get(tid)
        closed = self.open_batch(tid)
        while held:
            record = self.records[held[0]]  # a key is held exactly while it is recorded
            if record.at >= cutoff or record.batch >= closed:
                return
            key = held.popleft()
            del self.records[key]
            gone = self.ledger.retire(key)
            if gone and self.on_retire is not None:
                self.on_retire(gone)

    def close(self, f: Fields, now: datetime, answer: _Answer) -> Reply:
        """Weigh the 0500 ``f`` against its terminal's open batch; ``answer`` builds the
        response."""
        tid = f.get("41")
        if not isinstance(tid, str):
            return answer(f, "30", {})
        key = (tid, str(f.get("11", "")), str(f.get("7", "")))
        closed = self._closes.get(key)
        if closed is not None:  # a copy of a close already answered: the same answer
            return closed[1]
        host = self.host_totals(tid)
        theirs = tuple(int(str(f.get(k, "0"))) for k in ("74", "76", "86", "88"))
        extra: Fields = {
            "74": f"{host[0]:010d}", "76": f"{host[1]:010d}",
            "86": f"{host[2]:016d}", "88": f"{host[3]:016d}",
        }
        if theirs != host:
            return answer(f, "95", extra)
        self._batch[tid] = self.open_batch(tid) + 1
        self._totals.pop(tid, None)
        reply = answer(f, "00", extra)
        self._keep(self._closes, key, reply, now)
        return reply

    def _keep(self, store: _Store, key: TxnKey, value: object, now: datetime) -> None:
        """Keep ``value`` in ``store`` from ``now`` on, unless ``key`` is kept already;
        with retention, queue it to be forgotten (:meth:`retire`)."""
        if key not in store:
            store[key] = (now, value)
            if self.retention is not None:
                self._kept.setdefault(key[0], deque()).append((now, store, key))

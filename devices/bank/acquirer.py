"""The bank host's pure core: ISO 8583 request bytes in, response bytes out.

No simulation clock and no randomness: the caller passes ``now`` and, for the
fault ``bank.respond``, a :class:`Forced` answer. RRNs and approval codes come
from a counter. Messages handled (response MTI = request MTI + 10, the repeat
bit cleared):

- 0200/0201 sale (processing code 00xxxx) or refund (20xxxx); 0220/0221 advice
  (an offline sale forwarded later: posted like a sale, 51 if funds lack).
- 0400/0401 (and 0420/0421) reversal of the original named in field 90;
  idempotent: unknown original 25, already reversed/declined 00 (done),
  original in a closed batch 12. It undoes every standing posting of the
  original's key (several only when the duplicate check is off). A reversal
  that overtakes its original is remembered: the original, when it arrives, is
  answered 68 and never posted (with ``retention_s``, if it arrives within
  that time of the reversal).
- 0500 batch totals (74/76/86/88; missing fields count as 0; a copy of a close
  already answered 00 gets the same answer) against the host's
  standing postings of that terminal since its last close: 00 and close, or 95
  (stays open). The 0510 carries the host's own totals.
- 0600 status of the original in field 90: 00 with field 4 = the amount that
  stands; the original's code if it was declined; 25 if unknown or reversed.
- 0800 network management: 00.

With ``retention_s`` the host forgets a transaction (its duplicate record and
its postings) once its batch is closed and ``retention_s`` has passed since it
was first seen, as a real host's duplicate window ends: a copy arriving later
is a new transaction, a reversal or status query for it finds nothing (25).
So with a batch close it answered 00, ``retention_s`` after answering it: a
copy arriving later is weighed as a new close (the 0500 names no batch, so it
closes the open one if the totals match). So too with a reversal that found no
original, ``retention_s`` after it came: an original arriving later is a new
transaction. Each terminal's old records, closes and such reversals go when
its next request arrives that decodes and passes the MAC check, before that
request is weighed (one that fails is weighed against nothing remembered).
What the host remembers is then about ``retention_s`` of work, however long
the run.
Balances keep what the postings did; ``on_retire`` is told what was forgotten.

Decode errors get 30 with the MTI/STAN/TID that could be decoded (no MTI: no
response); a bad or missing MAC, when the host has a key, gets 63.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeAlias

from devices.bank.ledger import Account, Kind, Ledger, Posting, TxnKey
from devices.errors import MessageError
from devices.iso8583 import message
from devices.iso8583.message import Fields

__all__ = ["Account", "Acquirer", "Forced", "Posting", "Reply"]

APPROVED = frozenset({"00", "10"})
LATE = "68"
"""Answer to an original that arrives after its own reversal: never posted."""
_ECHO = ("3", "4", "7", "11", "12", "13", "41", "42", "49", "90")
_Store: TypeAlias = dict[TxnKey, tuple[datetime, Any]]


@dataclass(frozen=True)
class Forced:
    """The fault ``bank.respond``: answer ``code`` without moving money.

    With code "10" and ``amount_minor`` a financial request is approved for that
    amount only (capped at the requested amount); with ``posted`` the request is
    processed normally (money moves) and then answered with ``code``.
    """

    code: str
    amount_minor: int | None = None
    posted: bool = False


@dataclass(frozen=True, repr=False)
class Reply:
    """What the host did with one request."""

    response: bytes | None  # framed response; None when nothing is sent back
    request_fields: Fields  # decoded request, or what decoded of it
    code: str  # field 39 of the response (30 when undecodable, even without a response)
    response_fields: Fields | None = None
    postings: tuple[Posting, ...] = ()  # made by this request
    reversed: tuple[Posting, ...] = ()  # reversed by this request
    duplicate: bool = False  # answered from the duplicate check
    key: TxnKey | None = None  # the transaction the request is about

    def __repr__(self) -> str:
        mti = self.request_fields.get("t", "?")
        return (
            f"Reply(mti={mti!r}, code={self.code!r}, key={self.key}, "
            f"postings={len(self.postings)}, reversed={len(self.reversed)}, "
            f"duplicate={self.duplicate}, response={self.response is not None})"
        )


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


class Acquirer:
    """The acquirer host: accounts, duplicate check, reversals, batches, MACs."""

    def __init__(
        self,
        accounts: Mapping[str, Account],
        *,
        merchant_balance_minor: int = 0,
        merchant_id: str = "POSEMU MERCHANT",
        duplicate_check: bool = True,
        mac_key: bytes | None = None,
        retention_s: float | None = None,
        on_retire: Callable[[list[Posting]], None] | None = None,
    ) -> None:
        self.ledger = Ledger(accounts, merchant_balance_minor)
        self.merchant_id = merchant_id
        self.duplicate_check = duplicate_check
        self.mac_key = mac_key
        self._records: dict[TxnKey, _Record] = {}
        self._batch: dict[str, int] = {}  # terminal id -> its open batch number
        self._counter = 0
        self.retention = None if retention_s is None else timedelta(seconds=retention_s)
        # Kept (when, what) by key, and with retention forgotten in turn (_keep, _retire):
        self._orphans: dict[TxnKey, tuple[datetime, None]] = {}  # reversals, no original yet
        self._closes: dict[TxnKey, tuple[datetime, Reply]] = {}  # batch closes answered 00
        self._kept: dict[str, deque[tuple[datetime, _Store, TxnKey]]] = {}  # by terminal
        self._totals: dict[str, tuple[int, int, int, int]] = {}  # open batch, by terminal
        self._held: dict[str, deque[TxnKey]] = {}  # each terminal's records, oldest first
        self.on_retire = on_retire

    def __repr__(self) -> str:
        return f"Acquirer({self.ledger!r}, duplicate_check={self.duplicate_check})"

    def total_minor(self) -> int:
        """Sum of all balances, cards and merchant."""
        return self.ledger.total_minor()

    def balances(self) -> dict[str, int]:
        """Card balances by PAN."""
        return self.ledger.balances()

    def remembered(self) -> tuple[int, int, int]:
        """How many transactions, batch closes and reversals that found no original the
        host remembers (retention bounds all three)."""
        return len(self._records), len(self._closes), len(self._orphans)

    def open_batch(self, terminal_id: str) -> int:
        """The number of the terminal's open batch (1 before its first close)."""
        return self._batch.get(terminal_id, 1)

    # -- entry point -------------------------------------------------------

    def handle(self, request: bytes, now: datetime, forced: Forced | None = None) -> Reply:
        """Process one framed request and build the framed response."""
        try:
            fields = message.decode(request)
        except MessageError as exc:
            return self._format_error(exc.partial)
        mti = str(fields["t"])
        if message.response_mti(mti) is None:
            return Reply(None, fields, "12")  # not a request: nothing to answer
        if self.mac_key is not None and not message.mac_ok(request, self.mac_key):
            return self._answer(fields, "63")
        tid = fields.get("41")
        if self.retention is not None and isinstance(tid, str):
            self._retire(tid, now - self.retention)  # before it is weighed: it may be late
        try:
            return self._dispatch(mti, fields, now, forced)
        finally:
            self.ledger.check()

    def _dispatch(self, mti: str, f: Fields, now: datetime, forced: Forced | None) -> Reply:
        partial = forced is not None and forced.code == "10" and mti[:3] in ("020", "022")
        if forced is not None and not forced.posted and not partial:
            return self._forced_answer(mti, f, forced.code, now)
        if mti[:3] in ("020", "022"):
            reply = self._financial(mti, f, now, forced)
        elif mti[:3] in ("040", "042"):
            reply = self._reversal(f, now)
        elif mti[:3] == "050":
            reply = self._batch_close(f, now)
        elif mti[:3] == "060":
            reply = self._status(f)
        elif mti[:3] == "080":
            reply = self._answer(f, "00")
        else:
            reply = self._answer(f, "12")
        if forced is not None and forced.posted and reply.response_fields is not None:
            out = dict(reply.response_fields)
            out["39"] = forced.code
            response = message.encode(out, self.mac_key)
            reply = replace(reply, response=response, code=forced.code, response_fields=out)
            record = self._records.get(reply.key) if reply.key else None
            if record is not None and reply.postings:  # a repeat gets this same answer
                record.code, record.response = reply.code, response
        return reply

    def _forced_answer(self, mti: str, f: Fields, code: str, now: datetime) -> Reply:
        """Answer ``code`` and move nothing; a new financial request is remembered as
        answered so (its repeat gets the same answer, a status query reports it)."""
        key = self._key_of(f, mti)
        reply = self._answer(f, code, key=key)
        pan, proc, amount = f.get("2"), f.get("3"), f.get("4")
        if (
            mti[:3] in ("020", "022") and key is not None and key not in self._records
            and isinstance(pan, str) and isinstance(proc, str) and isinstance(amount, str)
        ):
            kind = _kind(mti, proc)
            if kind is not None:
                self._remember(key, mti, kind, pan, int(amount), code, reply, now)
        return reply

    # -- financial ---------------------------------------------------------

    def _financial(self, mti: str, f: Fields, now: datetime, forced: Forced | None) -> Reply:
        if not all(isinstance(f.get(k), str) for k in ("2", "3", "4", "7", "11", "41")):
            return self._answer(f, "30")
        pan, proc, amount = str(f["2"]), str(f["3"]), int(str(f["4"]))
        key = self._key_of(f, mti)
        assert key is not None
        kind = _kind(mti, proc)
        if kind is None:
            return self._answer(f, "12", key=key)
        if key in self._orphans:  # its reversal overtook it: it must never post
            reply = self._answer(f, LATE, key=key)
            self._remember(key, mti, kind, pan, amount, LATE, reply, now)
            del self._orphans[key]
            return reply
        seen = self._records.get(key) if self.duplicate_check else None
        if seen is not None:
            if (seen.mti_class, seen.kind, seen.pan, seen.amount_minor) != (
                mti[:3], kind, pan, amount,
            ):
                return self._answer(f, "94", key=key)
            return Reply(seen.response, f, seen.code, message.decode(seen.response),
                         duplicate=True, key=key)
        code = "13" if amount == 0 else self._decide(kind, pan, amount, str(f.get("14", "")), now)
        approved = amount
        if (
            forced is not None and forced.code == "10" and not forced.posted
            and code not in ("14", "13")
        ):
            code = "10"
            approved = min(forced.amount_minor or amount, amount)
        rrn, approval = self._next_ids()
        extra: Fields = {"37": rrn}
        postings: tuple[Posting, ...] = ()
        if code in APPROVED:
            posting = self.ledger.post(
                key, kind, pan, approved, rrn=rrn, batch=self.open_batch(key[0])
            )
            postings = (posting,)
            self._tally(posting, 1)
            extra["38"] = approval
            extra["4"] = f"{approved:012d}"
        reply = self._answer(f, code, extra, key=key, postings=postings)
        self._remember(key, mti, kind, pan, amount, code, reply, now)
        return reply

    def _remember(self, key: TxnKey, mti: str, kind: Kind, pan: str, amount: int, code: str,
                  reply: Reply, now: datetime) -> None:
        """Keep what a repeat or a status query of ``key`` is answered from."""
        if key not in self._records:
            self._held.setdefault(key[0], deque()).append(key)
        self._records[key] = _Record(mti[:3], kind, pan, amount, code, reply.response or b"",
                                     now, self.open_batch(key[0]))

    def _decide(self, kind: Kind, pan: str, amount: int, f14: str, now: datetime) -> str:
        account = self.ledger.accounts.get(pan)
        if account is None:
            return "14"
        if account.issuer_down:
            return "91"
        if account.blocked:
            return "05"
        expiry = account.expiry or f14
        if len(expiry) == 4 and expiry.isdigit():
            yy, mm = int(expiry[:2]), int(expiry[2:])
            if (now.year, now.month) > (2000 + yy, mm):
                return "54"
        if kind != "refund" and account.balance_minor < amount:
            return "51"
        return "00"

    # -- reversal, batch, status ---------------------------------------------

    def _original(self, f: Fields) -> TxnKey | None:
        f90, tid = f.get("90"), f.get("41")
        if not isinstance(f90, str) or not isinstance(tid, str):
            return None
        try:
            _, stan, f7 = message.parse_original(f90)
        except MessageError:
            return None
        return (tid, stan, f7)

    def _reversal(self, f: Fields, now: datetime) -> Reply:
        key = self._original(f)
        if key is None:
            return self._answer(f, "30")
        every = self.ledger.postings_for(key)
        if not every and key not in self._records:
            self._keep(self._orphans, key, None, now)
            return self._answer(f, "25", key=key)
        standing = [p for p in every if not p.reversed]
        if any(p.batch < self.open_batch(key[0]) for p in standing):
            return self._answer(f, "12", key=key)
        undone = tuple(p for p in standing if self.ledger.reverse(p))
        for posting in undone:
            self._tally(posting, -1)
        extra: Fields = {"37": every[0].rrn} if every else {}
        return self._answer(f, "00", extra, key=key, reversed_=undone)

    def host_totals(self, terminal_id: str) -> tuple[int, int, int, int]:
        """(credits count, debits count, credits amount, debits amount) of the open batch:
        refunds are credits (to cards), sales and advices debits."""
        return self._totals.get(terminal_id, (0, 0, 0, 0))

    def _tally(self, posting: Posting, sign: int) -> None:
        """Count a posting into (or, reversed, out of) its terminal's open batch totals:
        only open-batch postings are ever reversed, so the totals stay exact."""
        cn, dn, ca, da = self.host_totals(posting.terminal_id)
        amount = sign * posting.amount_minor
        if posting.kind == "refund":
            cn, ca = cn + sign, ca + amount
        else:
            dn, da = dn + sign, da + amount
        self._totals[posting.terminal_id] = (cn, dn, ca, da)

    def _retire(self, tid: str, cutoff: datetime) -> None:
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
            record = self._records[held[0]]  # a key is held exactly while it is recorded
            if record.at >= cutoff or record.batch >= closed:
                return
            key = held.popleft()
            del self._records[key]
            gone = self.ledger.retire(key)
            if gone and self.on_retire is not None:
                self.on_retire(gone)

    def _batch_close(self, f: Fields, now: datetime) -> Reply:
        tid = f.get("41")
        if not isinstance(tid, str):
            return self._answer(f, "30")
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
            return self._answer(f, "95", extra)
        self._batch[tid] = self.open_batch(tid) + 1
        self._totals.pop(tid, None)
        reply = self._answer(f, "00", extra)
        self._keep(self._closes, key, reply, now)
        return reply

    def _keep(self, store: _Store, key: TxnKey, value: object, now: datetime) -> None:
        """Keep ``value`` in ``store`` from ``now`` on, unless ``key`` is kept already;
        with retention, queue it to be forgotten (:meth:`_retire`)."""
        if key not in store:
            store[key] = (now, value)
            if self.retention is not None:
                self._kept.setdefault(key[0], deque()).append((now, store, key))

    def _status(self, f: Fields) -> Reply:
        key = self._original(f)
        if key is None:
            return self._answer(f, "30")
        standing = self.ledger.standing(key)
        if standing:
            extra: Fields = {"4": f"{sum(p.amount_minor for p in standing):012d}",
                             "37": standing[0].rrn, "38": standing[0].rrn[-6:]}
            return self._answer(f, "00", extra, key=key)
        record = self._records.get(key)
        if record is not None and record.code not in APPROVED:
            return self._answer(f, record.code, key=key)
        return self._answer(f, "25", key=key)

    # -- responses -----------------------------------------------------------

    def _key_of(self, f: Fields, mti: str) -> TxnKey | None:
        if mti[:3] in ("040", "042", "060"):
            return self._original(f)
        tid, stan, f7 = f.get("41"), f.get("11"), f.get("7")
        if isinstance(tid, str) and isinstance(stan, str) and isinstance(f7, str):
            return (tid, stan, f7)
        return None

    def _next_ids(self) -> tuple[str, str]:
        self._counter += 1
        return f"{self._counter:012d}", f"{self._counter % 1_000_000:06d}"

    def _response_fields(self, f: Fields, code: str, extra: Fields | None) -> Fields:
        mti = message.response_mti(str(f["t"]))
        assert mti is not None
        out: Fields = {"t": mti}
        out.update({k: f[k] for k in _ECHO if k in f})
        out["42"] = f.get("42", self.merchant_id)
        out.update(extra or {})
        out["39"] = code
        return out

    def _answer(
        self, f: Fields, code: str, extra: Fields | None = None, *, key: TxnKey | None = None,
        postings: tuple[Posting, ...] = (), reversed_: tuple[Posting, ...] = (),
    ) -> Reply:
        out = self._response_fields(f, code, extra)
        return Reply(message.encode(out, self.mac_key), f, code, out, postings, reversed_,
                     key=key)

    def _format_error(self, partial: dict[str, object]) -> Reply:
        fields: Fields = {k: v for k, v in partial.items() if isinstance(v, (str, bytes))}
        mti = fields.get("t")
        if not isinstance(mti, str) or message.response_mti(mti) is None:
            return Reply(None, fields, "30")
        out: Fields = {"t": mti}
        for k in ("7", "11", "41"):
            value = fields.get(k)
            if isinstance(value, str) and value.isascii() and (k == "41" or value.isdigit()):
                out[k] = value
        try:
            reply = self._answer(out, "30")
        except MessageError:  # an echoed field has a wrong length: answer without it
            reply = self._answer({"t": mti}, "30")
        return replace(reply, request_fields=fields)


def _kind(mti: str, proc: str) -> Kind | None:
    """Sale, refund or advice from the MTI and processing code; None if not supported."""
    if mti[:3] == "022":
        return "advice" if proc[:2] == "00" else None
    return {"00": "sale", "20": "refund"}.get(proc[:2])  # type: ignore[return-value]

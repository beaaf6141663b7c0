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
- 0500 batch totals against the host's standing postings of that terminal since
  its last close: 00 and close, or 95 (stays open); weighed by
  :class:`~devices.bank.batches.Batches`.
- 0600 status of the original in field 90: 00 with field 4 = the amount that
  stands; the original's code if it was declined; 25 if unknown or reversed.
- 0800 network management: 00.

:class:`Acquirer` holds the ledger, the decisions and the responses; what the host
keeps per terminal over time (open batches and their totals, the records of
requests, closes and reversals without original, forgotten after ``retention_s``
with ``on_retire`` told) is its :class:`~devices.bank.batches.Batches`. Each
request that decodes and passes the MAC check first retires what its terminal's
memory has outlived, then is weighed.

Decode errors get 30 with the MTI/STAN/TID that could be decoded (no MTI: no
response); a bad or missing MAC, when the host has a key, gets 63.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from devices.bank.batches import Batches
from devices.bank.ledger import Account, Kind, Ledger, Posting, TxnKey
from devices.errors import MessageError
from devices.iso8583 import message
from devices.iso8583.message import Fields

__all__ = ["Account", "Acquirer", "Forced", "Posting", "Reply"]

APPROVED = frozenset({"00", "10"})
SYSTEM_ERROR = "96"
LATE = "68"
"""Answer to an original that arrives after its own reversal: never posted."""
_ECHO = ("3", "4", "7", "11", "12", "13", "41", "42", "49", "70", "90")


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


class Acquirer:
    """The acquirer host: accounts, duplicate check, reversals, status, MACs; its
    batches and memory are a :class:`Batches`."""

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
        self._counter = 0
        self._batches = Batches(self.ledger, retention_s=retention_s, on_retire=on_retire)

    def __repr__(self) -> str:
        return f"Acquirer({self.ledger!r}, duplicate_check={self.duplicate_check})"

    def total_minor(self) -> int:
        """Sum of all balances, cards and merchant."""
        return self.ledger.total_minor()

    def balances(self) -> dict[str, int]:
        """Card balances by PAN."""
        return self.ledger.balances()

    @property
    def retention(self) -> timedelta | None:
        """How long a closed batch's transactions are remembered (None: for good)."""
        return self._batches.retention

    @property
    def on_retire(self) -> Callable[[list[Posting]], None] | None:
        """Told the postings of each transaction the host forgets."""
        return self._batches.on_retire

    @on_retire.setter
    def on_retire(self, told: Callable[[list[Posting]], None] | None) -> None:
        self._batches.on_retire = told

    def remembered(self) -> tuple[int, int, int]:
        """Transactions, batch closes and orphan reversals remembered (:class:`Batches`)."""
        return self._batches.remembered()

    def open_batch(self, terminal_id: str) -> int:
        """The number of the terminal's open batch (1 before its first close)."""
        return self._batches.open_batch(terminal_id)

    def host_totals(self, terminal_id: str) -> tuple[int, int, int, int]:
        """(credits count, debits count, credits amount, debits amount) of the open batch."""
        return self._batches.host_totals(terminal_id)

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
        tid, batches = fields.get("41"), self._batches
        if batches.retention is not None and isinstance(tid, str):
            batches.retire(tid, now - batches.retention)  # before it is weighed: it may be late
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
            reply = self._batches.close(f, now, self._answer)
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
            record = self._batches.records.get(reply.key) if reply.key else None
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
            mti[:3] in ("020", "022") and key is not None and key not in self._batches.records
            and isinstance(pan, str) and isinstance(proc, str) and isinstance(amount, str)
        ):
            kind = _kind(mti, proc)
            if kind is not None:
                self._batches.remember(key, mti, kind, pan, int(amount), code, reply.response,
                                       now)
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
        batches = self._batches
        if key in batches.orphans:  # its reversal overtook it: it must never post
            reply = self._answer(f, LATE, key=key)
            batches.remember(key, mti, kind, pan, amount, LATE, reply.response, now)
            del batches.orphans[key]
            return reply
        seen = batches.records.get(key) if self.duplicate_check else None
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
                key, kind, pan, approved, rrn=rrn, batch=batches.open_batch(key[0])
            )
            postings = (posting,)
            batches.tally(posting, 1)
            extra["38"] = approval
            extra["4"] = f"{approved:012d}"
        reply = self._answer(f, code, extra, key=key, postings=postings)
        batches.remember(key, mti, kind, pan, amount, code, reply.response, now)
        return reply

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

    # -- reversal, status ----------------------------------------------------

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
        every, batches = self.ledger.postings_for(key), self._batches
        if not every and key not in batches.records:
            batches.orphan(key, now)
            return self._answer(f, "25", key=key)
        standing = [p for p in every if not p.reversed]
        if any(p.batch < batches.open_batch(key[0]) for p in standing):
            return self._answer(f, "12", key=key)
        undone = tuple(p for p in standing if self.ledger.reverse(p))
        for posting in undone:
            batches.tally(posting, -1)
        extra: Fields = {"37": every[0].rrn} if every else {}
        return self._answer(f, "00", extra, key=key, reversed_=undone)

    def _status(self, f: Fields) -> Reply:
        key = self._original(f)
        if key is None:
            return self._answer(f, "30")
        standing = self.ledger.standing(key)
        if standing:
            extra: Fields = {"4": f"{sum(p.amount_minor for p in standing):012d}",
                             "37": standing[0].rrn, "38": standing[0].rrn[-6:]}
            return self._answer(f, "00", extra, key=key)
        record = self._batches.records.get(key)
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
        try:
            frame = message.encode(out, self.mac_key)
        except MessageError:
            if not extra:
                raise
            # A figure the wire cannot carry (a sum past its field's digits, possible when
            # the duplicate check is off): a real host fails the request, 96, without it.
            out = self._response_fields(f, SYSTEM_ERROR, None)
            code, frame = SYSTEM_ERROR, message.encode(out, self.mac_key)
        return Reply(frame, f, code, out, postings, reversed_, key=key)

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

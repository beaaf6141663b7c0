"""The outside oracle: what a live acquirer can judge from the bank's side alone.

Pure: it reads what the bank posted and reversed (with the moment) and each answer a
connection wrote, or lost with its connection, and the card each posting moved. It
never sees the terminal's screen or receipt. Each rule is documented in docs/live.md;
in short, for a posting P of transaction key K = (terminal id, STAN, field 7):

- P is *resolved* at the first of: an answer to K's request (or a repeat of it) written
  to the terminal, a reversal of K, a status answer (0610) about K written, a batch close
  of its terminal accepted (0510, 00) after it.
- ``in_doubt``: P not resolved within ``window_s`` of being posted (or never).
- ``duplicate_charge`` (``duplicate_refund`` for a refund): a second posting of the same
  terminal, card, kind and amount under another key while P was unresolved, both
  standing at the end; or two postings of one key standing. The first is then reported
  here, not as ``in_doubt``.
- ``charged_shown_unpaid`` (``refund_shown_failed_but_credited``): the answer written
  for P said anything but approved, yet P stands at the end, and no status answer
  (0610, 00) told the terminal otherwise.
- ``batch_out_of_balance``: a batch close answered 95 (the terminal's totals differ from
  the bank's postings).

With the acquirer's virtual printer attached (``--printer pty``), the receipts the
terminal printed are matched to the sales standing (by RRN, or terminal id and STAN):

- ``charged_no_receipt``: approved, standing, and no receipt naming it came out;
- ``charged_shown_unpaid``: standing, and the receipts naming it do not say approved;
- ``wrong_amount``: an approved receipt naming it shows sums of money, none of them the
  amount the bank moved.

It also notes, without failing the run, reversals of something the bank never posted
(answered 25) and reversals of something already reversed.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Answered", "LiveAnomaly", "Posted", "Receipt", "judge"]

Key = tuple[str, str, str]
APPROVED = frozenset({"00", "10"})


@dataclass(frozen=True)
class Posted:
    """A posting made at ``t`` (the ledger's), and whether it stands at the end."""

    t: float
    key: Key
    kind: str
    amount_minor: int
    card: str  # the card's id (never its number)
    standing: bool
    reversed_t: float | None = None


@dataclass(frozen=True)
class Answered:
    """An answer the bank wrote to a connection (``written``) or lost with it."""

    t: float
    fields: Mapping[str, Any]
    written: bool

    @property
    def mti(self) -> str:
        return str(self.fields.get("t", ""))

    @property
    def code(self) -> str:
        return str(self.fields.get("39", ""))

    @property
    def key(self) -> Key | None:
        """The transaction the answer is about (field 90 names it for 0410/0610)."""
        f = self.fields
        tid = f.get("41")
        if not isinstance(tid, str):
            return None
        f90 = f.get("90")
        if self.mti[:3] in ("041", "043", "061") and isinstance(f90, str) and len(f90) >= 20:
            return (tid, f90[4:10], f90[10:20])
        stan, f7 = f.get("11"), f.get("7")
        if isinstance(stan, str) and isinstance(f7, str):
            return (tid, stan, f7)
        return None


@dataclass(frozen=True)
class LiveAnomaly:
    """An anomaly (or a note) found from outside."""

    kind: str
    detail: str
    stan: str
    terminal_id: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "detail": self.detail, "stan": self.stan,
                "terminal_id": self.terminal_id}


def judge(
    postings: Iterable[Posted], answers: Iterable[Answered], window_s: float,
    receipts: Sequence[str] | None = None,
) -> tuple[list[LiveAnomaly], list[LiveAnomaly]]:
    """(anomalies, notes) of a live run, by the rules of the module's docstring;
    ``receipts``, the texts of the receipts the terminal completed (through the cut) when
    its printer is the acquirer's (None: no printer attached)."""
    posted = sorted(postings, key=lambda p: p.t)
    said = sorted(answers, key=lambda a: a.t)
    index = _Index(said)
    anomalies: list[LiveAnomaly] = []
    resolved = {id(p): index.resolved_at(p) for p in posted}
    explained: set[int] = set()
    by_key: dict[Key, list[Posted]] = {}
    alike: dict[tuple[str, str, str, int], list[Posted]] = {}
    for p in posted:
        by_key.setdefault(p.key, []).append(p)
        alike.setdefault((p.key[0], p.card, p.kind, p.amount_minor), []).append(p)
    for same in by_key.values():
        standing = [p for p in same if p.standing]
        if len(standing) > 1:
            anomalies.append(_finding(
                _twice(same[0].kind), standing[1],
                f"one request posted {len(standing)} times ({_money(same[0].amount_minor)})"))
            explained.update(id(p) for p in standing[1:])
    for group in alike.values():
        for i, first in enumerate(group):
            if not first.standing or id(first) in explained:
                continue
            done = resolved[id(first)]
            later = next((q for q in group[i + 1:] if q.key != first.key and q.standing
                          and id(q) not in explained), None)
            if later is not None and (done is None or done > later.t):
                anomalies.append(_finding(
                    _twice(first.kind), later,
                    f"{first.card} charged {_money(later.amount_minor)} again (STAN "
                    f"{later.key[1]}) while STAN {first.key[1]}'s answer had not reached the "
                    "terminal; both stand"))
                explained.update((id(first), id(later)))
    for p in posted:
        if id(p) in explained:
            continue
        done = resolved[id(p)]
        if done is None or done > p.t + window_s:
            state = "never" if done is None else f"only {done - p.t:.1f} s later"
            anomalies.append(_finding(
                "in_doubt", p,
                f"{p.kind} {_money(p.amount_minor)} posted, its answer never reached the "
                f"terminal; reversed or confirmed {state} (window {window_s:g} s)"))
            continue
        code = index.first_code(p)
        if code is not None and code not in APPROVED and p.standing and not index.told_standing(p):
            kind = "charged_shown_unpaid" if p.kind != "refund" else (
                "refund_shown_failed_but_credited")
            anomalies.append(_finding(
                kind, p, f"{p.kind} {_money(p.amount_minor)} posted and answered {code}; "
                "never reversed"))
    if receipts is not None:
        anomalies.extend(_by_receipts(
            [p for p in posted if p.standing and id(p) not in explained
             and p.kind == "sale" and not any(a.stan == p.key[1] and a.terminal_id == p.key[0]
                                             for a in anomalies)],
            [Receipt(text) for text in receipts], index))
    for a in said:
        if a.mti[:3] == "051" and a.code == "95":
            tid, stan = a.fields.get("41", ""), a.fields.get("11", "")
            anomalies.append(LiveAnomaly(
                "batch_out_of_balance",
                "batch close answered 95: the terminal's totals differ from the bank's postings",
                str(stan), str(tid)))
    return anomalies, _notes(said)


_TOKEN = re.compile(r"[A-Za-z0-9]+")
_MONEY = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})*\.\d{2}(?![\d.])|(?<![\d.,])\d+\.\d{2}(?![\d.])")
_APPROVED = re.compile(r"\bAPPROV(?:ED|AL)\b")
_FAILED = re.compile(r"\b(?:DECLINED|NOT APPROVED|FAILED|ERROR|UNPAID|CANCELL?ED|VOID(?:ED)?|"
                     r"NOT COMPLETED|TIMEOUT|TIMED OUT)\b")


class Receipt:
    """A receipt's text as the printer completed it, read for what the oracle matches."""

    def __init__(self, text: str) -> None:
        self.text = text.upper()
        self.tokens = frozenset(_TOKEN.findall(self.text))

    def names(self, p: Posted, rrn: str | None) -> bool:
        """It names P: P's RRN, or its terminal id and STAN, are on it."""
        if rrn and rrn in self.tokens:
            return True
        return p.key[1] in self.tokens and p.key[0].upper() in self.tokens

    @property
    def amounts(self) -> frozenset[str]:
        """The sums of money on it (``12.50``; thousands separators dropped)."""
        return frozenset(m.replace(",", "") for m in _MONEY.findall(self.text))

    @property
    def approved(self) -> bool:
        """It says approved and nothing that says otherwise."""
        return bool(_APPROVED.search(self.text)) and not _FAILED.search(self.text)


def _by_receipts(standing: list[Posted], receipts: list[Receipt],
                 index: _Index) -> list[LiveAnomaly]:
    """``charged_no_receipt`` and ``charged_shown_unpaid`` from the receipts printed."""
    found = []
    for p in standing:
        rrn = index.rrns.get(p.key)
        about = [r for r in receipts if r.names(p, rrn)]
        approved = [r for r in about if r.approved]
        if approved:
            money = _money(p.amount_minor)
            shown = sorted({a for r in approved for a in r.amounts})
            if shown and money not in shown:
                found.append(_finding("wrong_amount", p,
                                      f"receipt shows {' / '.join(shown)}, bank moved {money}"))
            continue
        if about:
            found.append(_finding("charged_shown_unpaid", p,
                                  f"sale {_money(p.amount_minor)} stands; its receipt does not "
                                  "say approved"))
        elif index.first_code(p) in APPROVED:
            found.append(_finding("charged_no_receipt", p,
                                  f"sale {_money(p.amount_minor)} approved and stands; no "
                                  "receipt naming it came out of the printer"))
    return found


class _Index:
    """The answers written, by what they are about, in time order."""

    def __init__(self, said: list[Answered]) -> None:
        self.about: dict[Key, list[float]] = {}  # answers, repeats' and status answers
        self.codes: dict[Key, list[tuple[float, str]]] = {}  # answers to the request
        self.closes: dict[str, list[float]] = {}  # batch closes accepted, by terminal
        self.rrns: dict[Key, str] = {}  # the RRN an answer gave each transaction
        self.standing: dict[Key, list[float]] = {}  # status answers: it stands
        for a in said:
            if not a.written:
                continue
            mti = a.mti[:3]
            if mti == "051":
                if a.code == "00":
                    self.closes.setdefault(str(a.fields.get("41")), []).append(a.t)
                continue
            key = a.key
            if mti not in ("021", "023", "061") or key is None:
                continue
            self.about.setdefault(key, []).append(a.t)
            rrn = a.fields.get("37")
            if isinstance(rrn, str):
                self.rrns.setdefault(key, rrn)
            if mti != "061":
                self.codes.setdefault(key, []).append((a.t, a.code))
            elif a.code == "00":
                self.standing.setdefault(key, []).append(a.t)

    def resolved_at(self, p: Posted) -> float | None:
        """When P was first resolved (see the module's docstring), or None."""
        times = [p.reversed_t] if p.reversed_t is not None else []
        for found in (self.about.get(p.key), self.closes.get(p.key[0])):
            if found:
                i = bisect.bisect_left(found, p.t)
                if i < len(found):
                    times.append(found[i])
        return min(times, default=None)

    def told_standing(self, p: Posted) -> bool:
        """A status answer (0610, 00) about P was written after it: the terminal learned
        that P stands."""
        return any(t >= p.t for t in self.standing.get(p.key, ()))

    def first_code(self, p: Posted) -> str | None:
        """The code of the first answer written to P's request (or a repeat) after it."""
        found = self.codes.get(p.key)
        if not found:
            return None
        i = bisect.bisect_left(found, (p.t, ""))
        return found[i][1] if i < len(found) else None


def _notes(said: list[Answered]) -> list[LiveAnomaly]:
    notes: list[LiveAnomaly] = []
    seen: set[Key] = set()
    for a in said:
        key = a.key
        if a.mti[:3] not in ("041", "043") or key is None:
            continue
        if a.code == "25":
            notes.append(LiveAnomaly("reversal_of_unknown",
                                 "reversal of a transaction the bank never posted", key[1],
                                 key[0]))
        elif a.code == "00":
            if key in seen:
                notes.append(LiveAnomaly("reversal_repeated",
                                         "reversal of a transaction already reversed", key[1],
                                         key[0]))
            seen.add(key)
    return notes


def _twice(kind: str) -> str:
    return "duplicate_refund" if kind == "refund" else "duplicate_charge"


def _finding(kind: str, p: Posted, detail: str) -> LiveAnomaly:
    return LiveAnomaly(kind, detail, p.key[1], p.key[0])


def _money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"

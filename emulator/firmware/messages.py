"""The ISO 8583 requests the terminal sends, built from its journal: pure functions.

Field numbers follow ISO 8583:1987 (see devices/iso8583/message.py for the wire
format); amounts are 12-digit minor units, field 90 names the original of a
reversal or status query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from devices.iso8583.message import Fields, original_data
from emulator.firmware.journal import QueueEntry, TxnRecord

PROC = {"sale": "000000", "refund": "200000"}
CURRENCY = "978"  # EUR


@dataclass(frozen=True)
class CardInfo:
    """What the terminal reads off a card: PAN and expiry (YYMM)."""

    pan: str
    expiry: str


@dataclass(frozen=True)
class Identity:
    """Who the terminal is: merchant name, merchant id (field 42), terminal id (41)."""

    merchant: str
    merchant_id: str
    terminal_id: str


_2D = tuple(f"{n:02d}" for n in range(100))
"""``"00"`` to ``"99"``: the clock fields built from these cost a sixth of a ``strftime``."""


def field7(t: datetime) -> str:
    """Field 7, transmission date and time: ``t.strftime("%m%d%H%M%S")``."""
    return f"{_2D[t.month]}{_2D[t.day]}{_2D[t.hour]}{_2D[t.minute]}{_2D[t.second]}"


def _ids(who: Identity) -> Fields:
    return {"41": who.terminal_id, "42": who.merchant_id}


def financial(record: TxnRecord, card: CardInfo, who: Identity, now: datetime) -> Fields:
    """A 0200 sale or refund (0201 when ``record.mti`` says so)."""
    return {
        "t": record.mti, "2": card.pan, "3": PROC[record.do],
        "4": f"{record.amount_minor:012d}", "7": record.f7, "11": record.stan,
        "12": f"{_2D[now.hour]}{_2D[now.minute]}{_2D[now.second]}",  # hhmmss, local
        "13": f"{_2D[now.month]}{_2D[now.day]}", "14": card.expiry,  # MMDD, local
        "25": "00", **_ids(who), "49": CURRENCY,
    }


def advice(entry: QueueEntry, mti: str, card: CardInfo, who: Identity) -> Fields:
    """A 0220 advice (0221 repeat) of an offline approval."""
    return {
        "t": mti, "2": card.pan, "3": PROC["sale"], "4": f"{entry.amount_minor:012d}",
        "7": entry.orig_f7, "11": entry.orig_stan, "14": card.expiry, **_ids(who),
        "49": CURRENCY,
    }


def reversal(entry: QueueEntry, mti: str, card: CardInfo | None, who: Identity) -> Fields:
    """A 0400 reversal (0401 repeat) of ``entry``'s original; field 39 holds the reason."""
    fields: Fields = {
        "t": mti, "3": PROC["refund" if entry.refund else "sale"],
        "4": f"{entry.amount_minor:012d}", "7": entry.f7, "11": entry.stan,
        "39": entry.reason, **_ids(who),
        "90": original_data(entry.orig_mti, entry.orig_stan, entry.orig_f7),
    }
    if card is not None:
        fields["2"] = card.pan
    return fields


def status_query(record: TxnRecord, stan: str, f7: str, who: Identity) -> Fields:
    """A 0600 asking the host whether ``record`` stands."""
    return {"t": "0600", "7": f7, "11": stan, **_ids(who),
            "90": original_data(record.mti, record.stan, record.f7)}


def batch_totals(
    debits: Sequence[TxnRecord], credits: Sequence[TxnRecord], stan: str, f7: str,
    who: Identity,
) -> Fields:
    """A 0500 batch close with the terminal's counts and amounts (as shown)."""
    return {
        "t": "0500", "7": f7, "11": stan, **_ids(who),
        "74": f"{len(credits):010d}", "76": f"{len(debits):010d}",
        "86": f"{sum(t.shown_minor for t in credits):016d}",
        "88": f"{sum(t.shown_minor for t in debits):016d}",
    }

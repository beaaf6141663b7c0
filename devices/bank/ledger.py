"""The acquirer's books: cardholder accounts, one merchant account, postings.

Every money movement is a :class:`Posting` between a card and the merchant, so
the sum of all balances never changes (:meth:`Ledger.check` enforces it). A
transaction is keyed the way the host keys duplicates: ``(terminal_id, stan,
f7)``; :meth:`Ledger.standing_minor` tells an oracle how much money stands for
a key (posted and not reversed). The host may :meth:`~Ledger.retire` a key's
postings once nothing can ask about them any more: balances keep their effect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from devices.errors import ConservationError
from devices.iso8583.message import mask_pan

Kind = Literal["sale", "refund", "advice"]
TxnKey = tuple[str, str, str]
"""(terminal id, STAN, field 7 of the original request)."""


@dataclass
class Account:
    """A cardholder account at the host. ``expiry`` is ``"YYMM"`` (None: never expires)."""

    label: str
    balance_minor: int
    expiry: str | None = None
    blocked: bool = False
    issuer_down: bool = False  # the card's issuer does not answer: response 91


@dataclass(slots=True)
class Posting:
    """One money movement. Sales and advices debit the card and credit the merchant,
    refunds the reverse; ``batch`` is the terminal's batch it fell into."""

    seq: int
    terminal_id: str
    stan: str
    f7: str
    kind: Kind
    pan: str = field(repr=False)
    amount_minor: int
    rrn: str
    reversed: bool = False
    batch: int = 0

    @property
    def key(self) -> TxnKey:
        """The original transaction this posting belongs to."""
        return (self.terminal_id, self.stan, self.f7)

    @property
    def card_delta(self) -> int:
        """What the posting did to the card's balance while it stands."""
        return self.amount_minor if self.kind == "refund" else -self.amount_minor

    def __repr__(self) -> str:
        return (
            f"Posting(seq={self.seq}, key={self.key}, kind={self.kind!r}, "
            f"pan={mask_pan(self.pan)!r}, amount_minor={self.amount_minor}, "
            f"rrn={self.rrn!r}, reversed={self.reversed}, batch={self.batch})"
        )


class Ledger:
    """Accounts by PAN, the merchant's balance and the list of postings."""

    def __init__(self, accounts: Mapping[str, Account], merchant_balance_minor: int = 0) -> None:
        self.accounts: dict[str, Account] = {
            pan: Account(a.label, a.balance_minor, a.expiry, a.blocked, a.issuer_down)
            for pan, a in accounts.items()
        }
        self.merchant_balance_minor = merchant_balance_minor
        self.count = 0  # postings ever made, retired ones included
        self._by_key: dict[TxnKey, list[Posting]] = {}
        self._total = self.total_minor()

    def __repr__(self) -> str:
        return (
            f"Ledger({len(self.accounts)} cards, merchant={self.merchant_balance_minor}, "
            f"{self.count} postings)"
        )

    @property
    def postings(self) -> list[Posting]:
        """The postings still held (not retired), in posting order."""
        return sorted((p for held in self._by_key.values() for p in held),
                      key=lambda p: p.seq)

    def total_minor(self) -> int:
        """Sum of all balances, cards and merchant: constant over the run."""
        return self.merchant_balance_minor + sum(a.balance_minor for a in self.accounts.values())

    def balances(self) -> dict[str, int]:
        """Card balances by PAN (the merchant is not included)."""
        return {pan: a.balance_minor for pan, a in self.accounts.items()}

    def check(self) -> None:
        """Raise :class:`ConservationError` if money was created or destroyed."""
        total = self.total_minor()
        if total != self._total:
            raise ConservationError(f"money not conserved: total {total}, expected {self._total}")

    def post(
        self, key: TxnKey, kind: Kind, pan: str, amount_minor: int, *, rrn: str, batch: int
    ) -> Posting:
        """Move ``amount_minor`` between the card and the merchant; the PAN must be known."""
        if amount_minor <= 0:
            raise ValueError("a posting moves a positive amount")
        self.count += 1
        posting = Posting(
            self.count, *key, kind=kind, pan=pan, amount_minor=amount_minor,
            rrn=rrn, batch=batch,
        )
        self._move(posting, posting.card_delta)
        self._by_key.setdefault(key, []).append(posting)
        return posting

    def reverse(self, posting: Posting) -> bool:
        """Undo a standing posting; False (nothing done) if it was already reversed."""
        if posting.reversed:
            return False
        self._move(posting, -posting.card_delta)
        posting.reversed = True
        return True

    def _move(self, posting: Posting, card_delta: int) -> None:
        self.accounts[posting.pan].balance_minor += card_delta
        self.merchant_balance_minor -= card_delta

    def postings_for(self, key: TxnKey) -> list[Posting]:
        """Every posting made for a transaction key (several if a copy was posted again)."""
        return list(self._by_key.get(key, ()))

    def standing(self, key: TxnKey) -> list[Posting]:
        """The postings of ``key`` that are not reversed."""
        return [p for p in self._by_key.get(key, ()) if not p.reversed]

    def standing_minor(self, key: TxnKey) -> int:
        """How much money stands for ``key``: the sum of its unreversed postings."""
        return sum(p.amount_minor for p in self.standing(key))

    def retire(self, key: TxnKey) -> list[Posting]:
        """Forget the postings of ``key`` (their money stays moved); returns them."""
        return self._by_key.pop(key, [])

    def txn_keys(self) -> Iterable[TxnKey]:
        """Every transaction key that was ever posted, in posting order."""
        return self._by_key.keys()

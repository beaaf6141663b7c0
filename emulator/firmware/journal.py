"""The terminal's journal: what survives a power loss and what does not.

Two halves: ``disk`` (durably written, survives ``terminal.power_loss``) and
``ram`` (lost with the power). The STAN counter and transaction records are
always durable; where a queued reversal or an advice acknowledgement goes is
the firmware's policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

_CLOSED = frozenset(("settled", "declined", "voided", "reversed"))
"""Record states nothing can change any more once the batch is settled."""


@dataclass(slots=True)
class TxnRecord:
    """One online transaction as the terminal knows it."""

    step: str
    do: str  # sale | refund
    mti: str
    stan: str
    f7: str
    amount_minor: int
    card: str
    state: str = "sent"  # sent | approved | completed | declined | reversed | voided
    code: str = ""
    rrn: str = ""
    auth: str = ""
    shown_minor: int = 0
    offline: bool = False


@dataclass(slots=True)
class QueueEntry:
    """A message the terminal owes the host: a reversal, a void or an advice."""

    kind: str  # reversal | void | advice
    step: str
    orig_mti: str
    orig_stan: str
    orig_f7: str
    amount_minor: int
    reason: str
    queued_s: float
    stan: str = ""  # the reversal's own STAN (kept by its 0401 repeats)
    f7: str = ""
    armed: bool = False  # written before the request left; sent only if needed
    sent: int = 0
    card: str = ""
    target: str = ""  # for a void: the sale step it cancels
    refund: bool = False  # the original is a refund (processing code 20)
    precaution: bool = False  # reverses a refused request: holds up no new transaction

    @property
    def orig_key(self) -> tuple[str, str]:
        return (self.orig_stan, self.orig_f7)


@dataclass(slots=True)
class LostClose:
    """A batch close (0500) that got no answer: what its repeats (0501) send again."""

    fields: dict[str, str]
    steps: tuple[str, ...]  # the records its totals count


@dataclass
class Half:
    """One half of the journal."""

    txns: dict[str, TxnRecord] = field(default_factory=dict)
    queue: list[QueueEntry] = field(default_factory=list)
    acked: set[tuple[str, str]] = field(default_factory=set)
    receipts: dict[str, Any] = field(default_factory=dict)
    shown: set[str] = field(default_factory=set)  # steps whose outcome was displayed
    held: set[str] = field(default_factory=set)  # steps whose receipt waits on the printer
    lost_close: LostClose | None = None  # a batch close still to be repeated


class _Halves(Protocol):
    """Where the two halves are kept: the kit's journal (emulator.firmware.api)."""

    durable: dict[str, Any]
    volatile: dict[str, Any]

    def power_loss(self) -> None: ...


class Journal:
    """Durable and volatile halves, with the STAN counter on disk; kept in ``halves`` (the
    firmware's kit's journal: its volatile dict is emptied when the power goes)."""

    def __init__(self, halves: _Halves | None = None) -> None:
        if halves is None:
            from emulator.firmware.api import JournalHalves  # noqa: PLC0415

            halves = JournalHalves()
        self.halves = halves
        self.disk: Half = halves.durable.setdefault("journal", Half())
        self._stan = 0

    @property
    def ram(self) -> Half:
        """The volatile half (a new one after a power loss)."""
        volatile = self.halves.volatile
        ram = volatile.get("journal")
        if ram is None:
            ram = volatile["journal"] = Half()
        return ram

    def next_stan(self) -> str:
        """The next STAN, written to disk before it is used (1..999999)."""
        self._stan = self._stan % 999999 + 1
        return f"{self._stan:06d}"

    def power_loss(self) -> None:
        self.halves.power_loss()

    def put_txn(self, record: TxnRecord) -> None:
        self.disk.txns[record.step] = record

    def txn(self, step: str) -> TxnRecord | None:
        return self.disk.txns.get(step)

    def close_batch(self) -> None:
        """After a settlement: drop the records that are done (settled, declined, voided,
        reversed, none owed a message) with their receipts, as a terminal clears its batch
        journal, and what it noted about other steps."""
        owed = {name for entry in self.queue() for name in (entry.step, entry.target)}
        disk = self.disk
        disk.txns = {step: record for step, record in disk.txns.items()
                     if record.state not in _CLOSED or step in owed}
        disk.receipts = {k: v for k, v in disk.receipts.items() if k in disk.txns}
        disk.shown.intersection_update(disk.txns)

    def queue(self) -> list[QueueEntry]:
        """Every queued entry, disk first, in the order they were written."""
        return [*self.disk.queue, *self.ram.queue]

    def enqueue(self, entry: QueueEntry, durable: bool) -> None:
        (self.disk if durable else self.ram).queue.append(entry)

    def dequeue(self, entry: QueueEntry) -> None:
        for half in (self.disk, self.ram):
            if entry in half.queue:
                half.queue.remove(entry)

    def pending(self, kinds: tuple[str, ...] = ("reversal", "void", "advice")) -> list[QueueEntry]:
        """Entries that must still be sent (armed ones are not yet due)."""
        acked = self.ram.acked
        return [
            e for e in self.queue()
            if not e.armed and e.kind in kinds
            and not (e.kind == "advice" and e.orig_key in acked)
        ]

"""One source of truth for judging: runs are judged from the trace, and the bank's ledger
is checked against the trace's bank events; a disagreement is an error."""

from __future__ import annotations

from typing import Any

import pytest

from devices.errors import LedgerMismatchError, PosemuError
from emulator.engine.fleet import Fleet
from emulator.engine.trace import Event
from emulator.engine.world import World
from emulator.judge.reconcile import BankMoves, Booking, reconcile
from emulator.scenario.load import scenario_from_dict

F7 = "0101120000"


def bank(name: str, stan: str, amount: int, kind: str = "sale") -> Event:
    return Event(0.0, f"bank.{name}", {"kind": kind, "stan": stan, "f7": F7,
                                        "amount_minor": amount})


EVENTS = [  # a sale that stands, a refund posted and reversed, a sale reversed
    bank("posted", "000001", 1250), bank("posted", "000002", 500, "refund"),
    bank("reversed", "000002", 500, "refund"), bank("posted", "000003", 700),
    bank("reversed", "000003", 700),
]
BOOKINGS = [Booking("000001", F7, "sale", 1250, True),
            Booking("000002", F7, "refund", 500, False),
            Booking("000003", F7, "sale", 700, False)]


def check(events: list[Event], bookings: list[Booking] | None, *, made: int = 3,
          merchant_moved: int = 1250, keyed: bool = True) -> None:
    moves = BankMoves(keyed=keyed)
    for event in events:
        moves.observe(event)
    reconcile(moves, made=made, merchant_moved=merchant_moved, bookings=bookings, what="run")


def test_a_ledger_that_agrees_with_the_trace_passes() -> None:
    check(EVENTS, BOOKINGS)
    assert BankMoves.of([Event(0.0, "card.read", {}), *EVENTS]).posted == 3


def test_the_error_is_a_posemu_error() -> None:
    assert issubclass(LedgerMismatchError, PosemuError)
    assert issubclass(LedgerMismatchError, RuntimeError)


@pytest.mark.parametrize(("bookings", "why"), [
    ([Booking("000001", F7, "sale", 1000, True), *BOOKINGS[1:]],
     "standing in the ledger only: sale 10.00 (STAN 000001, field 7 0101120000); "
     "in the trace only: sale 12.50 (STAN 000001, field 7 0101120000)"),
    ([BOOKINGS[0], BOOKINGS[1], Booking("000003", F7, "sale", 700, True)],
     "standing in the ledger only: sale 7.00 (STAN 000003"),
    ([Booking("000009", F7, "sale", 1250, True), *BOOKINGS[1:]],
     "standing in the ledger only: sale 12.50 (STAN 000009"),
    (BOOKINGS[:2], "the ledger kept 2 of the 3 postings it made"),
])
def test_postings_standing_otherwise_than_the_trace_says_are_an_error(
    bookings: list[Booking], why: str,
) -> None:
    with pytest.raises(LedgerMismatchError, match="run: the bank's ledger and the trace") as err:
        check(EVENTS, bookings)
    assert why in str(err.value)


def test_a_trace_reversing_what_never_stood_is_an_error() -> None:
    with pytest.raises(LedgerMismatchError, match=r"reverses what never stood: sale 7\.00"):
        check([*EVENTS, bank("reversed", "000003", 700)], BOOKINGS, merchant_moved=550)


@pytest.mark.parametrize("keyed", [True, False])
def test_postings_made_and_the_merchants_balance_are_checked(keyed: bool) -> None:
    bookings = BOOKINGS if keyed else None
    with pytest.raises(LedgerMismatchError, match="made 4 postings, the trace posted 3"):
        check(EVENTS, bookings, made=4, keyed=keyed)
    with pytest.raises(LedgerMismatchError, match=r"moved 12\.51, the trace says 12\.50"):
        check(EVENTS, bookings, merchant_moved=1251, keyed=keyed)
    check(EVENTS[:1], None, made=1, keyed=keyed)  # no bookings: nothing per key


# -- a run's ledger tampered with, or its trace ----------------------------------------


def sales(*at_s: float, **bank: Any) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [
        {"id": f"s{i}", "do": "sale", "card": "alice", "amount": "10.00", "at_s": at}
        for i, at in enumerate(at_s, 1)]
    if bank:
        steps.insert(1, {"id": "st", "do": "settle", "at_s": at_s[0] + 30})
    return {"format": 1, "name": "tampered", "bank": bank, "steps": steps,
            "cards": [{"id": "alice", "pan": "4111111111111111", "balance": "100.00"}]}


def world_of(data: dict[str, Any], at_s: float, tamper: Any) -> World:
    """A world that calls ``tamper(world)`` at ``at_s``."""
    world = World(scenario_from_dict(data))
    world.env.timeout(at_s).callbacks.append(lambda _event: tamper(world))
    return world


def test_the_untouched_run_passes() -> None:
    assert world_of(sales(0), 100, lambda _world: None).run().passed


def test_a_posting_the_ledger_undid_without_a_trace_is_detected() -> None:
    def undo(world: World) -> None:
        world.acquirer.ledger.postings[0].reversed = True  # no money moved, nothing traced

    with pytest.raises(LedgerMismatchError, match=r"in the trace only: sale 10\.00"):
        world_of(sales(0), 100, undo).run()


def test_a_bank_event_missing_from_the_trace_is_detected() -> None:
    def drop(world: World) -> None:  # the host posts without saying so
        emit = world.trace.emit

        def untold(name: str, **fields: Any) -> None:
            if name != "bank.posted":
                emit(name, **fields)

        world.trace.emit = untold  # type: ignore[method-assign]

    with pytest.raises(LedgerMismatchError) as err:
        world_of(sales(0), 0, drop).run()
    assert "the ledger made 1 postings, the trace posted 0" in str(err.value)
    assert "the merchant's balance moved 10.00, the trace says 0.00" in str(err.value)


RETAINED = sales(0, 4000, retention_s=3600)  # s1 is forgotten when s2 comes


def test_what_the_bank_forgot_is_still_checked() -> None:
    def forge(world: World) -> None:
        assert [p.stan for p in world.retired] == ["000001"]
        world.retired[0].amount_minor = 999

    with pytest.raises(LedgerMismatchError, match=r"ledger only: sale 9\.99 \(STAN 000001"):
        world_of(RETAINED, 5000, forge).run()


def test_a_run_that_did_not_keep_what_the_bank_forgot_is_detected() -> None:
    def forget(world: World) -> None:
        world.acquirer.on_retire = None

    with pytest.raises(LedgerMismatchError, match="the ledger kept 1 of the 2 postings"):
        world_of(RETAINED, 0, forget).run()


def test_a_fleet_checks_its_ledger_against_the_counts() -> None:
    fleet = Fleet(scenario_from_dict(sales(0, 60)), 3)
    ledger = fleet.acquirer.ledger

    def shift(_event: object) -> None:  # money conserved, yet not what the trace says
        ledger.accounts["4111111111111111"].balance_minor += 100
        ledger.merchant_balance_minor -= 100

    fleet.env.timeout(100).callbacks.append(shift)
    with pytest.raises(LedgerMismatchError, match=r"tampered \(fleet of 3\): .* moved 59\.00"):
        fleet.run()
    assert Fleet(scenario_from_dict(sales(0, 60)), 3).run().postings == 6

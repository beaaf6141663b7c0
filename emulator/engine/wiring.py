"""What every run builds from its scenario: the bank, the cards, the simulated printer,
the MAC key, the balances, and the check that money was conserved.

A single run (:mod:`emulator.engine.world`), a fleet (:mod:`emulator.engine.fleet`) and a
bench run (:mod:`emulator.engine.bench`) all take them from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devices.bank.acquirer import Account, Acquirer
from devices.errors import ConservationError
from devices.printer.core import PrinterCore
from devices.printer.sim import SimPrinter
from emulator.firmware.messages import CardInfo

if TYPE_CHECKING:
    import simpy

    from devices.ports import TraceSink
    from emulator.scenario.model import Scenario

MAC_KEY = b"posemu-test-mac-key-0001"
"""The MAC key terminal and host share: a test key, never a real one."""


def trace_header(scenario: Scenario, **extra: Any) -> dict[str, Any]:
    """The header of ``scenario``'s trace: what names the run (and ``extra``)."""
    return {"name": scenario.name, "seed": scenario.seed, "profile": scenario.profile,
            "path": scenario.path, **extra}


def make_acquirer(scenario: Scenario) -> Acquirer:
    """The bank of ``scenario``: its cards as accounts, its merchant, its ``[bank]``."""
    accounts = {
        c.pan: Account(c.id, c.balance_minor, _yymm(c.expiry), c.blocked)
        for c in scenario.cards
    }
    return Acquirer(
        accounts, merchant_balance_minor=scenario.bank.merchant_balance_minor,
        merchant_id=scenario.merchant.merchant_id,
        duplicate_check=scenario.bank.duplicate_check,
        mac_key=MAC_KEY if scenario.bank.verify_mac else None,
        retention_s=scenario.bank.retention_s,
    )


def card_infos(scenario: Scenario) -> dict[str, CardInfo]:
    """What a terminal reads off each of the scenario's cards, by card id."""
    return {c.id: CardInfo(c.pan, _yymm(c.expiry) or "9912") for c in scenario.cards}


def sim_printer(env: simpy.Environment, trace: TraceSink, scenario: Scenario) -> SimPrinter:
    """The simulated receipt printer of ``scenario``'s ``[printer]``."""
    spec = scenario.printer
    return SimPrinter(env, trace, PrinterCore(paper_m=spec.paper_m,
                                              near_end_m=spec.near_end_m), spec.lines_per_s)


def balances_of(scenario: Scenario, acquirer: Acquirer) -> dict[str, int]:
    """Each card's balance by card id, and the merchant's."""
    by_pan = acquirer.balances()
    balances = {c.id: by_pan[c.pan] for c in scenario.cards}
    balances["merchant"] = acquirer.ledger.merchant_balance_minor
    return balances


def check_conserved(acquirer: Acquirer, total_before: int, what: str) -> None:
    """Raise ConservationError unless cards plus merchant still hold ``total_before``."""
    if acquirer.total_minor() != total_before:
        raise ConservationError(
            f"{what}: money not conserved: {total_before} -> "
            f"{acquirer.total_minor()} minor units"
        )


def _yymm(expiry: str | None) -> str | None:
    """``"2027-08"`` to ``"2708"``."""
    if expiry is None:
        return None
    year, month = expiry.split("-")
    return year[2:] + month

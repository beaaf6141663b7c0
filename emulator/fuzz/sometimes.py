"""What a run reached, read off its trace after it ran: fault kinds against step kinds,
and the named dangerous interleavings ("sometimes" points).

A clean campaign says no anomaly was seen; these say which dangerous moments were
actually reached. Nothing here runs during a run or changes a trace: the points are
found in the finished trace's events, in one pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from emulator.engine.trace import Event

IDLE = "idle"
"""The step kind of a fault that started while the terminal ran no step."""


class Point(NamedTuple):
    """A named moment: where it happens and what it means."""

    name: str
    where: str  # "firmware", "link" or "host"
    meaning: str


POINTS: dict[str, Point] = {
    p.name: p
    for p in (
        Point("reversal_while_response_in_flight", "firmware",
              "the terminal sends a reversal of a request whose answer the host has "
              "already sent and the link has not yet delivered"),
        Point("duplicate_after_reversal", "host",
              "a request (0200 or repeat 0201) reaches the host for a transaction it has "
              "already reversed"),
        Point("power_lost_mid_receipt", "firmware",
              "power is lost while an approved receipt is printing (the approval is in "
              "the journal, the receipt not cut)"),
        Point("advice_queued_at_settlement", "firmware",
              "a settlement starts while an offline approval's advice is not yet "
              "acknowledged"),
        Point("reversal_queued_at_settlement", "firmware",
              "a settlement starts while a reversal or void is still owed"),
        Point("power_lost_awaiting_response", "firmware",
              "power is lost between a request and its answer"),
        Point("response_after_timeout", "firmware",
              "an answer reaches the terminal for a request it had given up on"),
        Point("duplicate_response", "link",
              "one answer the host sent reaches the terminal twice"),
        Point("posted_answer_lost", "host",
              "the host posted a transaction and its answer was withheld or lost on "
              "the way"),
        Point("settle_answer_lost", "host",
              "the host's answer to a settlement (0510) is withheld or lost on the way"),
        Point("advice_after_reboot", "firmware",
              "an advice is sent after the terminal came back from a power loss"),
        Point("reprint_after_failed_receipt", "firmware",
              "a reprint starts after a receipt failed to print"),
    )
}


class Reached(NamedTuple):
    """What one run reached."""

    fired: tuple[str, ...]  # fault kinds that started, sorted
    pairs: tuple[tuple[str, str], ...]  # (fault kind, step kind running), sorted
    points: tuple[str, ...]  # names of POINTS, sorted


_REQUESTS = frozenset({"0200", "0201"})
_ANSWERS = frozenset({"0210", "0230", "0410", "0430", "0510"})


def reached(events: Iterable[Event]) -> Reached:
    """Read one finished run's trace."""
    fired: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    points: set[str] = set()
    running = IDLE  # the step kind the terminal runs
    in_flight: Counter[str] = Counter()  # answers (by STAN) sent by the host, not delivered
    copies: Counter[str] = Counter()  # answers (by MTI and STAN) delivered, less those sent
    awaiting: set[str] = set()  # STANs of requests sent, not answered
    gave_up: set[str] = set()  # STANs the terminal timed out on
    reversed_: set[str] = set()  # STANs the host reversed
    posted: set[str] = set()  # STANs the host posted
    offline: set[str] = set()  # steps approved offline, advice not acknowledged
    owed: set[str] = set()  # STANs whose reversal or void is queued, not done
    printing = False  # an approved receipt is printing
    failed_receipt = rebooted = False
    for event in events:
        name, fields = event.name, event.fields
        if name.startswith("network."):
            about = str(fields.get("stan"))
            mti = fields.get("mti")
            if fields.get("direction") != "to_terminal" or mti not in _ANSWERS:
                continue
            if name == "network.sent":
                in_flight[about] += 1
                copies[f"{mti}:{about}"] -= 1
            elif name == "network.delivered":
                in_flight[about] -= 1
                copies[f"{mti}:{about}"] += 1
                if copies[f"{mti}:{about}"] > 0:  # more copies delivered than sent
                    points.add("duplicate_response")
            elif name == "network.lost":
                in_flight[about] -= 1
                if mti == "0510":
                    points.add("settle_answer_lost")
                elif about in posted:
                    points.add("posted_answer_lost")
        elif name == "terminal.txn_started":
            running = str(fields["do"])
            if running == "reprint" and failed_receipt:
                points.add("reprint_after_failed_receipt")
            elif running == "settle":
                if offline:
                    points.add("advice_queued_at_settlement")
                if owed:
                    points.add("reversal_queued_at_settlement")
        elif name == "terminal.txn_done":
            running = IDLE
        elif name == "fault.started":
            kind = str(fields["fault"])
            fired.add(kind)
            pairs.add((kind, running))
        elif name == "terminal.request_sent":
            mti = fields.get("mti")
            stan = str(fields.get("stan"))
            awaiting.add(stan)
            if rebooted and mti in ("0220", "0221"):
                points.add("advice_after_reboot")
        elif name == "terminal.response_received":
            stan = str(fields.get("stan"))
            awaiting.discard(stan)
            if stan in gave_up:
                points.add("response_after_timeout")
        elif name == "terminal.timeout":
            gave_up.add(str(fields.get("stan")))
        elif name == "terminal.reversal_sent":
            if in_flight[str(fields.get("orig_stan"))] > 0:
                points.add("reversal_while_response_in_flight")
        elif name == "bank.request_received":
            if fields.get("mti") in _REQUESTS and fields.get("stan") in reversed_:
                points.add("duplicate_after_reversal")
        elif name == "bank.reversed":
            reversed_.add(str(fields.get("stan")))
        elif name == "bank.posted":
            posted.add(str(fields.get("stan")))
        elif name == "bank.response_withheld":
            if fields.get("mti") == "0500":
                points.add("settle_answer_lost")
            elif fields.get("stan") in posted:
                points.add("posted_answer_lost")
        elif name == "terminal.offline_approved":
            offline.add(str(fields.get("step")))
        elif name == "terminal.advice_done":
            offline.discard(str(fields.get("step")))
        elif name == "terminal.reversal_queued":
            owed.add(str(fields.get("orig_stan")))
        elif name == "terminal.reversal_done":
            owed.discard(str(fields.get("orig_stan")))
        elif name == "printer.job_started":
            printing = fields.get("slip") == "approved"
        elif name in ("printer.job_done", "printer.job_failed"):
            printing = False
            failed_receipt = failed_receipt or name == "printer.job_failed"
        elif name == "terminal.power_lost":
            rebooted = True
            running = IDLE
            if printing:
                points.add("power_lost_mid_receipt")
            if awaiting:
                points.add("power_lost_awaiting_response")
            awaiting.clear()
    return Reached(tuple(sorted(fired)), tuple(sorted(pairs)), tuple(sorted(points)))

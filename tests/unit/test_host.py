"""The acquirer host's shell on its own, behind a real link: processing time, what it is
still weighing, undecodable frames and the ``bank.*`` faults."""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from datetime import datetime
from typing import Any

import pytest
import simpy

from devices.bank.acquirer import Account, Acquirer
from devices.bank.host import Host
from devices.fault import ActiveFault
from devices.iso8583.message import decode, encode, field_spans, original_data
from devices.net.link import Link
from devices.ports import Refused
from emulator.engine.trace import Trace
from emulator.scenario.load import scenario_from_dict

START = datetime(2026, 11, 22, 9, 0)
F7 = "1122090000"
TID = "TERM0001"
ALICE = "4111111111111111"
OPENING = 10_000
LATENCY = 0.5
PROCESSING = 2.0
TRIP = LATENCY + PROCESSING + LATENCY
"""From a request sent at once to its answer at the terminal."""


def fin(stan: int, amount: int = 1250, *, mti: str = "0200", proc: str = "000000") -> bytes:
    """A sale (or refund, or advice, by ``mti``/``proc``) as the terminal frames it."""
    return encode({
        "t": mti, "2": ALICE, "3": proc, "4": f"{amount:012d}", "7": F7, "11": f"{stan:06d}",
        "41": TID, "42": "MERCHANT0000001", "49": "978",
    })


def reversal(stan: int, of_stan: int, amount: int = 1250) -> bytes:
    return encode({
        "t": "0400", "2": ALICE, "3": "000000", "4": f"{amount:012d}", "7": F7,
        "11": f"{stan:06d}", "39": "17", "41": TID, "90": original_data("0200", of_stan, F7),
    })


def fault(**entry: Any) -> ActiveFault:
    """The fault as the injector hands it over: validated by the scenario loader."""
    spec = scenario_from_dict({"format": 1, "faults": [{"at_s": 0, **entry}]}).faults[0]
    return ActiveFault(spec.fault, dict(spec.params))


class Bank:
    """A host behind a real link; what reaches the terminal's end is collected."""

    def __init__(self, processing_s: float = PROCESSING) -> None:
        self.env = simpy.Environment()
        self.trace = Trace(self.env)
        self.link = Link(self.env, random.Random(0), self.trace, latency_s=LATENCY)
        self.acquirer = Acquirer({ALICE: Account("alice", OPENING)})
        self.host = Host(self.env, self.trace, self.link.bank_end, self.acquirer, START,
                         processing_s)
        self.answers: list[tuple[float, bytes | Refused]] = []
        self.env.process(self._collect())

    def _collect(self) -> Generator[simpy.Event, Any, None]:
        while True:
            item = yield self.link.terminal_end.receive()
            self.answers.append((self.env.now, item))

    def at(self, t: float, action: Callable[[], None]) -> None:
        """Do ``action`` at simulated time ``t``."""
        self.env.timeout(t - self.env.now).callbacks.append(lambda _e: action())

    def send_at(self, t: float, frame: bytes) -> None:
        self.at(t, lambda: self.link.terminal_end.send(frame))

    def codes(self) -> list[tuple[float, str, str]]:
        """(time, MTI, response code) of each answer that reached the terminal."""
        out = []
        for t, item in self.answers:
            assert isinstance(item, bytes), item
            fields = decode(item)
            out.append((t, str(fields["t"]), str(fields["39"])))
        return out

    def bank_events(self) -> list[tuple[float, str, dict[str, Any]]]:
        return [(e.t, e.name, e.fields) for e in self.trace.events
                if e.name.startswith("bank.")]

    def balance(self) -> int:
        return self.acquirer.balances()[ALICE]


def test_processing_s_delays_each_answer() -> None:
    """A request is weighed ``processing_s`` after it reaches the host, and answered then;
    requests arriving meanwhile are not queued behind it."""
    for processing_s in (0.0, 7.5):
        bank = Bank(processing_s)
        bank.send_at(0.0, fin(1))
        bank.send_at(1.0, fin(2))
        bank.env.run()
        weighed = [LATENCY + processing_s, 1.0 + LATENCY + processing_s]
        assert [(t, name) for t, name, _ in bank.bank_events()
                if name == "bank.request_received"] == [(w, "bank.request_received")
                                                         for w in weighed]
        assert bank.codes() == [(w + LATENCY, "0210", "00") for w in weighed]


def test_weighing_counts_requests_taken_and_not_yet_weighed() -> None:
    """``weighing`` counts the requests off the link whose processing time is running:
    not those still on the link, nor those weighed whose answer is held back."""
    bank = Bank()
    bank.host.apply(fault(fault="bank.timeout", delay_s=100.0))
    bank.send_at(0.0, fin(1))
    bank.send_at(1.0, fin(2))
    seen = []
    for t in (0.4, 0.6, 1.6, 2.6, 3.6):
        bank.env.run(until=t)
        seen.append(bank.host.weighing)
    assert seen == [0, 1, 2, 1, 0]
    assert bank.answers == []


def test_a_refused_request_is_not_weighed() -> None:
    """A request the host refuses while down never counts as being weighed."""
    bank = Bank()
    bank.host.apply(fault(fault="bank.down"))
    bank.send_at(0.0, fin(1))
    bank.env.run(until=LATENCY + 0.1)
    assert bank.host.weighing == 0
    assert [name for _, name, _ in bank.bank_events()] == ["bank.refused"]


def test_bank_down_refuses_at_once_and_serves_again_after_clearing() -> None:
    """While ``bank.down`` is in force a request is answered at once with
    ``Refused(frame)`` and ``bank.refused``, unweighed and unposted; once cleared,
    requests are served."""
    bank = Bank()
    down = fault(fault="bank.down")
    bank.host.apply(down)
    request = fin(1)
    bank.send_at(0.0, request)
    bank.env.run()
    assert bank.answers == [(2 * LATENCY, Refused(request))]
    assert bank.bank_events() == [(LATENCY, "bank.refused", {})]
    assert bank.balance() == OPENING
    bank.host.clear(down)
    bank.answers.clear()
    bank.send_at(10.0, fin(2))
    bank.env.run()
    assert bank.codes() == [(10.0 + TRIP, "0210", "00")]
    assert bank.balance() == OPENING - 1250


def test_bank_down_when_a_request_is_weighed_refuses_it_unposted() -> None:
    """A request taken before the host went down is refused when its processing time is
    over, labelled with its MTI and STAN, and moves no money."""
    bank = Bank()
    request = fin(7)
    bank.send_at(0.0, request)
    bank.at(1.0, lambda: bank.host.apply(fault(fault="bank.down")))
    bank.env.run()
    label = {"mti": "0200", "stan": "000007"}
    assert bank.bank_events() == [(LATENCY + PROCESSING, "bank.request_received", label),
                                  (LATENCY + PROCESSING, "bank.refused", label)]
    assert bank.answers == [(TRIP, Refused(request))]
    assert bank.balance() == OPENING


def test_bank_down_when_a_held_answer_is_due_sends_nothing() -> None:
    """A host that is down when its late answer falls due sends nothing (not even a
    refusal: the money moved)."""
    bank = Bank()
    bank.host.apply(fault(fault="bank.timeout", delay_s=10.0))
    bank.send_at(0.0, fin(1))
    bank.at(5.0, lambda: bank.host.apply(fault(fault="bank.down")))
    bank.env.run()
    assert bank.answers == []
    assert "bank.response_sent" not in [name for _, name, _ in bank.bank_events()]
    assert bank.balance() == OPENING - 1250


@pytest.mark.parametrize(("proc", "code"), [("000000", "05"), ("200000", "91")])
def test_bank_respond_forces_the_code_on_a_new_0200_without_moving_money(
    proc: str, code: str,
) -> None:
    """A sale's or refund's 0200 is answered with the fault's code and moves no money."""
    bank = Bank()
    bank.host.apply(fault(fault="bank.respond", code=code))
    bank.send_at(0.0, fin(1, proc=proc))
    bank.env.run()
    assert bank.codes() == [(TRIP, "0210", code)]
    assert bank.bank_events()[-1] == (
        LATENCY + PROCESSING, "bank.response_sent", {"code": code, "mti": "0210",
                                                     "stan": "000001"})
    assert "bank.posted" not in [name for _, name, _ in bank.bank_events()]
    assert bank.balance() == OPENING


def test_bank_respond_leaves_repeats_advices_and_reversals_alone() -> None:
    """A 0201 repeat, a 0220 advice and a 0400 reversal are served as without the fault
    and do not use up its ``count``; the next new 0200 does."""
    bank = Bank()
    bank.send_at(0.0, fin(1))
    bank.env.run()
    bank.host.apply(fault(fault="bank.respond", code="96", count=1))
    bank.send_at(10.0, fin(1, mti="0201"))
    bank.send_at(20.0, fin(2, 300, mti="0220"))
    bank.send_at(30.0, reversal(3, of_stan=1))
    bank.send_at(40.0, fin(4, 200))
    bank.send_at(50.0, fin(5, 100))
    bank.env.run()
    assert [(mti, code) for _, mti, code in bank.codes()] == [
        ("0210", "00"), ("0210", "00"), ("0230", "00"), ("0410", "00"), ("0210", "96"),
        ("0210", "00")]
    assert bank.balance() == OPENING - 300 - 100


def test_bank_respond_posted_moves_the_money_then_answers_the_code() -> None:
    """With ``posted`` the sale is posted as usual and answered with the fault's code."""
    bank = Bank()
    bank.host.apply(fault(fault="bank.respond", code="96", posted=True))
    bank.send_at(0.0, fin(1))
    bank.env.run()
    assert bank.codes() == [(TRIP, "0210", "96")]
    assert bank.balance() == OPENING - 1250


def test_bank_respond_partial_approval_moves_only_the_amount() -> None:
    """Code 10 with ``amount`` approves and moves only that amount, which the answer
    carries in field 4."""
    bank = Bank()
    bank.host.apply(fault(fault="bank.respond", code="10", amount="5.00"))
    bank.send_at(0.0, fin(1, 1250))
    bank.env.run()
    _, answer = bank.answers[0]
    assert isinstance(answer, bytes)
    assert (decode(answer)["39"], decode(answer)["4"]) == ("10", "000000000500")
    assert bank.balance() == OPENING - 500


def test_bank_timeout_with_delay_moves_money_at_once_and_answers_late() -> None:
    """``bank.timeout`` with ``delay_s`` posts when the request is weighed and sends the
    answer ``delay_s`` later."""
    bank = Bank()
    bank.host.apply(fault(fault="bank.timeout", delay_s=10.0))
    bank.send_at(0.0, fin(1))
    bank.env.run()
    weighed = LATENCY + PROCESSING
    assert [(t, name) for t, name, _ in bank.bank_events()] == [
        (weighed, "bank.request_received"), (weighed, "bank.posted"),
        (weighed + 10.0, "bank.response_sent")]
    assert bank.codes() == [(TRIP + 10.0, "0210", "00")]


def test_bank_timeout_without_delay_never_answers_but_moves_money() -> None:
    """Without ``delay_s`` the request is processed (money moves) and its answer is
    withheld for good, traced as ``bank.response_withheld``."""
    bank = Bank()
    bank.host.apply(fault(fault="bank.timeout"))
    bank.send_at(0.0, fin(1))
    bank.env.run()
    assert bank.answers == []
    assert bank.bank_events()[-1] == (LATENCY + PROCESSING, "bank.response_withheld",
                                      {"code": "00", "mti": "0200", "stan": "000001"})
    assert bank.balance() == OPENING - 1250


def test_bank_timeout_count_delays_only_that_many_requests() -> None:
    """With ``count`` only the first requests weighed while it lasts are late."""
    bank = Bank()
    bank.host.apply(fault(fault="bank.timeout", delay_s=10.0, count=1))
    bank.send_at(0.0, fin(1))
    bank.send_at(1.0, fin(2))
    bank.env.run()
    assert sorted(bank.codes()) == [(1.0 + TRIP, "0210", "00"), (TRIP + 10.0, "0210", "00")]


def test_undecodable_request_with_an_mti_is_answered_30_and_posts_nothing() -> None:
    """A request whose amount is not numeric is answered 30, echoing the MTI and STAN
    that did decode, and moves no money."""
    good = fin(9)
    start, end = field_spans(good)["4"]
    bad = good[:start] + b"0000000ABCDE" + good[end:]
    bank = Bank()
    bank.send_at(0.0, bad)
    bank.env.run()
    label = {"mti": "0200", "stan": "000009"}
    assert [(name, fields) for _, name, fields in bank.bank_events()] == [
        ("bank.request_received", label),
        ("bank.response_sent", {"code": "30", "mti": "0210", "stan": "000009"})]
    _, answer = bank.answers[0]
    assert isinstance(answer, bytes)
    assert {k: decode(answer).get(k) for k in ("t", "11", "39", "41")} == {
        "t": "0210", "11": "000009", "39": "30", "41": TID}
    assert bank.balance() == OPENING


def test_frame_without_an_mti_gets_no_answer_and_the_host_serves_on() -> None:
    """A frame with no readable MTI is traced as received and answered with nothing;
    the next request is served."""
    bank = Bank()
    bank.send_at(0.0, b"\x00\x02zz")
    bank.send_at(1.0, fin(1))
    bank.env.run()
    assert bank.bank_events()[0] == (LATENCY + PROCESSING, "bank.request_received",
                                     {"mti": None, "stan": None})
    assert bank.codes() == [(1.0 + TRIP, "0210", "00")]

"""The terminal's shell on its own: recording fakes of its ports (a host behind a fake
transport answering with real ISO 8583 frames, a printer, a card reader) and a trace."""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import datetime
from typing import Any

import pytest
import simpy

from devices.fault import ActiveFault
from devices.iso8583.message import Fields, decode, encode, original_data, response_mti
from devices.ports import Refused
from devices.simkit.queues import Mailbox, Take
from emulator.firmware.messages import CardInfo, Identity
from emulator.firmware.terminal import Terminal
from emulator.scenario.model import StepSpec
from emulator.scenario.profiles import make_policy

KEY = b"terminal-test-mac-key"
TID = "TERM0001"
START = datetime(2026, 11, 22, 9, 0, 0)
READY, OFFLINE = 0x12, 0x1A  # DLE EOT 1: online / offline (cover open, jam)

Reply = tuple[float, bytes | Refused]
Answer = Callable[[Fields, bytes], list[Reply]]


class Trace:
    """A trace that keeps (time, name, fields)."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.events: list[tuple[float, str, dict[str, Any]]] = []

    def emit(self, name: str, **fields: Any) -> None:
        self.events.append((self.env.now, name, fields))

    def named(self, name: str) -> list[dict[str, Any]]:
        return [fields for _, event, fields in self.events if event == name]

    def names(self) -> list[str]:
        return [name for _, name, _ in self.events]


class Host:
    """A transport whose far end is ``answer``: what it replies to each request, when."""

    def __init__(self, env: simpy.Environment, answer: Answer) -> None:
        self.env = env
        self.answer = answer
        self.inbox = Mailbox(env)
        self.sent: list[Fields] = []

    def send(self, frame: bytes | Refused, **about: Any) -> None:
        assert isinstance(frame, bytes)
        request = decode(frame)
        self.sent.append(request)
        for delay, reply in self.answer(request, frame):
            self.env.timeout(delay).callbacks.append(
                lambda _event, reply=reply: self.inbox.put(reply))

    def receive(self) -> Take:
        return self.inbox.get()

    def discard(self) -> None:
        self.inbox.items.clear()

    def mtis(self) -> list[str | bytes]:
        return [request["t"] for request in self.sent]


class Printer:
    """Prints in half a second; ``ok`` and ``first`` say whether it works."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.ok = True
        self.first: int | None = READY
        self.jobs: list[dict[str, Any]] = []

    def print_job(self, data: bytes, **about: Any) -> simpy.Process:
        self.jobs.append({"data": data, **about})
        return self.env.process(self._job())

    def _job(self) -> Generator[simpy.Event, Any, bool]:
        yield self.env.timeout(0.5)
        return self.ok

    def status(self, n: int) -> int | None:
        return self.first if n == 1 else READY

    def recover_at(self, t: float) -> None:
        def recover(_event: simpy.Event) -> None:
            self.ok, self.first = True, READY
        self.env.timeout(t - self.env.now).callbacks.append(recover)

    def apply(self, fault: ActiveFault) -> None: ...
    def clear(self, fault: ActiveFault) -> None: ...


class Reader:
    """Reads a card in a second; ``pull`` takes it out right after the read."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.card: str | None = None
        self.pull = False
        self.ejected: list[str] = []

    @property
    def card_present(self) -> bool:
        return self.card is not None

    def read(self, card: str, pin: bool) -> Generator[simpy.Event, Any, bool]:
        self.card = card
        yield self.env.timeout(1.0)
        if self.pull:
            self.card = None
        return True

    def eject(self) -> None:
        if self.card is not None:
            self.ejected.append(self.card)
            self.card = None

    def power_off(self) -> None:
        self.card = None

    def apply(self, fault: ActiveFault) -> None: ...
    def clear(self, fault: ActiveFault) -> None: ...


class Unit:
    """A terminal with its fakes; ``run`` submits steps at t = 0 and runs until ``until``."""

    def __init__(self, answer: Answer, profile: str = "robust", **knobs: Any) -> None:
        self.env = env = simpy.Environment()
        self.trace = Trace(env)
        self.host = Host(env, answer)
        self.printer = Printer(env)
        self.reader = Reader(env)
        self.terminal = Terminal(
            env, self.trace, self.host, self.reader, self.printer, make_policy(profile, knobs),
            Identity("Shop", "M00000000000001", TID), START,
            {"c": CardInfo("4111111111111111", "2712")}, KEY,
        )

    def run(self, *steps: StepSpec, until: float = 1000.0) -> None:
        for step in steps:
            self.terminal.submit(step)
        self.env.run(until=until)

    def at(self, t: float, action: Callable[[], None]) -> None:
        self.env.timeout(t - self.env.now).callbacks.append(lambda _event: action())

    def results(self) -> dict[str, str]:
        done = self.trace.named("terminal.txn_done")
        return {fields["step"]: fields["result"] for fields in done}


def sale(step: str = "s1", amount_minor: int = 1000) -> StepSpec:
    return StepSpec(id=step, at_s=0, do="sale", card="c", amount_minor=amount_minor)


def refund(step: str = "r1", amount_minor: int = 1000) -> StepSpec:
    return StepSpec(id=step, at_s=0, do="refund", card="c", amount_minor=amount_minor)


def reply(request: Fields, key: bytes = KEY, **change: str) -> bytes:
    """The host's answer to ``request`` (code 00, the amount echoed), with ``change``."""
    mti = response_mti(str(request["t"]))
    assert mti is not None
    fields: Fields = {"t": mti, "11": request["11"], "39": "00", "41": request["41"]}
    if "4" in request:
        fields["4"] = request["4"]
    if mti == "0210":
        fields.update({"37": "000000000042", "38": "AUTH01"})
    fields.update(change)
    return encode(fields, key)


def approve_all(request: Fields, _frame: bytes) -> list[Reply]:
    return [(0.2, reply(request))]


def answer_only(*mtis: str) -> Answer:
    """A host that approves the requests of ``mtis`` and loses every other answer."""
    def answer(request: Fields, _frame: bytes) -> list[Reply]:
        return [(0.2, reply(request))] if request["t"] in mtis else []
    return answer


def power_loss() -> ActiveFault:
    return ActiveFault("terminal.power_loss")


# -- a sale that goes through ----------------------------------------------------------


def test_an_approved_sale_is_printed_then_shown() -> None:
    unit = Unit(approve_all)
    unit.run(sale())
    assert unit.host.mtis() == ["0200"]
    assert [(job["receipt_of"], job["slip"]) for job in unit.printer.jobs] == [("s1", "approved")]
    assert b"APPROVED" in unit.printer.jobs[0]["data"]
    [done] = unit.trace.named("terminal.txn_done")
    assert done == {"step": "s1", "do": "sale", "result": "approved", "code": "00",
                    "amount_minor": 1000, "recovered": False}
    record = unit.terminal.journal.txn("s1")
    assert record is not None
    assert (record.state, record.rrn, record.auth) == ("completed", "000000000042", "AUTH01")
    assert unit.terminal.journal.queue() == []
    assert unit.reader.ejected == ["c"]
    assert unit.terminal.unresolved() == []


def test_each_request_is_traced_once_before_it_leaves() -> None:
    unit = Unit(approve_all)
    unit.run(sale(), refund(), StepSpec(id="x1", at_s=0, do="settle"))
    sent = unit.trace.named("terminal.request_sent")
    assert [(f["step"], f["mti"]) for f in sent] == [("s1", "0200"), ("r1", "0200"),
                                                     ("x1", "0500")]
    assert [f["stan"] for f in sent] == [r["11"] for r in unit.host.sent]
    assert sent[2] == {"step": "x1", "mti": "0500", "stan": "000003",
                       "f7": unit.host.sent[2]["7"], "debits": 1, "credits": 1,
                       "debits_minor": 1000, "credits_minor": 1000}
    assert unit.results() == {"s1": "approved", "r1": "refunded", "x1": "settled"}


# -- no answer, or not the one waited for -----------------------------------------------


def test_a_lost_response_is_repeated_then_reversed_by_the_robust_firmware() -> None:
    unit = Unit(answer_only("0400"))
    unit.run(sale())
    first, repeat, reversal = unit.host.sent
    assert (first["t"], repeat["t"], reversal["t"]) == ("0200", "0201", "0400")
    assert repeat["11"] == first["11"]
    assert reversal["90"] == original_data("0200", str(first["11"]), str(first["7"]))
    assert reversal["39"] == "68"
    assert unit.trace.named("terminal.txn_done")[-1]["reason"] == "timeout"
    assert unit.results() == {"s1": "failed"}
    record = unit.terminal.journal.txn("s1")
    assert record is not None
    assert record.state == "reversed"
    assert unit.terminal.journal.queue() == []
    assert unit.printer.jobs == []


def test_a_lost_response_is_sent_anew_and_not_reversed_by_the_naive_firmware() -> None:
    unit = Unit(answer_only(), profile="naive")
    unit.run(sale())
    assert unit.host.mtis() == ["0200", "0200"]
    assert unit.host.sent[0]["11"] != unit.host.sent[1]["11"]
    assert "terminal.retry_as_new" in unit.trace.names()
    assert unit.results() == {"s1": "failed"}
    record = unit.terminal.journal.txn("s1")
    assert record is not None
    assert record.state == "declined"
    assert unit.terminal.journal.queue() == []


def test_a_reversal_never_answered_is_repeated_and_stays_owed() -> None:
    unit = Unit(answer_only())
    unit.run(sale(), until=200)
    assert unit.host.mtis() == ["0200", "0201", "0400", "0401", "0401"]
    assert unit.terminal.unresolved() == [("s1", "reversal")]
    assert "s1" in unit.terminal.open_steps()


def stray_then_answer(request: Fields, _frame: bytes) -> list[Reply]:
    """A late answer to another request (code 05), then the real one (approved)."""
    stray = reply(request, **{"11": "999999", "39": "05"})
    return [(0.1, stray), (0.2, reply(request))]


def test_an_unmatched_response_is_ignored_by_the_robust_firmware() -> None:
    unit = Unit(stray_then_answer)
    unit.run(sale())
    assert unit.trace.named("terminal.response_ignored") == [{"stan": "999999"}]
    assert unit.results() == {"s1": "approved"}


def test_an_unmatched_response_is_taken_by_the_naive_firmware() -> None:
    unit = Unit(stray_then_answer, profile="naive")
    unit.run(sale())
    assert unit.trace.named("terminal.response_ignored") == []
    assert unit.results() == {"s1": "declined"}
    assert unit.trace.named("terminal.txn_done")[0]["code"] == "05"


def forged(request: Fields, _frame: bytes) -> list[Reply]:
    if request["t"] in ("0200", "0201"):
        return [(0.2, reply(request, key=b"not-the-terminal-key"))]
    return [(0.2, reply(request))]


def test_a_response_whose_mac_fails_is_reversed_as_invalid() -> None:
    unit = Unit(forged)
    unit.run(sale())
    assert unit.trace.named("terminal.response_invalid")[0]["field"] == "64"
    assert unit.host.mtis() == ["0200", "0201", "0400"]
    assert unit.host.sent[2]["39"] == "06"
    assert unit.results() == {"s1": "failed"}


def test_a_response_whose_mac_fails_is_trusted_without_mac_checks() -> None:
    unit = Unit(forged, verify_mac=False)
    unit.run(sale())
    assert unit.results() == {"s1": "approved"}


# -- approvals that do not stand as they are ---------------------------------------------


def approve_600(request: Fields, _frame: bytes, code: str = "00") -> list[Reply]:
    if request["t"] == "0200":
        return [(0.2, reply(request, **{"4": "000000000600", "39": code}))]
    return [(0.2, reply(request))]


def test_a_full_approval_of_another_amount_is_reversed() -> None:
    unit = Unit(approve_600)
    unit.run(sale())
    assert unit.trace.named("terminal.amount_mismatch") == [
        {"step": "s1", "requested_minor": 1000, "approved_minor": 600}]
    assert unit.host.mtis() == ["0200", "0400"]
    assert unit.host.sent[1]["39"] == "06"
    assert unit.trace.named("terminal.txn_done")[-1]["reason"] == "amount changed"


def test_a_changed_amount_is_shown_as_requested_without_the_amount_check() -> None:
    unit = Unit(approve_600, check_response_amount=False)
    unit.run(sale())
    assert unit.trace.named("terminal.txn_done")[-1]["amount_minor"] == 1000
    assert unit.host.mtis() == ["0200"]


def test_a_partial_approval_shows_and_prints_the_approved_amount() -> None:
    unit = Unit(lambda request, frame: approve_600(request, frame, code="10"))
    unit.run(sale())
    done = unit.trace.named("terminal.txn_done")[-1]
    assert (done["result"], done["amount_minor"]) == ("approved", 600)
    assert b"PARTIAL APPROVAL" in unit.printer.jobs[0]["data"]
    assert b"6.00" in unit.printer.jobs[0]["data"]


@pytest.mark.parametrize(("profile", "reason", "sent"), [
    ("robust", "17", ["0200", "0400"]), ("naive", None, ["0200"]),
])
def test_a_card_pulled_out_after_the_request_is_reversed_by_the_robust_firmware(
    profile: str, reason: str | None, sent: list[str],
) -> None:
    unit = Unit(approve_all, profile=profile)
    unit.reader.pull = True
    unit.run(sale())
    assert unit.host.mtis() == sent
    if reason is not None:
        assert unit.host.sent[1]["39"] == reason
    assert unit.trace.named("terminal.txn_done") == [
        {"step": "s1", "do": "sale", "result": "cancelled", "reason": "card removed"}]


# -- receipts ---------------------------------------------------------------------------


def jam(unit: Unit, until: float) -> None:
    unit.printer.ok, unit.printer.first = False, OFFLINE
    unit.printer.recover_at(until)


def test_a_jammed_receipt_is_held_and_printed_once_the_printer_recovers() -> None:
    unit = Unit(approve_all)
    jam(unit, 30.0)
    held: list[tuple[str, str]] = []
    unit.at(20.0, lambda: held.extend(unit.terminal.unresolved()))
    unit.run(sale())
    assert held == [("s1", "reversal"), ("s1", "held_receipt")]  # armed while held
    assert [job["receipt_of"] for job in unit.printer.jobs] == ["s1", "s1"]
    assert "terminal.receipt_held" in unit.trace.names()
    assert unit.results() == {"s1": "approved"}
    assert unit.host.mtis() == ["0200"]
    assert unit.terminal.unresolved() == []


def test_a_receipt_held_too_long_undoes_the_sale() -> None:
    unit = Unit(approve_all, receipt_hold_s=20.0)
    jam(unit, 100.0)
    unit.run(sale())
    assert unit.host.mtis() == ["0200", "0400"]
    assert unit.host.sent[1]["39"] == "21"
    assert unit.trace.named("terminal.txn_done")[-1] == {
        "step": "s1", "do": "sale", "result": "cancelled", "reason": "receipt not printed",
        "recovered": False}


@pytest.mark.parametrize(("on_failure", "sent", "result"), [
    ("undo", ["0200", "0400"], "cancelled"), ("ignore", ["0200"], "approved"),
])
def test_a_jammed_receipt_is_undone_at_once_or_ignored_per_policy(
    on_failure: str, sent: list[str], result: str,
) -> None:
    unit = Unit(approve_all, on_receipt_failure=on_failure)
    jam(unit, 30.0)
    unit.run(sale())
    assert unit.host.mtis() == sent
    assert len(unit.printer.jobs) == 1
    assert unit.results() == {"s1": result}


def test_without_print_confirmation_a_jam_goes_unnoticed() -> None:
    unit = Unit(approve_all, confirm_print=False)
    jam(unit, 30.0)
    unit.run(sale())
    assert unit.results() == {"s1": "approved"}
    assert "terminal.receipt_held" not in unit.trace.names()


def test_a_reprint_copies_the_last_receipt_or_fails_without_one() -> None:
    unit = Unit(approve_all)
    reprint = StepSpec(id="p1", at_s=0, do="reprint")
    unit.run(StepSpec(id="p0", at_s=0, do="reprint"), sale(), reprint)
    assert unit.results() == {"p0": "reprint_failed", "s1": "approved", "p1": "reprinted"}
    copy = unit.printer.jobs[-1]
    assert (copy["step"], copy["receipt_of"], copy["slip"]) == ("p1", "s1", "copy")
    assert b"SALE - COPY" in copy["data"]


# -- power loss ---------------------------------------------------------------------------


@pytest.mark.parametrize(("knobs", "after_boot"), [
    ({}, ["0400"]), ({"persist_reversal_first": False}, []),
])
def test_a_power_loss_with_an_armed_reversal_sends_it_at_boot_if_journalled(
    knobs: dict[str, Any], after_boot: list[str],
) -> None:
    unit = Unit(answer_only("0400"), **knobs)
    unit.at(5.0, lambda: unit.terminal.apply(power_loss()))
    unit.at(50.0, lambda: unit.terminal.clear(power_loss()))
    unit.run(sale())
    assert unit.host.mtis() == ["0200", *after_boot]
    assert unit.terminal.powered
    assert "terminal.rebooted" in unit.trace.names()
    if after_boot:
        assert unit.host.sent[1]["39"] == "68"
        assert unit.trace.named("terminal.reversal_done")[0]["step"] == "s1"
    assert unit.terminal.journal.queue() == []


def test_an_approval_whose_receipt_was_not_out_is_finished_at_boot() -> None:
    unit = Unit(approve_all)
    unit.at(1.4, lambda: unit.terminal.apply(power_loss()))  # during the print
    unit.at(10.0, lambda: unit.terminal.clear(power_loss()))
    unit.run(sale())
    assert [job["receipt_of"] for job in unit.printer.jobs] == ["s1", "s1"]
    assert unit.trace.named("terminal.txn_done") == [
        {"step": "s1", "do": "sale", "result": "approved", "code": "00",
         "amount_minor": 1000, "recovered": True}]


# -- refunds, offline sales, voids -------------------------------------------------------


def uncertain_refund(request: Fields, _frame: bytes) -> list[Reply]:
    if request["t"] == "0200" and request["11"] == "000001":
        return [(0.2, reply(request, **{"39": "96"}))]
    if request["t"] == "0600":
        return [(0.2, reply(request, **{"4": "000000001000"}))]
    return [(0.2, reply(request))]


def test_an_uncertain_refund_asks_the_host_its_status() -> None:
    unit = Unit(uncertain_refund)
    unit.run(refund())
    assert unit.host.mtis() == ["0200", "0600"]
    assert unit.host.sent[1]["90"] == original_data("0200", "000001",
                                                    str(unit.host.sent[0]["7"]))
    assert unit.results() == {"r1": "refunded"}


def test_an_uncertain_refund_is_sent_again_as_new_by_the_naive_firmware() -> None:
    unit = Unit(uncertain_refund, profile="naive")
    unit.run(refund())
    assert unit.host.mtis() == ["0200", "0200"]
    assert unit.host.sent[1]["11"] == "000002"
    assert unit.results() == {"r1": "refunded"}


def refuse_sales(request: Fields, frame: bytes) -> list[Reply]:
    if request["t"] == "0200":
        return [(0.1, Refused(frame))]
    return [(0.2, reply(request))]


def test_a_refused_sale_below_the_floor_is_approved_offline_and_advised_later() -> None:
    unit = Unit(refuse_sales, offline_floor=1000)
    unit.run(sale())
    assert unit.host.mtis() == ["0200", "0220"]
    assert unit.host.sent[1]["11"] == unit.host.sent[0]["11"]
    assert b"APPROVED OFFLINE" in unit.printer.jobs[0]["data"]
    assert unit.trace.named("terminal.txn_done")[0]["code"] == "Y1"
    assert unit.trace.named("terminal.advice_done")[0]["step"] == "s1"
    assert unit.terminal.journal.queue() == []


def test_a_refused_sale_above_the_floor_is_declined_and_reversed_in_case() -> None:
    unit = Unit(refuse_sales, offline_floor=999)
    unit.run(sale())
    assert unit.host.mtis() == ["0200", "0400"]  # reverse_refused: a copy may get through
    assert unit.host.sent[1]["90"][4:10] == unit.host.sent[0]["11"]
    assert unit.trace.named("terminal.txn_done") == [
        {"step": "s1", "do": "sale", "result": "declined", "code": "91",
         "reason": "host refused"}]


def refuse_all(_request: Fields, frame: bytes) -> list[Reply]:
    return [(0.1, Refused(frame))]


def test_a_reversal_owed_for_a_refusal_holds_up_no_new_transaction() -> None:
    unit = Unit(refuse_all, offline_floor=999)
    unit.run(refund(), sale("s2", amount_minor=500))
    assert unit.results() == {"r1": "refund_failed", "s2": "approved"}  # offline, not refused
    assert [e.kind for e in unit.terminal.journal.pending()] == ["reversal", "advice"]
    assert unit.host.mtis()[:3] == ["0200", "0400", "0200"]  # tried first, then the sale


def refuse_unsent(_request: Fields, frame: bytes) -> list[Reply]:
    return [(0.1, Refused(frame, left=False))]  # no connection: the frame never left


def test_a_request_that_never_left_is_not_reversed() -> None:
    unit = Unit(refuse_unsent, offline_floor=999)
    unit.run(refund(), sale())
    assert unit.host.mtis() == ["0200", "0200"]
    assert unit.results() == {"r1": "refund_failed", "s1": "declined"}
    assert unit.terminal.journal.pending() == []


def test_without_reverse_refused_a_refused_sale_is_only_declined() -> None:
    unit = Unit(refuse_sales, offline_floor=999, reverse_refused=False)
    unit.run(sale())
    assert unit.host.mtis() == ["0200"]
    assert unit.results() == {"s1": "declined"}


def test_a_void_reverses_the_sale_it_names() -> None:
    unit = Unit(approve_all)
    unit.run(sale(), StepSpec(id="v1", at_s=0, do="void", target="s1"),
             StepSpec(id="v2", at_s=0, do="void", target="s1"))
    assert unit.host.mtis() == ["0200", "0400"]
    assert unit.host.sent[1]["39"] == "17"
    assert unit.results() == {"s1": "approved", "v1": "voided", "v2": "void_failed"}
    record = unit.terminal.journal.txn("s1")
    assert record is not None
    assert record.state == "voided"

"""StatusFirst: a small terminal firmware written against posemu's Firmware interface.

What it does that posemu's own terminal cannot be set to do: when a sale gets no answer
(or an answer that does not settle it: 91, 96), it does not reverse it. It asks the host
what became of it (a 0600 status query naming the sale in field 90): if the sale stands,
it completes it and prints the receipt; if the host does not know it, it shows it
declined. If the status query gets no answer either,
it prints a "CHECK WITH BANK" slip for the cashier and shows the sale failed, trusting
the cashier to look it up later. That last choice is its weakness: a bank that took the
money and stays silent leaves a customer charged for a sale shown unpaid.

Use it in a scenario with ``[terminal] firmware = "status_first:StatusFirst"`` (posemu
also looks for the module next to the scenario file), or ``--firmware
status_first:StatusFirst`` on the command line.

Everything it knows comes from the kit posemu gives it (docs/firmware.md): the transport,
card reader, printer, journal, clock, trace, identity, cards, MAC key and settings.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from devices.iso8583.message import decode, encode, original_data
from devices.ports import Refused
from emulator.firmware.api import Kit, Setting

Gen = Generator[simpy.Event, Any, Any]

ESC_INIT, CUT = b"\x1b@", b"\x1dV\x00"
DECLINED = "declined"
UNSURE = ("91", "96")  # the host could not say: ask it what became of the sale


class StatusFirst:
    """The firmware: one object per terminal, built by posemu from its kit."""

    settings = {  # noqa: RUF012  (the interface reads a plain mapping)
        "response_timeout_s": Setting("seconds", 30.0, "seconds to wait for any answer"),
        "status_timeout_s": Setting("seconds", 15.0, "seconds to wait for a status answer"),
        "check_slip": Setting("bool", True, 'print a "CHECK WITH BANK" slip when unsure'),
    }

    def __init__(self, kit: Kit) -> None:
        self.kit = kit
        self.conf = dict(kit.settings)
        disk = kit.journal.durable
        disk.setdefault("stan", 0)
        disk.setdefault("sales", {})  # step -> what the terminal knows of it
        disk.setdefault("receipts", {})  # step -> receipt text (for reprints)

    # -- the interface ----------------------------------------------------------------

    def run(self, step: Any) -> Gen:
        """One operator step; shows exactly one outcome."""
        if step.do in ("sale", "refund"):
            yield from self._money(step)
        elif step.do == "reprint":
            yield from self._reprint(step)
        elif step.do == "void":
            yield from self._void(step)
        else:  # settle: this firmware leaves the batch to the back office
            self._show(step.id, "settle", "settle_failed", reason="not supported")

    def boot(self) -> Gen:
        """After a power loss: a sale left in flight is looked up with a status query, an
        approved one whose outcome was not shown yet is completed."""
        for name, sale in list(self.kit.journal.durable["sales"].items()):
            if sale["state"] == "sent":
                yield from self._settle_unknown(name, sale, recovered=True)
            elif sale["state"] == "approved" and not sale.get("shown"):
                yield from self._finish(name, sale, recovered=True)

    def owed(self) -> list[tuple[str, str]]:
        """What it still means to send the host: a status query for a sale left in flight
        (power lost and never back). A sale shown "check with bank" is the cashier's now."""
        return [(name, "status_query") for name, sale in
                self.kit.journal.durable["sales"].items() if sale["state"] == "sent"]

    # -- sale and refund -------------------------------------------------------------

    def _money(self, step: Any) -> Gen:
        kit = self.kit
        read = yield from kit.reader.read(step.card, pin=step.do == "sale")
        if not read:
            result = "cancelled" if step.do == "sale" else "refund_failed"
            self._show(step.id, step.do, result, reason="card read error")
            return
        card = kit.cards[step.card]
        sale = {"do": step.do, "card": step.card, "amount": step.amount_minor,
                "stan": self._stan(), "f7": kit.clock.f7(), "state": "sent"}
        kit.journal.durable["sales"][step.id] = sale  # written before the request leaves
        now = kit.clock.now()
        fields = {
            "t": "0200", "2": card.pan, "3": "000000" if step.do == "sale" else "200000",
            "4": f"{step.amount_minor:012d}", "7": sale["f7"], "11": sale["stan"],
            "12": now.strftime("%H%M%S"), "13": now.strftime("%m%d"), "14": card.expiry,
            "25": "00", "41": kit.identity.terminal_id, "42": kit.identity.merchant_id,
            "49": "978",
        }
        kit.trace.emit("terminal.request_sent", step=step.id, mti="0200", stan=sale["stan"],
                       f7=sale["f7"], amount_minor=step.amount_minor)
        answer = yield from self._ask(fields, "0210", sale["stan"],
                                      self.conf["response_timeout_s"])
        if answer is None or (isinstance(answer, dict) and answer.get("39") in UNSURE):
            if answer is None:
                kit.trace.emit("terminal.timeout", step=step.id, stan=sale["stan"])
            yield from self._settle_unknown(step.id, sale)
        elif isinstance(answer, Refused):
            sale["state"] = DECLINED
            self._show(step.id, step.do, "declined" if step.do == "sale" else "refund_failed",
                       code="91", reason="host refused")
        elif answer.get("39") in ("00", "10"):  # 10: approved for the amount in field 4
            yield from self._complete(step.id, sale, answer)
        else:
            sale["state"] = DECLINED
            yield from self._print(step.id, step.id, DECLINED,
                                   self._receipt(step.id, sale, "DECLINED"))
            self._show(step.id, step.do, "declined" if step.do == "sale" else "refund_failed",
                       code=answer.get("39"))
        kit.reader.eject()

    def _settle_unknown(self, name: str, sale: dict[str, Any], recovered: bool = False) -> Gen:
        """No answer: ask the host whether the transaction stands before deciding."""
        kit = self.kit
        stan = self._stan()
        fields = {"t": "0600", "7": kit.clock.f7(), "11": stan,
                  "41": kit.identity.terminal_id, "42": kit.identity.merchant_id,
                  "90": original_data("0200", sale["stan"], sale["f7"])}
        kit.trace.emit("terminal.note", step=name, what="status_query", stan=stan)
        answer = yield from self._ask(fields, "0610", stan, self.conf["status_timeout_s"])
        failed = "failed" if sale["do"] == "sale" else "refund_failed"
        if isinstance(answer, dict) and answer.get("39") == "00":
            yield from self._complete(name, sale, answer, recovered=recovered)
        elif isinstance(answer, dict):  # the host does not know it: it never moved money
            sale["state"] = DECLINED
            self._show(name, sale["do"], "declined" if sale["do"] == "sale" else failed,
                       code=answer.get("39"), recovered=recovered)
        else:  # the weakness: no reversal, only a slip for the cashier
            sale["state"] = "unknown"
            if self.conf["check_slip"]:
                yield from self._print(name, name, "notice", self._receipt(
                    name, sale, "NO ANSWER - CHECK WITH BANK"))
            self._show(name, sale["do"], failed, reason="check with bank",
                       recovered=recovered)

    def _complete(self, name: str, sale: dict[str, Any], answer: dict[str, Any],
                  recovered: bool = False) -> Gen:
        sale["state"] = "approved"
        sale["code"] = answer.get("39", "00")
        sale["approved"] = int(answer.get("4") or sale["amount"])
        yield from self._finish(name, sale, recovered)

    def _finish(self, name: str, sale: dict[str, Any], recovered: bool = False) -> Gen:
        """Print the approved receipt and show the approval."""
        text = self._receipt(name, sale, "APPROVED")
        self.kit.journal.durable["receipts"][name] = text
        yield from self._print(name, name, "approved", text)
        sale["shown"] = True
        self._show(name, sale["do"], "approved" if sale["do"] == "sale" else "refunded",
                   code=sale["code"], amount_minor=sale["approved"], recovered=recovered)

    # -- void and reprint ----------------------------------------------------------------

    def _void(self, step: Any) -> Gen:
        kit = self.kit
        sale = kit.journal.durable["sales"].get(step.target)
        if sale is None or sale["state"] != "approved":
            self._show(step.id, "void", "void_failed", reason="nothing to void",
                       target=step.target)
            return
        stan = self._stan()
        fields = {"t": "0400", "3": "000000", "4": f"{sale['approved']:012d}",
                  "7": kit.clock.f7(), "11": stan, "39": "17",
                  "41": kit.identity.terminal_id, "42": kit.identity.merchant_id,
                  "90": original_data("0200", sale["stan"], sale["f7"])}
        kit.trace.emit("terminal.reversal_sent", step=step.id, mti="0400", stan=stan)
        answer = yield from self._ask(fields, "0410", stan, self.conf["response_timeout_s"])
        if isinstance(answer, dict) and answer.get("39") in ("00", "25"):
            sale["state"] = "voided"
            self._show(step.id, "void", "voided", code=answer["39"], target=step.target)
        else:
            self._show(step.id, "void", "void_failed", target=step.target)

    def _reprint(self, step: Any) -> Gen:
        receipts = self.kit.journal.durable["receipts"]
        of = step.target or next(reversed(receipts), None)
        if of not in receipts:
            self._show(step.id, "reprint", "reprint_failed", reason="nothing to reprint")
            return
        done = yield from self._print(step.id, of, "copy", "COPY\n" + receipts[of])
        self._show(step.id, "reprint", "reprinted" if done else "reprint_failed", target=of)

    # -- building blocks -------------------------------------------------------------------

    def _ask(self, fields: dict[str, str], want_mti: str, stan: str,
             timeout_s: float) -> Generator[simpy.Event, Any, dict[str, Any] | Refused | None]:
        """Send a request; its matching response, Refused, or None when none came in time."""
        kit = self.kit
        frame = encode(fields, kit.mac_key)
        kit.transport.send(frame, mti=fields["t"], stan=stan)
        deadline = kit.env.now + timeout_s
        while kit.env.now < deadline:
            take = kit.transport.receive()
            yield simpy.AnyOf(kit.env, [take, kit.env.timeout(deadline - kit.env.now)])
            if not take.triggered:
                take.cancel()
                return None
            item = take.value
            if isinstance(item, Refused):
                if item.frame == frame:
                    return item
                continue
            try:
                answer = decode(item)
            except ValueError:  # a garbled frame: wait for a better one
                continue
            kit.trace.emit("terminal.response_received", mti=answer.get("t"),
                           stan=answer.get("11"), code=answer.get("39"))
            if answer.get("t") == want_mti and answer.get("11") == stan:
                return answer
        return None

    def _print(self, step: str, of: str, slip: str, text: str) -> Generator[simpy.Event, Any,
                                                                              bool]:
        data = ESC_INIT + text.encode("ascii", "replace") + b"\n\n\n" + CUT
        done = yield self.kit.printer.print_job(data, step=step, receipt_of=of, slip=slip)
        return bool(done)

    def _receipt(self, name: str, sale: dict[str, Any], result: str) -> str:
        kit = self.kit
        pan = kit.cards[sale["card"]].pan
        minor = sale.get("approved", sale["amount"])
        amount = f"{minor // 100}.{minor % 100:02d} EUR"
        title = "SALE" if sale["do"] == "sale" else "REFUND"
        return "\n".join((kit.identity.merchant, f"TID {kit.identity.terminal_id}",
                          kit.clock.now().isoformat(" ", "seconds"), title,
                          f"CARD **** {pan[-4:]}", amount, result, f"STAN {sale['stan']}"))

    def _show(self, step: str, do: str, result: str, **fields: Any) -> None:
        self.kit.trace.emit("terminal.txn_done", step=step, do=do, result=result, **fields)

    def _stan(self) -> str:
        disk = self.kit.journal.durable
        disk["stan"] = disk["stan"] % 999999 + 1
        return f"{disk['stan']:06d}"

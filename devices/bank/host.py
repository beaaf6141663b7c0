"""The acquirer host as a simpy component: the pure :class:`Acquirer` behind a transport.

The shell owns time and faults: it takes frames off its transport (the bank's end
of the simulated link), waits the
processing time, applies ``bank.down`` (refuse), ``bank.respond`` (forced
code) and ``bank.timeout`` (answer late or never), and sends the core's
response back.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from datetime import datetime, timedelta
from typing import Any

import simpy

from devices.bank.acquirer import Acquirer, Forced
from devices.errors import MessageError
from devices.fault import ActiveFault, FaultBoard
from devices.iso8583.message import decode
from devices.ports import Refused, TraceSink, Transport
from devices.simkit.steps import start_now

_FINANCIAL = ("0200",)
"""Requests that ``bank.respond`` answers: new sales and refunds. Not their repeats
(the host answers a repeat from its duplicate check) nor advices (an offline approval
already happened)."""


class Host:
    """Serves requests from its transport with an :class:`Acquirer` core."""

    def __init__(
        self, env: simpy.Environment, trace: TraceSink, transport: Transport, core: Acquirer,
        start: datetime, processing_s: float = 0.2,
        *, traces: Mapping[str, TraceSink] | None = None,
    ) -> None:
        self.env = env
        self.trace = trace
        self.traces = traces if traces is not None else {}
        """Where to trace money moved for another terminal (by terminal id), in a fleet:
        a request whose field 41 was mangled on the way into another terminal's id,
        with MACs unchecked, moves that terminal's money."""
        self.transport = transport
        self.core = core
        self.start = start
        self.processing_s = processing_s
        self.faults = FaultBoard()
        self.weighing = 0
        """Requests taken off the link and not yet weighed (processing time)."""
        self.serve(transport)

    def apply(self, fault: ActiveFault) -> None:
        self.faults.add(fault)

    def clear(self, fault: ActiveFault) -> None:
        self.faults.remove(fault)

    def _trace_for(self, terminal_id: str) -> TraceSink:
        """The trace of the terminal whose money a posting moved (this one's by default)."""
        return self.traces.get(terminal_id, self.trace)

    def serve(self, transport: Transport) -> simpy.Process:
        """Serve requests arriving on ``transport`` too, each answered on it (a live
        acquirer serves each connection so); it stops when ``None`` arrives (closed)."""
        return self.env.process(self._serve(transport))

    def _serve(self, transport: Transport) -> Generator[simpy.Event, Any, None]:
        while True:
            frame = yield transport.receive()
            if frame is None:
                return
            if isinstance(frame, bytes):
                self.take(frame, transport)

    def take(self, frame: bytes, transport: Transport, *, at_once: bool = False) -> None:
        """One request from ``transport``: refused while ``bank.down``, else answered on it
        after the processing time. ``at_once`` (a live connection's frame, handed over
        without a link): with no processing time, handled now, in the caller's step, rather
        than by a process that starts and waits 0 s first."""
        if self.faults.has("bank.down"):
            self.trace.emit("bank.refused")
            transport.send(Refused(frame))
            return
        self.weighing += 1
        if at_once and not self.processing_s:
            start_now(self.env, self._answer(frame, transport))
        else:
            self.env.process(self._handle(frame, transport))

    def _handle(self, frame: bytes, transport: Transport) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(self.processing_s)
        yield from self._answer(frame, transport)

    def _answer(self, frame: bytes, transport: Transport) -> Generator[simpy.Event, Any, None]:
        try:
            fields: dict[str, Any] = decode(frame)
        except MessageError as exc:
            fields = dict(exc.partial)
        label = {"mti": fields.get("t"), "stan": fields.get("11")}
        self.trace.emit("bank.request_received", **label)
        self.weighing -= 1
        if self.faults.has("bank.down"):
            self.trace.emit("bank.refused", **label)
            transport.send(Refused(frame), **label)
            return
        forced = None
        rule = self.faults.first("bank.respond")
        if rule is not None and fields.get("t") in _FINANCIAL:
            self.faults.consume(rule)
            amount = rule.param("amount")
            forced = Forced(
                code=str(rule.param("code", "96")),
                amount_minor=amount if isinstance(amount, int) else None,
                posted=bool(rule.param("posted", False)),
            )
        delay_s: float | None = 0.0
        late = self.faults.first("bank.timeout")
        if late is not None:
            self.faults.consume(late)
            value = late.param("delay_s")
            delay_s = float(value) if isinstance(value, int | float) else None
        now = self.start + timedelta(seconds=self.env.now)
        reply = self.core.handle(frame, now, forced)
        for posting in reply.postings:
            self._trace_for(posting.terminal_id).emit(
                "bank.posted", kind=posting.kind, stan=posting.stan, f7=posting.f7,
                amount_minor=posting.amount_minor)
        for posting in reply.reversed:
            self._trace_for(posting.terminal_id).emit(
                "bank.reversed", kind=posting.kind, stan=posting.stan, f7=posting.f7,
                amount_minor=posting.amount_minor)
        if reply.response is None:
            return
        if delay_s is None:
            self.trace.emit("bank.response_withheld", code=reply.code, **label)
            return
        if delay_s:
            yield self.env.timeout(delay_s)
        if self.faults.has("bank.down"):
            return
        answer = {"mti": (reply.response_fields or {}).get("t"), "stan": label["stan"]}
        self.trace.emit("bank.response_sent", code=reply.code, **answer)
        transport.send(reply.response, **answer)

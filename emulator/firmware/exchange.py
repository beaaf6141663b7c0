"""One message to the host and its answer, over the :class:`~devices.ports.Transport` port."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any, cast

import simpy

from devices.errors import MessageError
from devices.iso8583.message import decode, encode
from devices.ports import Refused, TraceSink, Transport
from devices.simkit.queues import any_of
from emulator.firmware import decisions
from emulator.scenario.profiles import Policy

Answer = Generator[simpy.Event, Any, tuple[str, dict[str, Any] | None]]
"""An exchange: (outcome, the response's fields or None)."""


class Exchange:
    """Sends a request and waits, until its deadline, for the response it matches."""

    def __init__(
        self, env: simpy.Environment, trace: TraceSink, transport: Transport, policy: Policy,
        terminal_id: str, mac_key: bytes, waits: list[simpy.Event],
    ) -> None:
        self.env = env
        self.trace = trace
        self.transport = transport
        self.policy = policy
        self.terminal_id = terminal_id
        self.mac_key = mac_key
        self.waits = waits  # what a power cut withdraws
        self.refusal_left = True
        """Whether the request last refused had reached the host (a copy may follow)."""

    def ask(
        self, fields: Mapping[str, str | bytes], expect_mti: str, stan: str,
        step: str | None = None, **about: Any,
    ) -> Answer:
        """Send ``fields`` (traced as ``terminal.request_sent`` of ``step`` with ``about``
        when a step is named) and wait for the answer: (outcome, fields or None)."""
        if step is not None:
            self.trace.emit("terminal.request_sent", step=step, mti=fields["t"], stan=stan,
                            f7=fields["7"], **about)
        frame = encode(fields, self.mac_key)
        transport = self.transport
        transport.send(frame, mti=fields["t"], stan=stan)
        deadline = self.env.now + self.policy.response_timeout_s
        while True:
            left = deadline - self.env.now
            if left <= 0:
                return decisions.TIMEOUT, None
            get = transport.receive()
            self.waits.append(get)
            yield any_of(get, self.env.timeout(left))
            self.waits.remove(get)
            if not get.processed:
                get.cancel()
                return decisions.TIMEOUT, None
            item = cast("bytes | Refused", get.value)
            if isinstance(item, Refused):
                if item.frame == frame:
                    self.trace.emit("terminal.refused", stan=stan)
                    self.refusal_left = item.left
                    return decisions.REFUSED, None
                continue
            try:
                response: dict[str, Any] = decode(item)
            except MessageError as exc:
                self.trace.emit("terminal.response_invalid", stan=stan, field=exc.field)
                return decisions.INVALID, None
            self.trace.emit("terminal.response_received", mti=response.get("t"),
                            stan=response.get("11"), code=response.get("39"))
            verdict = decisions.response_verdict(response, item, expect_mti, stan,
                                                 self.terminal_id, self.mac_key, self.policy)
            if verdict == decisions.IGNORE:
                self.trace.emit("terminal.response_ignored", stan=response.get("11"))
                continue
            if verdict == decisions.INVALID:
                self.trace.emit("terminal.response_invalid", stan=stan, field="64")
                return decisions.INVALID, None
            return decisions.OK, response

"""The terminal's transport over a real TCP (or TLS) connection to an acquirer.

:class:`TcpTransport` is a :class:`~devices.ports.Transport` on a
:class:`~devices.simkit.realtime.LoopEnvironment`: ``send`` writes the frame with the
connection's framing (connecting first, or again after the host closed it), and each
frame read enters the model, at the moment it came, as what ``receive`` gives. A
connection that cannot be opened is the host refusing it: each frame waiting to go
comes back as :class:`~devices.ports.Refused` (the terminal's ``bank.down``).

:class:`TcpLink` is what a wiring's transport factory builds: the TCP transport at
the terminal's end and nothing at the bank's (the bank is elsewhere).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any

from devices.errors import FramingError
from devices.net.framing import FrameReader, Framing, to_internal
from devices.ports import Refused, TraceSink
from devices.simkit.queues import Mailbox

if TYPE_CHECKING:
    from devices.fault import ActiveFault
    from devices.simkit.queues import Take
    from devices.simkit.realtime import LoopEnvironment

__all__ = [
    "CLIENT_TPDU", "CONNECT_TIMEOUT_S", "Idle", "TcpLink", "TcpTransport", "close_transport",
]

CONNECT_TIMEOUT_S = 3.0
CLIENT_TPDU = b"\x60\x00\x01\x00\x02"
"""The TPDU the terminal sends when its framing has one: ID 60, destination 0001,
source 0002."""


class Idle:
    """A transport end nothing ever arrives at (the far end of a real connection)."""

    def __init__(self, env: Any) -> None:
        self._box = Mailbox(env)

    def send(self, frame: bytes | Refused, **about: Any) -> None:
        """Nothing is connected here: the frame goes nowhere."""

    def receive(self) -> Take:
        return self._box.get()

    def discard(self) -> None:
        self._box.items.clear()


class TcpTransport:
    """Frames to and from an acquirer at ``address`` over TCP (TLS with ``tls``)."""

    def __init__(
        self, env: LoopEnvironment, trace: TraceSink, address: tuple[str, int],
        framing: Framing, tls: ssl.SSLContext | None = None,
    ) -> None:
        self.env = env
        self.trace = trace
        self.address = address
        self.framing = framing
        self.tls = tls
        self._box = Mailbox(env)
        self._waiting: list[bytes] = []
        self._connection: _Client | None = None
        self._connecting = False
        self.log: list[tuple[float, bool, bytes]] = []
        """Every frame sent (True) and received (False), with the time: what the host
        verdicts are judged from."""
        env.at_exit.append(self.close)

    def send(self, frame: bytes | Refused, **about: Any) -> None:
        if isinstance(frame, Refused):
            return
        self.trace.emit("tcp.sent", size=len(frame), **about)
        self.log.append((float(self.env.now), True, frame))
        connection = self._connection
        if connection is not None and not connection.transport.is_closing():
            connection.write(frame)
            return
        self._waiting.append(frame)
        if not self._connecting:
            self._connecting = True
            self.env.hold()
            asyncio.get_running_loop().create_task(self._connect())

    def receive(self) -> Take:
        return self._box.get()

    def discard(self) -> None:
        self._box.items.clear()

    async def close(self) -> None:
        """Close the connection (the run is over); wait for it to be closed."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.why = "closed by the terminal"
            await connection.close()

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = self.address
        try:
            _, connection = await asyncio.wait_for(loop.create_connection(
                lambda: _Client(self), host, port, ssl=self.tls,
                server_hostname=host if self.tls is not None else None), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            refused, self._waiting = self._waiting, []
            error = str(exc) or type(exc).__name__

            def refuse() -> None:
                self.trace.emit("tcp.refused", error=error)
                for frame in refused:
                    self._box.put(Refused(frame, left=False))  # no connection: never sent

            self.env.deliver(refuse)
        else:
            self._connection = connection
            waiting, self._waiting = self._waiting, []
            self.env.deliver(lambda: self.trace.emit("tcp.connected"))
            for frame in waiting:
                connection.write(frame)
        finally:
            self._connecting = False
            self.env.release()

    def _received(self, frame: bytes) -> None:
        self.trace.emit("tcp.received", size=len(frame))
        self.log.append((float(self.env.now), False, frame))
        self._box.put(frame)

    def _lost(self, connection: _Client, why: str) -> None:
        if self._connection is connection:
            self._connection = None
        self.trace.emit("tcp.closed", why=why)


class _Client(asyncio.Protocol):
    """One connection of a :class:`TcpTransport`."""

    def __init__(self, owner: TcpTransport) -> None:
        self.owner = owner
        self.reader = FrameReader(owner.framing)
        self.transport: asyncio.Transport
        self.why = "host closed"
        self.lost = asyncio.get_running_loop().create_future()

    async def close(self) -> None:
        """Close, and wait (a bounded time) until it is closed."""
        await close_transport(self.transport, self.lost)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def write(self, frame: bytes) -> None:
        framing = self.owner.framing
        self.transport.write(framing.encode(frame[2:], CLIENT_TPDU if framing.tpdu else None))

    def data_received(self, data: bytes) -> None:
        owner = self.owner
        try:
            frames = self.reader.feed(data)
        except FramingError as exc:
            self.why = f"not framed: {exc}"
            self.transport.abort()
            return
        for frame in frames:
            internal = to_internal(frame.message)
            owner.env.deliver(lambda f=internal: owner._received(f))  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        why = self.why if exc is None else f"{self.why}: {exc}"
        self.owner.env.deliver(lambda: self.owner._lost(self, why))


CLOSE_TIMEOUT_S = 1.0
"""How long a closing (a TLS goodbye) may take before the connection is cut."""


async def close_transport(transport: asyncio.Transport, lost: asyncio.Future[None]) -> None:
    """Close ``transport`` and wait for ``lost`` (its protocol's ``connection_lost``);
    abort it after :data:`CLOSE_TIMEOUT_S`."""
    transport.close()
    try:
        await asyncio.wait_for(asyncio.shield(lost), CLOSE_TIMEOUT_S)
    except TimeoutError:
        transport.abort()
        await asyncio.sleep(0)


class TcpLink:
    """The way to an acquirer elsewhere: a :class:`TcpTransport` at the terminal's end.
    Network faults are the far side's (``posemu acquirer``): none act here."""

    def __init__(self, transport: TcpTransport) -> None:
        self.terminal_end = transport
        self.bank_end = Idle(transport.env)

    def apply(self, fault: ActiveFault) -> None:
        """Never called: the run refuses network faults."""

    def clear(self, fault: ActiveFault) -> None:
        """Never called: the run refuses network faults."""

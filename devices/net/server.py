"""The live acquirer endpoint: posemu's host served on a real TCP (or TLS) socket.

Each connection accepted becomes one more simulated :class:`~devices.net.link.Link`
(no latency of its own: the wire is real) between the socket and the one
:class:`~devices.bank.host.Host`, which serves it with the shared acquirer core and
answers each request on the connection it came from. The links of all connections
share one fault board (:class:`Wires`), so the ``network.*`` faults of the catalogue
act on live frames as on simulated ones, and the host's ``bank.*`` faults are the
simulation's. Time is a :class:`~devices.simkit.realtime.LoopEnvironment`'s: the
asyncio loop's.

Frames are cut by a :class:`~devices.net.framing.FrameReader`; a stream that is not
framed (garbage, a length out of bounds) has its connection closed, and the others
are served on. Connection-level faults (:data:`CONNECTION_FAULTS`) act on the answer as
it is written: the connection closed or reset instead, or the answer split across
TCP segments.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import ssl
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from devices.errors import FramingError
from devices.fault import ActiveFault, FaultBoard
from devices.iso8583.message import decode
from devices.net.framing import Frame, FrameReader, Framing, swap_tpdu, to_internal
from devices.net.link import TO_BANK, TO_TERMINAL, Link
from devices.net.tcp import Idle, close_transport
from devices.ports import Refused, TraceSink

if TYPE_CHECKING:
    from devices.bank.host import Host
    from devices.simkit.realtime import LoopEnvironment

__all__ = ["CONNECTION_FAULTS", "Answer", "LiveServer", "Wires"]

CONNECTION_FAULTS = ("network.close", "network.reset", "network.split")
"""Faults that act on a live connection as an answer is written to it."""


class Wires:
    """The live connections' links, on one fault board: what the wiring's transport
    factory builds for a live acquirer (the injector's ``network``)."""

    def __init__(self, env: simpy.Environment, rng: random.Random, trace: TraceSink) -> None:
        self.env = env
        self.rng = rng
        self.trace = trace
        self.faults = FaultBoard()
        """``network.*`` faults, read by every link as it carries a frame."""
        self.connection_faults = FaultBoard()
        """:data:`CONNECTION_FAULTS`, read by a connection as it writes an answer."""
        self.links: dict[int, Link] = {}
        self.direct = True
        """Frames may skip the links while no ``network.*`` fault is in force (False when a
        fault is triggered by a link's event: then every frame must make it)."""
        self.terminal_end = Idle(env)
        self.bank_end = Idle(env)

    def apply(self, fault: ActiveFault) -> None:
        if fault.kind in CONNECTION_FAULTS:
            self.connection_faults.add(fault)
            return
        self.faults.add(fault)
        if fault.kind == "network.down":
            for link in self.links.values():
                link.cut()

    def clear(self, fault: ActiveFault) -> None:
        self.faults.remove(fault)
        self.connection_faults.remove(fault)

    @property
    def bypass(self) -> bool:
        """True when a frame may go straight between its connection and the host."""
        return self.direct and not self.faults

    def open(self, conn: int) -> Link:
        """A link for connection ``conn``, on the shared fault board."""
        link = self.links[conn] = Link(self.env, self.rng, self.trace, 0.0, 0.0)
        link.faults = self.faults
        return link

    def close(self, conn: int) -> None:
        """Connection ``conn`` is gone: its link's readers stop."""
        link = self.links.pop(conn, None)
        if link is not None:
            link.inbox[TO_BANK].put(None)
            link.inbox[TO_TERMINAL].put(None)


class Answer:
    """What a connection wrote (the frame, as the host made it), or lost with it: told to
    the listener the server was given. ``fields`` decodes it when first read."""

    __slots__ = ("_fields", "conn", "frame", "written")

    def __init__(self, conn: int, frame: bytes, written: bool) -> None:
        self.conn = conn
        self.frame = frame
        self.written = written
        self._fields: dict[str, Any] | None = None

    @property
    def fields(self) -> dict[str, Any]:
        """The answer's fields ({} if it does not decode: a ``network.corrupt`` on it)."""
        if self._fields is None:
            try:
                self._fields = dict(decode(self.frame))
            except ValueError:
                self._fields = {}
        return self._fields


class LiveServer:
    """Accepts connections on ``host:port`` and serves them with ``bank`` over ``wires``."""

    def __init__(
        self, env: LoopEnvironment, trace: TraceSink, wires: Wires, bank: Host,
        framing: Framing, *, tls: ssl.SSLContext | None = None,
        on_answer: Any = None,
    ) -> None:
        self.env = env
        self.trace = trace
        self.wires = wires
        self.bank = bank
        self.framing = framing
        self.tls = tls
        self.on_answer = on_answer
        """Called with an :class:`Answer` for each answer written or lost with its
        connection (the outside oracle's view)."""
        self.server: asyncio.Server | None = None
        self._ids = itertools.count(1)
        self.connections: dict[int, _Connection] = {}

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; the address bound (port 0 picks a free one)."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: _Connection(self, next(self._ids)), host, port, ssl=self.tls,
            reuse_address=True)
        bound = self.server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self.server is not None:
            self.server.close()
        await asyncio.gather(*(close_transport(c.transport, c.lost)
                               for c in list(self.connections.values())))
        if self.server is not None:
            await self.server.wait_closed()


class _Connection(asyncio.Protocol):
    """One accepted connection: frames in through its link to the host, answers out."""

    def __init__(self, server: LiveServer, conn: int) -> None:
        self.server = server
        self.conn = conn
        self.reader = FrameReader(server.framing)
        self.tpdu: bytes | None = None
        self.transport: asyncio.Transport
        self.link: Link | None = None
        self.host_end: _HostEnd
        self.why = "peer closed"
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        server, env = self.server, self.server.env
        peer = transport.get_extra_info("peername")
        if server.bank.faults.has("bank.down"):
            env.deliver(lambda: server.trace.emit("live.refused", conn=self.conn))
            self.why = "refused: bank.down"
            transport.abort()
            return
        server.connections[self.conn] = self

        def opened() -> None:
            server.trace.emit("live.connected", conn=self.conn, peer=f"{peer[0]}:{peer[1]}")
            self.link = server.wires.open(self.conn)
            self.host_end = _HostEnd(self, self.link)
            server.bank.serve(self.host_end)
            env.process(self._answers(self.link))

        env.deliver(opened)

    def data_received(self, data: bytes) -> None:
        if self.link is None:
            return
        try:
            frames = self.reader.feed(data)
        except FramingError as exc:
            self.why = "not framed"
            error = str(exc)
            self.server.env.deliver(
                lambda: self.server.trace.emit("live.frame_refused", conn=self.conn,
                                               error=error))
            self.transport.abort()
            return
        if frames:
            self.server.env.deliver(lambda: self._requests(frames))

    def _requests(self, frames: list[Frame]) -> None:
        link = self.link
        assert link is not None
        for frame in frames:
            if frame.tpdu is not None:
                self.tpdu = frame.tpdu
            if self.server.wires.bypass:  # straight to the host, no link, no step
                self.server.bank.take(to_internal(frame.message), self.host_end, at_once=True)
            else:
                link.terminal_end.send(to_internal(frame.message), conn=self.conn)

    def answer(self, frame: bytes | Refused) -> None:
        """An answer straight from the host (the link bypassed): written now, or by a
        process when a connection fault may delay it."""
        if isinstance(frame, Refused):
            self.why = "refused: bank.down"
            self.transport.abort()
        elif self.server.wires.connection_faults:
            self.server.env.process(self._write(self.server.env, frame))
        else:  # no fault to weigh: written now
            wire = self._wire(frame)
            written = not self.transport.is_closing()
            if written:
                self.transport.write(wire)
            self._written(frame, wire, written)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        server = self.server
        if server.connections.pop(self.conn, None) is None:
            return
        pending, why = self.reader.pending, self.why

        def closed() -> None:
            fields: dict[str, Any] = {"conn": self.conn, "why": why}
            if pending:
                fields["pending_bytes"] = pending  # a frame begun and never finished
            server.trace.emit("live.closed", **fields)
            server.wires.close(self.conn)

        server.env.deliver(closed)

    def _answers(self, link: Link) -> Generator[simpy.Event, Any, None]:
        """Write what the link brings to the terminal's side onto the socket."""
        env = self.server.env
        while True:
            frame = yield link.terminal_end.receive()
            if frame is None:
                return
            if isinstance(frame, Refused):  # bank.down: the host refuses the connection
                self.why = "refused: bank.down"
                self.transport.abort()
                continue
            yield from self._write(env, frame)

    def _write(self, env: simpy.Environment, frame: bytes) -> Generator[simpy.Event, Any, None]:
        server = self.server
        wire = self._wire(frame)
        board = server.wires.connection_faults
        written = not self.transport.is_closing()
        cut = board.first("network.close") or board.first("network.reset")
        if written and cut is not None:
            board.consume(cut)
            self.why = f"fault {cut.kind}"
            server.trace.emit("live.cut", conn=self.conn, fault=cut.kind)
            if cut.kind == "network.reset":
                self.transport.abort()
            else:
                self.transport.close()
            written = False
        split = board.first("network.split") if written else None
        if split is not None:
            board.consume(split)
            pieces = max(int(_num(split.param("pieces", 2))), 2)
            pause_s = _num(split.param("delay_s", 0.05))
            size = -(-len(wire) // pieces)
            for at in range(0, len(wire), size):
                if at:
                    yield env.timeout(pause_s)
                if self.transport.is_closing():
                    written = False
                    break
                self.transport.write(wire[at:at + size])
        elif written:
            self.transport.write(wire)
        self._written(frame, wire, written)

    def _wire(self, frame: bytes) -> bytes:
        """``frame`` (len2, as the host made it) in this connection's framing."""
        return self.server.framing.encode(
            frame[2:], swap_tpdu(self.tpdu) if self.tpdu is not None else None)

    def _written(self, frame: bytes, wire: bytes, written: bool) -> None:
        """Trace the answer written (or not) and tell the server's listener."""
        server = self.server
        server.trace.emit("live.written" if written else "live.unwritten", conn=self.conn,
                          size=len(wire))
        if server.on_answer is not None:
            server.on_answer(Answer(self.conn, frame, written))


class _HostEnd:
    """The host's end of a connection: from its link, and answers back through the link,
    or straight to the connection while the link may be bypassed."""

    __slots__ = ("_connection", "_end")

    def __init__(self, connection: _Connection, link: Link) -> None:
        self._connection = connection
        self._end = link.bank_end

    def send(self, frame: bytes | Refused, **about: Any) -> None:
        if self._connection.server.wires.bypass:
            self._connection.answer(frame)
        else:
            self._end.send(frame, **about)

    def receive(self) -> Any:
        return self._end.receive()

    def discard(self) -> None:
        self._end.discard()


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0

"""The fault proxy: frames between a client and an upstream host, read and broken on purpose.

A :class:`ProxyServer` holds named :class:`Proxy` listeners (the command line's, and
those made through the Toxiproxy API); each connection accepted opens one to the
upstream, and its two directions are pumped by :class:`ProxyLink`: bytes are cut into frames
with the framing's :class:`~devices.net.framing.FrameReader`, each frame is decoded (MTI,
STAN, terminal id, response code) and the :class:`~emulator.live.proxy_rules.Rule`
values it matches act on it (drop, duplicate, corrupt a field, delay, close, reset,
split), then the byte-level toxics of its stream (latency, bandwidth, slicer,
limit_data, timeout) on the bytes written. A stream that is not framed as expected is
passed on as bytes (toxics only). One seeded ``random.Random`` decides jitter, slicing,
corruption and toxicity. The trace (one event per frame and per thing done) and
:meth:`ProxyServer.summary` say what passed and what the proxy did.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import struct
from collections import Counter
from typing import IO, Any

from devices.errors import FramingError, MessageError
from devices.iso8583.message import corrupt, decode
from devices.net.framing import Frame, FrameReader, Framing, to_internal
from emulator.live.command import parse_address
from emulator.live.proxy_rules import STREAMS, Rule, Toxic

__all__ = ["CONNECT_TIMEOUT_S", "Proxy", "ProxyLink", "ProxyServer"]

CONNECT_TIMEOUT_S = 3.0
"""How long opening the upstream connection may take before the client is closed."""
_READ = 65536


class ProxyServer:
    """Every proxy of one ``posemu proxy`` process, its trace, its random numbers."""

    def __init__(self, framing: Framing, seed: int = 0, out: IO[bytes] | None = None) -> None:
        self.framing = framing
        self.rng = random.Random(seed)
        self.out = out
        self.proxies: dict[str, Proxy] = {}
        self.events = 0
        self.frames: Counter[tuple[str, str]] = Counter()
        self.passed = 0
        self.unframed = 0
        self.connections = 0
        self._start = asyncio.get_running_loop().time()

    def now(self) -> float:
        """Seconds since the proxy started."""
        return asyncio.get_running_loop().time() - self._start

    def emit(self, event: str, /, **fields: Any) -> None:
        """One trace event (a JSON line to ``out``, flushed)."""
        self.events += 1
        if self.out is not None:
            line = {"t": round(self.now(), 4), "event": event, **fields}
            self.out.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
            self.out.flush()

    async def create(self, name: str, listen: str, upstream: str, enabled: bool = True,
                     rules: tuple[Rule, ...] = ()) -> Proxy:
        """A new proxy, listening at once when ``enabled``; ValueError for a name in use
        or a bad address, OSError when the address cannot be listened on."""
        if name in self.proxies:
            raise ValueError(f"proxy {name!r} already exists")
        proxy = Proxy(self, name, parse_address(listen, "listen"),
                      parse_address(upstream, "upstream"), rules)
        if enabled:
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def delete(self, name: str) -> None:
        await self.proxies.pop(name).stop()

    async def close(self) -> None:
        """Stop every proxy and close every connection."""
        for proxy in list(self.proxies.values()):
            await proxy.stop()

    def summary(self) -> dict[str, Any]:
        """What passed (frames by direction and MTI) and what each fault and toxic did."""
        frames: dict[str, dict[str, int]] = {"to_bank": {}, "to_terminal": {}}
        for (direction, mti), n in sorted(self.frames.items()):
            frames[direction][mti] = n
        acted = []
        for proxy in self.proxies.values():
            acted += [{"proxy": proxy.name, **rule.to_json()} for rule in proxy.rules]
            acted += [{"proxy": proxy.name, **toxic.to_json(), "acted": toxic.acted}
                      for toxic in proxy.toxics.values()]
        return {"proxies": {n: p.to_json() for n, p in self.proxies.items()},
                "connections": self.connections, "frames": frames, "passed": self.passed,
                "unframed_bytes": self.unframed, "faults": acted, "events": self.events}


class Proxy:
    """One listener forwarding to one upstream, with its rules and toxics."""

    def __init__(self, owner: ProxyServer, name: str, listen: tuple[str, int],
                 upstream: tuple[str, int], rules: tuple[Rule, ...] = ()) -> None:
        self.owner = owner
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.rules = list(rules)
        self.toxics: dict[str, Toxic] = {}
        self.links: set[ProxyLink] = set()
        self._server: asyncio.Server | None = None

    @property
    def enabled(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Listen (port 0 is replaced by the port picked, kept when re-enabled)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._accept, *self.listen)
        self.listen = self._server.sockets[0].getsockname()[:2]
        self.owner.emit("proxy.listening", proxy=self.name, listen=_show(self.listen),
                        upstream=_show(self.upstream))

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for link in list(self.links):
            link.cut("proxy stopped")
        for link in list(self.links):
            await link.done()
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), CONNECT_TIMEOUT_S)

    def add_toxic(self, toxic: Toxic) -> None:
        """Add ``toxic`` (acting on the connections open and to come); ValueError for a
        name in use."""
        if toxic.name in self.toxics:
            raise ValueError(f"toxic {toxic.name!r} already exists")
        self.toxics[toxic.name] = toxic
        self.owner.emit("proxy.toxic_added", proxy=self.name, **toxic.to_json())
        for link in self.links:
            link.watch()

    def remove_toxic(self, name: str) -> None:
        self.toxics.pop(name)
        self.owner.emit("proxy.toxic_removed", proxy=self.name, name=name)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "listen": _show(self.listen),
                "upstream": _show(self.upstream), "enabled": self.enabled,
                "toxics": [t.to_json() for t in self.toxics.values()]}

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        owner = self.owner
        owner.connections += 1
        link = ProxyLink(self, owner.connections, reader, writer)
        self.links.add(link)
        try:
            await link.run()
        finally:
            self.links.discard(link)


class ProxyLink:
    """One client connection, its upstream connection, and the two pumps between them."""

    def __init__(self, proxy: Proxy, conn: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.owner = proxy.owner
        self.conn = conn
        self.client = (reader, writer)
        self.host: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.sent = {"to_bank": 0, "to_terminal": 0}
        self.why = "closed"
        self._toxic: dict[str, bool] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._later: set[asyncio.Task[None]] = set()
        self._finished = asyncio.get_running_loop().create_future()

    async def run(self) -> None:
        owner, writer = self.owner, self.client[1]
        peer = writer.get_extra_info("peername")
        owner.emit("proxy.connected", proxy=self.proxy.name, conn=self.conn,
                   peer=_show(peer[:2]) if peer else "?")
        try:
            self.host = await asyncio.wait_for(
                asyncio.open_connection(*self.proxy.upstream), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            owner.emit("proxy.upstream_refused", conn=self.conn,
                       error=str(exc) or type(exc).__name__)
            self.why = "upstream refused"
            writer.close()
        else:
            self.watch()
            await asyncio.gather(self._pump("to_bank"), self._pump("to_terminal"))
        finally:
            for task in [*self._timers.values(), *self._later]:
                task.cancel()
            await self._close_all()
            owner.emit("proxy.closed", conn=self.conn, why=self.why)
            self._finished.set_result(None)

    async def done(self) -> None:
        """Wait (a bounded time) until the link has closed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._finished), CONNECT_TIMEOUT_S)

    def cut(self, why: str, reset: bool = False) -> None:
        """Close both connections now (with ``reset``, an RST instead of a FIN)."""
        if self.why == "closed":
            self.why = why
        for writer in self._writers():
            if reset:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                writer.transport.abort()
            else:
                writer.close()

    def watch(self) -> None:
        """Start the timers of the proxy's ``timeout`` and ``reset_peer`` toxics that act
        on this link (each once)."""
        for toxic in self.proxy.toxics.values():
            if toxic.type in ("timeout", "reset_peer") and toxic.name not in self._timers \
                    and self._affected(toxic):
                delay_s = toxic.attr("timeout") / 1000
                if toxic.type == "timeout" and delay_s == 0:
                    continue
                self._timers[toxic.name] = asyncio.get_running_loop().create_task(
                    self._expire(toxic, delay_s))

    async def _expire(self, toxic: Toxic, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        if toxic.name in self.proxy.toxics:
            toxic.acted += 1
            self.owner.emit("proxy.toxic", conn=self.conn, toxic=toxic.name, type=toxic.type)
            self.cut(f"toxic {toxic.name}", reset=toxic.type == "reset_peer")

    def _affected(self, toxic: Toxic) -> bool:
        """Whether ``toxic`` acts on this link: drawn once per link by its toxicity."""
        if toxic.name not in self._toxic:
            self._toxic[toxic.name] = toxic.toxicity >= 1 or (
                self.owner.rng.random() < toxic.toxicity)
        return self._toxic[toxic.name]

    def _writers(self) -> list[asyncio.StreamWriter]:
        return [self.client[1], *([self.host[1]] if self.host is not None else [])]

    async def _close_all(self) -> None:
        for writer in self._writers():
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), CONNECT_TIMEOUT_S)

    def _ends(self, direction: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        assert self.host is not None
        if direction == "to_bank":
            return self.client[0], self.host[1]
        return self.host[0], self.client[1]

    async def _pump(self, direction: str) -> None:
        """Forward one direction until its reader ends or the link is cut."""
        src, dst = self._ends(direction)
        reader: FrameReader | None = FrameReader(self.owner.framing)
        tail = b""
        while True:
            try:
                data = await src.read(_READ)
            except OSError as exc:
                self.why = f"{direction} reader: {exc}"
                data = b""
            if not data:
                self.cut(self.why if self.why != "closed" else
                         ("client closed" if direction == "to_bank" else "upstream closed"))
                return
            if reader is not None:
                combined = tail + data
                try:
                    frames = reader.feed(data)
                except FramingError as exc:
                    self.owner.emit("proxy.unframed", conn=self.conn, direction=direction,
                                    error=str(exc))
                    reader, data = None, combined
                else:
                    tail = combined[len(combined) - reader.pending:] if reader.pending else b""
                    for frame in frames:
                        await self._frame(frame, direction, dst)
                    continue
            self.owner.unframed += len(data)
            await self._bytes(data, direction, dst)

    async def _frame(self, frame: Frame, direction: str, dst: asyncio.StreamWriter) -> None:
        owner = self.owner
        message = frame.message
        about = _about(message)
        mti = about.get("mti")
        owner.frames[(direction, mti or "????")] += 1
        actions: list[str] = []
        copies, delay_s, cut, split = 1, 0.0, "", None
        now = owner.now()
        for rule, toxic in self._rules():
            if not rule.fires(direction, mti, now):
                continue
            if toxic is not None:
                toxic.acted += 1
            kind = rule.fault
            actions.append(rule.name or kind)
            if kind in ("network.drop", "network.down"):
                copies = 0
            elif kind == "network.duplicate":
                copies = 2 if copies else 0
            elif kind == "network.corrupt":
                field = int(rule.param("field") or 0)
                try:
                    message = corrupt(to_internal(message), owner.rng, int(rule.param("bytes")),
                                      str(field) if field else None)[2:]
                except ValueError as exc:
                    actions[-1] += f" (not done: {exc})"
            elif kind == "network.latency":
                delay_s += float(rule.param("delay_s")) + owner.rng.uniform(
                    0, float(rule.param("jitter_s") or 0))
            elif kind in ("network.close", "network.reset"):
                cut = kind
            elif kind == "network.split":
                split = (max(int(rule.param("pieces")), 2), float(rule.param("delay_s")))
        actions += [t.name for t in self._byte_toxics(direction)]
        if message != frame.message:  # the trace shows the frame as it went on
            about = {**_about(message), "sent_as": about.get("amount", "")}
        owner.emit("proxy.frame", conn=self.conn, direction=direction, size=len(message),
                   **about, did=actions or ["passed"])
        if not actions:
            owner.passed += 1
        if cut:
            self.cut(f"fault {cut}", reset=cut == "network.reset")
            return
        wire = owner.framing.encode(message, frame.tpdu)
        if delay_s > 0 and copies:
            task = asyncio.get_running_loop().create_task(
                self._delayed(delay_s, wire, copies, direction, dst))
            self._later.add(task)
            task.add_done_callback(self._later.discard)
            return
        for _ in range(copies):
            if split is None:
                await self._bytes(wire, direction, dst)
            else:
                await self._split(wire, *split, direction, dst)

    async def _delayed(self, delay_s: float, wire: bytes, copies: int, direction: str,
                       dst: asyncio.StreamWriter) -> None:
        await asyncio.sleep(delay_s)
        for _ in range(copies):
            await self._bytes(wire, direction, dst)

    async def _split(self, wire: bytes, pieces: int, pause_s: float, direction: str,
                     dst: asyncio.StreamWriter) -> None:
        size = max(1, -(-len(wire) // pieces))
        for start in range(0, len(wire), size):
            if start:
                await asyncio.sleep(pause_s)
            await self._bytes(wire[start:start + size], direction, dst)

    def _rules(self) -> list[tuple[Rule, Toxic | None]]:
        rules: list[tuple[Rule, Toxic | None]] = [(r, None) for r in self.proxy.rules]
        rules += [(t.rule, t) for t in self.proxy.toxics.values()
                  if t.rule is not None and self._affected(t)]
        return rules

    def _byte_toxics(self, direction: str) -> list[Toxic]:
        """The byte-level toxics acting on this link's ``direction``, in their order."""
        return [t for t in list(self.proxy.toxics.values())
                if STREAMS[t.stream] == direction and t.rule is None and self._affected(t)]

    async def _bytes(self, data: bytes, direction: str, dst: asyncio.StreamWriter) -> None:
        """Write ``data`` through the stream's byte-level toxics."""
        owner = self.owner
        pieces = [data]
        pause_s = 0.0
        for toxic in self._byte_toxics(direction):
            kind = toxic.type
            if kind == "timeout":
                toxic.acted += 1
                owner.emit("proxy.toxic", conn=self.conn, toxic=toxic.name, type=kind,
                           dropped=len(data))
                return
            if kind == "latency":
                jitter = toxic.attr("jitter")
                delay_ms = toxic.attr("latency") + (owner.rng.uniform(-jitter, jitter)
                                                    if jitter else 0)
                toxic.acted += 1
                await asyncio.sleep(max(delay_ms, 0) / 1000)
            elif kind == "bandwidth" and toxic.attr("rate") > 0:
                toxic.acted += 1
                await asyncio.sleep(len(data) / (toxic.attr("rate") * 1000))
            elif kind == "slicer" and toxic.attr("average_size") > 0:
                toxic.acted += 1
                pieces = _slices(data, int(toxic.attr("average_size")),
                                 int(toxic.attr("size_variation")), owner.rng)
                pause_s = toxic.attr("delay") / 1e6
            elif kind == "limit_data" and toxic.attr("bytes") > 0:
                room = int(toxic.attr("bytes")) - self.sent[direction]
                if len(data) >= room:
                    toxic.acted += 1
                    self._write(dst, data[:max(room, 0)], direction)
                    owner.emit("proxy.toxic", conn=self.conn, toxic=toxic.name, type=kind)
                    self.cut(f"toxic {toxic.name}")
                    return
        for n, piece in enumerate(pieces):
            if n and pause_s:
                await asyncio.sleep(pause_s)
            self._write(dst, piece, direction)
            with contextlib.suppress(OSError):
                await dst.drain()

    def _write(self, dst: asyncio.StreamWriter, data: bytes, direction: str) -> None:
        if data and not dst.is_closing():
            dst.write(data)
            self.sent[direction] += len(data)


def _slices(data: bytes, average: int, variation: int, rng: random.Random) -> list[bytes]:
    """``data`` cut in pieces of ``average`` bytes, give or take ``variation``."""
    out, start = [], 0
    while start < len(data):
        size = max(1, average + (rng.randint(-variation, variation) if variation else 0))
        out.append(data[start:start + size])
        start += size
    return out


def _about(message: bytes) -> dict[str, str]:
    """MTI, STAN, terminal id and response code of a message (never the card number)."""
    try:
        fields = decode(to_internal(message))
    except MessageError:
        head = message[:4].decode("latin-1")
        return {"mti": head} if head.isdigit() else {}
    about = {"mti": str(fields.get("t", ""))}
    for key, name in (("11", "stan"), ("41", "terminal_id"), ("39", "rc"), ("4", "amount")):
        value = fields.get(key)
        if isinstance(value, str):
            about[name] = value
    return about


def _show(address: tuple[str, int] | Any) -> str:
    return f"{address[0]}:{address[1]}"

"""The fault proxy's HTTP API, answering Toxiproxy's common calls (asyncio, stdlib).

=======================================  ====================================================
call                                     what
=======================================  ====================================================
``GET /version``                         the version, as text
``GET /proxies``                         ``{name: proxy}``
``POST /proxies``                        create ``{name, listen, upstream, enabled}``: 201
``GET /proxies/{name}``                  the proxy
``POST /proxies/{name}``                 update ``enabled`` (listen again, or close all)
``DELETE /proxies/{name}``               remove it: 204
``GET /proxies/{name}/toxics``           ``[toxic]``
``POST /proxies/{name}/toxics``          add ``{name, type, stream, toxicity, attributes}``
``GET /proxies/{name}/toxics/{toxic}``   the toxic
``DELETE /proxies/{name}/toxics/{t}``    remove it: 204
``POST /reset``                          every proxy enabled, every toxic removed: 204
=======================================  ====================================================

A proxy is ``{name, listen, upstream, enabled, toxics}``; a toxic ``{name, type, stream,
toxicity, attributes}``, whose type is one of Toxiproxy's (``latency``, ``timeout``,
``reset_peer``, ``slicer``, ``limit_data``, ``bandwidth``) or a ``network.*`` fault with
its ISO 8583-aware trigger in ``attributes`` (``mti``, ``nth``, ``count``, ...). Errors
are ``{"error": text, "status": code}`` (400 bad input, 404 unknown, 409 name in use).
One request per connection; a request must arrive whole within :data:`READ_TIMEOUT_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from emulator.live.proxy import ProxyServer
from emulator.live.proxy_rules import toxic_from_json

__all__ = ["READ_TIMEOUT_S", "serve_api"]

READ_TIMEOUT_S = 5.0
_MAX_BODY = 1 << 20
_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request",
            404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
            413: "Payload Too Large"}


async def serve_api(proxies: ProxyServer, host: str, port: int) -> asyncio.Server:
    """Serve the API for ``proxies`` at ``host:port`` (port 0 picks one)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body = await asyncio.wait_for(_answer(proxies, reader), READ_TIMEOUT_S)
        except TimeoutError:
            status, body = 400, {"error": "request not received in time", "status": 400}
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        data = b"" if body is None else (
            body.encode() if isinstance(body, str) else json.dumps(body).encode())
        kind = "text/plain" if isinstance(body, str) else "application/json"
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\n"
                f"Content-Type: {kind}\r\nContent-Length: {len(data)}\r\n"
                "Connection: close\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + data)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, host, port)


async def _answer(proxies: ProxyServer, reader: asyncio.StreamReader) -> tuple[int, Any]:
    line = (await reader.readline()).decode("latin-1").split()
    if len(line) < 2:
        return 400, {"error": "not an HTTP request", "status": 400}
    method, target = line[0].upper(), line[1].split("?", 1)[0]
    length = 0
    while True:
        header = (await reader.readline()).decode("latin-1")
        if header in ("\r\n", "\n", ""):
            break
        name, _, value = header.partition(":")
        if name.strip().lower() == "content-length" and value.strip().isdigit():
            length = int(value.strip())
    if length > _MAX_BODY:
        return 413, {"error": "body too large", "status": 413}
    raw = await reader.readexactly(length) if length else b""
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return 400, {"error": "body is not JSON", "status": 400}
    try:
        return await _route(proxies, method, [p for p in target.split("/") if p], body)
    except LookupError as exc:  # an unknown proxy, toxic or path
        return 404, {"error": str(exc.args[0]), "status": 404}
    except NotImplementedError as exc:  # a path without that method
        return 405, {"error": str(exc), "status": 405}
    except FileExistsError as exc:  # a name in use
        return 409, {"error": str(exc), "status": 409}
    except ValueError as exc:
        return 400, {"error": str(exc), "status": 400}
    except OSError as exc:
        return 409, {"error": f"cannot listen: {exc.strerror or exc}", "status": 409}


def _proxy(proxies: ProxyServer, name: str) -> Any:
    if name not in proxies.proxies:
        raise LookupError(f"proxy not found: {name}")
    return proxies.proxies[name]


async def _route(proxies: ProxyServer, method: str, parts: list[str],
                 body: Any) -> tuple[int, Any]:
    """Dispatch one call; (status, body)."""
    routes: dict[tuple[str, int], Callable[[], Awaitable[tuple[int, Any]]]] = {}
    if parts == ["version"] and method == "GET":
        from importlib.metadata import version  # noqa: PLC0415

        return 200, f"posemu {version('posemu')}"
    if parts == ["reset"] and method == "POST":
        for proxy in proxies.proxies.values():
            for name in list(proxy.toxics):
                proxy.remove_toxic(name)
            await proxy.start()
        return 204, None
    if not parts or parts[0] != "proxies":
        raise LookupError("not found: /" + "/".join(parts))

    async def list_proxies() -> tuple[int, Any]:
        return 200, {n: p.to_json() for n, p in proxies.proxies.items()}

    async def create() -> tuple[int, Any]:
        if not isinstance(body, dict) or not body.get("name") or not body.get("upstream"):
            raise ValueError("a proxy needs name and upstream")
        if body["name"] in proxies.proxies:
            raise FileExistsError(f"proxy already exists: {body['name']}")
        proxy = await proxies.create(str(body["name"]), str(body.get("listen", "127.0.0.1:0")),
                                     str(body["upstream"]), bool(body.get("enabled", True)))
        return 201, proxy.to_json()

    routes[("GET", 1)] = list_proxies
    routes[("POST", 1)] = create
    if len(parts) >= 2:
        proxy = _proxy(proxies, parts[1])

        async def show() -> tuple[int, Any]:
            return 200, proxy.to_json()

        async def update() -> tuple[int, Any]:
            if isinstance(body, dict) and "enabled" in body:
                await (proxy.start() if body["enabled"] else proxy.stop())
            return 200, proxy.to_json()

        async def delete() -> tuple[int, Any]:
            await proxies.delete(proxy.name)
            return 204, None

        async def toxics() -> tuple[int, Any]:
            return 200, [t.to_json() for t in proxy.toxics.values()]

        async def add_toxic() -> tuple[int, Any]:
            toxic = toxic_from_json(body)
            if toxic.name in proxy.toxics:
                raise FileExistsError(f"toxic already exists: {toxic.name}")
            proxy.add_toxic(toxic)
            return 200, toxic.to_json()

        routes.update({("GET", 2): show, ("POST", 2): update, ("PATCH", 2): update,
                       ("DELETE", 2): delete, ("GET", 3): toxics, ("POST", 3): add_toxic})
        if len(parts) >= 3 and parts[2] != "toxics":
            raise LookupError("not found: /" + "/".join(parts))
        if len(parts) == 4:
            if parts[3] not in proxy.toxics:
                raise LookupError(f"toxic not found: {parts[3]}")
            toxic = proxy.toxics[parts[3]]

            async def show_toxic() -> tuple[int, Any]:
                return 200, toxic.to_json()

            async def remove_toxic() -> tuple[int, Any]:
                proxy.remove_toxic(toxic.name)
                return 204, None

            routes.update({("GET", 4): show_toxic, ("DELETE", 4): remove_toxic})
    action = routes.get((method, len(parts)))
    if action is None:
        text = f"{method} /{'/'.join(parts)} is not a call of this API"
        raise NotImplementedError(text) if len(parts) <= 4 else LookupError(text)
    return await action()

"""``posemu proxy --listen HOST:PORT --upstream HOST:PORT [--api HOST:PORT] [FILE]``.

The first lines of standard output are ``LISTEN <host>:<port>`` and ``API <host>:<port>``;
the proxy forwards until SIGINT, SIGTERM or ``--duration``, then prints its summary (or
one JSON object with ``--json``). Exit status: 0, 2 bad input, 3 I/O (an address in use).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from typing import IO, Any

from devices.net.framing import FRAMINGS
from emulator.live.command import add_serving_flags

__all__ = ["add_parser", "report", "run_command"]

PROXY_NAME = "posemu"
"""The name, in the API, of the proxy the command line makes."""


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """The ``proxy`` sub-command's parser."""
    proxy: argparse.ArgumentParser = commands.add_parser(
        "proxy", help="an ISO 8583-aware fault proxy with a Toxiproxy-compatible API")
    proxy.add_argument("path", metavar="FILE", nargs="?",
                       help="a scenario whose network.* [[faults]] the proxy applies")
    proxy.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                       help="where terminals connect (port 0 picks one; default 127.0.0.1:0)")
    proxy.add_argument("--upstream", required=True, metavar="HOST:PORT",
                       help="the host the frames go to")
    proxy.add_argument("--api", default="127.0.0.1:0", metavar="HOST:PORT",
                       help="the Toxiproxy-compatible HTTP API (default 127.0.0.1:0)")
    proxy.add_argument("--framing", default="len2", metavar="F",
                       help=f"length header: {', '.join(FRAMINGS)}, each with an optional "
                            "+self (default len2)")
    proxy.add_argument("--tpdu", action="store_true", help="a 5-byte TPDU before each message")
    proxy.add_argument("--seed", type=int, metavar="N",
                       help="seed of the proxy's random choices (default: FILE's seed, or 0)")
    add_serving_flags(proxy, "the summary")
    return proxy


def run_command(args: argparse.Namespace) -> int:
    """Proxy until stopped; print the summary; the exit status."""
    from emulator.live.command import checked_framing, parse_address  # noqa: PLC0415
    from emulator.live.proxy import ProxyServer  # noqa: PLC0415
    from emulator.live.proxy_rules import load_proxy_file  # noqa: PLC0415
    from emulator.live.toxiproxy_api import serve_api  # noqa: PLC0415

    listen = parse_address(args.listen)
    parse_address(args.upstream, "--upstream")
    api = parse_address(args.api, "--api")
    framing = checked_framing(args)
    loaded = None if args.path is None else load_proxy_file(args.path)
    seed = args.seed if args.seed is not None else (loaded.seed if loaded else 0)
    out: IO[bytes] | None = None if args.trace is None else open(args.trace, "wb")  # noqa: SIM115

    async def serve() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        proxies = ProxyServer(framing, seed, out)
        proxy = await proxies.create(PROXY_NAME, f"{listen[0]}:{listen[1]}", args.upstream,
                                     rules=loaded.rules if loaded else ())
        server = await serve_api(proxies, *api)
        where = server.sockets[0].getsockname()
        print(f"LISTEN {proxy.listen[0]}:{proxy.listen[1]}", flush=True)
        print(f"API {where[0]}:{where[1]}", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.duration)
        server.close()
        await proxies.close()
        return proxies.summary()

    try:
        summary = asyncio.run(serve())
    finally:
        if out is not None:
            out.close()
    print(json.dumps(summary) if args.json else report(summary), flush=True)
    return 0


def report(summary: dict[str, Any]) -> str:
    """The human summary: proxies, frames by direction and MTI, what each fault did."""
    lines = []
    for proxy in summary["proxies"].values():
        lines.append(f"proxy {proxy['name']}: {proxy['listen']} -> {proxy['upstream']}")
    lines.append(f"  {summary['connections']} connections, {summary['passed']} frames passed "
                 f"untouched, {summary['unframed_bytes']} bytes unframed")
    for direction, by_mti in summary["frames"].items():
        shown = ", ".join(f"{mti} x{n}" for mti, n in by_mti.items()) or "none"
        lines.append(f"  frames {direction}: {shown}")
    for fault in summary["faults"]:
        what = fault.get("fault") or fault.get("type")
        lines.append(f"  {fault['name'] or what}: {what} acted {fault['acted']} times")
    return "\n".join(lines)

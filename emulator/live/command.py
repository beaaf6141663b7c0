"""``posemu acquirer FILE --listen HOST:PORT``: the scenario's bank on a real socket.

The first line of standard output is ``LISTEN <host>:<port>``; the acquirer serves until
SIGINT, SIGTERM or ``--duration``, then prints its report (or one JSON object with
``--json``). Exit status: 0 nothing unexpected, 1 an anomaly not in ``[expect]``, 2 bad
input, 3 I/O (the address in use, a certificate unreadable).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import signal
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from devices.errors import DeviceError, UsageError
from devices.net.framing import FRAMINGS, Framing

if TYPE_CHECKING:
    from devices.printer.virtual import VirtualPrinter
    from emulator.scenario.model import Scenario

__all__ = ["add_parser", "add_serving_flags", "checked_framing", "parse_address", "run_command",
           "startup_frozen", "tls_server_context"]


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """The ``acquirer`` sub-command's parser."""
    live: argparse.ArgumentParser = commands.add_parser(
        "acquirer", help="serve the scenario's bank on a real TCP socket, judged from outside")
    live.add_argument("path", metavar="FILE")
    live.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                      help="address to listen on (port 0 picks a free one; default "
                           "127.0.0.1:0)")
    live.add_argument("--framing", default="len2", metavar="F",
                      help=f"length header: {', '.join(FRAMINGS)}, each with an optional "
                           "+self (default len2)")
    live.add_argument("--tpdu", action="store_true",
                      help="a 5-byte TPDU before each message, swapped in the answer")
    live.add_argument("--tls-cert", type=Path, metavar="FILE", help="serve TLS: certificate")
    live.add_argument("--tls-key", type=Path, metavar="FILE", help="serve TLS: private key")
    live.add_argument("--tls-client-ca", type=Path, metavar="FILE",
                      help="mutual TLS: clients must show a certificate signed by this CA")
    live.add_argument("--printer", metavar="pty[?baudrate=N]",
                      help="also run the virtual ESC/POS printer the terminal prints on "
                           "(second line 'PTY <path>'); receipts are matched to postings")
    add_serving_flags(live, "the report")
    return live


def add_serving_flags(parser: argparse.ArgumentParser, report: str) -> None:
    """``--trace``, ``--duration``, ``--json`` and ``--debug``: a live server's (the
    acquirer's, the proxy's); ``report`` names what it prints at the end."""
    parser.add_argument("--trace", type=Path, metavar="FILE",
                        help="stream the trace here as it happens (JSON Lines, flushed per "
                             "event)")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--json", action="store_true", help=f"{report} as one JSON object")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks on errors")


def checked_framing(args: argparse.Namespace) -> Framing:
    """``--framing``/``--tpdu`` as a Framing, ``--duration`` checked; UsageError otherwise."""
    try:
        framing = Framing.parse(args.framing, tpdu=args.tpdu)
    except ValueError as exc:
        raise UsageError(f"--framing: {exc}") from exc
    if args.duration is not None and not args.duration > 0:
        raise UsageError(f"--duration must be more than 0 seconds, not {args.duration}")
    return framing


def parse_address(text: str, what: str = "--listen") -> tuple[str, int]:
    """``HOST:PORT`` to (host, port); UsageError otherwise."""
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"{what} must be HOST:PORT (e.g. 127.0.0.1:8583), not {text!r}")
    return host.strip("[]"), int(port)


def tls_server_context(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    """A TLS server context; with ``client_ca``, clients must show a certificate it signed.
    An unreadable file is an OSError (exit status 3)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except OSError as exc:
        raise DeviceError(f"{cert} / {key}: cannot load the certificate and key: "
                          f"{exc.strerror or exc}") from exc
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        try:
            context.load_verify_locations(client_ca)
        except OSError as exc:
            raise DeviceError(f"{client_ca}: cannot load the client CA: "
                              f"{exc.strerror or exc}") from exc
    return context


def parse_printer(spec: str) -> int:
    """``pty[?baudrate=N]`` to the baud rate (9600 by default); UsageError otherwise."""
    kind, _, query = spec.partition("?")
    name, _, value = query.partition("=")
    if kind != "pty" or (query and (name != "baudrate" or not value.isdigit())):
        raise UsageError(f"--printer must be pty[?baudrate=N], not {spec!r}")
    return int(value) if query else 9600


def virtual_printer(scenario: Scenario, baudrate: int) -> VirtualPrinter:
    """The virtual printer of ``--printer pty``, with the scenario's ``[printer]``."""
    from devices.printer.virtual import VirtualPrinter  # noqa: PLC0415

    try:
        return VirtualPrinter(paper_m=scenario.printer.paper_m,
                              lines_per_s=scenario.printer.lines_per_s, baudrate=baudrate)
    except ValueError as exc:
        raise UsageError(f"--printer: {exc}") from exc


def run_command(args: argparse.Namespace) -> int:
    """Serve, then report; the exit status."""
    from emulator.live.acquirer import LiveAcquirer  # noqa: PLC0415  (loads the engine)
    from emulator.scenario.load import load_scenario  # noqa: PLC0415

    host, port = parse_address(args.listen)
    framing = checked_framing(args)
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    if args.tls_client_ca is not None and args.tls_cert is None:
        raise UsageError("--tls-client-ca needs --tls-cert and --tls-key")
    baudrate = None if args.printer is None else parse_printer(args.printer)
    scenario = load_scenario(args.path)
    tls = None if args.tls_cert is None else tls_server_context(
        args.tls_cert, args.tls_key, args.tls_client_ca)
    printer = None if baudrate is None else virtual_printer(scenario, baudrate)
    out: IO[bytes] | None = None if args.trace is None else open(args.trace, "wb")  # noqa: SIM115
    try:
        acquirer = LiveAcquirer(scenario, framing, tls, out, printer=printer)

        def ready(address: tuple[str, int]) -> None:
            print(f"LISTEN {address[0]}:{address[1]}", flush=True)
            if printer is not None:
                print(f"PTY {printer.path}", flush=True)

        async def serve() -> Any:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, acquirer.stop)
            return await acquirer.serve(host, port, duration_s=args.duration, ready=ready)

        with startup_frozen():
            result = asyncio.run(serve())
    finally:
        if out is not None:
            out.close()
        if printer is not None:
            printer.close()
    if args.json:
        print(json.dumps(result.to_json()), flush=True)
    else:
        print(report(result.to_json()), flush=True)
    return 0 if result.passed else 1


@contextmanager
def startup_frozen() -> Iterator[None]:
    """Inside, what was held before (modules, the scenario, the wired unit) is left out
    of garbage collections: the collector scans only what serving allocates (about a
    third less collection time under load, docs/performance.md); back as before after."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def report(data: dict[str, Any]) -> str:
    """The human report: postings, balances, anomalies, notes, the verdict."""
    lines = [f"{data['name']}: served {data['listen']} for {data['uptime_s']:.1f} s, "
             f"{data['events']} events"]
    for p in data["postings"]:
        state = "reversed" if p["reversed"] else "stands"
        lines.append(f"  posted {p['kind']} {p['amount']} {p['card']} terminal "
                     f"{p['terminal_id']} STAN {p['stan']} RRN {p['rrn']}: {state}")
    lines.append("  balances: " + ", ".join(f"{k} {v}" for k, v in data["balances"].items()))
    for a in data["anomalies"]:
        lines.append(f"  ANOMALY {a['kind']} (terminal {a['terminal_id']} STAN {a['stan']}): "
                     f"{a['detail']}")
    for n in data["notes"]:
        lines.append(f"  note {n['kind']} (terminal {n['terminal_id']} STAN {n['stan']}): "
                     f"{n['detail']}")
    lines.extend(f"  expected: {f}" for f in data["failures"])
    lines.append(f"{data['verdict'].upper()}")
    return "\n".join(lines)

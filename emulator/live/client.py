"""``posemu run FILE --acquirer tcp://HOST:PORT[?framing=F&tpdu=1&tls=1]``: posemu's
terminal, in real time, against an acquirer elsewhere.

The world is the usual one (:class:`~emulator.engine.world.World`), on a
:class:`~devices.simkit.realtime.LoopEnvironment`, with a
:class:`~devices.net.tcp.TcpLink` for transport and no bank of its own. Faults of the bank
or the network belong to the acquirer (``posemu acquirer`` serves them) and are refused
here.

The run is judged from the terminal's side: the oracle takes as moved the money the
terminal believes moved (each sale or refund it showed approved and did not void);
what the bank really did is for the acquirer's own report to judge. So this side finds
what a terminal alone can (a receipt missing, a message still owed) and the acquirer's
outside oracle the rest (money posted behind a lost answer, a purchase charged twice).
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, urlsplit

from devices.errors import ScenarioError, UsageError
from devices.net.framing import Framing
from devices.net.tcp import TcpLink, TcpTransport
from devices.simkit.realtime import LoopEnvironment
from emulator.engine.trace import Event
from emulator.engine.wiring import Parts, Shared, sim_printer, sim_terminal
from emulator.engine.world import World
from emulator.live.wire_faults import ProxyThread, proxy_rules

if TYPE_CHECKING:
    from devices.fault import ActiveFault
    from devices.ports import TraceSink, Transport
    from emulator.judge.result import Result
    from emulator.live.host_rules import Breach
    from emulator.scenario.model import Scenario

__all__ = ["Remote", "parse_url", "refuse_bank_faults", "remote_runner", "run_remote"]

_PARAMS = ("framing", "tpdu", "tls", "ca", "cert", "key")


class Remote:
    """Where to find the acquirer and how to speak to it."""

    def __init__(self, host: str, port: int, framing: Framing,
                 tls: ssl.SSLContext | None) -> None:
        self.address = (host, port)
        self.framing = framing
        self.tls = tls


def parse_url(url: str) -> Remote:
    """``tcp://HOST:PORT[?framing=F&tpdu=1&tls=1&ca=FILE&cert=FILE&key=FILE]``; UsageError
    naming what is wrong otherwise (an unreadable certificate file: OSError)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "tcp" or not parts.hostname or port is None or parts.path not in ("",
                                                                                          "/"):
        raise UsageError(f"--acquirer must be tcp://HOST:PORT[?framing=..&tpdu=1&tls=1], "
                         f"not {url!r}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(_PARAMS))
    if unknown:
        raise UsageError(f"--acquirer: unknown parameter {unknown[0]!r}; one of: "
                         f"{', '.join(_PARAMS)}")
    one = {k: v[-1] for k, v in query.items()}
    try:
        framing = Framing.parse(one.get("framing", "len2").replace(" ", "+"),  # '+' decoded
                                tpdu=_flag(one, "tpdu"))
    except ValueError as exc:
        raise UsageError(f"--acquirer: {exc}") from exc
    tls = None
    if _flag(one, "tls") or "ca" in one or "cert" in one:
        tls = ssl.create_default_context(cafile=one.get("ca"))
        if "cert" in one:
            tls.load_cert_chain(one["cert"], one.get("key"))
    return Remote(parts.hostname, port, framing, tls)


def _flag(params: dict[str, str], name: str) -> bool:
    value = params.get(name, "0")
    if value not in ("0", "1"):
        raise UsageError(f"--acquirer: {name} must be 0 or 1, not {value!r}")
    return value == "1"


def refuse_bank_faults(scenario: Scenario) -> None:
    """ScenarioError for the first fault of the bank: the acquirer's (the network's act in
    a fault proxy, :mod:`emulator.live.wire_faults`)."""
    for fault in scenario.faults:
        if fault.fault.startswith("bank."):
            raise ScenarioError(
                f"{fault.fault} belongs to the acquirer, not to this terminal: serve it with "
                "posemu acquirer (or run without --acquirer)", path=scenario.path,
                key=f"faults[{fault.index}].fault")


class NoBank:
    """The acquirer endpoint of a run whose acquirer is elsewhere: nothing here."""

    def apply(self, fault: ActiveFault) -> None:
        """Never called: bank faults are refused."""

    def clear(self, fault: ActiveFault) -> None:
        """Never called: bank faults are refused."""


class RemoteWorld(World):
    """A run whose terminal talks to an acquirer elsewhere, judged from the terminal's side."""

    def believed(self) -> Iterable[Event]:
        """The money the terminal believes moved, read off its kept trace: a posting under
        the first key of each sale or refund it showed approved for the amount shown,
        unless a void it showed done targets it."""
        keys: dict[str, tuple[str, str]] = {}
        shown: dict[str, tuple[str, int]] = {}
        voided: set[str] = set()
        for event in self.trace:
            f = event.fields
            if event.name == "terminal.request_sent" and f["step"] not in keys:
                keys[f["step"]] = (f["stan"], f["f7"])
            elif event.name == "terminal.txn_done":
                if f["result"] in ("approved", "refunded") and f.get("amount_minor"):
                    kind = "sale" if f["result"] == "approved" else "refund"
                    shown[f["step"]] = (kind, int(f["amount_minor"]))
                elif f["result"] == "voided" and f.get("target"):
                    voided.add(f["target"])
        return [
            Event(self.env.now, "bank.posted", {"kind": kind, "stan": keys[step][0],
                                               "f7": keys[step][1], "amount_minor": amount})
            for step, (kind, amount) in shown.items() if step in keys and step not in voided
        ]


def run_remote(scenario: Scenario, url: str | Remote, speed: float = 1.0,
               printer: str | None = None) -> Result:
    """Run ``scenario``'s terminal against the acquirer at ``url``, in real time (``speed``
    simulated seconds per second), printing on the serial ``printer`` if given (as
    ``--printer``; a ``posemu acquirer --printer pty``'s); judged from the terminal's side."""
    refuse_bank_faults(scenario)
    remote = parse_url(url) if isinstance(url, str) else url
    rules = proxy_rules(scenario, remote.tls is not None, speed)
    if rules:  # the network faults act in a fault proxy between the terminal and the host
        with ProxyThread(remote.address, remote.framing, rules, scenario.seed) as proxy:
            return _run(scenario, Remote(*proxy.address, remote.framing, None), speed,
                        printer)
    return _run(scenario, remote, speed, printer)


def _run(scenario: Scenario, remote: Remote, speed: float, printer: str | None) -> Result:
    env = LoopEnvironment(speed)
    if printer is not None:
        return _with_printer(scenario, remote, env, printer)

    made: list[TcpTransport] = []
    result = RemoteWorld(scenario, env=env, parts=remote_parts(env, remote, made)).run()
    return with_host_verdicts(result, made, scenario.policy.response_timeout_s)


def with_host_verdicts(result: Result, transports: list[TcpTransport],
                       timeout_s: float) -> Result:
    """``result`` failing with each host rule the transports' messages break
    (:mod:`emulator.live.host_rules`)."""
    found = [str(b) for b in host_breaches(transports, timeout_s)]
    return dataclasses.replace(result, failures=(*result.failures, *found)) if found else result


class Logged(Protocol):
    """A terminal's transport that logs its frames (time, sent, frame)."""

    log: list[tuple[float, bool, bytes]]


def host_breaches(transports: Iterable[Logged], timeout_s: float) -> list[Breach]:
    """Each host rule the transports' messages break (:mod:`emulator.live.host_rules`)."""
    from emulator.live.host_rules import judge_host, messages_from_log  # noqa: PLC0415

    return [b for t in transports for b in judge_host(messages_from_log(t.log), timeout_s)]


def remote_parts(
    env: LoopEnvironment, remote: Remote, made: list[Logged] | list[TcpTransport] | None = None,
) -> Parts[Any, TcpLink, NoBank, Any]:
    """The one wiring's parts for a terminal whose acquirer is at ``remote``: a TCP
    transport each (kept in ``made`` when given), no bank here."""

    def tcp(shared: Shared, trace: TraceSink) -> TcpLink:
        transport = TcpTransport(env, trace, remote.address, remote.framing, remote.tls)
        if made is not None:
            made.append(transport)
        return TcpLink(transport)

    def no_bank(shared: Shared, trace: TraceSink, transport: Transport) -> NoBank:
        return NoBank()

    return Parts(sim_printer, tcp, no_bank, sim_terminal)


def _with_printer(scenario: Scenario, remote: Remote, env: LoopEnvironment,
                  spec: str) -> Result:
    """A run whose printer is on a serial port: it ends once the terminal is idle (the
    printer's poller would keep it going), as a bench run does."""
    from emulator.engine import bench  # noqa: PLC0415  (loads pyserial when the port opens)

    bench.refuse_printer_faults(scenario)
    shell = bench.Bench(scenario, spec)
    try:
        made: list[TcpTransport] = []
        world = RemoteWorld(scenario, env=env, printer=shell.make_printer,
                             parts=remote_parts(env, remote, made))
        until = (scenario.until_s if scenario.until_s is not None
                 else env.process(bench.until_idle(world)))
        return with_host_verdicts(world.run(until=until), made,
                                  scenario.policy.response_timeout_s)
    finally:
        shell.close()


def remote_runner(url: str, speed: float | None, scenarios: list[Scenario],
                  printer: str | None = None) -> Callable[[Scenario], Result]:
    """``posemu run --acquirer``: everything checked before anything runs; the runner."""
    if speed is not None and not speed > 0:
        raise UsageError(f"--speed must be more than 0, not {speed}")
    remote = parse_url(url)
    for scenario in scenarios:
        refuse_bank_faults(scenario)
        proxy_rules(scenario, remote.tls is not None)  # refused before anything runs
    return lambda scenario: run_remote(scenario, remote, speed or 1.0, printer)

"""The scenario's ``network.*`` faults on posemu's side of a real socket: as rules of the
fault proxy (:mod:`emulator.live.proxy`) that posemu's terminals connect through.

:func:`proxy_rules` turns the faults into rules (time triggers only: ``at_s``, ``for_s``,
scaled to real seconds) and refuses the rest; :class:`ProxyThread` serves such a proxy on
127.0.0.1 in a thread of its own, for a run whose own loop is the terminal's.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from devices.errors import ScenarioError
from emulator.live.proxy import ProxyServer
from emulator.live.proxy_rules import Rule, make_rule

if TYPE_CHECKING:
    from devices.net.framing import Framing
    from emulator.scenario.model import Scenario

__all__ = ["ProxyThread", "proxy_rules"]

START_TIMEOUT_S = 10.0


def proxy_rules(scenario: Scenario, tls: bool, speed: float = 1.0,
                refuse: str | None = None) -> list[Rule]:
    """The proxy rules of the scenario's ``network.*`` faults (``at_s`` and ``for_s``
    divided by ``speed``); ScenarioError for an event trigger, network faults over TLS,
    and with ``refuse`` (why they cannot act) a fault of another device (otherwise left
    to the terminal)."""
    rules = []
    for spec in scenario.faults:
        where = f"faults[{spec.index}]"
        if not spec.fault.startswith("network."):
            if refuse is None:
                continue
            raise ScenarioError(f"{spec.fault} {refuse}", path=scenario.path,
                                key=f"{where}.fault")
        if spec.on is not None:
            raise ScenarioError("network faults on a live run trigger on time (at_s, for_s), "
                                "not on events", path=scenario.path, key=f"{where}.on")
        if tls:
            raise ScenarioError("network faults need a plain TCP host (the proxy reads the "
                                "frames)", path=scenario.path, key=f"{where}.fault")
        entry: dict[str, Any] = {"fault": spec.fault, **spec.params,
                                 "at_s": (spec.at_s or 0.0) / speed}
        if spec.for_s is not None:
            entry["for_s"] = spec.for_s / speed
        try:
            rule = make_rule(entry, where)
        except ValueError as exc:
            key, _, message = str(exc).partition(": ")
            raise ScenarioError(message, path=scenario.path, key=key) from exc
        rule.name = where
        rules.append(rule)
    return rules


class ProxyThread:
    """A fault proxy to ``upstream`` on 127.0.0.1 (a free port), served by a thread:
    ``with ProxyThread(...) as proxy:`` gives ``proxy.address``; ``proxy.summary`` after."""

    def __init__(self, upstream: tuple[str, int], framing: Framing, rules: list[Rule],
                 seed: int) -> None:
        self.upstream = upstream
        self.framing = framing
        self.rules = tuple(rules)
        self.seed = seed
        self.address: tuple[str, int] = ("", 0)
        self.summary: dict[str, Any] = {}
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="posemu-proxy", daemon=True)

    def __enter__(self) -> ProxyThread:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or self._error is not None:
            raise OSError(f"the fault proxy did not start: {self._error}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(START_TIMEOUT_S)

    def _main(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            proxies = ProxyServer(self.framing, self.seed)
            proxy = await proxies.create("run", "127.0.0.1:0",
                                         f"{self.upstream[0]}:{self.upstream[1]}",
                                         rules=self.rules)
            self.address = proxy.listen
            self._ready.set()
            await self._stop.wait()
            await proxies.close()
            self.summary = proxies.summary()

        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported by __enter__
            self._error = exc
        finally:
            self._ready.set()

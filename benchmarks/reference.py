"""The yardstick: one posemu sale's transaction shape as a bare simpy model.

One terminal does back-to-back sales: card read (1.5 s), PIN (3.0 s), the
request over a link (a simpy Store per direction, each message delivered by a
0.12 s timeout), the host processing it (0.2 s) and answering over the link,
three receipt lines printed (0.05 s each), then the next sale. It models the
number and kind of simpy events of a sale, nothing else: no ISO 8583 frames or
MACs, no ESC/POS bytes, no ledger, no trace, no faults, no oracle. No posemu
imports, so it measures what simpy alone costs on this machine.
"""

from __future__ import annotations

import time
from collections.abc import Generator

import simpy

CARD_S, PIN_S, LATENCY_S, HOST_S, LINE_S, LINES = 1.5, 3.0, 0.12, 0.2, 0.05, 3
Process = Generator[simpy.Event, object, None]


def _send(env: simpy.Environment, inbox: simpy.Store, message: object) -> None:
    """Deliver ``message`` into ``inbox`` after the link latency."""

    def deliver(_event: simpy.Event) -> None:
        inbox.put(message)

    env.timeout(LATENCY_S).callbacks.append(deliver)


def _host(env: simpy.Environment, to_bank: simpy.Store, to_terminal: simpy.Store) -> Process:
    while True:
        request = yield to_bank.get()
        yield env.timeout(HOST_S)
        _send(env, to_terminal, ("approved", request))


def _terminal(env: simpy.Environment, sales: int, to_bank: simpy.Store,
              to_terminal: simpy.Store) -> Process:
    for sale in range(sales):
        yield env.timeout(CARD_S)
        yield env.timeout(PIN_S)
        _send(env, to_bank, sale)
        yield to_terminal.get()
        for _ in range(LINES):
            yield env.timeout(LINE_S)


def run_reference(sales: int) -> float:
    """Run ``sales`` back-to-back sales; the simulated seconds they took."""
    env = simpy.Environment()
    to_bank, to_terminal = simpy.Store(env), simpy.Store(env)
    env.process(_host(env, to_bank, to_terminal))
    env.run(until=env.process(_terminal(env, sales, to_bank, to_terminal)))
    return float(env.now)


def reference_rates(sales: int, runs: int) -> list[float]:
    """Simulated sales per wall-clock second, one value per run."""
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        run_reference(sales)
        rates.append(sales / (time.perf_counter() - started))
    return rates

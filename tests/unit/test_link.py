"""The link and the host count what is still on its way to the bank: a fleet judges a
settlement's steps only when nothing can still post or reverse their money."""

from __future__ import annotations

import random
from datetime import datetime

import simpy

from devices.bank.acquirer import Acquirer
from devices.bank.host import Host
from devices.fault import ActiveFault
from devices.net.link import TO_BANK, TO_TERMINAL, Link
from emulator.engine.trace import Trace


def link() -> tuple[simpy.Environment, Link]:
    env = simpy.Environment()
    return env, Link(env, random.Random(0), Trace(env), latency_s=1.0)


def test_every_copy_counts_until_it_is_delivered() -> None:
    env, wire = link()
    wire.apply(ActiveFault("network.duplicate", {"direction": TO_BANK, "count": 1}))
    wire.send(b"one", TO_BANK)
    wire.send(b"two", TO_TERMINAL)
    assert wire.in_flight == {TO_BANK: 2, TO_TERMINAL: 1}
    env.run(until=1.5)  # the first copies are in, the duplicate one latency later
    assert wire.in_flight == {TO_BANK: 1, TO_TERMINAL: 0}
    env.run()
    assert wire.in_flight == {TO_BANK: 0, TO_TERMINAL: 0}
    assert len(wire.inbox[TO_BANK].items) == 2


def test_a_frame_lost_on_the_way_no_longer_counts() -> None:
    env, wire = link()
    wire.send(b"one", TO_BANK)
    env.run(until=0.5)
    wire.apply(ActiveFault("network.down", {}))
    wire.send(b"dropped at once", TO_BANK)  # lost when sent: never on its way
    assert wire.in_flight[TO_BANK] == 1
    env.run()
    assert wire.in_flight[TO_BANK] == 0
    assert not wire.inbox[TO_BANK].items


def test_the_host_counts_a_request_until_it_has_weighed_it() -> None:
    env, wire = link()
    trace = Trace(env)
    host = Host(env, trace, wire.bank_end, Acquirer(accounts={}), datetime(2026, 1, 1),
                processing_s=2.0)
    wire.send(b"not a message", TO_BANK)
    env.run(until=1.5)  # delivered at 1.0, weighed at 3.0
    assert (wire.in_flight[TO_BANK], host.weighing) == (0, 1)
    env.run(until=3.5)
    assert host.weighing == 0
    assert [e.name for e in trace if e.name.startswith("bank.")][:1] == ["bank.request_received"]


def test_a_closed_or_reset_connection_loses_the_answer_in_the_simulation() -> None:
    for kind in ("network.close", "network.reset"):
        env, wire = link()
        wire.apply(ActiveFault(kind, {"count": 1}))
        wire.send(b"request", TO_BANK)
        wire.send(b"answer", TO_TERMINAL)
        wire.send(b"next answer", TO_TERMINAL)
        env.run(until=2)
        assert wire.inbox[TO_BANK].items == [b"request"]
        assert wire.inbox[TO_TERMINAL].items == [b"next answer"]

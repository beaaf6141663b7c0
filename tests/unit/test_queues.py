"""Mailbox and Turns fire their events exactly when simpy's Store and Resource would.

Each property runs the same random workload twice, once on the light queue and once on
simpy's, and compares what every process saw and when, with witnesses stepping at every
whole second so that the order of steps at one moment counts too.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import simpy
from hypothesis import example, given, settings
from hypothesis import strategies as st

from devices.simkit.queues import Mailbox, Turns, any_of

Log = list[tuple[float, str]]
Steps = Generator[simpy.Event, Any, None]


def _witnesses(env: simpy.Environment, seen: Log, until: int) -> None:
    def witness(at: int) -> Steps:
        yield env.timeout(at)
        for _ in range(6):
            seen.append((env.now, "witness"))
            yield env.timeout(0)

    for at in range(until):
        env.process(witness(at))


def _arrive(env: simpy.Environment, at: int, later: int) -> Steps:
    """Wait until ``at``, then ``later`` more steps at that moment."""
    yield env.timeout(at)
    for _ in range(later):
        yield env.timeout(0)


# -- Turns and a Resource of capacity 1 ------------------------------------------------------

def turn_order(jobs: list[tuple[int, int, int]], light: bool) -> Log:
    """When each job ``(at, hold, later)`` asks, gets its turn and ends."""
    env = simpy.Environment()
    seen: Log = []
    turns, lock = Turns(env), simpy.Resource(env, capacity=1)

    def job(name: str, at: int, hold: int, later: int) -> Steps:
        yield from _arrive(env, at, later)
        seen.append((env.now, f"{name} asks"))
        if light:
            yield turns.take()
        else:
            request = lock.request()
            yield request
        seen.append((env.now, f"{name} holds"))
        yield env.timeout(hold)
        seen.append((env.now, f"{name} ends"))
        if light:
            turns.done()
        else:
            lock.release(request)

    for i, (at, hold, later) in enumerate(jobs):
        env.process(job(f"job{i}", at, hold, later))
    _witnesses(env, seen, 8)
    env.run()
    return seen


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 2), st.integers(0, 3)),
                min_size=1, max_size=6))
def test_turns_are_handed_out_as_a_simpy_resource_hands_them_out(
    jobs: list[tuple[int, int, int]],
) -> None:
    light = turn_order(jobs, light=True)
    assert light == turn_order(jobs, light=False)
    assert sum(what.endswith("holds") for _, what in light) == len(jobs)


# -- Mailbox and an unbounded Store ----------------------------------------------------------

_put = st.tuples(st.just("put"), st.integers(0, 4), st.integers(0, 3), st.integers(0, 2))
_get = st.tuples(st.just("get"), st.integers(0, 4), st.integers(0, 3), st.integers(0, 3))
_clear = st.tuples(st.just("clear"), st.integers(0, 4), st.integers(0, 3), st.just(0))


def mail_order(acts: list[tuple[str, int, int, int]], light: bool) -> Log:
    """Puts (``put``, at, later, copies), takers that give up after ``patience`` seconds
    and cancel (``get``, at, later, patience, twice each) and clears, as each happens."""
    env = simpy.Environment()
    seen: Log = []
    box: Mailbox | simpy.Store = Mailbox(env) if light else simpy.Store(env)

    def putter(name: str, at: int, later: int, copies: int) -> Steps:
        yield from _arrive(env, at, later)
        for copy in range(copies + 1):
            box.put(f"{name}.{copy}")
            seen.append((env.now, f"{name} put {copy}"))

    def taker(name: str, at: int, later: int, patience: int) -> Steps:
        yield from _arrive(env, at, later)
        for _ in range(2):
            get = box.get()
            got = yield get | env.timeout(patience)
            if get in got:
                seen.append((env.now, f"{name} took {get.value}"))
            else:
                get.cancel()
                seen.append((env.now, f"{name} gave up"))

    def clearer(name: str, at: int, later: int, _: int) -> Steps:
        yield from _arrive(env, at, later)
        seen.append((env.now, f"{name} cleared {list(box.items)}"))
        box.items.clear()

    kinds: dict[str, Callable[[str, int, int, int], Steps]] = {
        "put": putter, "get": taker, "clear": clearer}
    for i, (kind, *args) in enumerate(acts):
        env.process(kinds[kind](f"{kind}{i}", *args))
    _witnesses(env, seen, 10)
    env.run()
    seen.append((env.now, f"left {list(box.items)}, waiting {len(box.get_queue)}"))
    return seen


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_put, _put, _get, _get, _clear), min_size=1, max_size=8))
@example([("put", 1, 1, 1), ("get", 0, 0, 1), ("get", 1, 1, 1)])  # two puts, two waiting:
# the second put's step, not the first's, serves the second taker
@example([("put", 0, 0, 0), ("put", 0, 2, 0), ("get", 0, 0, 0), ("get", 0, 2, 0),
          ("put", 0, 2, 0)])  # put1's step, taken when nobody waited, serves get3 with
# put4's item, ahead of get3's patience
def test_a_mailbox_delivers_as_a_simpy_store_delivers(
    acts: list[tuple[str, int, int, int]],
) -> None:
    assert mail_order(acts, light=True) == mail_order(acts, light=False)


# -- any_of and simpy's AnyOf -------------------------------------------------------------

def race_order(racers: list[tuple[int, int, int, int]], light: bool) -> Log:
    """Racers ``(at, later, patience, put_at)`` wait at ``at`` for a mailbox item put at
    ``put_at`` or their patience running out, whichever comes first."""
    env = simpy.Environment()
    seen: Log = []
    box = Mailbox(env)

    def racer(name: str, at: int, later: int, patience: int, put_at: int) -> Steps:
        yield from _arrive(env, at, later)
        get, timer = box.get(), env.timeout(patience)
        if light:
            yield any_of(get, timer)
            first = "item" if get.processed else "timer"
        else:
            got = yield get | timer
            first = "item" if get in got else "timer"
        seen.append((env.now, f"{name}: {first}"))
        if first == "timer":
            get.cancel()

    def putter(name: str, at: int) -> Steps:
        yield env.timeout(at)
        box.put(name)

    for i, (at, later, patience, put_at) in enumerate(racers):
        env.process(racer(f"racer{i}", at, later, patience, put_at))
        env.process(putter(f"item{i}", put_at))
    _witnesses(env, seen, 10)
    env.run()
    return seen


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3), st.integers(0, 3),
                          st.integers(0, 6)), min_size=1, max_size=5))
def test_any_of_fires_as_simpy_any_of_fires(racers: list[tuple[int, int, int, int]]) -> None:
    assert race_order(racers, light=True) == race_order(racers, light=False)


def test_any_of_an_event_already_processed_and_a_failure() -> None:
    env = simpy.Environment()
    done, late = env.timeout(0), env.timeout(5)
    env.run(until=1)
    race = any_of(done, late)
    assert race.triggered
    env.run(until=2)
    assert race.processed
    assert not late.processed
    failing = env.event()
    race = any_of(failing, env.timeout(3))
    failing.fail(ValueError("no"))
    race.defused = True
    env.run(until=4)
    assert isinstance(race.value, ValueError)

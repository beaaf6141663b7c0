"""An agenda runs its instants exactly as timers made up front would, holding one event."""

from __future__ import annotations

import random
from collections.abc import Callable, Generator

import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.simkit.agenda import Agenda
from emulator.engine.fleet import run_fleet
from emulator.engine.world import run_scenario
from emulator.scenario.load import scenario_from_dict

TIMES = [0, 0.5, 1, 2, 2.5, 4, 5]  # few values: instants and what they start tie often
Build = Callable[[simpy.Environment, list[tuple[float, str]], Callable[[str], None]], object]


def timers(env: simpy.Environment, instants: list[tuple[float, str]],
           act: Callable[[str], None]) -> object:
    """What the agenda replaces: a timer for each instant, made now."""
    for at_s, label in instants:
        env.timeout(at_s).callbacks.append(lambda _e, label=label: act(label))
    return None


def agenda(env: simpy.Environment, instants: list[tuple[float, str]],
           act: Callable[[str], None]) -> object:
    return Agenda(env, instants, act)


def run(build: Build, instants: list[tuple[float, str]], seed: int,
        before: int) -> tuple[list[tuple[float, str]], float]:
    """What happens, in order: each instant starts timers, processes and events due at
    the listed times (so they tie with later instants), some made before the agenda."""
    env = simpy.Environment()
    rng = random.Random(seed)
    log: list[tuple[float, str]] = []

    def note(label: str) -> Callable[[simpy.Event], None]:
        return lambda _e: log.append((env.now, label))

    def worker(label: str) -> Generator[simpy.Event, object, None]:
        log.append((env.now, f"{label} began"))  # a process starts at once (urgent)
        yield env.timeout(rng.choice(TIMES))
        log.append((env.now, f"{label} ended"))

    def act(label: str) -> None:
        log.append((env.now, label))
        for n in range(rng.randrange(3)):
            env.timeout(rng.choice(TIMES)).callbacks.append(note(f"{label}.t{n}"))
        if rng.random() < 0.5:
            env.process(worker(f"{label}.p"))
        if rng.random() < 0.3:
            event = env.event()
            event.callbacks.append(note(f"{label}.e"))
            event.succeed()

    for n in range(before):  # timers of the devices, made before the steps
        env.timeout(rng.choice(TIMES)).callbacks.append(note(f"device{n}"))
    build(env, instants, act)
    env.run()
    return log, env.now


@settings(max_examples=300, deadline=None)
@given(times=st.lists(st.sampled_from(TIMES), max_size=12), seed=st.integers(0, 2**16),
       before=st.integers(0, 3))
def test_an_agenda_runs_as_timers_made_up_front(times: list[float], seed: int,
                                                before: int) -> None:
    instants = [(at_s, f"i{n}") for n, at_s in enumerate(times)]  # unsorted, with ties
    assert run(agenda, instants, seed, before) == run(timers, instants, seed, before)


def test_an_agenda_holds_one_event_until_its_instant() -> None:
    env = simpy.Environment()
    seen: list[tuple[float, int]] = []
    plan = Agenda(env, [(float(n), n) for n in range(1000)],
                  lambda n: seen.append((env.now, n)))
    assert (len(plan), env.peek(), len(env._queue)) == (1000, 0.0, 1)
    env.run(until=500.5)
    assert (len(plan), seen[-1]) == (499, (500.0, 500))
    assert len(env._queue) == 2  # the next instant, and the run's own end at 500.5
    env.run()
    assert (len(plan), len(seen), env.now) == (0, 1000, 999.0)


def test_a_fault_listed_at_a_steps_instant_comes_first() -> None:
    """Faults are listed on the queue before steps, as when each had its timer made at
    build, faults first: the terminal loses power before it takes the sale, and makes
    it after the reboot (the other way round, the power loss would cancel it)."""
    raw = {
        "format": 1, "name": "tie",
        "cards": [{"id": "a", "pan": "4111111111111111", "balance": "100.00"}],
        "steps": [{"id": "s1", "do": "sale", "card": "a", "amount": "1.00", "at_s": 10}],
        "faults": [{"fault": "terminal.power_loss", "at_s": 10, "for_s": 5}],
    }
    result = run_scenario(scenario_from_dict(raw))
    assert [s.end_state for s in result.steps] == ["approved"]
    started = next(e for e in result.trace if e.name == "terminal.txn_started")
    assert started.t == 15.0  # after the reboot
    fleet = run_fleet(scenario_from_dict(raw), 2)
    assert dict(fleet.end_states) == {"approved": 2}

"""start_now: a generator run in the caller's step up to its first wait."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from devices.simkit.steps import start_now


def test_a_generator_that_never_waits_runs_at_once_and_costs_no_step() -> None:
    env = simpy.Environment()
    seen: list[str] = []

    def quick() -> Generator[simpy.Event, Any, None]:
        seen.append("done")
        return
        yield  # a generator

    assert start_now(env, quick()) is None
    assert seen == ["done"]
    assert env.peek() == float("inf")  # nothing scheduled


def test_a_generator_that_waits_goes_on_as_a_process_with_the_values_sent_in() -> None:
    env = simpy.Environment()
    seen: list[object] = []

    def waits() -> Generator[simpy.Event, Any, None]:
        seen.append(("before", env.now))
        got = yield env.timeout(2, value="first")
        seen.append((got, env.now))
        got = yield env.timeout(1, value="second")
        seen.append((got, env.now))

    process = start_now(env, waits())
    assert seen == [("before", 0)]  # ran now, before any step
    assert isinstance(process, simpy.Process)
    env.run()
    assert seen == [("before", 0), ("first", 2), ("second", 3)]


def test_a_failed_event_is_thrown_into_the_generator() -> None:
    env = simpy.Environment()
    seen: list[str] = []

    def catches() -> Generator[simpy.Event, Any, None]:
        failing = env.event()
        failing.fail(ValueError("lost"))
        try:
            yield failing
        except ValueError as exc:
            seen.append(str(exc))

    start_now(env, catches())
    env.run()
    assert seen == ["lost"]

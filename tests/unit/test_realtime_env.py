"""LoopEnvironment: simpy time from an asyncio loop; I/O enters at the moment it came."""

from __future__ import annotations

import asyncio

import pytest

from devices.simkit.realtime import LoopEnvironment


def test_events_happen_in_order_at_their_real_moments():
    env = LoopEnvironment(speed=100)  # 1 simulated second = 10 ms
    seen: list[tuple[str, float]] = []

    def proc(name: str, delay: float):
        yield env.timeout(delay)
        seen.append((name, env.now))

    env.process(proc("late", 2.0))
    env.process(proc("early", 1.0))
    env.run()  # until nothing is left
    assert [name for name, _ in seen] == ["early", "late"]
    assert seen[1][1] == pytest.approx(2.0)


def test_io_enters_when_it_happens_and_wakes_the_loop():
    env = LoopEnvironment()
    got: list[float] = []
    box = env.event()
    box.callbacks.append(lambda e: got.append(env.now))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, lambda: env.deliver(box.succeed))
        env.hold()  # an outside operation: the run waits for it
        loop.call_later(0.03, env.release)
        await env.run_async()

    asyncio.run(main())
    assert got
    assert 0.02 <= got[0] < 0.5
    assert env.now >= 0.03


def test_a_stop_event_ends_the_run_with_its_value():
    env = LoopEnvironment(speed=1000)
    stop = env.timeout(5, value="done")
    env.timeout(50)  # still scheduled: the stop comes first
    assert env.run(until=stop) == "done"
    assert 5 <= env.now < 50  # the loop's clock, a little past the stop
    assert env.peek() == pytest.approx(50)


def test_speed_must_be_positive():
    with pytest.raises(ValueError, match="more than 0"):
        LoopEnvironment(speed=0)

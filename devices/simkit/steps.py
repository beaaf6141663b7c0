"""Running a process's first stretch in the caller's step.

``env.process(gen)`` starts ``gen`` one step later (an ``Initialize`` event), and its
end is one more step. :func:`start_now` runs ``gen`` at once up to its first wait and
makes a process of it only if it does wait: a request served in full without waiting
costs no simpy step. The order of what happens at one moment differs from
``env.process``'s (the generator runs before what is already scheduled for now), so
this is for paths whose order within a moment is not pinned (the live acquirer's).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

__all__ = ["start_now"]


def start_now(env: simpy.Environment, gen: Generator[simpy.Event, Any, None]
              ) -> simpy.Process | None:
    """Run ``gen`` now up to its first wait; then as a process (returned), or None if it
    ended without waiting."""
    try:
        first = next(gen)
    except StopIteration:
        return None
    return env.process(_resume(first, gen))


def _resume(first: simpy.Event, gen: Generator[simpy.Event, Any, None]
            ) -> Generator[simpy.Event, Any, None]:
    """``gen`` on from its first wait, ``first``: the values of what it waits for sent in."""
    event = first
    while True:
        try:
            value = yield event
        except BaseException as exc:  # a failed event: thrown into gen, as a process would
            try:
                event = gen.throw(exc)
            except StopIteration:
                return
            continue
        try:
            event = gen.send(value)
        except StopIteration:
            return

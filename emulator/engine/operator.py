"""The cashier's reactions: chained steps (``[[steps]] after``), started ``delay_s``
after the step they follow showed its outcome, or skipped.

A chained step waits for the first ``terminal.txn_done`` of its ``after`` step. If it
has ``if_screen`` and that outcome's screen (:func:`~emulator.scenario.screens.screen_of`)
is not one of them, the cashier does not run it: ``operator.skipped`` is traced (and so
for every step chained after a skipped one). A chained step still waiting when the run
ends is traced skipped then. Steps at fixed times are the world's :class:`Agenda`'s;
a scenario without chained steps adds nothing to the trace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import simpy

from devices.ports import TraceBus
from emulator.scenario.screens import screen_of

if TYPE_CHECKING:
    from emulator.engine.trace import Event
    from emulator.scenario.model import StepSpec


class Operator:
    """Starts each chained step of ``steps`` on its ``after`` step's outcome."""

    def __init__(
        self, env: simpy.Environment, trace: TraceBus, submit: Callable[[StepSpec], None],
        steps: tuple[StepSpec, ...],
    ) -> None:
        self.env = env
        self.trace = trace
        self.submit = submit
        self.waiting: dict[str, list[StepSpec]] = {}
        """Step id -> the chained steps waiting for its outcome."""
        self.due = 0
        """Chained steps whose delay is running (not yet handed to the terminal)."""
        for step in steps:
            if step.after is not None:
                self.waiting.setdefault(step.after, []).append(step)
        if self.waiting:
            trace.subscribe("terminal.txn_done", self._shown)

    @property
    def idle(self) -> bool:
        """No chained step is due to start."""
        return not self.due

    def finish(self) -> None:
        """The run ended: every chained step still waiting is traced skipped."""
        for after in list(self.waiting):
            self._skip(after, "no outcome shown before the run ended")

    def _shown(self, event: Event) -> None:
        after = event.fields["step"]
        if after not in self.waiting:
            return
        screen = screen_of(event.fields)
        for step in self.waiting.pop(after):
            if step.if_screen is not None and screen not in step.if_screen:
                self.trace.emit("operator.skipped", step=step.id, after=after, screen=screen)
                self._skip(step.id, f"{step.id} was skipped")
                continue
            self.due += 1
            timer = self.env.timeout(step.delay_s)
            timer.callbacks.append(self._starter(step))
        if not self.waiting:
            self.trace.unsubscribe("terminal.txn_done", self._shown)

    def _starter(self, step: StepSpec) -> Callable[[simpy.Event], None]:
        def start(_event: simpy.Event) -> None:
            self.due -= 1
            self.submit(step)
        return start

    def _skip(self, after: str, why: str) -> None:
        """Skip the steps chained after ``after`` (which will show nothing now)."""
        for step in self.waiting.pop(after, ()):
            self.trace.emit("operator.skipped", step=step.id, after=after, why=why)
            self._skip(step.id, f"{step.id} was skipped")

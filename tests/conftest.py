"""Test-suite-wide set-up: tests under tests/realtime/ are marked ``realtime``.

The suite is laid out by purpose: ``unit`` (a core or one component alone),
``scenarios`` (whole simulated runs, the pinned hashes among them), ``frontends``
(the command line, the pytest plugin, the API, the docs, the fuzzer, the benchmarks)
and ``realtime`` (a pseudo-terminal, a serial port, wall-clock runs). Run a part
with ``pytest tests/unit`` or leave the real-time tests out with ``-m "not realtime"``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REALTIME = Path(__file__).with_name("realtime")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if REALTIME in item.path.parents:
            item.add_marker(pytest.mark.realtime)

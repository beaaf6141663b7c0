"""Markers of the device tests."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hardware: needs a physical printer (POSEMU_PRINTER)")

"""docs/faults.md and docs/end-states.md cover the catalogue exactly."""

from __future__ import annotations

import re

from emulator.scenario.catalogue import ANOMALIES, CLEAN_END_STATES, FAULTS, RUN_ANOMALIES
from tests.support import DOCS


def test_every_fault_has_a_section_with_its_parameters() -> None:
    text = (DOCS / "faults.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^### `([a-z]+\.[a-z_]+)`\n(.*?)(?=^##|\Z)", text, re.M | re.S))
    assert set(sections) == set(FAULTS)
    for name, kind in FAULTS.items():
        for param in kind.params:
            assert f"| `{param.name}` |" in sections[name], (name, param.name)


def test_every_end_state_and_anomaly_is_explained() -> None:
    text = (DOCS / "end-states.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^### `([a-z_]+)`", text, re.M))
    assert headings == set(CLEAN_END_STATES) | set(ANOMALIES) | set(RUN_ANOMALIES)
    for anomaly in ANOMALIES.values():
        if anomaly.story:
            assert anomaly.story in text, anomaly.name

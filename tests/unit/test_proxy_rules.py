"""The fault proxy's rules (emulator/live/proxy_rules.py): MTI patterns, triggers by
frame count and time, and the errors for a bad fault or toxic."""

from __future__ import annotations

import pytest

from devices.errors import ScenarioError
from emulator.live.proxy_rules import load_proxy_file, make_rule, mti_matches, toxic_from_json


def test_mti_patterns():
    assert mti_matches((), None)
    assert mti_matches(("04xx",), "0401")
    assert not mti_matches(("04xx",), "0210")
    assert mti_matches(("0200", "0210"), "0210")
    assert not mti_matches(("0210",), None)


def test_the_nth_match_then_count_times_in_its_direction():
    rule = make_rule({"fault": "network.drop", "mti": "0210", "nth": 2, "count": 2,
                      "direction": "to_terminal"}, "f")
    seen = [rule.fires(d, m, 0.0) for d, m in (
        ("to_terminal", "0210"), ("to_bank", "0210"), ("to_terminal", "0810"),
        ("to_terminal", "0210"), ("to_terminal", "0210"), ("to_terminal", "0210"))]
    assert seen == [False, False, False, True, True, False]
    assert (rule.seen, rule.acted) == (4, 2)


def test_a_time_window():
    rule = make_rule({"fault": "network.duplicate", "at_s": 1.0, "for_s": 0.5}, "f")
    assert [rule.fires("to_bank", "0200", t) for t in (0.9, 1.0, 1.4, 1.5)] == [
        False, True, True, False]


@pytest.mark.parametrize(("entry", "message"), [
    ({"fault": "bank.timeout"}, "f.fault: the proxy acts on"),
    ({"fault": "network.drop", "on": "bank.request_received"}, "f.on: the proxy triggers"),
    ({"fault": "network.drop", "mti": "21"}, "f.mti: mti must be a 4-digit MTI"),
    ({"fault": "network.drop", "nth": -1}, "f.nth: must be a whole number of 0 or more"),
    ({"fault": "network.drop", "pieces": 3}, "f.pieces: not a key of network.drop"),
    ({"fault": "network.drop", "direction": "up"}, "f.direction: to_bank, to_terminal"),
])
def test_a_bad_rule_names_its_key(entry, message):
    with pytest.raises(ValueError, match="^" + message.replace(".", r"\.")):
        make_rule(entry, "f")


def test_toxics_from_json():
    toxic = toxic_from_json({"type": "latency", "attributes": {"latency": 5}})
    assert (toxic.name, toxic.stream, toxic.toxicity, toxic.attr("jitter")) == (
        "latency_downstream", "downstream", 1.0, 0.0)
    iso = toxic_from_json({"type": "network.corrupt", "stream": "upstream",
                           "attributes": {"mti": "0400", "field": 4}})
    assert iso.rule is not None
    assert (iso.rule.direction, iso.rule.mti, iso.rule.param("bytes")) == (
        "to_bank", ("0400",), 1)
    for bad, message in (({"type": "lag"}, "unknown toxic type"),
                         ({"type": "latency", "stream": "up"}, "stream must be"),
                         ({"type": "latency", "toxicity": 2}, "toxicity must be"),
                         ({"type": "slicer", "attributes": {"size": 1}}, "unknown attribute")):
        with pytest.raises(ValueError, match=message):
            toxic_from_json(bad)


def test_a_file_with_a_bad_fault_is_one_line_naming_it(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[[faults]]\nfault = "network.drop"\ncount = "two"\n')
    with pytest.raises(ScenarioError) as caught:
        load_proxy_file(path)
    assert str(caught.value) == (f"{path}: faults[0].count: must be a whole number of 0 or "
                                 "more, not 'two'")

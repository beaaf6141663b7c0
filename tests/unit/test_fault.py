"""The fault board: a fault acts while in force, and a used-up ``count`` takes it off."""

from __future__ import annotations

from collections import Counter

from devices.fault import ActiveFault, FaultBoard
from emulator.engine.world import World
from emulator.scenario.load import scenario_from_dict


def test_a_fault_leaves_the_board_when_its_count_is_used_up() -> None:
    board = FaultBoard()
    twice = ActiveFault("network.drop", {"count": 2})
    board.add(twice)
    board.consume(twice)
    assert board.first("network.drop") is twice
    board.consume(twice)
    assert (board.first("network.drop"), bool(board)) == (None, False)
    board.remove(twice)  # its clearing later finds it gone
    assert not board


def test_a_fault_without_count_stays_until_cleared() -> None:
    board = FaultBoard()
    every = ActiveFault("network.duplicate", {"count": 0})  # 0: every message while active
    board.add(every)
    for _ in range(5):
        board.consume(every)
    assert board.first("network.duplicate") is every
    board.remove(every)
    assert not board


def test_count_faults_act_and_then_leave_their_devices() -> None:
    """Faults without ``for_s`` are never cleared: once spent they must not stay in
    force, or every later frame and request passes over one more of them."""
    raw = {
        "format": 1, "name": "count faults",
        "cards": [{"id": "c", "pan": "4111111111111111", "balance": "100.00"}],
        "steps": [{"do": "sale", "card": "c", "amount": "1.00", "at_s": 600 * i}
                  for i in range(6)],
        "faults": [
            {"fault": "network.drop", "at_s": 0, "direction": "to_bank", "count": 1},
            {"fault": "network.duplicate", "at_s": 600, "direction": "to_bank", "count": 1},
            {"fault": "network.corrupt", "at_s": 1200, "direction": "to_terminal",
             "count": 1},
            {"fault": "bank.timeout", "at_s": 1800, "count": 1},  # withheld
            {"fault": "bank.respond", "at_s": 2400, "code": "05", "count": 2},
        ],
    }
    world = World(scenario_from_dict(raw))
    result = world.run()
    seen = Counter(e.name for e in result.trace)
    assert seen["network.lost"] == 1
    assert seen["network.corrupted"] == 1
    assert seen["bank.response_withheld"] == 1
    declined = [e for e in result.trace if e.name == "bank.response_sent"
                and e.fields["code"] == "05"]
    assert len(declined) == 2
    assert not world.link.faults
    assert not world.host.faults

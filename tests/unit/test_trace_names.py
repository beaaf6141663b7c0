"""File names for runs that share a stem: the trace folder's and the HTML report's."""

from __future__ import annotations

from emulator.engine.trace import unused_name


def test_a_taken_stem_gets_the_next_free_number_and_is_taken_in_turn() -> None:
    taken = {"index"}
    assert [unused_name(s, taken) for s in ("jam", "jam", "index", "jam")] == [
        "jam", "jam-2", "index-2", "jam-3"]
    assert taken == {"index", "jam", "jam-2", "index-2", "jam-3"}

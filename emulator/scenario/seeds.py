"""The one range of a seed, wherever it is given.

A scenario file's ``seed``, ``posemu run --seed`` and ``posemu fleet --seed``,
and the pytest plugin's ``--posemu-seed`` / ``posemu_seed`` all take an integer
from 0 to :data:`MAX_SEED`, the largest integer TOML can hold, so a seed given on
the command line can always be written into a scenario file.
"""

from __future__ import annotations

from argparse import ArgumentTypeError

MAX_SEED = 2**63 - 1
"""The largest seed: TOML integers are signed 64-bit."""

SEED_RANGE = f"an integer from 0 to {MAX_SEED}"
"""The range in words, for messages and docs."""


def parse_seed(text: str) -> int:
    """argparse (and ini) type of a seed; ArgumentTypeError naming the range otherwise."""
    try:
        seed = int(text)
    except ValueError:
        raise ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= seed <= MAX_SEED:
        raise ArgumentTypeError(f"must be {SEED_RANGE}, not {seed}")
    return seed

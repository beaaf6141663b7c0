"""The ranges of the printers' settings, shared by the shells and the command line.

Kept apart (constants only) so that the command line can check a flag without loading a
printer.
"""

from __future__ import annotations

MIN_BAUD, MAX_BAUD = 50, 4_000_000
"""A line speed (``serial:<device>?baudrate=N``, ``posemu printer --baudrate``); the
virtual printer takes those of them the system offers (``termios.B<N>``)."""
MIN_LINES_PER_S, MAX_LINES_PER_S = 0.01, 1e6
"""Print speed, lines per second."""
MAX_PAPER_M = 1e6
"""Paper on the roll, metres (from 0)."""

"""The ranges of the printers' settings, shared by the shells and the command line.

Kept apart (constants only) so that the command line can check a flag without loading a
printer.
"""

from __future__ import annotations

import termios

PTY_BAUD_RATES = tuple(r for r in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
                       if hasattr(termios, f"B{r}"))
"""The line speeds the virtual printer (``posemu printer --pty --baudrate``) offers."""
MIN_BAUD, MAX_BAUD = 50, 4_000_000
"""A real serial port's line speed (``serial:<device>?baudrate=N``)."""
MIN_LINES_PER_S, MAX_LINES_PER_S = 0.01, 1e6
"""Print speed, lines per second."""
MAX_PAPER_M = 1e6
"""Paper on the roll, metres (from 0)."""

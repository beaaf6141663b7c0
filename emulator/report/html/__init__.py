"""HTML reports: one self-contained page per run (sequence diagram, receipts as paper,
balances, verdict, anomalies explained) and an index; a fleet's trace gets a summary page.

``HtmlReport(directory)`` takes runs one at a time (``add``) and writes the index at the end
(``finish``); ``run_recorded`` runs a scenario keeping the bytes its printer received.
Imported only by front ends given ``--html`` / ``--posemu-html``.
"""

from __future__ import annotations

from emulator.report.html.record import RecordedRun, run_recorded
from emulator.report.html.writer import HtmlReport

__all__ = ["HtmlReport", "RecordedRun", "run_recorded"]

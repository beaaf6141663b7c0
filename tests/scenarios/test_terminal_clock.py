"""The terminal's clock strings are strftime's, built without strftime."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from emulator.firmware.journal import TxnRecord
from emulator.firmware.messages import CardInfo, Identity, field7, financial


# Years from 1000 on: below that, strftime pads %Y on some platforms and not on others.
@pytest.mark.parametrize("start", [datetime(2026, 11, 22, 9), datetime(2099, 12, 31, 23, 59, 59),
                                   datetime(1000, 1, 1), datetime(2024, 2, 29, 0, 0, 0, 999999)])
@pytest.mark.parametrize("seconds", [0, 0.5, 59.999999, 3601.25, 86_399.0, 31 * 86_400 + 7])
def test_clock_strings_match_strftime(start: datetime, seconds: float) -> None:
    t = start + timedelta(seconds=seconds)
    assert field7(t) == t.strftime("%m%d%H%M%S")
    record = TxnRecord(step="s1", do="sale", card="a", amount_minor=100, mti="0200",
                       stan="000001", f7=field7(t))
    fields = financial(record, CardInfo("4111111111111111", "2712"),
                       Identity("Shop", "M1", "T1"), t)
    assert (fields["12"], fields["13"]) == (t.strftime("%H%M%S"), t.strftime("%m%d"))
    assert t.isoformat(" ", "seconds") == t.strftime("%Y-%m-%d %H:%M:%S")  # the receipt's

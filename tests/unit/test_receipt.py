"""Receipts: every field printed, PAN masked, bytes exactly as python-escpos makes them."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from devices.printer import receipt
from devices.printer.core import CUT_MARK, JobDone, PrinterCore, decode_text, segments
from devices.printer.receipt import ReceiptData, _operations, _replay, render

SALE = ReceiptData(
    merchant="Corner Bakery",
    merchant_id="MID000123",
    terminal_id="TID0042",
    when="2026-11-22 09:00:05",
    title="SALE",
    pan_last4="1111",
    amount="12.50",
    result="APPROVED",
    response_code="00",
    stan="000017",
    rrn="633209000017",
    approval_code="A1B2C3",
    extra_lines=("SALES 3  37.50", "REFUNDS 1  5.00"),
)


def test_decoded_receipt_contains_every_field() -> None:
    text = decode_text(render(SALE))
    for value in ("Corner Bakery", "MID000123", "TID0042", "2026-11-22 09:00:05", "SALE",
                  "**** **** **** 1111", "EUR 12.50", "APPROVED", "00", "000017",
                  "633209000017", "A1B2C3", "SALES 3  37.50", "REFUNDS 1  5.00"):
        assert value in text
    assert text.endswith(CUT_MARK)


def test_receipt_is_one_job_from_reset_to_cut() -> None:
    data = render(SALE)
    assert data.startswith(b"\x1b@")
    assert data.endswith(b"\x1bd\x06\x1dV\x00")
    done = [o for o in PrinterCore().feed(data) if isinstance(o, JobDone)]
    assert len(done) == 1
    assert done[0].text == decode_text(data).removesuffix(f"\n{CUT_MARK}")


def test_full_pan_never_printed() -> None:
    text = decode_text(render(dataclasses.replace(SALE, pan_last4="4111111111111111")))
    assert "4111111111111111" not in text
    assert "**** **** **** 1111" in text


def test_receipt_without_card_has_no_card_line() -> None:
    assert "CARD" not in decode_text(render(dataclasses.replace(SALE, pan_last4="")))


def test_control_characters_in_fields_cannot_inject_commands() -> None:
    data = render(dataclasses.replace(SALE, merchant="Evil\x1b@\x10\x04\x01\nShop"))
    assert data.count(b"\x1b@") == 1
    assert b"\x10\x04" not in data
    assert "Evil?@????Shop" in decode_text(data)


def test_non_ascii_fields_use_code_page_switching() -> None:
    data = render(dataclasses.replace(SALE, merchant="Café Zürich", currency="€"))
    assert data == _replay(_operations(dataclasses.replace(SALE, merchant="Café Zürich",
                                                           currency="€")))
    text = decode_text(data)
    assert "Café Zürich" in text
    assert "€ 12.50" in text


_FIELD = st.text(max_size=24)


@settings(deadline=None, max_examples=60)
@given(st.builds(
    ReceiptData, merchant=_FIELD, merchant_id=_FIELD, terminal_id=_FIELD, when=_FIELD,
    title=_FIELD, pan_last4=_FIELD, amount=_FIELD, currency=_FIELD, result=_FIELD,
    response_code=_FIELD, stan=_FIELD, rrn=_FIELD, approval_code=_FIELD,
    extra_lines=st.lists(_FIELD, max_size=3).map(tuple),
))
def test_render_gives_exactly_the_python_escpos_bytes(data: ReceiptData) -> None:
    out = render(data)
    assert out == _replay(_operations(data))
    assert b"".join(segments(out)) == out
    decode_text(out)  # complete stream: no PrinterDecodeError


@settings(deadline=None, max_examples=40)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30))
def test_ascii_fields_decode_back_unchanged(merchant: str) -> None:
    assert merchant.strip() in decode_text(render(dataclasses.replace(SALE, merchant=merchant)))


def test_importing_python_escpos_leaves_logging_and_tmp_alone(tmp_path: Path) -> None:
    script = (
        "import logging, os, sys, tempfile\n"
        "before = set(os.listdir(tempfile.gettempdir()))\n"
        "from devices.printer.receipt import ReceiptData, render\n"
        f"render(ReceiptData(**{dataclasses.asdict(SALE)!r}))\n"
        "assert logging.getLogger().handlers == [], logging.getLogger().handlers\n"
        "new = set(os.listdir(tempfile.gettempdir())) - before\n"
        "assert all(n.startswith('posemu-escpos-') for n in new), new\n"
    )
    root = Path(__file__).resolve().parents[2]
    # a temporary folder of its own: other processes (a browser test, say) write in /tmp
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", script], check=True, cwd=root, env=env)


def test_a_capabilities_pickle_older_than_its_source_is_not_shared(tmp_path: Path) -> None:
    """python-escpos rewrites a stale pickle in place while another worker may read it:
    such a pickle (or none) makes the import stage a fresh one instead."""
    import escpos  # noqa: PLC0415 - the package only, for where its capabilities are

    source = Path(escpos.__file__).with_name("capabilities.json")
    pickle = tmp_path / "capabilities.pickle"
    assert not receipt._pickle_fresh(str(pickle))
    pickle.write_bytes(b"")
    made = source.stat().st_mtime
    os.utime(pickle, (made - 60, made - 60))
    assert not receipt._pickle_fresh(str(pickle))
    os.utime(pickle, (made + 60, made + 60))
    assert receipt._pickle_fresh(str(pickle))

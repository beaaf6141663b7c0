"""Receipts laid out from ESC/POS bytes: styles, alignment, code pages, images, cuts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from devices.printer.paper import (
    BarcodeRow,
    BitmapRow,
    CutRow,
    FeedRow,
    QrRow,
    TextRow,
    cut_short,
    lay_out,
    receipts,
)
from devices.printer.receipt import ReceiptData, make_dummy, render
from devices.printer.stream import CUT_MARK, decode_text

RECEIPT = ReceiptData(
    merchant="POSEMU DEMO SHOP", merchant_id="MERCHANT0000001", terminal_id="TERM0001",
    when="2026-11-22 09:00:04", title="SALE", pan_last4="1111", amount="12.50",
    result="APPROVED", response_code="00", stan="000001", rrn="000000000001",
    approval_code="000001")


def text_rows(data: bytes) -> list[TextRow]:
    return [r for r in lay_out(data) if isinstance(r, TextRow)]


def test_the_simulations_receipt_keeps_its_styles() -> None:
    rows = text_rows(render(RECEIPT))
    by_text = {r.text: r for r in rows}
    merchant = by_text["POSEMU DEMO SHOP"]
    assert merchant.align == "center"
    assert merchant.spans[0].bold
    title = by_text["SALE"]
    assert title.spans[0].height == 2
    assert title.spans[0].width == 1
    assert title.dots == 60  # a double-height line feeds twice the spacing
    card = next(r for r in rows if r.text.startswith("CARD"))
    assert card.align == "left"
    assert not card.spans[0].bold
    assert card.text.endswith("**** **** **** 1111")
    assert by_text["APPROVED"].align == "center"


def test_rows_read_the_same_text_as_the_printer_core() -> None:
    data = render(RECEIPT)
    lines = [r.text if isinstance(r, TextRow) else CUT_MARK
             for r in lay_out(data) if isinstance(r, TextRow | CutRow)]
    assert "\n".join(lines) == decode_text(data)


def test_code_page_is_followed() -> None:
    p = make_dummy()
    p.text("café 12,50 €\n")  # python-escpos switches code pages for é and €
    p.cut()
    [row] = text_rows(bytes(p.output))[:1]
    assert row.text == "café 12,50 €"


def test_size_bold_underline_reverse_and_alignment_from_raw_commands() -> None:
    data = (b"\x1b@\x1ba\x02\x1d!\x11BIG\n\x1d!\x00\x1ba\x01\x1bE\x01bold\x1bE\x00"
            b" \x1b-\x01under\x1b-\x00 \x1dB\x01rev\x1dB\x00\n")
    big, mixed = text_rows(data)
    assert (big.align, big.spans[0].width, big.spans[0].height) == ("right", 2, 2)
    assert mixed.align == "center"
    styles = {s.text.strip(): (s.bold, s.underline, s.reverse) for s in mixed.spans}
    assert styles["bold"] == (True, False, False)
    assert styles["under"] == (False, True, False)
    assert styles["rev"] == (False, False, True)


def test_barcodes_and_qr_codes_keep_their_data() -> None:
    p = make_dummy()
    p.barcode("4006381333931", "EAN13")
    p.qr("https://example.invalid/r/1", native=True, size=5)
    p.qr("as an image")  # python-escpos sends this one as a raster image (GS v 0)
    p.cut()
    rows = lay_out(bytes(p.output))
    [bar] = [r for r in rows if isinstance(r, BarcodeRow)]
    assert (bar.symbology, bar.data) == ("ean13", "4006381333931")
    [qr] = [r for r in rows if isinstance(r, QrRow)]
    assert (qr.data, qr.module) == ("https://example.invalid/r/1", 5)
    [image] = [r for r in rows if isinstance(r, BitmapRow)]
    assert image.width > 0
    assert len(image.rows) > 0
    assert any(1 in line for line in image.rows)


def test_feeds_and_cuts_split_receipts() -> None:
    data = b"one\n\x1bJ\x30\x1dV\x00two\n\x1dV\x01three"
    rows = lay_out(data)
    assert FeedRow(0x30) in rows
    pieces = receipts(rows)
    assert [[r.text for r in p if isinstance(r, TextRow)] for p in pieces] == [
        ["one"], ["two"], ["three"]]
    assert isinstance(pieces[1][-1], CutRow)
    assert pieces[1][-1].partial


def test_cut_short_keeps_the_lines_that_came_out_and_never_the_cut() -> None:
    rows = lay_out(render(RECEIPT))
    short = cut_short(rows, 3)
    assert [r.text for r in short if isinstance(r, TextRow)] == [
        "POSEMU DEMO SHOP", "MID MERCHANT0000001", "TID TERM0001"]
    assert cut_short(rows, 0) == []
    whole = cut_short(rows, 10_000)
    assert not any(isinstance(r, CutRow) for r in whole)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_lay_out_without_error(data: bytes) -> None:
    rows = lay_out(data)
    assert all(isinstance(r, TextRow | BitmapRow | BarcodeRow | QrRow | FeedRow | CutRow)
               for r in rows)

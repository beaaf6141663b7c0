"""Receipt pictures (devices/printer/render.py): a golden image, cut marks, torn edges.

The golden image is the simulation's approved sale receipt plus a barcode and a QR code.
After a deliberate change of the drawing, write it again with
``POSEMU_WRITE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_receipt_picture.py``
and look at it before committing.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from devices.printer.paper import lay_out, receipts
from devices.printer.receipt import ReceiptData, make_dummy, render
from devices.printer.render import PngReceipts, receipt_png
from tests.support import ROOT

GOLDEN = ROOT / "tests" / "golden" / "receipt_sale_approved.png"
TOLERANCE = 1.0  # mean absolute difference per pixel, out of 255 (a glyph changed: ~2-4)


def sale(amount: str = "12.50") -> ReceiptData:
    return ReceiptData(
        merchant="POSEMU DEMO SHOP", merchant_id="MERCHANT0000001", terminal_id="TERM0001",
        when="2026-11-22 09:00:04", title="SALE", pan_last4="1111", amount=amount,
        result="APPROVED", response_code="00", stan="000001", rrn="000000000001",
        approval_code="000001")


def stream(amount: str = "12.50") -> bytes:
    """The receipt's bytes, a barcode and a QR code printed before its cut."""
    data = render(sale(amount))
    body, cut = data[: data.rindex(b"\x1dV")], data[data.rindex(b"\x1dV"):]
    p = make_dummy()
    p.barcode("4006381333931", "EAN13")
    p.qr("posemu:000000000001", native=True, size=4)
    return body + bytes(p.output) + cut


def picture(data: bytes, *, torn: bool = False) -> Image.Image:
    [rows] = receipts(lay_out(data))
    return Image.open(io.BytesIO(receipt_png(rows, torn=torn))).convert("L")


def difference(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    return float(ImageStat.Stat(ImageChops.difference(a, b)).mean[0])


def test_receipt_matches_the_golden_image() -> None:
    image = picture(stream())
    if os.environ.get("POSEMU_WRITE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        image.save(GOLDEN)
    golden = Image.open(GOLDEN).convert("L")
    assert image.size == golden.size
    assert difference(image, golden) <= TOLERANCE


def test_a_changed_amount_is_outside_the_tolerance() -> None:
    # the tolerance is tight enough to see one line changed
    changed = picture(stream("99.99"))
    assert difference(changed, Image.open(GOLDEN).convert("L")) > TOLERANCE / 20
    assert ImageChops.difference(changed, Image.open(GOLDEN).convert("L")).getbbox()


def test_picture_is_mostly_paper_with_ink() -> None:
    image = picture(stream())
    histogram = image.histogram()
    assert histogram[255] > image.width * image.height // 2  # white paper
    assert sum(histogram[:64]) > 2_000  # and dark ink: text, bars, modules


def test_a_torn_receipt_is_drawn_with_a_tear() -> None:
    rows = lay_out(render(sale()))[:3]
    whole = Image.open(io.BytesIO(receipt_png(rows))).convert("L")
    torn = Image.open(io.BytesIO(receipt_png(rows, torn=True))).convert("L")
    assert torn.height > whole.height
    bottom = torn.crop((0, torn.height - 6, torn.width, torn.height))
    assert bottom.getextrema()[0] < 255  # the tear's shading


def test_png_receipts_writes_one_file_per_cut_and_cut_short_jobs(tmp_path: Path) -> None:
    pngs = PngReceipts(tmp_path / "out")
    first, second = render(sale()), render(sale("3.00"))
    pngs.feed(first)
    done = pngs.job_ended(lines=0)
    pngs.feed(second[:40])
    failed = pngs.job_ended(lines=2, reason="jam")
    assert done.name == "receipt-0001.png"
    assert failed.name == "receipt-0002-cut-short-jam.png"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [done.name, failed.name]
    with Image.open(done) as whole, Image.open(failed) as short:
        assert short.height < whole.height


@pytest.mark.parametrize("symbology", ["ean13", "code128"])
def test_bad_barcode_data_is_drawn_not_raised(symbology: str) -> None:
    from devices.printer.paper import BarcodeRow  # noqa: PLC0415
    from devices.printer.render import symbol_image  # noqa: PLC0415

    image = symbol_image(BarcodeRow(symbology, "\x00bad\x7f", 80, 3, 2, "left"))
    assert image.height >= 80

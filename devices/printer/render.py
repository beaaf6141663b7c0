"""Receipts drawn as pictures: the rows of :mod:`devices.printer.paper` on white paper, with
Pillow, one dot a pixel.

``receipt_png(rows)`` gives the PNG bytes of one receipt (a cut drawn as a dashed line, a
job cut short as a torn edge); ``symbol_image(row)`` the picture of one image, barcode or
QR code (the HTML report shows them inline, through ``png_bytes``). Text is drawn in cells
of 12 x 24 dots (font A) with Pillow's built-in font, so a picture is the same on any
machine with the same Pillow. Barcodes are drawn from python-barcode's module patterns
and QR codes from qrcode's matrix, both libraries that python-escpos already depends on.

Pillow, qrcode and python-barcode are imported when this module is: import it only to draw.
"""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path

import barcode
import qrcode
import qrcode.constants
from PIL import Image, ImageDraw, ImageFont

from devices.printer.paper import (
    CHAR_H,
    CHAR_W,
    DOTS,
    BarcodeRow,
    BitmapRow,
    CutRow,
    FeedRow,
    QrRow,
    Row,
    Span,
    TextRow,
    cut_short,
    lay_out,
    receipts,
)

__all__ = ["MARGIN", "PngReceipts", "png_bytes", "receipt_image", "receipt_png", "symbol_image"]

MARGIN = 16          # white paper around the printable area, in dots
_TAB = 8             # tab stops every 8 columns
_TORN = 12           # height of a torn edge
_PAPER, _INK, _EDGE, _TEAR = 255, 0, 160, 224
_QR_LEVELS = {"L": qrcode.constants.ERROR_CORRECT_L, "M": qrcode.constants.ERROR_CORRECT_M,
              "Q": qrcode.constants.ERROR_CORRECT_Q, "H": qrcode.constants.ERROR_CORRECT_H}


@functools.cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=20)


@functools.cache
def _glyph(char: str, bold: bool, width: int, height: int) -> Image.Image:
    """One character in its cell: drawn on a 16 x 24 canvas, squeezed to 12 x 24 dots,
    then magnified."""
    cell = Image.new("L", (16, CHAR_H), _PAPER)
    if char.strip():
        ImageDraw.Draw(cell).text((8, 12), char, font=_font(), fill=_INK, anchor="mm",
                                  stroke_width=1 if bold else 0, stroke_fill=_INK)
    return cell.resize((CHAR_W * width, CHAR_H * height), Image.Resampling.LANCZOS)


def _expand_tabs(spans: tuple[Span, ...]) -> list[Span]:
    out: list[Span] = []
    column = 0
    for span in spans:
        if "\t" not in span.text:
            out.append(span)
            column += len(span.text) * span.width
            continue
        text = ""
        for char in span.text:
            if char == "\t":
                pad = _TAB - column % _TAB
                text += " " * pad
                column += pad
            else:
                text += char
                column += span.width
        out.append(Span(text, span.bold, span.underline, span.reverse, span.width, span.height))
    return out


def _offset(align: str, width: int) -> int:
    if align == "center":
        return max(0, (DOTS - width) // 2)
    if align == "right":
        return max(0, DOTS - width)
    return 0


def _text_row(row: TextRow) -> Image.Image:
    spans = _expand_tabs(row.spans)
    tall = max((s.height for s in spans), default=1)
    height = max(row.dots, CHAR_H * tall if row.text.strip() else 0)
    image = Image.new("L", (DOTS, max(height, 1)), _PAPER)
    width = sum(len(s.text) * CHAR_W * s.width for s in spans)
    x = _offset(row.align, width)
    base = CHAR_H * tall  # characters stand on one baseline
    draw = ImageDraw.Draw(image)
    for span in spans:
        w, h = CHAR_W * span.width, CHAR_H * span.height
        for char in span.text:
            if x + w > DOTS:
                break
            glyph = _glyph(char, span.bold, span.width, span.height)
            if span.reverse:
                glyph = Image.eval(glyph, lambda v: 255 - v)
            image.paste(glyph, (x, base - h))
            if span.underline:
                draw.line((x, base - 2, x + w - 1, base - 2), fill=_INK, width=2)
            x += w
    return image


def symbol_image(row: BitmapRow | BarcodeRow | QrRow) -> Image.Image:
    """An image, barcode or QR code as printed, black on white, one dot a pixel."""
    if isinstance(row, BitmapRow):
        image = Image.new("L", (max(row.width, 1), max(len(row.rows), 1)), _PAPER)
        image.putdata([_INK if bit else _PAPER for line in row.rows for bit in line])
        return image
    if isinstance(row, QrRow):
        return _qr(row)
    return _barcode(row)


def _qr(row: QrRow) -> Image.Image:
    code = qrcode.QRCode(error_correction=_QR_LEVELS[row.error], box_size=1, border=0)
    code.add_data(row.data.encode("latin-1"))
    code.make(fit=True)
    matrix = code.get_matrix()
    size = len(matrix)
    small = Image.new("L", (size, size), _PAPER)
    small.putdata([_INK if cell else _PAPER for line in matrix for cell in line])
    module = max(1, row.module)
    return small.resize((size * module, size * module), Image.Resampling.NEAREST)


def _barcode(row: BarcodeRow) -> Image.Image:
    """Bars from python-barcode's pattern; data it refuses is shown as a framed box with
    the data, as a printer prints nothing sensible for it either."""
    module = max(1, min(row.module, 6))
    try:
        pattern = "".join(barcode.get(row.symbology, row.data).build())
    except Exception:  # python-barcode raises many kinds of errors for data it refuses
        pattern = ""
    hri = _hri_image(row.data) if row.hri else None
    bars_h = max(1, row.height)
    width = max(len(pattern) * module, (hri.width if hri else 0), CHAR_W * 4)
    above = hri.height if hri and row.hri in (1, 3) else 0
    below = hri.height if hri and row.hri in (2, 3) else 0
    image = Image.new("L", (width, above + bars_h + below), _PAPER)
    draw = ImageDraw.Draw(image)
    if pattern:
        left = (width - len(pattern) * module) // 2
        for i, bit in enumerate(pattern):
            if bit == "1":
                x = left + i * module
                draw.rectangle((x, above, x + module - 1, above + bars_h - 1), fill=_INK)
    else:
        draw.rectangle((0, above, width - 1, above + bars_h - 1), outline=_INK, width=2)
    if hri is not None:
        x = (width - hri.width) // 2
        if above:
            image.paste(hri, (x, 0))
        if below:
            image.paste(hri, (x, above + bars_h))
    return image


def _hri_image(text: str) -> Image.Image:
    image = Image.new("L", (max(1, len(text)) * CHAR_W, CHAR_H), _PAPER)
    for i, char in enumerate(text):
        image.paste(_glyph(char, False, 1, 1), (i * CHAR_W, 0))
    return image


def png_bytes(image: Image.Image) -> bytes:
    """``image`` as PNG bytes."""
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def receipt_image(rows: list[Row], *, torn: bool = False) -> Image.Image:
    """One receipt on paper; ``torn``: the job stopped before its cut (jam, paper out)."""
    pieces: list[tuple[int, Image.Image | None]] = []  # (height, picture or a cut)
    for row in rows:
        if isinstance(row, TextRow):
            line = _text_row(row)
            pieces.append((line.height, line))
        elif isinstance(row, FeedRow):
            pieces.append((row.dots, None))
        elif isinstance(row, CutRow):
            pieces.append((-1, None))
        else:
            symbol = symbol_image(row)
            pad = Image.new("L", (DOTS, symbol.height), _PAPER)
            pad.paste(symbol.crop((0, 0, min(symbol.width, DOTS), symbol.height)),
                      (_offset(row.align, symbol.width), 0))
            pieces.append((pad.height, pad))
    body = sum(h for h, _ in pieces if h > 0)
    tail = _TORN if torn else 0
    image = Image.new("L", (DOTS + 2 * MARGIN, body + 2 * MARGIN + tail), _PAPER)
    draw = ImageDraw.Draw(image)
    y = MARGIN
    for height, picture in pieces:
        if height < 0:  # the cut: a dashed line across the paper
            for x in range(0, image.width, 12):
                draw.line((x, y + MARGIN // 2, x + 6, y + MARGIN // 2), fill=_EDGE, width=2)
            continue
        if picture is not None:
            image.paste(picture, (MARGIN, y))
        y += height
    if torn:  # a zigzag tear, nothing below it
        bottom = image.height
        points = [(x, bottom - _TORN + (_TORN if (x // _TORN) % 2 else 0))
                  for x in range(0, image.width + _TORN, _TORN)]
        draw.polygon([*points, (image.width, bottom), (0, bottom)], fill=_TEAR)
        draw.line(points, fill=_EDGE, width=2)
    return image


def receipt_png(rows: list[Row], *, torn: bool = False) -> bytes:
    """:func:`receipt_image` as PNG bytes."""
    return png_bytes(receipt_image(rows, torn=torn))


class PngReceipts:
    """Receipts as PNG files, from the bytes a printer is fed: ``feed`` each piece as it is
    printed, ``job_ended`` when the core reports a job cut (``receipt-0001.png``) or failed
    (``receipt-0002-cut-short-jam.png``, as far as it printed). Files are written whole
    (a temporary file renamed)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.count = 0
        self._data = bytearray()

    def feed(self, data: bytes) -> None:
        self._data += data

    def job_ended(self, lines: int, reason: str | None = None) -> Path:
        """The job that just ended: cut when ``reason`` is None, else failed after
        ``lines`` lines. Its bytes are those after the last cut fed before it."""
        pieces = receipts(lay_out(bytes(self._data)))
        rows = pieces[-1] if pieces else []
        if rows and isinstance(rows[-1], CutRow) and reason is not None:
            rows = []  # the failed job has printed nothing since the last cut
        if reason is None:
            self._data.clear()
        else:
            rows = cut_short(rows, lines)
        self.count += 1
        suffix = "" if reason is None else f"-cut-short-{reason}"
        path = self.directory / f"receipt-{self.count:04d}{suffix}.png"
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(receipt_png(rows, torn=reason is not None))
        os.replace(partial, path)
        return path

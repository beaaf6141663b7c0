"""What a receipt looks like on paper: ESC/POS bytes laid out as rows, with their styles.

Pure (no Pillow, no escpos, no I/O). The bytes are read with the printer core's tokenizer
(:mod:`devices.printer.stream`), so commands, payloads and code pages are split exactly as
the simulated and virtual printers split them; this module adds what the core does not
need to keep: bold, underline, reverse, character size, alignment, and the payloads of
raster images, bit images, barcodes and QR codes. Each printed line is one
:class:`TextRow`, as each ``line`` event of the core's interpreter (so a jammed job's
``text`` tells how many rows came out: :func:`cut_short`).

``lay_out(data)`` gives the rows; ``receipts(rows)`` splits them at each cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from devices.printer.stream import (
    _CODE_PAGES,
    DEFAULT_SPACING,
    FF,
    HT,
    LF,
    _Cmd,
    _Tokenizer,
)

__all__ = ["COLUMNS", "DOTS", "BarcodeRow", "BitmapRow", "CutRow", "FeedRow", "QrRow", "Row",
           "Span", "TextRow", "cut_short", "lay_out", "receipts"]

DOTS = 512     # printable width in dots (80 mm paper, 203 dpi, TM-T88V)
COLUMNS = 42   # font A characters (12 x 24 dots) per line
CHAR_W, CHAR_H = 12, 24


@dataclass(frozen=True, slots=True)
class Span:
    """A run of text printed in one style; ``width``/``height``: character magnification."""

    text: str
    bold: bool = False
    underline: bool = False
    reverse: bool = False
    width: int = 1
    height: int = 1


@dataclass(frozen=True, slots=True)
class TextRow:
    """One printed line (possibly empty); ``dots``: paper fed for it."""

    spans: tuple[Span, ...]
    align: str  # left | center | right
    dots: int

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.spans)


@dataclass(frozen=True, slots=True)
class BitmapRow:
    """A raster image (GS v 0, ESC *): ``rows`` of ``width`` pixels, 1 = black."""

    width: int
    rows: tuple[bytes, ...]  # one byte per pixel (0/1), row by row
    align: str


@dataclass(frozen=True, slots=True)
class BarcodeRow:
    """A barcode (GS k): its symbology (python-barcode's name), data and look."""

    symbology: str
    data: str
    height: int
    module: int   # GS w: dots per narrow bar
    hri: int      # GS H: 0 none, 1 above, 2 below, 3 both
    align: str


@dataclass(frozen=True, slots=True)
class QrRow:
    """A QR code printed natively (GS ( k): data, module size in dots, error level."""

    data: str
    module: int
    error: str  # L M Q H
    align: str


@dataclass(frozen=True, slots=True)
class FeedRow:
    """Paper fed without printing (ESC J, ESC d on an empty line)."""

    dots: int


@dataclass(frozen=True, slots=True)
class CutRow:
    """The autocutter cut the paper here."""

    partial: bool


Row: TypeAlias = TextRow | BitmapRow | BarcodeRow | QrRow | FeedRow | CutRow

_ALIGN = {0: "left", 1: "center", 2: "right", 48: "left", 49: "center", 50: "right"}
# GS k m -> python-barcode symbology (function A: m 0-6, function B: m 65-73)
_SYMBOLOGY = {0: "upca", 1: "ean13", 2: "ean13", 3: "code39", 4: "itf", 5: "codabar",
              6: "codabar", 65: "upca", 66: "upce", 67: "ean13", 68: "ean8", 69: "code39",
              70: "itf", 71: "codabar", 72: "code93", 73: "code128"}
_QR_ERROR = {48: "L", 49: "M", 50: "Q", 51: "H"}


@dataclass
class _Modes:
    """The print modes and the line being composed."""

    codec: str = "cp437"
    bold: bool = False
    underline: bool = False
    reverse: bool = False
    width: int = 1
    height: int = 1
    align: str = "left"
    spacing: int = DEFAULT_SPACING
    barcode_h: int = 162
    barcode_w: int = 3
    hri: int = 0
    qr_module: int = 3
    qr_error: str = "L"
    qr_data: str = ""
    parts: list[Span] = field(default_factory=list)


class _Paper:
    """Reads tokens into rows (mirrors the core interpreter's line events)."""

    def __init__(self) -> None:
        self.m = _Modes()
        self.rows: list[Row] = []

    def line(self, dots: int | None = None) -> None:
        m = self.m
        tall = max((s.height for s in m.parts), default=1)
        self.rows.append(TextRow(tuple(m.parts), m.align,
                                 m.spacing * tall if dots is None else dots))
        m.parts = []

    def text(self, raw: bytes) -> None:
        m = self.m
        self.m.parts.append(Span(raw.decode(m.codec, "replace"), m.bold, m.underline,
                                 m.reverse, m.width, m.height))

    def control(self, byte: int) -> None:
        if byte in (LF, FF):
            self.line()
        elif byte == HT:
            self.m.parts.append(Span("\t"))

    def command(self, key: bytes, args: bytes, payload: bytes) -> None:
        m = self.m
        match key:
            case b"\x1b@":
                self.m = _Modes()
            case b"\x1bt":
                m.codec = _CODE_PAGES.get(args[0], "cp437")
            case b"\x1b!":
                n = args[0]
                m.bold, m.underline = bool(n & 0x08), bool(n & 0x80)
                m.height, m.width = 2 if n & 0x10 else 1, 2 if n & 0x20 else 1
            case b"\x1d!":
                m.width, m.height = (args[0] >> 4 & 0x07) + 1, (args[0] & 0x07) + 1
            case b"\x1bE" | b"\x1bG":
                m.bold = bool(args[0] & 1)
            case b"\x1b-":
                m.underline = args[0] in (1, 2, 49, 50)
            case b"\x1dB":
                m.reverse = bool(args[0] & 1)
            case b"\x1ba":
                m.align = _ALIGN.get(args[0], m.align)
            case b"\x1b3":
                m.spacing = args[0]
            case b"\x1b2":
                m.spacing = DEFAULT_SPACING
            case b"\x1dh":
                m.barcode_h = args[0]
            case b"\x1dw":
                m.barcode_w = args[0]
            case b"\x1dH":
                m.hri = args[0] & 0x03
            case b"\x1bd":
                if args[0] == 0 and m.parts:
                    self.line(0)
                for _ in range(args[0]):
                    self.line()
            case b"\x1bJ":
                if m.parts:
                    self.line(args[0])
                else:
                    self.rows.append(FeedRow(args[0]))
            case b"\x1dV":
                if m.parts:
                    self.line()
                self.rows.append(CutRow(partial=bool(args[0] & 1)))
            case b"\x1dv":
                width_bytes, height = args[2] | args[3] << 8, args[4] | args[5] << 8
                self.rows.append(_raster(payload, width_bytes, height, m.align))
            case b"\x1b*":
                self.rows.append(_columns(args[0], payload, m.align))
            case b"\x1dk":
                self.barcode(args, payload)
            case b"\x1d(":
                self.qr(args, payload)

    def barcode(self, args: bytes, payload: bytes) -> None:
        m = self.m
        data = payload[:-1] if args[0] < 65 else payload  # function A ends with NUL
        self.rows.append(BarcodeRow(_SYMBOLOGY.get(args[0], "code128"),
                                    data.decode("latin-1"), m.barcode_h, m.barcode_w, m.hri,
                                    m.align))

    def qr(self, args: bytes, payload: bytes) -> None:
        m = self.m
        if args[:1] + args[3:4] != b"k1" or len(args) < 5:  # GS ( k, cn = 49: QR Code
            return
        fn = args[4]
        if fn == 0x43 and payload:        # 167: module size
            m.qr_module = payload[0]
        elif fn == 0x45 and payload:      # 169: error correction level
            m.qr_error = _QR_ERROR.get(payload[0], "L")
        elif fn == 0x50:                  # 180: store data (m = payload[0])
            m.qr_data = payload[1:].decode("latin-1")
        elif fn == 0x51:                  # 181: print
            self.rows.append(QrRow(m.qr_data, m.qr_module, m.qr_error, m.align))


def _raster(data: bytes, width_bytes: int, height: int, align: str) -> BitmapRow:
    rows = []
    for y in range(height):
        line = data[y * width_bytes:(y + 1) * width_bytes]
        rows.append(bytes((byte >> (7 - bit)) & 1 for byte in line for bit in range(8)))
    return BitmapRow(width_bytes * 8, tuple(rows), align)


def _columns(mode: int, data: bytes, align: str) -> BitmapRow:
    """ESC * bit image: columns of 8 (m 0/1) or 24 (m 32/33) dots, top bit first."""
    per = 3 if mode >= 32 else 1
    width = len(data) // per
    height = 8 * per
    pixels = [bytearray(width) for _ in range(height)]
    for x in range(width):
        for k in range(per):
            byte = data[x * per + k]
            for bit in range(8):
                pixels[k * 8 + bit][x] = (byte >> (7 - bit)) & 1
    return BitmapRow(width, tuple(bytes(p) for p in pixels), align)


def lay_out(data: bytes) -> list[Row]:
    """The rows a stream prints, in order; text never ended by a line feed is kept as a
    last row (as :func:`~devices.printer.stream.decode_text` keeps it); a command cut
    short at the end of ``data`` is ignored."""
    layout = _Paper()
    start = 0
    for token, end in _Tokenizer().feed(data):
        if isinstance(token, bytes):
            layout.text(token)
        elif isinstance(token, int):
            layout.control(token)
        elif isinstance(token, _Cmd):
            head = start + 2 + len(token.args)
            layout.command(token.key, token.args, data[head:end])
        start = end
    if layout.m.parts:
        layout.line()
    return layout.rows


def receipts(rows: list[Row]) -> list[list[Row]]:
    """The rows split after each cut (each piece ends with its CutRow, but the last may
    not); nothing after the last cut gives no empty piece."""
    pieces: list[list[Row]] = [[]]
    for row in rows:
        pieces[-1].append(row)
        if isinstance(row, CutRow):
            pieces.append([])
    return [piece for piece in pieces if piece]


def cut_short(rows: list[Row], lines: int) -> list[Row]:
    """The rows a job printed before it failed, when ``lines`` lines came out: everything
    up to that many TextRows (images and feeds between them included), never a cut."""
    kept: list[Row] = []
    if lines <= 0:
        return kept
    count = 0
    for row in rows:
        if isinstance(row, CutRow):
            break
        kept.append(row)
        if isinstance(row, TextRow):
            count += 1
            if count >= lines:
                break
    return kept

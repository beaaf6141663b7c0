"""``posemu printer --pty --render DIR``: a PNG per receipt the virtual printer cuts, the
same picture as the renderer's golden image; a job that fails is drawn cut short."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import serial
from PIL import Image

from devices.printer.core import JobDone, JobFailed
from devices.printer.virtual import VirtualPrinter
from tests.support import POSEMU
from tests.unit.test_receipt_picture import GOLDEN, TOLERANCE, difference, stream

DEADLINE_S = 5.0


def wait_for(path: Path) -> None:
    end = time.monotonic() + DEADLINE_S
    while not path.exists() and time.monotonic() < end:
        time.sleep(0.02)
    assert path.exists(), path


def test_each_cut_gives_a_png_like_the_golden_image(tmp_path: Path) -> None:
    with VirtualPrinter(lines_per_s=500, render_dir=tmp_path) as printer, \
            serial.Serial(printer.path, 9600, timeout=0.05) as port:
        port.write(stream())
        assert isinstance(printer.jobs.get(timeout=DEADLINE_S), JobDone)
        printer.control("jam")
        port.write(stream())
        assert isinstance(printer.jobs.get(timeout=DEADLINE_S), JobFailed)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["receipt-0001.png", "receipt-0002-cut-short-jam.png"]
    with Image.open(tmp_path / names[0]) as got, Image.open(GOLDEN) as golden:
        assert difference(got.convert("L"), golden.convert("L")) <= TOLERANCE
    with Image.open(tmp_path / names[1]) as short, Image.open(GOLDEN) as golden:
        assert short.height < golden.height


def test_the_command_renders_into_its_directory(tmp_path: Path) -> None:
    out = tmp_path / "png"
    with subprocess.Popen([str(POSEMU), "printer", "--pty", "--lines-per-s", "500",
                           "--render", str(out)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        assert proc.stdin is not None
        try:
            first = proc.stdout.readline()
            assert first.startswith("PTY ")
            with serial.Serial(first.split(" ", 1)[1].strip(), 9600, timeout=0.05) as port:
                port.write(stream())
                wait_for(out / "receipt-0001.png")
            proc.stdin.write("quit\n")
            proc.stdin.flush()
            assert proc.wait(timeout=DEADLINE_S) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    assert sorted(p.name for p in out.iterdir()) == ["receipt-0001.png"]

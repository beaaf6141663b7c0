"""The virtual ESC/POS printer on a pty: python-escpos talks to it as to a real printer."""

from __future__ import annotations

import io
import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import serial
from PIL import Image

from devices.printer.core import CUT_MARK, JobDone, JobFailed
from devices.printer.receipt import make_dummy
from devices.printer.virtual import XOFF, XON, VirtualPrinter, serve

DEADLINE_S = 3.0


def dle_eot(n: int) -> bytes:
    return bytes((0x10, 0x04, n))


def read_bytes(port: Any, count: int, deadline_s: float = DEADLINE_S) -> bytes:
    """Read ``count`` bytes, or what came before the deadline."""
    got = b""
    end = time.monotonic() + deadline_s
    while len(got) < count and time.monotonic() < end:
        got += port.read(count - len(got))
    return got


def receipt(lines: int = 3) -> bytes:
    p = make_dummy()
    p.hw("INIT")
    for i in range(lines):
        p.textln(f"line {i}")
    p.cut()
    return bytes(p.output)


class Lines(io.TextIOBase):
    """A text sink whose lines can be awaited (written from the printer's thread)."""

    def __init__(self) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self._part = ""

    def write(self, s: str) -> int:
        *done, self._part = (self._part + s).split("\n")
        for line in done:
            self.lines.put(line)
        return len(s)

    def until(self, wanted: str) -> list[str]:
        seen: list[str] = []
        end = time.monotonic() + DEADLINE_S
        while wanted not in seen:
            seen.append(self.lines.get(timeout=max(end - time.monotonic(), 0.01)))
        return seen


@pytest.fixture
def printer() -> Iterator[VirtualPrinter]:
    with VirtualPrinter(lines_per_s=500, sink=Lines()) as vp:
        yield vp


@pytest.fixture
def port(printer: VirtualPrinter) -> Iterator[Any]:
    with serial.Serial(printer.path, 9600, timeout=0.05) as p:
        yield p


def test_python_escpos_serial_works_unchanged(printer: VirtualPrinter) -> None:
    make_dummy()  # python-escpos imported quietly
    from escpos.printer import Serial  # noqa: PLC0415

    p = Serial(devfile=printer.path, timeout=0.2)
    try:
        p.text("Hello\n")
        p.textln("World")
        p.cut()
        job = printer.jobs.get(timeout=DEADLINE_S)
        assert isinstance(job, JobDone)
        assert job.text.split("\n")[:2] == ["Hello", "World"]
        assert p.is_online() is True
        assert p.paper_status() == 2
        assert p.query_status(b"\x10\x04\x01") == b"\x12"
        printer.control("paper-out")
        assert p.is_online() is False
        assert p.paper_status() == 0
        assert [p.query_status(dle_eot(n)) for n in (1, 2, 4)] == [b"\x1a", b"\x32", b"\x7e"]
        printer.control("paper-in")
        printer.control("paper-low")
        assert p.paper_status() == 1
        printer.control("off")
        assert p.query_status(dle_eot(1)) == b""
        assert p.is_online() is False
    finally:
        p.close()


# -- Automatic Status Back (GS a) --------------------------------------------------------

ASB_ON = b"\x1da\x0e"  # GS a: online/offline, errors, roll paper sensors
IDLE = b"\x10\x00\x00\x00"


@pytest.mark.parametrize(("control", "packet", "undo"), [
    ("paper-out", b"\x18\x00\x0f\x00", "paper-in"),  # offline; near end and paper end
    ("paper-low", b"\x10\x00\x03\x00", "paper-in"),
    ("jam", b"\x18\x08\x00\x00", "clear"),           # offline; autocutter error
    ("cover-open", b"\x38\x00\x00\x00", "cover-close"),
])
def test_asb_is_sent_on_enable_and_on_every_change(
    printer: VirtualPrinter, port: Any, control: str, packet: bytes, undo: str,
) -> None:
    port.write(ASB_ON)
    assert read_bytes(port, 4) == IDLE  # the current status, as soon as it is enabled
    assert printer.core.asb_enabled
    printer.control(control)
    got = read_bytes(port, 4)
    assert got == packet
    assert got[0] & 0x93 == 0x10  # an ASB first byte (0xx1xx00), never a DLE EOT reply
    printer.control(undo)
    assert read_bytes(port, 4) == IDLE  # one packet per control line
    port.write(dle_eot(1))
    assert read_bytes(port, 2, 0.3) == b"\x12"  # a reply is one byte, no packet with it


def test_asb_paper_out_through_python_escpos(printer: VirtualPrinter) -> None:
    make_dummy()  # python-escpos imported quietly
    from escpos.printer import Serial  # noqa: PLC0415

    p = Serial(devfile=printer.path, timeout=0.2)
    try:
        assert p.query_status(ASB_ON) == IDLE  # reads what comes within the timeout
        printer.control("paper-out")
        got = read_bytes(p.device, 4)
        assert got[0] & 0x08  # byte 1 bit 3: offline
        assert got[2] & 0x0C == 0x0C  # byte 3: paper end
        p.device.reset_input_buffer()  # nothing left to be misread as the reply
        assert p.is_online() is False
    finally:
        p.close()


def test_off_sends_nothing_and_disables_asb(printer: VirtualPrinter, port: Any) -> None:
    port.write(ASB_ON)
    assert read_bytes(port, 4) == IDLE
    printer.control("off")
    assert read_bytes(port, 1, 0.3) == b""  # ASB cannot report "off"
    printer.control("on")
    assert not printer.core.asb_enabled  # a power cycle
    printer.control("paper-out")
    assert read_bytes(port, 1, 0.3) == b""
    port.write(ASB_ON)
    assert read_bytes(port, 4) == b"\x18\x00\x0f\x00"


def test_asb_reports_paper_running_out_while_printing() -> None:
    with VirtualPrinter(lines_per_s=500, paper_m=0.002) as vp, \
            serial.Serial(vp.path, 9600, timeout=0.05) as client:
        client.write(ASB_ON)
        assert read_bytes(client, 4) == b"\x10\x00\x03\x00"  # a short roll: near end
        client.write(receipt(lines=10))
        assert read_bytes(client, 4) == b"\x18\x00\x0f\x00"
        job = vp.jobs.get(timeout=DEADLINE_S)
        assert isinstance(job, JobFailed)
        assert job.reason == "paper_out"


def test_receipt_text_goes_to_the_sink_when_cut(printer: VirtualPrinter, port: Any) -> None:
    port.write(receipt())
    sink = printer._sink
    assert isinstance(sink, Lines)
    assert sink.until(CUT_MARK)[:3] == ["line 0", "line 1", "line 2"]


@pytest.mark.parametrize(("control", "replies"), [
    ("paper-out", [0x1A, 0x32, 0x12, 0x7E]),
    ("paper-low", [0x12, 0x12, 0x12, 0x1E]),
    ("jam", [0x1A, 0x52, 0x1A, 0x12]),
    ("cover-open", [0x1A, 0x16, 0x12, 0x12]),
])
def test_controls_give_a_real_printers_replies(
    printer: VirtualPrinter, port: Any, control: str, replies: list[int],
) -> None:
    undo = {"paper-out": "paper-in", "paper-low": "paper-in", "jam": "clear",
            "cover-open": "cover-close"}[control]
    for command, expected in ((control, replies), (undo, [0x12] * 4)):
        printer.control(command)
        for n, byte in zip((1, 2, 3, 4), expected, strict=True):
            port.write(dle_eot(n))
            assert read_bytes(port, 1) == bytes((byte,)), (command, n)


def test_off_answers_nothing_and_loses_input(printer: VirtualPrinter, port: Any) -> None:
    printer.control("off")
    port.write(dle_eot(1) + receipt())
    assert read_bytes(port, 1, 0.3) == b""
    printer.control("on")
    port.write(dle_eot(1))
    assert read_bytes(port, 1) == b"\x12"
    assert printer.jobs.empty()


def test_unknown_control_is_refused(printer: VirtualPrinter) -> None:
    with pytest.raises(ValueError, match="unknown control 'paper-up'"):
        printer.control("paper-up")


def test_status_is_answered_at_once_while_printing_slowly() -> None:
    with VirtualPrinter(lines_per_s=10) as slow, \
            serial.Serial(slow.path, 9600, timeout=0.05) as client:
        client.write(receipt(lines=30))  # 3 s of printing
        started = time.monotonic()
        client.write(dle_eot(1))
        assert read_bytes(client, 1) == b"\x12"
        assert time.monotonic() - started < 0.5
        assert slow.jobs.empty()  # still printing


def test_dle_eot_inside_an_image_is_not_a_query(printer: VirtualPrinter, port: Any) -> None:
    image = Image.new("1", (16, 2), 1)
    for x, y in ((3, 0), (13, 0), (7, 1)):  # raster bytes 10 04 01 00
        image.putpixel((x, y), 0)
    p = make_dummy()
    p.hw("INIT")
    p.image(image)
    p.textln("after image")
    p.cut()
    data = bytes(p.output)
    assert dle_eot(1) in data
    for i in range(0, len(data), 7):  # in pieces: the payload is still payload
        port.write(data[i:i + 7])
        port.flush()
    job = printer.jobs.get(timeout=DEADLINE_S)
    assert isinstance(job, JobDone)
    assert "after image" in job.text
    assert read_bytes(port, 1, 0.2) == b""  # nothing was answered


def test_query_cut_between_reads_is_answered(printer: VirtualPrinter, port: Any) -> None:
    port.write(b"abc\x10")
    assert read_bytes(port, 1, 0.1) == b""
    port.write(b"\x04\x04")
    assert read_bytes(port, 1) == b"\x12"


def test_busy_sends_xoff_then_xon() -> None:
    with VirtualPrinter(lines_per_s=200, buffer_bytes=256) as vp, \
            serial.Serial(vp.path, 9600, timeout=0.05) as client:
        client.write(receipt(lines=40))
        assert read_bytes(client, 1) == bytes((XOFF,))
        assert read_bytes(client, 1) == bytes((XON,))
        assert isinstance(vp.jobs.get(timeout=DEADLINE_S), JobDone)
        assert not vp.busy


def test_a_job_stopped_by_paper_out_is_reported(printer: VirtualPrinter, port: Any) -> None:
    printer.control("paper-out")
    port.write(receipt())
    job = printer.jobs.get(timeout=DEADLINE_S)
    assert isinstance(job, JobFailed)
    assert job.reason == "paper_out"


def test_raw_log_keeps_every_byte(tmp_path: Path) -> None:
    log = tmp_path / "raw.bin"
    with VirtualPrinter(lines_per_s=500, raw_log=log) as vp, \
            serial.Serial(vp.path, 9600, timeout=0.05) as client:
        client.write(receipt() + dle_eot(1))
        assert read_bytes(client, 1) == b"\x12"
    assert log.read_bytes() == receipt() + dle_eot(1)


def test_another_baud_rate_is_not_understood() -> None:
    errors = io.StringIO()
    with VirtualPrinter(baudrate=19200, log=errors) as vp, \
            serial.Serial(vp.path, 9600, timeout=0.05) as client:
        client.write(dle_eot(1))
        assert read_bytes(client, 1, 0.3) == b""
        client.baudrate = 19200
        client.write(dle_eot(1))
        assert read_bytes(client, 1) == b"\x12"
    assert "another baud rate" in errors.getvalue()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="baudrate=1234"):
        VirtualPrinter(baudrate=1234)


# -- serve: the `posemu printer --pty` front end ----------------------------------------


class Serving:
    """``serve`` in a thread (or the main thread) with piped stdin and awaitable stdout."""

    def __init__(self) -> None:
        read_fd, write_fd = os.pipe()
        self.stdin = os.fdopen(read_fd, "r")
        self.control = os.fdopen(write_fd, "w")
        self.stdout, self.stderr = Lines(), Lines()

    def path(self) -> str:
        first = self.stdout.lines.get(timeout=DEADLINE_S)
        assert first.startswith("PTY /dev/")
        return first.removeprefix("PTY ")

    def send(self, line: str) -> None:
        self.control.write(line + "\n")
        self.control.flush()

    def run(self) -> int:
        return serve(lines_per_s=500, stdin=self.stdin, stdout=self.stdout,
                     stderr=self.stderr)

    def close(self) -> None:
        self.stdin.close()
        if not self.control.closed:
            self.control.close()


def test_serve_prints_pty_first_then_receipts_until_quit() -> None:
    s = Serving()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(s.run()))
    thread.start()
    try:
        with serial.Serial(s.path(), 9600, timeout=0.05) as client:
            client.write(receipt())
            assert s.stdout.until(CUT_MARK)[0] == "line 0"
            s.send("paper-up")
            assert "unknown control 'paper-up'" in s.stderr.lines.get(timeout=DEADLINE_S)
            s.send("paper-out")
            end = time.monotonic() + DEADLINE_S
            reply = b""
            while reply != b"\x1a" and time.monotonic() < end:  # the line is read async
                client.write(dle_eot(1))
                reply = read_bytes(client, 1)
            assert reply == b"\x1a"
            s.send("quit")
            thread.join(DEADLINE_S)
    finally:
        s.control.close()
        thread.join()
        s.close()
    assert result == [0]


def test_serve_ends_on_end_of_input() -> None:
    s = Serving()
    s.control.close()
    assert s.run() == 0
    assert s.path()
    s.close()


def test_serve_ends_on_sigterm() -> None:
    s = Serving()
    main = threading.main_thread().ident
    assert main is not None

    def terminate() -> None:
        s.path()
        signal.pthread_kill(main, signal.SIGTERM)

    killer = threading.Thread(target=terminate)
    killer.start()
    try:
        assert s.run() == 0
    finally:
        killer.join()
        s.close()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

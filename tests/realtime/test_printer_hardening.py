"""The virtual printer under careless use: a client that hangs up mid-command, a raw log
that cannot be written, a control line without end."""

from __future__ import annotations

import io
import os
import threading
import time

import pytest
import serial

from devices.printer.core import PrinterCore
from devices.printer.virtual import VirtualPrinter, serve
from tests.realtime.test_pty_printer import DEADLINE_S, Lines, dle_eot, read_bytes


def test_a_new_connection_starts_with_a_fresh_parser() -> None:
    """Before: the next client's DLE EOT was read as the payload of the image the last
    client cut off, and never answered."""
    with VirtualPrinter(lines_per_s=500, sink=Lines()) as printer:
        with serial.Serial(printer.path, 9600, timeout=0.05) as first:
            first.write(b"\x1dv0\x00\x10\x00\x00\x04" + b"\xff" * 10)  # 16 KiB promised
            first.flush()
            assert read_bytes(first, 1, 0.2) == b""  # still payload: nothing to answer
        end = time.monotonic() + DEADLINE_S
        while printer.hangups == 0 and time.monotonic() < end:
            time.sleep(0.01)
        assert printer.hangups == 1
        with serial.Serial(printer.path, 9600, timeout=0.05) as second:
            second.write(dle_eot(1))
            assert read_bytes(second, 1) == b"\x12"  # answered: online


def test_a_raw_log_that_fails_is_said_once_and_the_printer_serves_on() -> None:
    """Before: the receive thread died on the first byte; status queries went unanswered."""
    log = Lines()
    with VirtualPrinter(lines_per_s=500, sink=Lines(), raw_log="/dev/full", log=log) as printer:
        with serial.Serial(printer.path, 9600, timeout=0.05) as port:
            port.write(dle_eot(1))
            assert read_bytes(port, 1) == b"\x12"
            port.write(dle_eot(1))
            assert read_bytes(port, 1) == b"\x12"
        said = log.lines.get(timeout=DEADLINE_S)
        assert said.startswith("virtual printer: raw log /dev/full: No space left on device")
        assert log.lines.empty()


def test_a_control_line_without_end_is_refused_in_a_short_line() -> None:
    """Before: a 10 MB line was kept whole and echoed whole to stderr."""
    read_fd, write_fd = os.pipe()
    stdout, stderr = Lines(), io.StringIO()

    def feed() -> None:
        with os.fdopen(write_fd, "wb") as control:
            control.write(b"x" * 10_000_000 + b"\npaper-out\nquit\n")

    writer = threading.Thread(target=feed)
    writer.start()
    with os.fdopen(read_fd, "r") as stdin:
        assert serve(lines_per_s=500, stdin=stdin, stdout=stdout, stderr=stderr) == 0
    writer.join()
    [message] = stderr.getvalue().splitlines()
    assert message.startswith("posemu printer: unknown control 'xxxx")
    assert len(message) < 200


def test_a_host_that_ignores_xoff_cannot_fill_memory() -> None:
    """Before: the soft receive buffer grew as long as the host sent."""
    log = Lines()
    with VirtualPrinter(lines_per_s=0.01, buffer_bytes=64, sink=Lines(), log=log) as printer:
        with serial.Serial(printer.path, 9600, timeout=0.05) as port:
            port.write(b"x" * 40 + b"\n" * 1)
            for _ in range(200):  # 200 lines of 100 bytes, XOFF ignored
                port.write(b"y" * 99 + b"\n")
            port.flush()
            said = log.lines.get(timeout=DEADLINE_S)
            assert said.startswith("virtual printer: receive buffer over 4,096 bytes")
            port.reset_input_buffer()
            port.write(dle_eot(1))
            assert read_bytes(port, 1) == b"\x12"  # still answered
        assert printer._buffered <= 64 * 64


def test_a_printer_thread_that_fails_is_said_and_ends_serve_with_status_3(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: a failing thread died quietly and ``serve`` waited for ``quit``."""

    def broken(self: PrinterCore, data: bytes) -> list[object]:
        raise RuntimeError("print head on fire")

    monkeypatch.setattr(PrinterCore, "feed", broken)
    read_fd, write_fd = os.pipe()  # stdin that never ends by itself
    stdout, stderr = Lines(), Lines()
    result: list[int] = []
    with os.fdopen(read_fd, "r") as stdin, os.fdopen(write_fd, "w"):
        thread = threading.Thread(target=lambda: result.append(
            serve(lines_per_s=500, stdin=stdin, stdout=stdout, stderr=stderr)))
        thread.start()
        path = stdout.lines.get(timeout=DEADLINE_S).removeprefix("PTY ")
        with serial.Serial(path, 9600, timeout=0.05) as port:
            port.write(b"hello\n")
            thread.join(DEADLINE_S)
    assert result == [3]
    said = stderr.lines.get(timeout=DEADLINE_S)
    assert said == "virtual printer: the print head stopped: RuntimeError: print head on fire"

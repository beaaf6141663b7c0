"""SerialPrinter: a real (here: virtual, on a pty) ESC/POS printer in a real-time run."""

from __future__ import annotations

import os
import termios
import threading
import time
from collections.abc import Iterator

import pytest
import simpy.rt

from devices.fault import ActiveFault
from devices.printer import JobDone
from devices.pty_printer import VirtualPrinter
from devices.receipt import ReceiptData, render
from devices.serial_printer import (
    PrinterSpecError,
    SerialPrinter,
    SerialSpec,
    faults_from_status,
    parse_spec,
    state_from_status,
)
from emulator.errors import DeviceError
from emulator.trace import Trace

RECEIPT = render(ReceiptData(
    merchant="CAFE", merchant_id="M1", terminal_id="T1", when="2026-11-22 09:00",
    title="SALE", pan_last4="1111", amount="12.50", result="APPROVED", response_code="00",
    stan="000001", rrn="000000000001", approval_code="A1B2C3",
))
LONG = b"\x1b@" + b"".join(b"line %05d ..............................\n" % i
                           for i in range(1500)) + b"\x1dV\x00"


class Bench:
    """A virtual printer, a real-time environment and a SerialPrinter talking to it."""

    def __init__(self, lines_per_s: float = 500, **serial_options: float) -> None:
        self.virtual = VirtualPrinter(lines_per_s=lines_per_s, baudrate=115200)
        self.env = simpy.rt.RealtimeEnvironment(factor=1, strict=False)
        self.trace = Trace(self.env)
        self.faults: list[tuple[str, bool]] = []
        try:
            self.printer = SerialPrinter(
                self.env, self.trace, f"serial:{self.virtual.path}?baudrate=115200",
                on_fault=lambda kind, active: self.faults.append((kind, active)),
                poll_s=0.05, lines_per_s=lines_per_s, **{"reply_timeout_s": 0.05,
                                                          **serial_options})
        except BaseException:
            self.virtual.close()
            raise

    def run_for(self, seconds: float) -> None:
        self.env.run(until=self.env.now + seconds)

    def events(self, name: str) -> list[dict[str, object]]:
        return [e.fields for e in self.trace.events if e.name == name]

    def close(self) -> None:
        self.printer.close()
        self.virtual.close()


@pytest.fixture
def bench() -> Iterator[Bench]:
    b = Bench()
    yield b
    b.close()


# -- the device spec ---------------------------------------------------------------------


def test_spec_is_parsed() -> None:
    assert parse_spec("serial:/dev/ttyUSB0") == SerialSpec("/dev/ttyUSB0", 9600, "xonxoff")
    assert parse_spec("serial:/dev/pts/3?baudrate=115200&flow=rtscts") == SerialSpec(
        "/dev/pts/3", 115200, "rtscts")


@pytest.mark.parametrize(("spec", "message"), [
    ("/dev/ttyUSB0", "expected serial:<device>"),
    ("usb:/dev/ttyUSB0", "expected serial:<device>"),
    ("serial:", "expected serial:<device>"),
    ("serial:/dev/ttyS0?baudrate=fast", "baudrate must be a positive integer"),
    ("serial:/dev/ttyS0?baud=9600", "unknown or repeated option 'baud'"),
    ("serial:/dev/ttyS0?baudrate=9600&baudrate=19200", "unknown or repeated option"),
    ("serial:/dev/ttyS0?flow=dtr", "flow must be one of"),
])
def test_bad_spec_is_one_clear_line(spec: str, message: str) -> None:
    with pytest.raises(PrinterSpecError, match=message) as caught:
        parse_spec(spec)
    assert isinstance(caught.value, ValueError)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("replies", "faults", "state"), [
    ((0x12, 0x12, 0x12, 0x12), set(), "online"),
    ((0x12, 0x12, 0x12, 0x1E), set(), "paper_near_end"),
    ((0x1A, 0x32, 0x12, 0x7E), {"printer.paper_out"}, "paper_out"),
    ((0x1A, 0x16, 0x12, 0x12), {"printer.cover_open"}, "cover_open"),
    ((0x1A, 0x52, 0x1A, 0x12), {"printer.paper_jam"}, "jam"),
    ((0x1A, 0x12, 0x12, 0x12), {"printer.offline"}, "offline"),
    ((None, None, None, None), {"printer.offline"}, "off"),
])
def test_status_bytes_map_to_faults(
    replies: tuple[int | None, int | None, int | None, int | None], faults: set[str],
    state: str,
) -> None:
    assert faults_from_status(replies) == faults
    assert state_from_status(replies) == state


# -- against the virtual printer --------------------------------------------------------


def test_a_receipt_prints_on_the_virtual_printer(bench: Bench) -> None:
    job = bench.printer.print_job(RECEIPT, step="s1")
    assert bench.env.run(until=job) is True
    printed = bench.virtual.jobs.get(timeout=3)
    assert isinstance(printed, JobDone)
    assert "AMOUNT                           EUR 12.50" in printed.text
    [done] = bench.events("printer.job_done")
    assert done["text"] == printed.text
    assert done["step"] == "s1"
    assert [bench.printer.status(n) for n in (1, 2, 3, 4)] == [0x12] * 4


def test_paper_out_and_back_enter_the_model(bench: Bench) -> None:
    bench.run_for(0.1)
    assert bench.faults == []
    bench.virtual.control("paper-out")
    bench.run_for(0.2)
    assert bench.faults == [("printer.paper_out", True)]
    assert bench.printer.status(4) == 0x7E
    assert bench.env.run(until=bench.printer.print_job(RECEIPT)) is False
    assert bench.events("printer.job_failed")[0]["reason"] == "paper_out"
    bench.virtual.control("paper-in")
    bench.run_for(0.2)
    assert bench.faults == [("printer.paper_out", True), ("printer.paper_out", False)]
    states = [e["state"] for e in bench.events("printer.state")]
    assert states == ["online", "paper_out", "online"]


def test_a_silent_printer_is_offline_never_paper_adequate(bench: Bench) -> None:
    bench.virtual.control("off")
    bench.run_for(0.2)
    assert bench.faults == [("printer.offline", True)]
    assert bench.printer.status(4) is None
    bench.virtual.control("on")
    bench.run_for(0.2)
    assert bench.faults[-1] == ("printer.offline", False)


def test_a_scheduled_fault_overlays_the_real_printer(bench: Bench) -> None:
    jam = ActiveFault("printer.paper_jam")
    bench.printer.apply(jam)
    assert bench.printer.status(3) == 0x1A
    assert bench.env.run(until=bench.printer.print_job(RECEIPT)) is False
    assert bench.virtual.jobs.empty()
    bench.printer.clear(jam)
    assert bench.printer.status(3) == 0x12


def test_close_ends_the_poller(bench: Bench) -> None:
    bench.run_for(0.1)
    bench.printer.close()
    bench.env.run()  # returns: nothing is left to happen
    assert bench.env.now < 0.3


def test_a_missing_device_is_a_device_error() -> None:
    env = simpy.rt.RealtimeEnvironment(factor=1, strict=False)
    with pytest.raises(DeviceError, match="cannot open the port") as caught:
        SerialPrinter(env, Trace(env), "serial:/dev/posemu-no-such-port")
    assert caught.value.__cause__ is not None
    assert "\n" not in str(caught.value)


def test_the_printer_going_away_mid_run_is_a_device_error(bench: Bench) -> None:
    bench.run_for(0.1)
    bench.virtual.close()
    started = time.monotonic()
    with pytest.raises(DeviceError, match="Input/output error") as caught:
        bench.run_for(2)
    assert time.monotonic() - started < 1
    cause = caught.value.__cause__
    while isinstance(cause, DeviceError):  # simpy re-raises a copy, chained
        cause = cause.__cause__
    assert isinstance(cause, OSError | termios.error)


def test_the_port_vanishing_mid_receipt_is_a_device_error() -> None:
    bench = Bench(lines_per_s=5)  # slow: the long job fills the buffer, XOFF holds the write
    closer = threading.Timer(0.3, bench.virtual.close)
    closer.start()
    try:
        started = time.monotonic()
        with pytest.raises(DeviceError, match="cannot write the receipt"):
            bench.env.run(until=bench.printer.print_job(LONG))
        assert time.monotonic() - started < 2
    finally:
        closer.join()
        bench.close()


def test_a_printer_that_stops_taking_data_is_a_device_error() -> None:
    bench = Bench(lines_per_s=1, write_timeout_s=0.5)
    try:
        with pytest.raises(DeviceError, match="stopped taking data") as caught:
            bench.env.run(until=bench.printer.print_job(LONG))
        assert bench.virtual.busy
        assert caught.value.__cause__ is not None
    finally:
        bench.close()


@pytest.mark.hardware
@pytest.mark.skipif(not os.environ.get("POSEMU_PRINTER"),
                    reason="set POSEMU_PRINTER=serial:/dev/ttyUSB0 to test a real printer")
def test_a_physical_printer_prints_and_answers() -> None:
    env = simpy.rt.RealtimeEnvironment(factor=1, strict=False)
    printer = SerialPrinter(env, Trace(env), os.environ["POSEMU_PRINTER"])
    try:
        assert printer.status(1) is not None, "the printer does not answer DLE EOT"
        assert env.run(until=printer.print_job(RECEIPT)) is True
    finally:
        printer.close()

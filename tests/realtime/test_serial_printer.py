"""SerialPrinter: a real (here: virtual, on a pty) ESC/POS printer in a real-time run."""

from __future__ import annotations

import contextlib
import os
import select
import termios
import threading
import time
import tty
from collections.abc import Callable, Iterator

import pytest
import simpy.rt

from devices.errors import DeviceError
from devices.fault import ActiveFault
from devices.printer.core import CONDITIONS, JobDone, PrinterCore
from devices.printer.receipt import ReceiptData, render
from devices.printer.serial_port import (
    PrinterSpecError,
    SerialPrinter,
    SerialSpec,
    faults_from_status,
    parse_spec,
    state_from_status,
)
from devices.printer.status import StatusStream, replies_from_asb
from devices.printer.virtual import VirtualPrinter
from emulator.engine.trace import Trace

RECEIPT = render(ReceiptData(
    merchant="CAFE", merchant_id="M1", terminal_id="T1", when="2026-11-22 09:00",
    title="SALE", pan_last4="1111", amount="12.50", result="APPROVED", response_code="00",
    stan="000001", rrn="000000000001", approval_code="A1B2C3",
))
DEADLINE_S = 3.0
LONG = b"\x1b@" + b"".join(b"line %05d ..............................\n" % i
                           for i in range(1500)) + b"\x1dV\x00"


class Bench:
    """A virtual printer, a real-time environment and a SerialPrinter talking to it."""

    def __init__(self, lines_per_s: float = 500, options: str = "",
                 **serial_options: float) -> None:
        self.virtual = VirtualPrinter(lines_per_s=lines_per_s, baudrate=115200)
        self.env = simpy.rt.RealtimeEnvironment(factor=1, strict=False)
        self.trace = Trace(self.env)
        self.faults: list[tuple[str, bool]] = []
        try:
            self.printer = SerialPrinter(
                self.env, self.trace, f"serial:{self.virtual.path}?baudrate=115200{options}",
                on_fault=lambda kind, active: self.faults.append((kind, active)),
                lines_per_s=lines_per_s, **{"poll_s": 0.05, "reply_timeout_s": 0.05,
                                            **serial_options})
        except BaseException:
            self.virtual.close()
            raise

    def run_for(self, seconds: float) -> None:
        self.env.run(until=self.env.now + seconds)

    def wait_for(self, done: Callable[[], object]) -> None:
        """Run the environment in short steps until ``done()``; fail at the deadline."""
        end = time.monotonic() + DEADLINE_S
        while not done():
            assert time.monotonic() < end, "timed out"
            self.run_for(0.02)

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
    assert parse_spec("serial:/dev/ttyS0?asb=1").asb is True
    assert parse_spec("serial:/dev/ttyS0?asb=0").asb is False


@pytest.mark.parametrize(("spec", "message"), [
    ("/dev/ttyUSB0", "expected serial:<device>"),
    ("usb:/dev/ttyUSB0", "expected serial:<device>"),
    ("serial:", "expected serial:<device>"),
    ("serial:/dev/ttyS0?baudrate=fast", "baudrate must be a whole number from 50 to 4,000,000"),
    ("serial:/dev/ttyS0?baud=9600", "unknown or repeated option 'baud'"),
    ("serial:/dev/ttyS0?baudrate=9600&baudrate=19200", "unknown or repeated option"),
    ("serial:/dev/ttyS0?flow=dtr", "flow must be one of"),
    ("serial:/dev/ttyS0?asb=yes", "asb must be 0 or 1"),
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


@pytest.mark.parametrize("condition", [c for c in CONDITIONS if c != "off"])
def test_an_asb_packet_says_what_dle_eot_says(condition: str) -> None:
    core = PrinterCore()
    core.set_condition(condition, True)
    assert replies_from_asb(core.asb_bytes()) == tuple(core.status(n) for n in (1, 2, 3, 4))


def test_the_status_stream_splits_replies_from_asb_packets() -> None:
    stream = StatusStream()
    got = list(stream.feed(b"\x12\x18\x00"))  # a reply, then half a packet
    got += stream.feed(b"\x0f\x00\x13\x1a")  # its rest, XOFF (skipped), a reply
    got += stream.feed(b"\x10\x00\x12\x10\x00\x03\x00")  # a packet broken by a reply
    assert got == [0x12, b"\x18\x00\x0f\x00", 0x1A, 0x12, b"\x10\x00\x03\x00"]


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


# -- Automatic Status Back (asb=1) -------------------------------------------------------


@pytest.fixture
def asb_bench() -> Iterator[Bench]:
    b = Bench(options="&asb=1", poll_s=30)  # after the first poll, only ASB can tell
    b.wait_for(lambda: b.virtual.core.asb_enabled and b.printer.state == "online")
    yield b
    b.close()


def test_asb_reports_paper_out_between_polls(asb_bench: Bench) -> None:
    asb_bench.virtual.control("paper-out")
    asb_bench.wait_for(lambda: asb_bench.faults)
    assert asb_bench.faults == [("printer.paper_out", True)]
    asb_bench.virtual.control("paper-in")
    asb_bench.wait_for(lambda: len(asb_bench.faults) == 2)
    assert asb_bench.faults[-1] == ("printer.paper_out", False)
    assert [e["state"] for e in asb_bench.events("printer.state")] == [
        "online", "paper_out", "online"]
    assert asb_bench.env.now < 30


def test_asb_packet_waiting_before_a_query_is_kept(asb_bench: Bench) -> None:
    asb_bench.virtual.control("jam")  # a packet on its way, unread
    assert asb_bench.printer.status(3) == 0x1A  # the reply, not the packet's first byte
    asb_bench.wait_for(lambda: asb_bench.faults)  # the packet was read by the query: kept
    assert asb_bench.faults == [("printer.paper_jam", True)]


def test_asb_is_enabled_again_when_the_printer_comes_back_and_off_at_close() -> None:
    bench = Bench(options="&asb=1")
    try:
        bench.wait_for(lambda: bench.virtual.core.asb_enabled)
        bench.virtual.control("off")
        bench.wait_for(lambda: bench.faults)  # the poller hears the silence
        assert bench.faults == [("printer.offline", True)]
        bench.virtual.control("on")
        bench.wait_for(lambda: bench.virtual.core.asb_enabled)
        assert bench.faults[-1] == ("printer.offline", False)
        bench.printer.close()  # sends GS a 0
        end = time.monotonic() + DEADLINE_S
        while bench.virtual.core.asb_enabled:
            assert time.monotonic() < end, "ASB still enabled after close"
            time.sleep(0.01)
    finally:
        bench.close()


class Scripted:
    """A pty 'printer' that answers each DLE EOT n with ``before`` and then ``replies[n]``."""

    def __init__(self, before: bytes, replies: dict[int, int]) -> None:
        self.before, self.replies = before, replies
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._answer)
        self._thread.start()

    def _answer(self) -> None:
        pending = b""
        while True:
            ready, _, _ = select.select([self.master, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            pending += os.read(self.master, 256)
            while (at := pending.find(b"\x10\x04")) >= 0 and len(pending) > at + 2:
                n, pending = pending[at + 2], pending[at + 3:]
                os.write(self.master, self.before + bytes((self.replies[n],)))

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join()
        for fd in (self.master, self.slave, self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)


PAPER_OUT = {1: 0x1A, 2: 0x32, 3: 0x12, 4: 0x7E}


@pytest.mark.parametrize("before", [
    b"\x18\x00\x0f\x00",                      # a whole packet just before the reply
    b"\x18\x00\x0f\x00" * 2,                  # two packets
    b"\x18\x00",                              # half a packet, broken off by the reply
])
def test_status_skips_asb_bytes_that_come_before_the_reply(before: bytes) -> None:
    printer = Scripted(before, PAPER_OUT)
    env = simpy.rt.RealtimeEnvironment(factor=1, strict=False)
    faults: list[tuple[str, bool]] = []
    try:
        serial_printer = SerialPrinter(
            env, Trace(env), f"serial:{printer.path}?asb=1", poll_s=30,
            on_fault=lambda kind, active: faults.append((kind, active)))
        try:
            assert [serial_printer.status(n) for n in (1, 2, 3, 4)] == list(PAPER_OUT.values())
            env.run(until=0.1)
            assert faults == [("printer.paper_out", True)]
        finally:
            serial_printer.close()
    finally:
        printer.close()


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

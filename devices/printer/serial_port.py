"""A real ESC/POS printer on a serial port in the loop of a real-time simulation.

``SerialPrinter`` has SimPrinter's interface (``print_job``, ``status``, ``apply``/``clear``)
for a ``simpy.rt.RealtimeEnvironment``. A job's bytes are written with a bounded write; after
the time the printer needs (wire time at the baud rate plus ``lines_per_s``) it is confirmed
with DLE EOT. A poller reads DLE EOT 1-4 every ``poll_s`` and reports each change as a printer
fault through ``on_fault(kind, active)`` and as ``printer.state`` trace events. With ``asb=1``
the printer's Automatic Status Back packets (``GS a``, read every ``listen_s``) report the
same changes as they happen; the poller stays, for silence (which ASB cannot report).

Every blocking call is bounded: a missing port, a port that vanishes, or a printer that
stops taking data raises ``DeviceError`` (the cause chained). A printer that does not answer
DLE EOT is offline, never "paper adequate". python-escpos (and with it pyserial) is loaded
lazily, through ``devices.printer.receipt``'s quiet import, when a printer is opened.
"""

from __future__ import annotations

import contextlib
import termios
import time
import urllib.parse
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

import simpy

from devices.errors import DeviceError, PrinterSpecError
from devices.fault import ActiveFault, FaultBoard
from devices.ports import TraceSink
from devices.printer.core import JobDone, PrinterCore, decode_text
from devices.printer.limits import MAX_BAUD, MIN_BAUD
from devices.printer.receipt import import_escpos
from devices.printer.status import (
    ASB_DISABLE,
    ASB_ENABLE,
    REASONS,
    Replies,
    StatusStream,
    faults_from_status,
    replies_from_asb,
    state_from_status,
)
from devices.printer.virtual import print_lines

__all__ = ["FLOWS", "PrinterSpecError", "SerialPrinter", "SerialSpec", "faults_from_status",
           "parse_spec", "replies_from_asb", "state_from_status"]

FLOWS = ("xonxoff", "rtscts", "none")
_CONDITIONS = {"printer.paper_out": "paper_out", "printer.paper_jam": "jam",
               "printer.cover_open": "cover_open", "printer.offline": "off"}
_IO_ERRORS = (OSError, termios.error)  # serial.SerialException is an OSError
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SerialSpec:
    """Where the printer is and how to talk to it (8N1)."""

    device: str
    baudrate: int = 9600
    flow: str = "xonxoff"  # xonxoff | rtscts | none
    asb: bool = False      # enable Automatic Status Back (GS a) and read its packets


def parse_spec(spec: str) -> SerialSpec:
    """Parse ``serial:<device>[?baudrate=N][&flow=xonxoff|rtscts|none][&asb=0|1]``."""
    parts = urllib.parse.urlsplit(spec)
    if parts.scheme != "serial" or not parts.path or parts.netloc or parts.fragment:
        raise PrinterSpecError(f"printer {spec!r}: expected serial:<device>[?baudrate=N]")
    try:
        query = urllib.parse.parse_qs(parts.query, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise PrinterSpecError(f"printer {spec!r}: bad options: {exc}") from None
    unknown = set(query) - {"baudrate", "flow", "asb"}
    if unknown or any(len(v) > 1 for v in query.values()):
        raise PrinterSpecError(f"printer {spec!r}: unknown or repeated option "
                               f"{sorted(unknown or query)[0]!r} (baudrate, flow, asb)")
    baud, flow = query.get("baudrate", ["9600"])[0], query.get("flow", ["xonxoff"])[0]
    asb = query.get("asb", ["0"])[0]
    if not (baud.isascii() and baud.isdigit() and len(baud) <= 9
            and MIN_BAUD <= int(baud) <= MAX_BAUD):
        raise PrinterSpecError(f"printer {spec!r}: baudrate must be a whole number from "
                               f"{MIN_BAUD} to {MAX_BAUD:,}")
    if flow not in FLOWS:
        raise PrinterSpecError(f"printer {spec!r}: flow must be one of {', '.join(FLOWS)}")
    if asb not in ("0", "1"):
        raise PrinterSpecError(f"printer {spec!r}: asb must be 0 or 1")
    return SerialSpec(parts.path, int(baud), flow, asb == "1")


class SerialPrinter:
    """An ESC/POS printer on a serial port, driven from a real-time simpy environment.

    The poller (and the ASB listener) run until ``close()``: a run without a horizon must
    close the printer once the work is done, or ``env.run()`` never returns.
    """

    def __init__(
        self, env: simpy.Environment, trace: TraceSink, spec: str, *,
        on_fault: Callable[[str, bool], None] | None = None, poll_s: float = 0.5,
        lines_per_s: float = 20.0, write_timeout_s: float = 5.0, reply_timeout_s: float = 0.2,
        listen_s: float = 0.05,
    ) -> None:
        self.spec = parse_spec(spec)
        self.env, self.trace, self.on_fault = env, trace, on_fault
        self.poll_s, self.line_s = poll_s, 1.0 / lines_per_s
        self.reply_timeout_s = reply_timeout_s
        self.faults = FaultBoard()           # scheduled faults laid over the real printer
        self.seen: frozenset[str] = frozenset()  # faults the printer itself reports
        self.state = "unknown"
        self._overlay = PrinterCore()
        self._jobs = 0
        self._trouble = ""                   # first fault seen during the current job
        self._lock = simpy.Resource(env, capacity=1)
        self._closed = False
        self._stream = StatusStream()        # splits replies from ASB packets
        self._packets: list[bytes] = []      # ASB packets read, not yet reported
        self._device = self._open(write_timeout_s)
        self._poller = env.process(self._poll())
        if self.spec.asb:
            env.process(self._listen(listen_s))

    def _open(self, write_timeout_s: float) -> Any:
        spec = self.spec
        import_escpos()  # first, so its import side effects are undone
        from escpos.exceptions import Error as escpos_error  # noqa: PLC0415 - heavy
        from escpos.printer import Serial as serial_class  # noqa: PLC0415 - heavy
        printer = serial_class(devfile=spec.device, baudrate=spec.baudrate,
                               timeout=self.reply_timeout_s, xonxoff=spec.flow == "xonxoff",
                               dsrdtr=False)
        try:
            printer.open()
        except (escpos_error, *_IO_ERRORS) as exc:
            raise DeviceError(f"printer serial:{spec.device}: cannot open the port: "
                              f"{_one_line(exc)}") from exc
        device = printer.device
        # Detach the port: python-escpos' close() (also run by its __del__) flushes first,
        # which waits without bound on a printer that holds XOFF or has gone away.
        printer._device = False
        try:
            device.rtscts = spec.flow == "rtscts"
            device.write_timeout = write_timeout_s
            if spec.asb:
                device.write(ASB_ENABLE)
        except _IO_ERRORS as exc:
            device.close()
            raise DeviceError(f"printer serial:{spec.device}: cannot set up the port: "
                              f"{_one_line(exc)}") from exc
        return device

    # -- the model's interface ----------------------------------------------------------

    def apply(self, fault: ActiveFault) -> None:
        """A scheduled fault: the printer behaves as if it had it (real status ignored)."""
        self.faults.add(fault)
        self._overlay.set_condition(_CONDITIONS[fault.kind], True)
        self.trace.emit("printer.state", state=self._overlay.state)

    def clear(self, fault: ActiveFault) -> None:
        self.faults.remove(fault)
        if not self.faults.has(fault.kind):
            self._overlay.set_condition(_CONDITIONS[fault.kind], False)
            self.trace.emit("printer.state", state=self._overlay.state)

    def status(self, n: int) -> int | None:
        """DLE EOT ``n`` (1-4): the reply byte, or None when the printer is silent."""
        if self.faults:
            return self._overlay.status(n)
        return self._query(n)

    def print_job(self, data: bytes, **about: Any) -> simpy.Process:
        """Print one receipt; the process's value is True when it came out whole."""
        return self.env.process(self._job(data, about))

    def close(self) -> None:
        """Close the port (no flush: it could wait forever); the poller ends at its next turn.

        With ``asb`` ASB is switched off first (GS a 0) if nothing is waiting to be sent.
        """
        if self._closed:
            return
        self._closed = True
        device = self._device
        with contextlib.suppress(*_IO_ERRORS):
            if self.spec.asb and device.out_waiting == 0:
                device.write(ASB_DISABLE)
        with contextlib.suppress(*_IO_ERRORS):
            device.close()

    # -- jobs and polling ---------------------------------------------------------------

    def _job(self, data: bytes, about: dict[str, Any]) -> Generator[simpy.Event, Any, bool]:
        with self._lock.request() as turn:
            yield turn
            self._jobs += 1
            job = self._jobs
            self.trace.emit("printer.job_started", job=job, **about)
            if self.faults and not self._overlay.online:
                reason = self._overlay.state
            else:
                self._trouble = _first_reason(self.seen)
                self._io("write the receipt", lambda: self._device.write(data))
                yield self.env.timeout(len(data) * 10 / self.spec.baudrate
                                       + print_lines(data) * self.line_s)
                self._check()
                reason = self._trouble
            if not reason:
                self.trace.emit("printer.job_done", job=job, text=_text(data), **about)
                return True
            self.trace.emit("printer.job_failed", job=job, text="", reason=reason, **about)
            return False

    def _poll(self) -> Generator[simpy.Event, Any, None]:
        while not self._closed:
            self._check()
            yield self.env.timeout(self.poll_s)

    def _listen(self, every_s: float) -> Generator[simpy.Event, Any, None]:
        """Read the ASB packets the printer sent unasked and report them, every ``every_s``."""
        while True:
            yield self.env.timeout(every_s)
            if self._closed:
                return
            self._drain()
            self._report_packets()

    def _check(self) -> None:
        """Read DLE EOT 1-4; report changed faults and state."""
        if self.spec.asb:  # packets already here are older than any reply: report them first
            self._drain()
        self._report_packets()
        first = self._query(1)
        replies: Replies = (first, None, None, None) if first is None else (
            first, self._query(2), self._query(3), self._query(4))
        self._update(replies)

    def _report_packets(self) -> None:
        packets, self._packets = self._packets, []
        for packet in packets:
            self._update(replies_from_asb(packet))

    def _update(self, replies: Replies) -> None:
        """The printer's status is now ``replies``: report changed faults and state."""
        now = faults_from_status(replies)
        self._trouble = self._trouble or _first_reason(now)
        state = state_from_status(replies)
        if state != self.state:
            if self.spec.asb and self.state == "off":  # back on: power-up disabled ASB
                self._io("enable status back", lambda: self._device.write(ASB_ENABLE))
            self.state = state
            self.trace.emit("printer.state", state=state, source="printer")
        changes = [(k, False) for k in sorted(self.seen - now)] + \
                  [(k, True) for k in sorted(now - self.seen)]
        self.seen = now
        if self.on_fault is not None:
            for kind, active in changes:
                self.on_fault(kind, active)

    def _query(self, n: int) -> int | None:
        """One DLE EOT n exchange; ASB packets around the reply are kept, other bytes skipped.

        The input buffer is emptied first (with ``asb``, into the packet list) so that stale
        bytes are not taken for the reply.
        """
        device = self._device
        if self.spec.asb:
            self._drain()
        else:
            self._io("query status", device.reset_input_buffer)
            self._stream.reset()
        self._io("query status", lambda: device.write(bytes((0x10, 0x04, n))))
        deadline = time.monotonic() + self.reply_timeout_s
        while time.monotonic() < deadline:
            got: bytes = self._io("read status", lambda: device.read(1))
            if not got:
                return None
            for item in self._stream.feed(got):
                if isinstance(item, int):
                    return item
                self._keep(item)
        return None

    def _drain(self) -> None:
        """Read what is waiting (bounded: it is there) and keep the ASB packets in it."""
        device = self._device
        waiting: int = self._io("read status", lambda: device.in_waiting)
        if waiting:
            data: bytes = self._io("read status", lambda: device.read(waiting))
            for item in self._stream.feed(data):
                if isinstance(item, bytes):
                    self._keep(item)

    def _keep(self, packet: bytes) -> None:
        if self.spec.asb:
            self._packets.append(packet)

    def _io(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except _IO_ERRORS as exc:
            if "timeout" in type(exc).__name__.lower():
                message = f"printer stopped taking data ({what} timed out)"
            else:
                message = f"cannot {what}: {_one_line(exc)}"
            raise DeviceError(f"printer serial:{self.spec.device}: {message}") from exc


def _first_reason(kinds: frozenset[str]) -> str:
    """The failure reason for these faults ("" for none), in PrinterCore's words."""
    return next((REASONS[k] for k in REASONS if k in kinds), "")


def _text(data: bytes) -> str:
    """The job's text as SimPrinter reports it."""
    done = [o for o in PrinterCore(paper_m=1e6).feed(data) if isinstance(o, JobDone)]
    if done:
        return done[0].text
    try:
        return decode_text(data)
    except ValueError:
        return ""


def _one_line(exc: BaseException) -> str:
    args = exc.args
    text = args[1] if len(args) == 2 and isinstance(args[0], int) else str(exc)  # termios
    return " ".join(str(text).split()) or type(exc).__name__

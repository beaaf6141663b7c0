"""A virtual ESC/POS printer on a pseudo-terminal, driven by the simulation's ``PrinterCore``.

Any serial client talks to ``VirtualPrinter.path`` as to a real receipt printer:

* a reader thread always reads the pty master and tokenizes on arrival: a real
  ``DLE EOT n`` is answered at once from the core's state (nothing while "off"), even with
  print data waiting; ``10 04 n`` inside an image is payload;
* the rest goes to a receive buffer that a printer thread consumes at ``lines_per_s``;
  above a high-water mark XOFF (0x13) is sent, XON (0x11) once drained (BUSY). The buffer
  is soft (a pty has kilobytes in flight after XOFF): nothing is lost, unless a host goes
  on sending past 64 times the buffer's size (it ignores XOFF): that is dropped, and said;
* each job's text goes to a text sink when it is cut (or fails), and to ``jobs``; with
  ``render_dir``, its picture to a PNG file there (:class:`~devices.printer.render.PngReceipts`);
* once the host enables Automatic Status Back (``GS a n``, n != 0; processed in buffer
  order), the 4 ASB bytes are sent unasked at once and after every status change (one
  packet per control line); switching off disables ASB, as a power cycle does;
* a client at another baud rate is not understood (bytes dropped, no answers).

``serve`` is the ``posemu printer --pty`` front end (control lines on stdin).
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import signal
import sys
import termios
import threading
import time
import tty
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, Protocol, TextIO

from devices.printer.core import CUT_MARK, JobDone, JobFailed, Output, PrinterCore, StatusBack
from devices.printer.stream import DEFAULT_SPACING, Interpreter

if TYPE_CHECKING:
    from devices.printer.render import PngReceipts

__all__ = ["CONTROLS", "TextSink", "VirtualPrinter", "print_lines", "serve"]

XON, XOFF = 0x11, 0x13
_HANG_UP = (b"", 0.0)  # in the receive buffer: a client closed the port here
MAX_CONTROL_LINE = 1024  # a longer control line is refused, not read whole
OVERFLOW_FACTOR = 64  # the receive buffer holds at most this many times its size
_DLE, _DLE_EOT = 0x10, b"\x10\x04"

# control line -> (core condition, active) changes
CONTROLS: dict[str, tuple[tuple[str, bool], ...]] = {
    "paper-out": (("paper_out", True),), "paper-low": (("paper_low", True),),
    "paper-in": (("paper_out", False), ("paper_low", False)),
    "jam": (("jam", True),), "clear": (("jam", False),),
    "cover-open": (("cover_open", True),), "cover-close": (("cover_open", False),),
    "off": (("off", True),), "on": (("off", False),),
}


class TextSink(Protocol):
    """Where receipts and messages go (a text stream)."""

    def write(self, text: str, /) -> int: ...
    def flush(self) -> None: ...


_LINES: dict[bytes, Callable[[bytes], float]] = {  # paper-moving commands: lines of time
    b"\x1bd": lambda a: a[0], b"\x1bJ": lambda a: a[0] / DEFAULT_SPACING,
    b"\x1dv": lambda a: (a[4] | a[5] << 8) / DEFAULT_SPACING,
    b"\x1dk": lambda a: 162 / DEFAULT_SPACING, b"\x1dV": lambda a: 1.0,
}


def _lines(token: object) -> float:
    """How many print lines of time a token costs (0 for everything but paper motion)."""
    if isinstance(token, int):
        return 1.0 if token in (0x0A, 0x0C) else 0.0
    if not isinstance(token, tuple):
        return 0.0
    cost = _LINES.get(token[0])
    return 0.0 if cost is None else cost(token[1])


def print_lines(data: bytes) -> float:
    """How many lines of print time a stream takes (what ``lines_per_s`` paces)."""
    return sum(_lines(token) for token, _ in Interpreter().tokens.feed(data))


class VirtualPrinter:
    """An ESC/POS receipt printer on a fresh pty; use as a context manager or ``close()``."""

    def __init__(
        self, *, paper_m: float = 20.0, lines_per_s: float = 20.0, buffer_bytes: int = 4096,
        baudrate: int = 9600, sink: TextSink | None = None, raw_log: str | Path | None = None,
        log: TextSink | None = None, render_dir: str | Path | None = None,
    ) -> None:
        speed = getattr(termios, f"B{baudrate}", None)
        if not isinstance(speed, int) or lines_per_s <= 0 or buffer_bytes < 64:
            raise ValueError(f"bad printer settings: baudrate={baudrate}, "
                             f"lines_per_s={lines_per_s}, buffer_bytes={buffer_bytes}")
        self.core = PrinterCore(paper_m=paper_m)
        self.jobs: queue.Queue[JobDone | JobFailed] = queue.Queue()
        self._speed = speed
        self._line_s = 1.0 / lines_per_s
        self._high, self._low = buffer_bytes - buffer_bytes // 4, buffer_bytes // 4
        self._limit = OVERFLOW_FACTOR * buffer_bytes  # the soft buffer's hard end
        self._overflowed = False
        self._sink, self._log = sink, log
        self._lock = threading.RLock()          # core, buffer, tokenizer
        self._ready = threading.Condition(self._lock)
        self._out_lock = threading.Lock()       # sink writes
        self._buffer: deque[tuple[bytes, float]] = deque()
        self._buffered = 0
        self._busy = False                      # XOFF sent, XON not yet
        self._feeding = False                   # a chunk taken off the buffer, not yet out
        self._carry = b""                       # a DLE command cut by a read
        self._tokens = Interpreter().tokens
        self._garbled = False
        self.hangups = 0                        # clients that closed the port so far
        self._stopping = threading.Event()
        self._raw: BinaryIO | None = None
        self._pngs: PngReceipts | None = None
        if render_dir is not None:  # Pillow only for --render
            from devices.printer.render import PngReceipts  # noqa: PLC0415

            self._pngs = PngReceipts(render_dir)
        self._master, self._slave = os.openpty()
        self._wake_r, self._wake_w = os.pipe()
        self._dead_r, self._dead_w = os.pipe()  # readable once a thread has failed
        self.failure: Exception | None = None   # what stopped a thread, if one stopped
        try:
            tty.setraw(self._slave)
            attrs = termios.tcgetattr(self._slave)
            attrs[4] = attrs[5] = speed
            termios.tcsetattr(self._slave, termios.TCSANOW, attrs)
            self.path = os.ttyname(self._slave)
            os.set_blocking(self._master, False)
            if raw_log is not None:
                self._raw = open(raw_log, "ab")  # noqa: SIM115 - closed in close()
        except BaseException:
            self._close_fds()
            raise
        self._threads = [
            threading.Thread(target=self._guarded(self._read_loop, "receiver"),
                             name="pty-printer-rx"),
            threading.Thread(target=self._guarded(self._print_loop, "print head"),
                             name="pty-printer-head")]
        # Signals go to the main thread, which reads the control lines.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        try:
            for thread in self._threads:
                thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    # -- public -------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """XOFF was sent and XON not yet: the receive buffer is (nearly) full."""
        return self._busy

    def wait_printed(self, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) until everything received has been printed and its
        jobs handed to ``jobs``; True if so."""
        deadline = time.monotonic() + timeout_s
        with self._ready:
            while (self._buffer or self._feeding) and not self._stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._ready.wait(min(left, 0.05))  # the print loop does not notify
        return True

    def status(self, n: int) -> int | None:
        """What DLE EOT ``n`` would answer now."""
        with self._lock:
            return self.core.status(n)

    def control(self, line: str) -> None:
        """Apply one control line (see ``CONTROLS``); ValueError for an unknown one."""
        changes = CONTROLS.get(line.strip())
        if changes is None:
            shown = line.strip()
            shown = shown if len(shown) <= 40 else shown[:40] + "..."
            raise ValueError(f"unknown control {shown!r}; one of "
                             f"{', '.join(CONTROLS)}, quit")
        outs: list[Output] = []
        with self._lock:
            was_off = self.core.state == "off"
            for name, active in changes:
                outs += self.core.set_condition(name, active)
            backs = [out for out in outs if isinstance(out, StatusBack)]
            if backs:  # one change seen from outside: the latest status only
                self._send(backs[-1].data)
            if self.core.state == "off" and not was_off:   # power cycle: all input lost
                self._buffer.clear()
                self._buffered, self._carry = 0, b""
                self._tokens = Interpreter().tokens
            elif was_off and self.core.state != "off" and self._busy:
                self._busy = False
                self._send(bytes((XON,)))
        self._emit(outs)

    def close(self) -> None:
        """Stop the threads and close the pty (clients then get EIO). Idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        with self._ready:
            self._ready.notify_all()
        os.write(self._wake_w, b"x")
        for thread in self._threads:
            thread.join()
        self._close_fds()

    def __enter__(self) -> VirtualPrinter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- receiving ----------------------------------------------------------------------

    def _read_loop(self) -> None:
        """Read the host's bytes. Between connections the printer holds the port open
        itself, so the master blocks until a client writes; once one has, it lets go, so
        that the client's close is seen (EIO on the master: no one has it open)."""
        while True:
            ready, _, _ = select.select([self._master, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                data = os.read(self._master, 4096)
            except BlockingIOError:
                continue
            except OSError:  # EIO: the client closed the port (and we do not hold it)
                self._hang_up()
                if not self._hold_port():
                    return
                continue
            if self._slave >= 0:  # a client is connected: let go of the port
                os.close(self._slave)
                self._slave = -1
            self._log_raw(data)
            self._receive(data)

    def _hold_port(self) -> bool:
        """Open the port ourselves until the next client writes; False if it is gone."""
        try:
            self._slave = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return False
        return True

    @property
    def failure_fd(self) -> int:
        """A descriptor that turns readable when a thread of the printer has failed."""
        return self._dead_r

    def _guarded(self, loop: Callable[[], None], what: str) -> Callable[[], None]:
        """``loop`` that, should it fail, says so once and marks the printer failed
        (``serve`` then ends with status 3) instead of dying quietly."""

        def run() -> None:
            try:
                loop()
            except Exception as exc:  # any failure: said, never silent
                self.failure = exc
                self._say(f"virtual printer: the {what} stopped: {type(exc).__name__}: {exc}")
                with contextlib.suppress(OSError):
                    os.write(self._dead_w, b"x")

        return run

    def _log_raw(self, data: bytes) -> None:
        """Append to the raw log; a failing log is said once and dropped, serving goes on."""
        if self._raw is None:
            return
        try:
            self._raw.write(data)
            self._raw.flush()
        except OSError as exc:
            self._say(f"virtual printer: raw log {self._raw.name}: "
                      f"{exc.strerror or exc}; no longer logging, still printing")
            with contextlib.suppress(OSError):
                self._raw.close()
            self._raw = None

    def _say(self, text: str) -> None:
        if self._log is not None:
            with contextlib.suppress(OSError, ValueError):
                print(text, file=self._log, flush=True)

    def _hang_up(self) -> None:
        """The client closed the port: the next one starts with a fresh parser (a command
        cut off by the close does not swallow the next client's bytes as its payload)."""
        with self._lock:
            self.hangups += 1
            self._carry = b""
            self._tokens = Interpreter().tokens
            self._buffer.append(_HANG_UP)  # the head's parser resets there, in order
            self._ready.notify()

    def _receive(self, data: bytes) -> None:
        with self._lock:
            if self.core.state == "off" or not self._speed_ok():
                return
            held, base, start = self._carry + data, len(self._carry), 0
            cost = 0.0
            for token, offset in self._tokens.feed(data):
                end = base + offset
                if isinstance(token, tuple) and token[0] == _DLE_EOT:
                    self._push(held[start:end - 3], cost)
                    cost, start = 0.0, end
                    byte = self.core.status(token[1][0])
                    if byte is not None:
                        self._send(bytes((byte,)))
                    continue
                cost += _lines(token)
                if cost:
                    self._push(held[start:end], cost)
                    cost, start = 0.0, end
            tail = held[start:]
            self._carry = tail if tail[:1] == bytes((_DLE,)) else b""
            self._push(b"" if self._carry else tail, cost)
            if not self._busy and self._buffered >= self._high:
                self._busy = True
                self._send(bytes((XOFF,)))

    def _speed_ok(self) -> bool:
        """False (and one message) while the client's baud rate differs from ours."""
        ok: bool = self._client_speed() in (None, self._speed)
        if not ok and not self._garbled and self._log is not None:
            print("virtual printer: the host uses another baud rate: data not understood",
                  file=self._log, flush=True)
        self._garbled = not ok
        return ok

    def _client_speed(self) -> int | None:
        """The line speed the client set (None when it cannot be read)."""
        if self._slave >= 0:
            with contextlib.suppress(termios.error):
                return int(termios.tcgetattr(self._slave)[4])
            return None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            return int(termios.tcgetattr(fd)[4])
        except termios.error:
            return None
        finally:
            os.close(fd)

    def _push(self, chunk: bytes, cost: float) -> None:
        if self._buffered + len(chunk) > self._limit:  # a host that ignores XOFF for long
            if not self._overflowed:
                self._say(f"virtual printer: receive buffer over {self._limit:,} bytes: the "
                          "host ignores XOFF; data dropped until it drains")
            self._overflowed = True
            return
        self._overflowed = False
        if chunk or cost:
            self._buffer.append((chunk, cost))
            self._buffered += len(chunk)
            self._ready.notify()

    def _send(self, data: bytes) -> None:
        """Write to the host; dropped when the host does not read (never blocks)."""
        with contextlib.suppress(OSError):
            os.write(self._master, data)

    # -- printing -----------------------------------------------------------------------

    def _print_loop(self) -> None:
        while True:
            with self._ready:
                while not self._buffer and not self._stopping.is_set():
                    self._ready.wait()
                if self._stopping.is_set():
                    return
                entry = self._buffer.popleft()
                chunk, cost = entry
                self._buffered -= len(chunk)
                if entry is _HANG_UP:
                    self.core.new_connection()
                self._feeding = True
                outs = self.core.feed(chunk)
                if self._pngs is not None:
                    self._pngs.feed(chunk)
                for out in outs:
                    if isinstance(out, StatusBack):  # under the lock: packets stay in order
                        self._send(out.data)
                if self._busy and self._buffered <= self._low:
                    self._busy = False
                    self._send(bytes((XON,)))
            self._emit(outs)
            self._feeding = False
            if cost and self._stopping.wait(cost * self._line_s):
                return

    def _emit(self, outs: list[Output]) -> None:
        """Hand finished and failed jobs to ``jobs`` and the sink (ASB is sent by the caller)."""
        for out in outs:
            if isinstance(out, JobDone | JobFailed):
                if self._pngs is not None:
                    self._picture(out)
                self.jobs.put(out)
                if self._sink is not None:
                    end = CUT_MARK if isinstance(out, JobDone) else \
                        f"--- job failed: {out.reason} ---"
                    with self._out_lock:
                        self._sink.write("".join(f"{line}\n" for line in (out.text, end)
                                                 if line))
                        self._sink.flush()

    def _picture(self, out: JobDone | JobFailed) -> None:
        """Write the job's PNG (``render_dir``); a file that cannot be written is said once
        on the log, and printing goes on."""
        assert self._pngs is not None
        lines = len(out.text.split("\n")) if out.text else 0
        try:
            with self._lock:
                self._pngs.job_ended(lines, out.reason if isinstance(out, JobFailed) else None)
        except OSError as exc:
            if self._log is not None:
                print(f"virtual printer: cannot write the receipt's picture: {exc}",
                      file=self._log, flush=True)

    def _close_fds(self) -> None:
        for fd in (self._master, self._slave, self._wake_r, self._wake_w, self._dead_r,
                   self._dead_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._raw is not None:
            self._raw.close()


@contextlib.contextmanager
def _sigterm_fd() -> Iterator[int | None]:
    """A fd that turns readable on SIGTERM (None outside the main thread); unlike a raising
    handler, the C-level wakeup write is not lost when the signal precedes a blocking read."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    old_fd = signal.set_wakeup_fd(write_fd)
    try:
        yield read_fd
    finally:
        signal.set_wakeup_fd(old_fd)
        signal.signal(signal.SIGTERM, previous)
        os.close(read_fd)
        os.close(write_fd)


def _control_lines(stdin: TextIO, wake: int | None, dead: int | None = None) -> Iterator[str]:
    """Lines of ``stdin`` until its end, SIGTERM or ``dead`` turning readable (read from
    its fd when it has one)."""
    try:
        fd = stdin.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation: an in-memory stream
        yield from iter(stdin.readline, "")
        return
    pending, skipping = b"", False
    while True:
        watched = [fd, *(w for w in (wake, dead) if w is not None)]
        ready, _, _ = select.select(watched, [], [])
        if dead is not None and dead in ready:
            return
        if wake in ready and signal.SIGTERM in os.read(wake, 64):
            return
        if fd not in ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        if skipping and lines:  # the rest of an over-long line: dropped
            lines, skipping = lines[1:], False
        yield from (line.decode(errors="replace") for line in lines)
        if len(pending) > MAX_CONTROL_LINE:  # not a control line: say so, skip to its end
            if not skipping:
                yield pending[:MAX_CONTROL_LINE].decode(errors="replace")
            pending, skipping = b"", True
    if pending and not skipping:
        yield pending.decode(errors="replace")


def serve(
    *, baudrate: int = 9600, lines_per_s: float = 20.0, paper_m: float = 20.0,
    raw_log: str | Path | None = None, stdin: TextIO | None = None,
    stdout: TextSink | None = None, stderr: TextSink | None = None,
    render_dir: str | Path | None = None,
) -> int:
    """``posemu printer --pty``: print ``PTY <path>`` first, then receipts as they are cut.

    Control lines come from ``stdin`` until ``quit``, end of input or SIGTERM (status 0;
    130 on Ctrl-C); an unknown line gets one message on ``stderr``. Status 2 for bad
    settings (baud rate, speed), 3 when no pty (or raw log) can be opened or when the
    printer failed (said in one line on ``stderr``).
    """
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    if not isinstance(getattr(termios, f"B{baudrate}", None), int):
        print(f"posemu printer: --baudrate {baudrate}: not a line speed a serial port offers "
              "(9600, 19200, 38400, 57600, 115200, ...)", file=stderr)
        return 2
    try:
        printer = VirtualPrinter(baudrate=baudrate, lines_per_s=lines_per_s, paper_m=paper_m,
                                 sink=stdout, raw_log=raw_log, log=stderr,
                                 render_dir=render_dir)
    except OSError as exc:
        print(f"posemu printer: cannot start the virtual printer: {exc}", file=stderr)
        return 3
    except ValueError as exc:
        print(f"posemu printer: {exc}", file=stderr)
        return 2
    with printer, _sigterm_fd() as wake:
        print(f"PTY {printer.path}", file=stdout, flush=True)
        try:
            for line in _control_lines(stdin, wake, printer.failure_fd):
                command = line.strip()
                if command == "quit":
                    break
                if command:
                    try:
                        printer.control(command)
                    except ValueError as exc:
                        print(f"posemu printer: {exc}", file=stderr, flush=True)
        except KeyboardInterrupt:
            return 130
    return 0 if printer.failure is None else 3

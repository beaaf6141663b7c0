"""Every error posemu raises on purpose derives from one root.

    PosemuError (Exception)
    ├── ScenarioError (ValueError)      a scenario file or object is wrong: path, key, line
    ├── UsageError (ValueError)         a command-line value no parser can check: exit 2
    │   └── PrinterSpecError            a ``--printer`` value that is not a printer spec
    ├── TraceError (ValueError)         a trace file cannot be read back
    ├── PrinterDecodeError (ValueError) bytes that are not a well-formed ESC/POS stream
    ├── MessageError (ValueError)       an ISO 8583 frame that does not decode: field, pos
    ├── FramingError (ValueError)       bytes on a live connection that are not a frame
    ├── DeviceError (OSError)           real hardware or I/O failed (exit status 3)
    ├── ConservationError (RuntimeError) money was created or destroyed: a bug of posemu
    ├── LedgerMismatchError (RuntimeError) ledger and trace disagree: a bug of posemu
    └── FirmwareError (RuntimeError)   a plug-in firmware broke its contract: step, rule

Front ends turn ScenarioError/UsageError/TraceError into exit status 2 and DeviceError into 3;
a FirmwareError ends its run, which fails with a ``firmware_error`` (exit status 1).
"""

from __future__ import annotations


def one_line(text: str, limit: int = 400) -> str:
    """``text`` as one line of at most ``limit`` characters: control characters escaped
    (a newline in a file name is not a second message), the middle of a long text elided
    so that both what it names and why stay in view."""
    flat = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    if len(flat) <= limit:
        return flat
    half = (limit - 5) // 2
    return f"{flat[:half]} ... {flat[-half:]}"


class PosemuError(Exception):
    """Root of posemu's own errors."""


class ScenarioError(PosemuError, ValueError):
    """A scenario is invalid. ``str()`` is the one line shown to the user."""

    def __init__(
        self, message: str, *, path: str | None = None, key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.key = key
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = self.path or "<scenario>"
        if self.line is not None:
            where += f":{self.line}"
        if self.key:
            where += f": {self.key}"
        return f"{where}: {self.message}"


class UsageError(PosemuError, ValueError):
    """A bad command-line value its parser cannot check (an unknown anomaly name, a
    number out of range): exit status 2."""


class PrinterSpecError(UsageError):
    """A ``--printer`` value that is not ``serial:<device>[?baudrate=N&flow=F&asb=0|1]``."""


class TraceError(PosemuError, ValueError):
    """A trace file is missing, unreadable or not a posemu trace."""


class PrinterDecodeError(PosemuError, ValueError):
    """Bytes that are not a well-formed ESC/POS stream (e.g. a truncated command)."""

    def __init__(self, message: str, *, pos: int) -> None:
        self.pos = pos
        super().__init__(f"{message} at byte {pos}")


class MessageError(PosemuError, ValueError):
    """An ISO 8583 frame that cannot be decoded; ``partial`` holds what was decoded."""

    def __init__(
        self, message: str, *, field: str | None = None, pos: int | None = None,
        partial: dict[str, object] | None = None,
    ) -> None:
        self.field = field
        self.pos = pos
        self.partial = partial or {}
        super().__init__(message)


class FramingError(PosemuError, ValueError):
    """Bytes received on a live connection that are not a frame of its framing (a length
    header that is not one, a length out of bounds); the message names the bytes."""


class DeviceError(PosemuError, OSError):
    """Real hardware or I/O failed (a serial port vanished, a printer stopped answering)."""


class ConservationError(PosemuError, RuntimeError):
    """Money was created or destroyed: always a bug of the emulator itself."""


class LedgerMismatchError(PosemuError, RuntimeError):
    """The bank's ledger disagrees with what the trace says the bank did (the postings
    standing per key, the merchant's balance): always a bug of the emulator itself."""


class FirmwareError(PosemuError, RuntimeError):
    """A plug-in firmware broke the event contract (docs/firmware.md) or raised: the step
    it was running (or ``None``), the rule it broke, and what happened."""

    def __init__(self, rule: str, detail: str, step: str | None = None) -> None:
        self.rule = rule
        self.detail = detail
        self.step = step
        super().__init__(rule, detail, step)  # simpy re-raises a process's error from its args

    def __str__(self) -> str:
        where = f"step {self.step}" if self.step is not None else "outside any step"
        return f"{where}: {self.rule}: {self.detail}"

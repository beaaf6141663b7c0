"""Reading a scenario file: a regular file of bounded size, or one `ScenarioError`.

A scenario is never a device (``/dev/zero`` reads forever), a FIFO (blocks with no
writer) or a directory, and never more than :data:`MAX_SCENARIO_BYTES`: each is refused
before anything is read. The file is opened without blocking, then its kind is checked
on the open descriptor, so a path that changes between the two cannot slip through.
"""

from __future__ import annotations

import errno
import os
import stat

from devices.errors import ScenarioError

MAX_SCENARIO_BYTES = 64 * 1024 * 1024
"""The largest scenario file read (64 MiB: about a million steps)."""

_KINDS = (
    (stat.S_ISDIR, "is a directory, not a scenario file"),
    (stat.S_ISFIFO, "is a FIFO (named pipe), not a regular file: a scenario is a file"),
    (stat.S_ISSOCK, "is a socket, not a regular file: a scenario is a file"),
    (stat.S_ISCHR, "is a device, not a regular file: a scenario is a file"),
    (stat.S_ISBLK, "is a device, not a regular file: a scenario is a file"),
)
_OPEN_ERRORS = {
    errno.ENOENT: "no such file",
    errno.ELOOP: "symbolic link loop (too many levels of symbolic links)",
    errno.ENAMETOOLONG: "file name too long",
    errno.ENOTDIR: "no such file (a part of the path is not a directory)",
    errno.EACCES: "cannot read: permission denied",
}


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MiB"


def read_scenario_bytes(name: str, limit: int = MAX_SCENARIO_BYTES) -> bytes:
    """The bytes of the regular file ``name`` (at most ``limit``); ScenarioError otherwise."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        message = _OPEN_ERRORS.get(err.errno or 0, f"cannot read: {err.strerror or err}")
        if err.errno == errno.ENOENT and os.path.islink(name):
            message = "no such file (a symbolic link to a missing file)"
        raise ScenarioError(message, path=name) from err
    try:
        info = os.fstat(fd)
        for test, message in _KINDS:
            if test(info.st_mode):
                raise ScenarioError(message, path=name)
        if info.st_size > limit:
            raise ScenarioError(f"too large ({_mib(info.st_size)}): a scenario file holds at "
                                f"most {_mib(limit)}", path=name)
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # it grew while being read
                raise ScenarioError(f"too large: a scenario file holds at most {_mib(limit)}",
                                    path=name)
        return b"".join(chunks)
    except OSError as err:
        raise ScenarioError(f"cannot read: {err.strerror or err}", path=name) from err
    finally:
        os.close(fd)

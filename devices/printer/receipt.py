"""Receipts as ESC/POS bytes, exactly as python-escpos ``Dummy`` (profile TM-T88V) makes them.

A receipt is a list of operations: text (``str``) or a printer call (``_Call``). When every
text is ASCII the bytes are assembled from per-call bytes captured once from ``Dummy``
(fast: no python-escpos work per receipt); otherwise the operations are replayed on a
``Dummy`` so its code page switching decides the bytes. Both give the same output.

python-escpos is imported lazily and quietly (see ``make_dummy``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = ["WIDTH", "ReceiptData", "make_dummy", "render"]

WIDTH = 42  # characters per line, font A on an 80 mm TM-T88V
PROFILE = "TM-T88V"
_PICKLE_ENV = "ESCPOS_CAPABILITIES_PICKLE_DIR"
_CONTROLS = dict.fromkeys((*range(0x20), 0x7F), "?")  # no command can be smuggled in a field


@dataclass(frozen=True, kw_only=True)
class ReceiptData:
    """What a receipt shows. ``pan_last4``: only the last 4 characters are ever printed."""

    merchant: str
    merchant_id: str
    terminal_id: str
    when: str
    title: str
    pan_last4: str
    amount: str
    currency: str = "EUR"
    result: str
    response_code: str
    stan: str
    rrn: str
    approval_code: str
    extra_lines: tuple[str, ...] = ()


class _Call(NamedTuple):
    """A python-escpos printer method call, e.g. ``set(align="center")``."""

    method: str
    kwargs: tuple[tuple[str, str | bool], ...] = ()


_INIT = _Call("hw", (("hw", "INIT"),))
_CENTER_BOLD = _Call("set", (("align", "center"), ("bold", True)))
_BOLD_OFF = _Call("set", (("bold", False),))
_TITLE_ON = _Call("set", (("double_height", True), ("bold", True)))
_TITLE_OFF = _Call("set", (("normal_textsize", True), ("bold", False)))
_LEFT = _Call("set", (("align", "left"),))
_CUT = _Call("cut")


def _clean(text: str) -> str:
    if text.isascii() and text.isprintable():  # nothing to replace: most fields, ten times faster
        return text
    return text.translate(_CONTROLS)


def _pair(label: str, value: str) -> str:
    """``label`` left and ``value`` right on one line (or separated by a space if too long)."""
    return f"{label} {value.rjust(WIDTH - 1 - len(label))}"


def _operations(d: ReceiptData) -> list[str | _Call]:
    """The receipt as printer calls and text, in order."""
    c = _clean
    ops: list[str | _Call] = [
        _INIT, _CENTER_BOLD, f"{c(d.merchant)}\n", _BOLD_OFF,
        f"MID {c(d.merchant_id)}\nTID {c(d.terminal_id)}\n{c(d.when)}\n\n",
        _TITLE_ON, f"{c(d.title)}\n", _TITLE_OFF, _LEFT,
    ]
    if d.pan_last4:
        ops.append(_pair("CARD", f"**** **** **** {c(d.pan_last4[-4:])}") + "\n")
    ops.append(_pair("AMOUNT", f"{c(d.currency)} {c(d.amount)}") + "\n")
    ops.extend(f"{c(line)}\n" for line in d.extra_lines)
    ops += [
        "\n", _CENTER_BOLD, f"{c(d.result)}\n", _BOLD_OFF,
        f"RESPONSE CODE {c(d.response_code)}\n", _LEFT,
        _pair("STAN", c(d.stan)) + "\n" + _pair("RRN", c(d.rrn)) + "\n"
        + _pair("AUTH", c(d.approval_code)) + "\n\n\n",
        _CUT,
    ]
    return ops


def render(data: ReceiptData) -> bytes:
    """The receipt's ESC/POS bytes: ESC @, header, fields, result, STAN/RRN/AUTH, cut."""
    ops = _operations(data)
    return _assemble(ops) or _replay(ops)


def _assemble(ops: list[str | _Call]) -> bytes | None:
    """Fast path: the bytes from cached call bytes, or None if some text is not ASCII."""
    parts: list[bytes] = []
    text_start = _text_start()  # MagicEncode selects a code page before the first text
    for op in ops:
        if isinstance(op, str):
            if not op.isascii():
                return None
            if op and text_start:
                parts.append(text_start)
                text_start = b""
            parts.append(op.encode("ascii"))
        else:
            parts.append(_call_bytes(op))
    return b"".join(parts)


def _replay(ops: list[str | _Call]) -> bytes:
    """The reference: every operation on a fresh python-escpos ``Dummy``."""
    printer = make_dummy()
    for op in ops:
        if isinstance(op, str):
            printer.text(op)
        else:
            getattr(printer, op.method)(**dict(op.kwargs))
    return bytes(printer.output)


@functools.cache
def _call_bytes(call: _Call) -> bytes:
    printer = make_dummy()
    getattr(printer, call.method)(**dict(call.kwargs))
    return bytes(printer.output)


@functools.cache
def _text_start() -> bytes:
    printer = make_dummy()
    printer.text("A")
    return bytes(printer.output)[:-1]


def make_dummy() -> Any:
    """A fresh python-escpos printer (profile TM-T88V) recording bytes in ``.output``, as
    ``escpos.printer.Dummy`` does."""
    return _dummy_class()(profile=PROFILE)


def import_escpos() -> None:
    """Import python-escpos once, without its side effects (see ``_dummy_class``)."""
    _dummy_class()


@functools.cache
def _dummy_class() -> Any:
    """Import python-escpos without its side effects.

    On import it calls ``logging.basicConfig()`` (the root handler it adds is removed
    again), creates a ``mkdtemp()`` directory even when ``ESCPOS_CAPABILITIES_PICKLE_DIR``
    is set (``mkdtemp`` is pointed at our directory during the import), and writes its
    capabilities pickle in place, which a concurrent importer may read half-written (an
    import that would write it, because it is missing or older than the capabilities
    file, writes it into a private directory and moves it in atomically). The shared
    directory is one per virtual environment, so another python-escpos's pickle is never
    found stale there.
    """
    if "escpos.escpos" in sys.modules:
        return _recorder(sys.modules["escpos.escpos"].Escpos)
    uid = os.getuid() if hasattr(os, "getuid") else 0
    where = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]  # one directory a venv
    shared = os.environ.setdefault(
        _PICKLE_ENV, os.path.join(tempfile.gettempdir(), f"posemu-escpos-{uid}-{where}"))
    os.makedirs(shared, exist_ok=True)
    name = f"{platform.python_version()}.capabilities.pickle"  # python-escpos' file name
    staging = None if _pickle_fresh(os.path.join(shared, name)) else tempfile.mkdtemp(
        prefix="staging-", dir=shared)
    target = staging or shared
    root = logging.getLogger()
    handlers = list(root.handlers)
    mkdtemp = tempfile.mkdtemp
    tempfile.mkdtemp = lambda *args, **kwargs: target  # type: ignore[assignment]
    os.environ[_PICKLE_ENV] = target
    try:
        from escpos.escpos import Escpos  # noqa: PLC0415 - heavy import with side effects
    finally:
        tempfile.mkdtemp = mkdtemp
        os.environ[_PICKLE_ENV] = shared
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        if staging is not None:
            written = os.path.join(staging, name)
            if os.path.exists(written):
                os.replace(written, os.path.join(shared, name))
            shutil.rmtree(staging, ignore_errors=True)
    return _recorder(Escpos)


def _pickle_fresh(pickle_path: str) -> bool:
    """Whether python-escpos will read its capabilities pickle at ``pickle_path`` as it
    is: it exists and is not older than the capabilities file. Otherwise the import
    rewrites it in place, which a concurrent importer would read half-written."""
    spec = importlib.util.find_spec("escpos")
    folders = spec.submodule_search_locations if spec is not None else None
    if not folders or not os.path.exists(pickle_path):
        return False
    source = os.path.join(next(iter(folders)), "capabilities.json")
    return not os.path.exists(source) or (
        os.path.getmtime(source) <= os.path.getmtime(pickle_path))


def _recorder(escpos: Any) -> Any:
    """``escpos.printer.Dummy`` without its package, which imports every backend
    (pyserial included) that a simulated run never uses."""

    class Recorder(escpos):  # type: ignore[misc]
        """Keeps the bytes python-escpos sends, in ``.output``."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._parts: list[bytes] = []

        def _raw(self, msg: bytes) -> None:
            self._parts.append(msg)

        @property
        def output(self) -> bytes:
            return b"".join(self._parts)

    return Recorder

"""An independent minimal ISO 8583 client for the live tests: pyiso8583 and a socket.

It shares nothing with posemu's terminal: the spec is pyiso8583's ``default_ascii`` with
field 64 as 8 raw bytes, as docs/live.md gives it; the MAC, when a key is given, is
computed here from the documented rule (HMAC-SHA256 over the message with field 64 set
to zeros, first 8 bytes). Every socket operation has a timeout.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import socket
import ssl
from typing import Any

import iso8583
from iso8583.specs import default_ascii

SPEC = copy.deepcopy(default_ascii)
SPEC["64"].update(data_enc="b", len_type=0, max_len=8)
TIMEOUT_S = 3.0
F7 = "1122090000"


def request(mti: str, stan: int, *, pan: str = "4111111111111111", amount: int = 1000,
            tid: str = "TERM0001", f7: str = F7, **extra: str) -> dict[str, Any]:
    """A request's fields (a sale by default)."""
    doc: dict[str, Any] = {"t": mti, "2": pan, "3": "000000", "4": f"{amount:012d}",
                           "7": f7, "11": f"{stan:06d}", "41": tid, "42": "MERCHANT0000001",
                           "49": "978"}
    doc.update(extra)
    return doc


def encode(doc: dict[str, Any], mac_key: bytes | None = None) -> bytes:
    """The message bytes (no length header); with ``mac_key``, field 64 is its MAC."""
    doc = dict(doc)
    if mac_key is None:
        raw, _ = iso8583.encode(doc, SPEC)
        return bytes(raw)
    doc["64"] = "00" * 8
    zeroed, _ = iso8583.encode(doc, SPEC)
    mac = hmac.new(mac_key, bytes(zeroed), hashlib.sha256).digest()[:8]
    return bytes(zeroed[:-8]) + mac  # field 64 is the last field here


def decode(message: bytes) -> dict[str, Any]:
    doc, _ = iso8583.decode(message, SPEC)
    return dict(doc)


class Client:
    """One connection: ``len2`` framing (2-byte big-endian length) unless told otherwise."""

    def __init__(self, address: tuple[str, int], *, tls: ssl.SSLContext | None = None,
                 header: str = "len2") -> None:
        sock = socket.create_connection(address, timeout=TIMEOUT_S)
        try:
            self.sock = tls.wrap_socket(sock, server_hostname="localhost") if tls else sock
        except (OSError, ssl.SSLError):
            sock.close()
            raise
        self.sock.settimeout(TIMEOUT_S)
        self.header = header

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _head(self, n: int) -> bytes:
        kind, _, counts_self = self.header.partition("+")
        n += (4 if kind in ("ascii4", "hex4") else 2) if counts_self else 0
        return {"len2": n.to_bytes(2, "big"), "len2le": n.to_bytes(2, "little"),
                "bcd2": bytes.fromhex(f"{n:04d}"), "ascii4": f"{n:04d}".encode(),
                "hex4": f"{n:04X}".encode()}[kind]

    def send(self, message: bytes) -> None:
        self.sock.sendall(self._head(len(message)) + message)

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError(f"closed after {len(data)} of {n} bytes")
            data += chunk
        return data

    def receive(self) -> dict[str, Any]:
        kind, _, counts_self = self.header.partition("+")
        size = 4 if kind in ("ascii4", "hex4") else 2
        head = self._exactly(size)
        n = {"len2": lambda h: int.from_bytes(h, "big"),
             "len2le": lambda h: int.from_bytes(h, "little"),
             "bcd2": lambda h: int(h.hex()), "ascii4": int,
             "hex4": lambda h: int(h, 16)}[kind](head)
        return decode(self._exactly(n - (size if counts_self else 0)))

    def ask(self, doc: dict[str, Any], mac_key: bytes | None = None) -> dict[str, Any]:
        self.send(encode(doc, mac_key))
        return self.receive()

    def closed_by_peer(self) -> bool:
        """True when the server closed (or reset) the connection."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True

"""A deliberately broken acquirer host for the host-verdict tests, written here with
pyiso8583 and a socket (it shares nothing with posemu's acquirer).

It speaks ``len2`` and posemu's dialect (MAC with posemu's test key), approves every
sale, and breaks the rules it is told to:

- ``posts_duplicates``: every frame is posted as a new sale (a new RRN and approval
  code), a repeat or a copy of a frame included; its settlement compares the terminal's
  totals with those postings (and answers 95).
- ``ignores_early_reversals``: the first sale is held unanswered; a reversal of it is
  answered 25 (unknown), then the held sale is posted and approved.
- ``wrong_stan``: each answer carries the request's STAN plus one.

Every socket wait has a timeout; :meth:`BrokenHost.stop` ends it.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from tests.realtime.live_client import decode, encode

MAC_KEY = b"posemu-test-mac-key-0001"
WAIT_S = 5.0


class BrokenHost:
    """A host on 127.0.0.1 (a free port) breaking the rules in ``faults``."""

    def __init__(self, *faults: str) -> None:
        self.faults = set(faults)
        self.posted: list[tuple[str, int]] = []  # (STAN, amount) of each posting
        self.held: dict[str, Any] | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(WAIT_S)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(0.2)
                self._talk(conn)

    def _talk(self, conn: socket.socket) -> None:
        buffer = b""
        for _ in range(int(WAIT_S / 0.2) * 4):  # bounded: at most 4 x WAIT_S per connection
            if self._stopped.is_set():
                return
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            buffer += data
            while len(buffer) >= 2 and len(buffer) >= 2 + int.from_bytes(buffer[:2], "big"):
                n = int.from_bytes(buffer[:2], "big")
                request, buffer = decode(buffer[2:2 + n]), buffer[2 + n:]
                for answer in self._answers(request):
                    raw = encode(answer, MAC_KEY)
                    conn.sendall(len(raw).to_bytes(2, "big") + raw)

    def _answers(self, f: dict[str, Any]) -> list[dict[str, Any]]:
        mti = str(f["t"])
        if mti[:3] == "020":
            if "ignores_early_reversals" in self.faults and self.held is None and not self.posted:
                self.held = f
                return []
            return [self._sale(f)]
        if mti[:3] == "040":
            answers = [self._answer(f, "25")]
            if self.held is not None:  # the original "arrives" after its reversal: posted
                answers.append(self._sale(self.held))
                self.held = None
            return answers
        if mti[:3] == "050":
            theirs = (int(f.get("74", "0")), int(f.get("86", "0")))
            mine = (len(self.posted), sum(amount for _, amount in self.posted))
            return [self._answer(f, "00" if theirs == mine else "95")]
        return [self._answer(f, "00")]

    def _sale(self, f: dict[str, Any]) -> dict[str, Any]:
        stan = str(f["11"])
        if "posts_duplicates" not in self.faults and any(s == stan for s, _ in self.posted):
            n = next(i for i, (s, _) in enumerate(self.posted, 1) if s == stan)
        else:
            self.posted.append((stan, int(f["4"])))
            n = len(self.posted)
        return self._answer(f, "00", {"37": f"{n:012d}", "38": f"{n:06d}"})

    def _answer(self, f: dict[str, Any], code: str,
                extra: dict[str, str] | None = None) -> dict[str, Any]:
        mti = str(f["t"])
        out = {k: f[k] for k in ("3", "4", "7", "11", "41", "42", "49") if k in f}
        out.update({"t": mti[:2] + str(int(mti[2]) + 1) + "0", "39": code, **(extra or {})})
        if "wrong_stan" in self.faults:
            out["11"] = f"{(int(f['11']) + 1) % 1_000_000:06d}"
        return out

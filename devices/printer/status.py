"""Decoding what an ESC/POS printer says about itself: DLE EOT replies and ASB packets.

A DLE EOT n reply is one byte of the form ``0xx1xx10``. An Automatic Status Back packet
(sent unasked on every status change once ``GS a n`` enabled it) is 4 bytes: a first byte
``0xx1xx00`` and three bytes with bits 4 and 7 clear (Epson). Bit 4 alone tells a packet's
tail from a reply, so ``StatusStream`` can split any mix of the two, skipping noise.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["ASB_DISABLE", "ASB_ENABLE", "REASONS", "Replies", "StatusStream",
           "faults_from_status", "replies_from_asb", "state_from_status"]

Replies = tuple[int | None, int | None, int | None, int | None]

# GS a n, n = bit 1 online/offline (with cover), bit 2 errors, bit 3 roll paper sensors;
# bit 0 (drawer kick pin) is left out: no drawer in the model.
ASB_ENABLE = b"\x1da\x0e"
ASB_DISABLE = b"\x1da\x00"

# printer fault -> the failure reason PrinterCore gives, in precedence order
REASONS = {"printer.offline": "off", "printer.paper_jam": "jam",
           "printer.cover_open": "cover_open", "printer.paper_out": "paper_out"}


def faults_from_status(replies: Replies) -> frozenset[str]:
    """The printer faults that DLE EOT 1-4 replies show (silence on 1: printer.offline)."""
    first, cause, error, roll = replies
    if first is None:
        return frozenset({"printer.offline"})
    kinds = set()
    if cause is not None and cause & 0x04:
        kinds.add("printer.cover_open")
    if (cause is not None and cause & 0x20) or (roll is not None and roll & 0x60 == 0x60):
        kinds.add("printer.paper_out")
    if error is not None and error & 0x28:  # autocutter or unrecoverable error
        kinds.add("printer.paper_jam")
    if first & 0x08 and not kinds:
        kinds.add("printer.offline")  # offline for a cause it does not report
    return frozenset(kinds)


def state_from_status(replies: Replies) -> str:
    """off, jam, cover_open, paper_out, offline, paper_near_end or online (as PrinterCore)."""
    first, _, _, roll = replies
    kinds = faults_from_status(replies)
    if first is None:
        return "off"
    for kind in ("printer.paper_jam", "printer.cover_open", "printer.paper_out"):
        if kind in kinds:
            return REASONS[kind]
    if kinds:
        return "offline"
    return "paper_near_end" if roll is not None and roll & 0x0C == 0x0C else "online"


def replies_from_asb(packet: bytes) -> Replies:
    """The DLE EOT 1-4 replies that carry the same news as one 4-byte ASB packet.

    Byte 1: bit 3 offline, bit 5 cover open (bits 2, 6 as DLE EOT 1). Byte 2: bit 3
    autocutter error, bit 5 unrecoverable, bit 6 auto-recoverable. Byte 3: 0x03 near end,
    0x0C paper end.
    """
    head, error, roll = packet[0], packet[1] & 0x68, packet[2]
    paper_end = roll & 0x0C == 0x0C
    return (
        0x12 | (head & 0x4C),
        0x12 | (0x04 if head & 0x20 else 0) | (0x20 if paper_end else 0)
        | (0x40 if error else 0),
        0x12 | error,
        0x12 | (0x0C if roll & 0x0F else 0) | (0x60 if paper_end else 0),
    )


class StatusStream:
    """Splits the bytes a printer sends into DLE EOT reply bytes and whole ASB packets.

    Feed it any pieces; a packet cut between reads is completed by the next piece. A packet
    broken off by a reply or a new packet is dropped; other bytes (XON/XOFF) are skipped.
    """

    def __init__(self) -> None:
        self._packet = bytearray()

    def reset(self) -> None:
        """Forget a partial packet (the input buffer was discarded)."""
        self._packet.clear()

    def feed(self, data: bytes) -> Iterator[int | bytes]:
        """Yield each reply byte (int) and each complete ASB packet (4 bytes), in order."""
        for byte in data:
            if self._packet and byte & 0x90 == 0:
                self._packet.append(byte)
                if len(self._packet) == 4:
                    yield bytes(self._packet)
                    self._packet.clear()
            elif byte & 0x93 == 0x10:
                self._packet[:] = bytes((byte,))
            else:
                self._packet.clear()
                if byte & 0x93 == 0x12:
                    yield byte

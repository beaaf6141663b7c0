"""What the cashier sees: the terminal's screen at the end of a step, and the slips the
printer gave for it, as the names ``[expect] screens`` / ``receipts`` and ``[[steps]]
if_screen`` use.

Pure: :func:`screen_of` reads a ``terminal.txn_done`` event's fields, :func:`slip_of`
a ``printer.job_done`` / ``printer.job_failed`` event's.
"""

from __future__ import annotations

from collections.abc import Mapping

NO_SCREEN = "none"

SCREENS: dict[str, str] = {
    "approved": "sale approved (online, or offline below the floor)",
    "partial_approval": "sale approved for less than asked (code 10)",
    "refunded": "refund done",
    "declined": "the bank declined it (any code that settles it: 05, 51, 54, ...)",
    "timeout": "no answer from the bank in time (\"transaction timeout\")",
    "system_error": "an answer that settles nothing (91, 96, a bad MAC, an amount changed)",
    "host_unavailable": "the bank refused the connection",
    "card_error": "the card could not be read",
    "card_removed": "the card was pulled out before the end",
    "cancelled": "the terminal undid the sale (its receipt never came out)",
    "try_again": "the terminal refused to start: it still owes the bank a reversal",
    "voided": "void done",
    "void_pending": "void queued: the bank has not answered yet",
    "void_failed": "void refused (nothing to void, or the bank said no)",
    "reprinted": "the copy came out",
    "reprint_failed": "the copy could not be printed (or nothing to reprint)",
    "settled": "batch closed, totals agree",
    "out_of_balance": "batch closed, totals differ",
    "settle_failed": "no answer, or the close was refused",
    NO_SCREEN: "the step showed nothing (the terminal lost power, or the run ended first)",
}
"""The terminal's messages, as ``[expect] screens`` names them."""

SLIPS: dict[str, str] = {
    "approved": "an approved sale's or refund's slip, through its cut",
    "declined": "a declined sale's slip (or a refund approved with a code other than 00)",
    "copy": "a reprint's copy",
    "cut_short": "a slip that stopped before its cut (jam, paper out, cover open, power)",
    "notice": "any other slip, from a plug-in firmware (a \"check with bank\" notice)",
}
"""The slips a step may print, as ``[expect] receipts`` names them, in print order."""

_FAILED = ("failed", "refund_failed", "declined", "cancelled")
_BY_REASON = {
    "timeout": "timeout",
    "card read error": "card_error",
    "card removed": "card_removed",
    "host refused": "host_unavailable",
    "reversal pending": "try_again",
    "receipt not printed": "cancelled",
}
_SAME = ("refunded", "voided", "void_pending", "void_failed", "reprinted", "reprint_failed",
         "settled", "out_of_balance", "settle_failed")


def screen_of(done: Mapping[str, object]) -> str:
    """The screen a ``terminal.txn_done`` event's fields (``result``, ``reason``,
    ``code``) stand for: one of :data:`SCREENS`."""
    result = str(done.get("result", ""))
    reason = done.get("reason")
    if result == "approved":
        return "partial_approval" if done.get("code") == "10" else "approved"
    if result in _SAME:
        return result
    if isinstance(reason, str) and reason in _BY_REASON:
        return _BY_REASON[reason]
    if result == "refused":
        return "try_again"
    if reason is None and done.get("code"):  # an answer that declines
        return "declined"
    if result in _FAILED and reason is not None:
        return "system_error"
    return "cancelled" if result == "cancelled" else "declined"


def slip_of(job: Mapping[str, object], *, done: bool) -> str:
    """The slip a printer job came out as: its kind when ``done``, else ``cut_short``."""
    return str(job.get("slip", "")) if done else "cut_short"

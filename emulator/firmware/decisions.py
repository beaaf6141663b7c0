"""What the terminal does next: its decisions, as pure functions of what it knows.

No simpy, no I/O, no clock. Each function takes an answer from the host (or its
absence), a record or queued entry of the journal, a printer's status and the
:class:`~emulator.scenario.profiles.Policy`, and names what to do; the shell
(:mod:`emulator.firmware.terminal` and its parts) waits, does it and traces it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from devices.iso8583.message import mac_ok
from emulator.firmware.journal import QueueEntry, TxnRecord
from emulator.scenario.profiles import Policy

# -- how an exchange ended (the outcome beside the answer's fields) ---------

OK = "ok"
TIMEOUT = "timeout"
INVALID = "invalid"
REFUSED = "refused"
IGNORE = "ignore"  # a response that is not the one waited for: wait on

UNCERTAIN = ("30", "63", "91", "96")
"""Codes that do not settle whether money moved: the host could not read this message
(format error, MAC failure: an earlier copy may have been posted), or failed inside
(issuer unavailable, malfunction). The robust firmware reverses or asks."""
APPROVED_CODES = ("00", "10")  # 10: partial approval
VOIDED_CODES = ("00", "25")  # 25: the original is not on file (nothing left to cancel)

REASON_TIMEOUT = "68"
REASON_CANCEL = "17"
REASON_INVALID = "06"
REASON_NOT_COMPLETED = "21"

# -- what to do with a financial answer -------------------------------------

ACCEPT = "accept"  # approved: check the amount, then complete
DECLINE = "decline"
GIVE_UP = "give_up"  # no valid answer: reverse or forget, per policy
OFFLINE = "offline"  # approve offline, forward an advice later
UNREACHABLE = "unreachable"  # the host refused the connection: decline (91)
QUERY = "query"  # ask the host for the original's status (0600)
RETRY_NEW = "retry_new"  # send it again as a new transaction

REPEAT = "repeat"  # a retried request: 0201 with the same STAN and field 7
NEW = "new"  # a retried request: a fresh 0200 under a new STAN

FAILED = {"sale": "failed", "refund": "refund_failed"}
"""The result shown when a transaction of each kind fails once it went online."""
READ_FAILED = {"sale": "cancelled", "refund": "refund_failed"}
"""The result shown when the card of a transaction of each kind cannot be read."""
APPROVED_RESULTS = {"sale": "approved", "refund": "refunded"}
"""The result shown when a transaction of each kind stands."""

# -- after power returns ----------------------------------------------------

FINISH = "finish"  # approved, receipt not known to be out: print it, complete or undo
SHOW = "show"  # completed but never shown: show it


# -- the host's answers -------------------------------------------------------


def response_verdict(
    response: Mapping[str, object], frame: bytes, expect_mti: str, stan: str,
    terminal_id: str, mac_key: bytes, policy: Policy,
) -> str:
    """A decoded response to the request ``stan``: :data:`OK` to take it, :data:`IGNORE`
    (not the response waited for) or :data:`INVALID` (its MAC fails)."""
    matched = (
        response.get("t") == expect_mti and response.get("11") == stan
        and response.get("41") == terminal_id
    )
    if not matched and policy.ignore_unmatched_responses:
        return IGNORE
    if policy.verify_mac and not mac_ok(frame, mac_key):
        return INVALID
    return OK


def code_of(fields: Mapping[str, object] | None) -> str | None:
    """An answer's response code (field 39; "" when it has none); None for no answer."""
    return None if fields is None else str(fields.get("39", ""))


def retries(outcome: str, response: object, left: int) -> bool:
    """Send the request again: no answer, the host did not refuse it, tries left."""
    return response is None and outcome != REFUSED and left > 0


def retry_kind(policy: Policy) -> str:
    """How a request is sent again: :data:`REPEAT` or :data:`NEW`."""
    return REPEAT if policy.retry_as_repeat else NEW


def retry_outcome(outcome: str) -> str:
    """A retry the host refused is no answer: an earlier copy may have been posted."""
    return TIMEOUT if outcome == REFUSED else outcome


def answer_action(code: str | None) -> str:
    """A financial answer that came: :data:`ACCEPT`, :data:`DECLINE`, or :data:`GIVE_UP`
    when there is none or it does not settle whether money moved."""
    if code is None or code in UNCERTAIN:
        return GIVE_UP
    if code not in APPROVED_CODES:
        return DECLINE
    return ACCEPT


def sale_action(outcome: str, code: str | None, amount_minor: int, policy: Policy) -> str:
    """A sale's answer: offline approval below the floor when the host refused the
    connection, else :data:`UNREACHABLE`; give up on no answer, and on an uncertain one
    when the policy reverses (the naive firmware declines it)."""
    if outcome == REFUSED:
        floor = policy.offline_floor
        return OFFLINE if floor and amount_minor <= floor else UNREACHABLE
    if code is None or (code in UNCERTAIN and policy.reverse_on_timeout):
        return GIVE_UP
    if code not in APPROVED_CODES:
        return DECLINE
    return ACCEPT


def refund_action(outcome: str, code: str | None, policy: Policy) -> str:
    """A refund's first answer: :data:`UNREACHABLE`; on none or an uncertain one,
    :data:`QUERY` the host or :data:`RETRY_NEW` per policy; else :func:`answer_action`."""
    if outcome == REFUSED:
        return UNREACHABLE
    if code is None or code in UNCERTAIN:
        return QUERY if policy.query_status_before_retry else RETRY_NEW
    return answer_action(code)


def status_stands(status: Mapping[str, object] | None) -> bool:
    """A 0610 saying the original stands (code 00); None (no answer) does not."""
    return status is not None and status.get("39") == "00"


def approved_minor(fields: Mapping[str, object], requested_minor: int, policy: Policy) -> int:
    """The amount an approval shows: field 4 when the policy reads it (the requested
    amount otherwise, or when field 4 is missing or unreadable)."""
    if not policy.check_response_amount:
        return requested_minor
    try:
        return int(str(fields.get("4", requested_minor)))
    except ValueError:
        return requested_minor


def amount_changed(code: str, approved: int, requested_minor: int) -> bool:
    """A full approval (not a partial one, code 10) of another amount than requested."""
    return code != "10" and approved != requested_minor


def card_removed_reason(policy: Policy) -> str | None:
    """The reversal reason when a sale whose card was pulled out after it went online
    is reversed; None when the policy forgets it."""
    return REASON_CANCEL if policy.reverse_on_card_removed else None


def give_up_reason(outcome: str, policy: Policy) -> str | None:
    """The reversal reason when a transaction without a valid answer is reversed; None
    when the policy forgets it."""
    if not policy.reverse_on_timeout:
        return None
    return REASON_TIMEOUT if outcome == TIMEOUT else REASON_INVALID


# -- completion and receipts --------------------------------------------------


def two_phase(record: TxnRecord) -> bool:
    """A sale stands only once its receipt is out; a refund stands once approved."""
    return record.do == "sale"


def approval_receipt(record: TxnRecord) -> tuple[str, str]:
    """An approval's receipt: its result line and its slip, "approved" (kept for
    reprints: every sale's, a refund's when its code is 00) or "declined"."""
    if record.do == "sale":
        return ("PARTIAL APPROVAL" if record.code == "10" else "APPROVED"), "approved"
    return "APPROVED", ("approved" if record.code == "00" else "declined")


def printer_ready(first: int | None, roll: int | None) -> bool:
    """DLE EOT 1 and 4: online, and not at paper end. Silence is not ready."""
    if first is None or roll is None:
        return False
    return not first & 0x08 and roll & 0x60 != 0x60


def holds_receipt(printed: bool, policy: Policy) -> bool:
    """Hold a sale whose receipt did not come out, and reprint it when the printer
    recovers (``on_receipt_failure = "reprint"``)."""
    return not printed and policy.on_receipt_failure == "reprint"


def undoes_sale(printed: bool, policy: Policy) -> bool:
    """Reverse a sale whose receipt never came out, unless the policy ignores it."""
    return not printed and policy.on_receipt_failure != "ignore"


# -- the store-and-forward queue ---------------------------------------------


def reverses_refused(policy: Policy, left: bool) -> bool:
    """Owe a reversal for a request the host refused, if it had ``left`` the terminal (a
    copy may still get through); one that never left needs none."""
    return policy.reverse_refused and left


def holds_up(pending: Iterable[QueueEntry]) -> bool:
    """Whether reversals or voids still owed hold up a new transaction: any but those
    owed only in case a refused request gets through."""
    return any(not entry.precaution for entry in pending)


def waits_for_queue(policy: Policy) -> bool:
    """Deliver what is owed before a new transaction, refusing it while that fails;
    otherwise the new record takes the pending reversal's slot."""
    return policy.block_sale_while_reversal_pending


def reversal_sends(policy: Policy) -> int:
    """Sends per delivery of a reversal or void (0400, then 0401 repeats)."""
    return policy.reversal_tries if policy.repeat_reversal else 1


def reversal_mti(entry: QueueEntry) -> str:
    """0400 the first time, 0401 (repeat) after."""
    return "0401" if entry.sent else "0400"


def advice_mti(entry: QueueEntry, policy: Policy) -> str:
    """An advice sent again is a 0221 repeat when acknowledgements are journalled."""
    return "0221" if entry.sent and policy.dedupe_saf_after_reboot else entry.orig_mti


def unsettled(code: str) -> bool:
    """An answer to a reversal or advice the host could not act on: send it again."""
    return code in UNCERTAIN


def abandons(code: str | None, policy: Policy) -> bool:
    """Drop a reversal or void that got no answer (sent once, never repeated)."""
    return code is None and not policy.repeat_reversal


def expired(entry: QueueEntry, now_s: float, policy: Policy) -> bool:
    """A queued entry older than ``saf_expiry_s`` is dropped."""
    return now_s - entry.queued_s > policy.saf_expiry_s


def drains_before_settle(policy: Policy) -> bool:
    """Deliver the whole queue before a settlement's 0500, failing it when that cannot
    be done; otherwise the totals go at once, counting what the host has not heard of."""
    return policy.drain_saf_before_settle


def next_drain_pass(began_s: float, deadline_s: float, policy: Policy) -> float | None:
    """When the next pass over the queue starts, ``saf_retry_s`` after the last one
    began; None when that is past the settlement's deadline (it fails)."""
    at = began_s + policy.saf_retry_s
    return at if at <= deadline_s else None


def repeats_close(policy: Policy) -> bool:
    """Repeat a batch close that got no answer (0501, same STAN, field 7 and totals)
    until the host answers it, before any other close; otherwise it is forgotten."""
    return policy.repeat_lost_settlement


def close_repeats(outcome: str, policy: Policy) -> int:
    """How many 0501 repeats follow a batch close that got no answer at once: none when
    the host refused the connection or the policy forgets lost closes."""
    if outcome == REFUSED or not policy.repeat_lost_settlement:
        return 0
    return policy.request_retries


def close_answered(code: str) -> bool:
    """A 0510 that settles what the host did with the close: 00 (closed) or 95 (not).
    Any other code (30, 96, ...) may answer an earlier copy while a later one closed
    the batch, so a robust terminal keeps the close to repeat."""
    return code in ("00", "95")


def lost_close_settled(code: str | None) -> bool:
    """A repeated close answered 00: the host took that batch (then or now), so its
    records are settled before a new close counts what came since. Any other answer
    (95: the host never closed it) leaves everything in one batch to count afresh."""
    return code == "00"


def void_result(code: str | None) -> str:
    """A void's result: pending without an answer, voided on 00 or 25, else failed."""
    if code is None:
        return "void_pending"
    return "voided" if code in VOIDED_CODES else "void_failed"


def voidable(target: TxnRecord | None) -> bool:
    """Only a sale that stands (approved or completed) can be voided."""
    return (target is not None and target.do == "sale"
            and target.state in ("completed", "approved"))


def settle_result(code: str) -> str:
    """A 0510's code: settled (00), out of balance (95), or failed."""
    if code == "00":
        return "settled"
    return "out_of_balance" if code == "95" else "settle_failed"


def batch(records: Iterable[TxnRecord]) -> tuple[list[TxnRecord], list[TxnRecord]]:
    """The completed sales (debits) and refunds (credits) a settlement counts."""
    debits: list[TxnRecord] = []
    credits: list[TxnRecord] = []
    for record in records:
        if record.state == "completed":
            if record.do == "sale":
                debits.append(record)
            elif record.do == "refund":
                credits.append(record)
    return debits, credits


# -- after power returns ------------------------------------------------------


def due_at_boot(entry: QueueEntry, record: TxnRecord | None) -> bool:
    """An armed reversal whose request may have left unanswered: send it now."""
    return entry.armed and record is not None and record.state == "sent"


def reissues_advices(policy: Policy) -> bool:
    """Without journalled acknowledgements, every advice goes again as a new 0220."""
    return not policy.dedupe_saf_after_reboot


def boot_action(record: TxnRecord, shown: bool) -> str | None:
    """A record found at boot: :data:`FINISH` an approval whose receipt was not known
    to be out, :data:`SHOW` a completion never shown; None for the rest."""
    if record.state == "approved":
        return FINISH
    if record.state == "completed" and not shown:
        return SHOW
    return None

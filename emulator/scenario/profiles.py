"""Firmware profiles: named sets of policy knobs the terminal's firmware follows.

Each guard knob has a robust value and a naive value; set naive, it lets one
anomaly happen that the robust value prevents. Settings (timeouts, counts)
are tunable numbers that both profiles share. A scenario overrides any of
them one by one under ``[terminal]``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Knob:
    """A policy knob: what it does, its two values, the anomaly it guards against."""

    name: str
    robust: object
    naive: object
    help: str
    guards: str
    robust_means: str
    naive_means: str


KNOBS: dict[str, Knob] = {
    k.name: k
    for k in (
        Knob(
            "reverse_on_timeout",
            True,
            False,
            "When no valid response comes, or an answer that does not settle whether "
            "money moved (30, 63, 91, 96), send a reversal (0400) for the request.",
            "charged_shown_unpaid",
            "reverse the request, so money that moved comes back",
            "show the timeout and forget the request",
        ),
        Knob(
            "persist_reversal_first",
            True,
            False,
            "Write the pending reversal to the durable journal before the request "
            "leaves; after a power loss the terminal sends it at boot.",
            "charged_shown_unpaid",
            "journal the reversal before sending",
            "keep it in memory, lost with the power",
        ),
        Knob(
            "retry_as_repeat",
            True,
            False,
            "A retried request is a repeat (0201) with the same STAN and field 7, "
            "so the host's duplicate check answers it with the original response.",
            "duplicate_charge",
            "repeat with the same STAN",
            "send a fresh 0200 with a new STAN",
        ),
        Knob(
            "block_sale_while_reversal_pending",
            True,
            False,
            "A new transaction first delivers the pending reversals and is refused "
            "while it cannot; otherwise the terminal's single reversal slot is "
            "overwritten by the new transaction's record.",
            "charged_shown_unpaid",
            "deliver pending reversals first, refuse the sale while they are stuck",
            "start at once; the new record takes the pending reversal's slot",
        ),
        Knob(
            "on_receipt_failure",
            "reprint",
            "ignore",
            "What an approved sale does when its receipt cannot be printed: hold the "
            "completion and reprint when the printer recovers (undoing the sale with "
            "a reversal if it has not within `receipt_hold_s`), undo at once, or ignore.",
            "charged_no_receipt",
            "`reprint` (or `undo`): two-phase completion",
            "`ignore`: show approved, no receipt",
        ),
        Knob(
            "confirm_print",
            True,
            False,
            "After a receipt, ask the printer's real-time status (DLE EOT 1-4) and "
            "count the receipt printed only when it answers online with paper; a "
            "silent printer counts as not printed.",
            "charged_no_receipt",
            "confirm with DLE EOT",
            "count it printed once the bytes are written",
        ),
        Knob(
            "check_response_amount",
            True,
            False,
            "Read the approved amount from the response (field 4, code 10 partial "
            "approval): show and print that amount, and reverse when it is not the "
            "one requested for a full approval.",
            "wrong_amount",
            "show what the bank approved; reverse a changed amount",
            "show the amount keyed in",
        ),
        Knob(
            "verify_mac",
            True,
            False,
            "Check the MAC (field 64) of every response; a response that fails is "
            "an invalid response: repeated, then reversed if no valid answer comes.",
            "charged_shown_unpaid",
            "reject responses whose MAC fails",
            "trust any response that decodes",
        ),
        Knob(
            "ignore_unmatched_responses",
            True,
            False,
            "Accept a response only if its MTI, STAN and terminal id match the "
            "request waited for; late or stray responses are dropped.",
            "paid_not_charged",
            "match on MTI + STAN + terminal id",
            "take the first response that arrives",
        ),
        Knob(
            "query_status_before_retry",
            True,
            False,
            "When a refund gets 96 or no answer, ask the host for its status (0600) "
            "before deciding; otherwise retry it once as a new refund.",
            "duplicate_refund",
            "ask the host what happened",
            "retry as a new refund, then show what comes back",
        ),
        Knob(
            "dedupe_saf_after_reboot",
            True,
            False,
            "Acknowledgements of store-and-forward advices are journalled, and an "
            "advice sent again keeps its STAN and field 7 (0221 repeat); otherwise "
            "after a reboot every offline approval is forwarded again as new.",
            "duplicate_charge",
            "journal acknowledgements, resend as repeats",
            "forward everything again after a reboot",
        ),
        Knob(
            "repeat_reversal",
            True,
            False,
            "Repeat a reversal (0401) until a 0410 arrives, keeping it in the "
            "store-and-forward queue between tries until `saf_expiry_s`.",
            "charged_shown_unpaid",
            "repeat until acknowledged",
            "send one 0400 and forget it",
        ),
        Knob(
            "reverse_on_card_removed",
            True,
            False,
            "When the card is pulled out after the request went online but before "
            "the transaction completes, reverse it.",
            "charged_shown_unpaid",
            "reverse",
            "show 'card removed' and forget the request",
        ),
        Knob(
            "drain_saf_before_settle",
            True,
            False,
            "Before the batch totals (0500) leave, deliver every queued advice, reversal "
            "and void, trying again every `saf_retry_s` for up to `settle_drain_s`; "
            "if the queue is still not empty, the settlement fails and nothing is sent.",
            "batch_out_of_balance",
            "deliver the queue first; fail the settlement if it cannot",
            "send the totals at once, with the queue still owed",
        ),
        Knob(
            "repeat_lost_settlement",
            True,
            False,
            "When a batch close (0500) gets no answer, repeat it as 0501 with the same "
            "STAN, field 7 and totals (up to `request_retries` times at once, and again "
            "first at the next settlement) until the host answers; the host answers a "
            "copy of a close it took with the same 00, and only then are the sales made "
            "since counted in a new 0500.",
            "batch_out_of_balance",
            "repeat the same close until answered; new sales go in the next batch",
            "forget the close and count its sales again at the next settlement",
        ),
        Knob(
            "reverse_refused",
            True,
            False,
            "When the host refuses a sale (above `offline_floor`) or a refund, owe a "
            "reversal (0400) for it anyway, sent once the host is back (and before a "
            "settlement) without holding up new transactions: a copy of the request "
            "the network still carries may reach the host after it comes back.",
            "refund_shown_failed_but_credited",
            "reverse what the host refused, in case a copy of it gets through",
            "take a refusal as proof that the request never reached the host",
        ),
    )
}


@dataclass(frozen=True)
class Policy:
    """The values the firmware follows in one run (a profile plus overrides)."""

    # guard knobs (see KNOBS)
    reverse_on_timeout: bool = True
    persist_reversal_first: bool = True
    retry_as_repeat: bool = True
    block_sale_while_reversal_pending: bool = True
    on_receipt_failure: str = "reprint"
    confirm_print: bool = True
    check_response_amount: bool = True
    verify_mac: bool = True
    ignore_unmatched_responses: bool = True
    query_status_before_retry: bool = True
    dedupe_saf_after_reboot: bool = True
    repeat_reversal: bool = True
    reverse_on_card_removed: bool = True
    drain_saf_before_settle: bool = True
    repeat_lost_settlement: bool = True
    reverse_refused: bool = True
    # settings shared by both profiles
    response_timeout_s: float = 30.0
    request_retries: int = 1
    reversal_tries: int = 3
    saf_retry_s: float = 60.0
    saf_expiry_s: float = 86400.0
    settle_drain_s: float = 120.0
    receipt_hold_s: float = 300.0
    printer_poll_s: float = 5.0
    offline_floor: int = 0  # minor units (TOML: a decimal string in major units)


SETTINGS: dict[str, str] = {
    "response_timeout_s": "seconds to wait for a response before a retry or reversal",
    "request_retries": "how many times a request is sent again after a timeout",
    "reversal_tries": "reversal sends (0400 then 0401 repeats) per attempt",
    "saf_retry_s": "seconds between store-and-forward attempts",
    "saf_expiry_s": "a queued reversal or advice is dropped after this long",
    "settle_drain_s": "how long a settlement keeps delivering the store-and-forward queue "
    "before it fails (`drain_saf_before_settle`)",
    "receipt_hold_s": "how long a held receipt waits for the printer before the sale is undone",
    "printer_poll_s": "seconds between printer status polls while a receipt is held",
    "offline_floor": "sales up to this amount are approved offline when the host "
    "refuses the connection (`bank.down`), and forwarded later as advices (0 = never); "
    'in TOML a decimal string such as "50.00"',
}

PROFILES: dict[str, Policy] = {
    "robust": Policy(),
    "naive": Policy(**{k.name: k.naive for k in KNOBS.values()}),  # type: ignore[arg-type]
}

_TYPES: dict[str, type] = {"bool": bool, "str": str, "float": float, "int": int}

POLICY_FIELDS: dict[str, type] = {f.name: _TYPES[str(f.type)] for f in fields(Policy)}
"""Each overridable name under ``[terminal]`` and its Python type."""


def make_policy(profile: str, overrides: dict[str, Any]) -> Policy:
    """The profile's policy with the given knob and setting overrides applied."""
    return replace(PROFILES[profile], **overrides)

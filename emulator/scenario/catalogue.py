"""The names users write and read: faults, trigger events, end states, anomalies.

One source of truth: the scenario loader validates against these tables, the
oracle reports with them, and the CLI and docs list them from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emulator.scenario import events


@dataclass(frozen=True)
class Param:
    """One parameter of a fault: its name, TOML type, default and meaning."""

    name: str
    kind: str  # "seconds" | "count" | "direction" | "code" | "money" | "bool" | "field"
    default: object
    help: str


@dataclass(frozen=True)
class FaultKind:
    """A fault of the catalogue, as `device.fault`."""

    name: str
    help: str
    params: tuple[Param, ...] = field(default=())
    connection: bool = False
    """A fault of a live connection (docs/live.md); the fuzzer leaves these out."""

    @property
    def device(self) -> str:
        return self.name.split(".", 1)[0]


_DIRECTION = Param(
    "direction", "direction", "both", "`to_bank`, `to_terminal` or `both`"
)

FAULTS: dict[str, FaultKind] = {
    f.name: f
    for f in (
        FaultKind("card.read_error", "the reader fails to read the card (chip error)"),
        FaultKind(
            "card.removed_early",
            "the card is pulled out before the transaction completes "
            "(the card in the reader now, and any card read while the fault lasts)",
        ),
        FaultKind(
            "printer.paper_out",
            "roll runs out: printer goes offline, DLE EOT 4 reports paper end; "
            "cleared = a new roll is loaded",
        ),
        FaultKind(
            "printer.paper_jam",
            "jam / autocutter error: offline, the job in progress is not completed",
        ),
        FaultKind("printer.cover_open", "cover opened: offline"),
        FaultKind("printer.offline", "printer powered off: no answer at all"),
        FaultKind(
            "network.down",
            "link down both ways: messages in flight and sent are lost",
        ),
        FaultKind(
            "network.drop",
            "drop messages",
            (
                _DIRECTION,
                Param("count", "count", 1, "how many messages to drop"),
            ),
        ),
        FaultKind(
            "network.latency",
            "extra delay per message",
            (
                Param("delay_s", "seconds", 1.0, "extra one-way delay"),
                Param("jitter_s", "seconds", 0.0, "extra random delay, up to this much"),
                _DIRECTION,
            ),
        ),
        FaultKind(
            "network.duplicate",
            "deliver each message twice",
            (
                _DIRECTION,
                Param("count", "count", 0, "how many messages to duplicate (0 = all)"),
            ),
        ),
        FaultKind(
            "network.corrupt",
            "flip bytes in the ISO 8583 frame",
            (
                _DIRECTION,
                Param("count", "count", 1, "how many messages to corrupt"),
                Param("bytes", "count", 1, "how many bytes to flip in each"),
                Param(
                    "field",
                    "field",
                    0,
                    "flip a digit inside this ISO 8583 field (e.g. 4, the amount) "
                    "so the frame still decodes; 0 = any byte of the frame",
                ),
            ),
        ),
        FaultKind(
            "bank.timeout",
            "host processes the request (money moves as it would) but answers only "
            "after `delay_s` (default: never)",
            (
                Param("delay_s", "seconds", None, "answer after this long; omitted = never"),
                Param("count", "count", 0, "how many requests (0 = all while active)"),
            ),
        ),
        FaultKind(
            "bank.respond",
            "host answers with response `code`; with code 10 (partial approval) and "
            "`amount`, it approves and moves only that amount",
            (
                Param("code", "code", "96", "the response code (two digits)"),
                Param("amount", "money", None, "approved amount for code 10"),
                Param(
                    "posted",
                    "bool",
                    False,
                    "the host posts the transaction first, then answers `code` "
                    "(an internal error after the money moved)",
                ),
                Param("count", "count", 0, "how many requests (0 = all while active)"),
            ),
        ),
        FaultKind("bank.down", "host process down: requests are refused"),
        FaultKind(
            "terminal.power_loss",
            "terminal loses power; it reboots after `for_s` (omitted = never)",
        ),
        *(
            FaultKind(
                f"network.{name}",
                f"the connection is {how} instead of answering (live); in the simulation "
                "the answer is lost",
                (Param("count", "count", 1, "how many answers"),),
                connection=True,
            )
            for name, how in (("close", "closed"), ("reset", "reset (RST)"))
        ),
        FaultKind(
            "network.split",
            "the answer is written in pieces, as separate TCP segments (live); a simulated "
            "frame always arrives whole",
            (
                Param("pieces", "count", 2, "how many pieces"),
                Param("delay_s", "seconds", 0.05, "pause between pieces"),
                Param("count", "count", 1, "how many answers (0 = all while active)"),
            ),
            connection=True,
        ),
        FaultKind(
            "fleet.swizzle_clog",
            "clog the links of a random subset of terminals one by one (frames held, not "
            "lost), then after `for_s` unclog them one by one in another random order",
            (
                Param("terminals", "count", 0,
                      "how many terminals' links to clog (0 = half the fleet, at least one)"),
                Param("interval_s", "seconds", 1.0,
                      "time between one link's clog (or unclog) and the next"),
            ),
        ),
    )
}
FLEET_DEVICE = "fleet"
"""The device of faults over the whole fleet, not one terminal's devices."""


TRIGGER_EVENTS: dict[str, str] = events.TRIGGER_EVENTS
"""Trigger event name -> meaning (the catalogue with fields: :mod:`emulator.scenario.events`)."""

CLEAN_END_STATES: dict[str, str] = {
    "approved": "sale approved, charged once for the amount shown, approved receipt printed",
    "declined": "sale not approved (declined or failed online), no money moved",
    "cancelled": "stopped before money could stand (card error, undone, card removed)",
    "voided": "a sale cancelled by a void, or the void itself, no money stands",
    "refunded": "refund credited once for the amount shown",
    "refund_failed": "refund shown failed, nothing credited",
    "reprinted": "reprint: the receipt came out",
    "reprint_failed": "reprint: the printer could not print it",
    "settled": "settle: terminal and bank totals agree",
    "settle_failed": "settle: no answer or refused (totals not compared, nothing moved)",
    "skipped": "a chained step the cashier did not run: the step it follows showed another "
               "screen than its `if_screen`, or no outcome before the run ended",
}


@dataclass(frozen=True)
class AnomalyKind:
    """An end state where what the terminal showed or printed disagrees with the bank."""

    name: str
    meaning: str
    story: str


ANOMALIES: dict[str, AnomalyKind] = {
    a.name: a
    for a in (
        AnomalyKind(
            "charged_no_receipt",
            "terminal recorded the sale approved, customer charged, but no approved "
            "receipt was ever printed",
            "charged but no receipt",
        ),
        AnomalyKind("duplicate_charge", "one sale charged more than once", "duplicate charge"),
        AnomalyKind(
            "charged_shown_unpaid",
            "terminal showed or printed the sale as failed, declined, timed out or "
            "unpaid, yet the customer was charged",
            "receipt shows unpaid",
        ),
        AnomalyKind("paid_not_charged", "terminal/receipt says approved, no money moved", ""),
        AnomalyKind(
            "wrong_amount",
            "the amount the bank moved differs from the amount the terminal showed and "
            "printed",
            "transfer error",
        ),
        AnomalyKind(
            "refund_shown_failed_but_credited",
            "refund shown as error/failed, yet credited",
            "refund shows system error",
        ),
        AnomalyKind(
            "duplicate_refund", "one refund credited more than once", "refund shows system error"
        ),
        AnomalyKind(
            "in_doubt",
            "still unresolved at the end of the run (e.g. a reversal never delivered)",
            "",
        ),
        AnomalyKind(
            "batch_out_of_balance", "settle: terminal totals and bank totals differ", ""
        ),
    )
}

END_STATES: tuple[str, ...] = (*CLEAN_END_STATES, *ANOMALIES)

NOT_QUIET = "not_quiet"
RUN_ANOMALIES: dict[str, AnomalyKind] = {
    NOT_QUIET: AnomalyKind(
        NOT_QUIET,
        "[liveness]: faults stopped at the horizon, yet at the end of the run the terminal "
        "still owed a message, held a receipt, had a step running or waiting, a printer "
        "job open or no power",
        "",
    ),
}
"""Anomalies of a whole run, not end states of a step: an ``[expect] anomalies`` entry
and a finding of ``posemu fuzz`` like any other."""
EXPECTABLE: tuple[str, ...] = (*ANOMALIES, *RUN_ANOMALIES)
"""Every anomaly kind ``[expect] anomalies`` may list."""

STEP_KINDS: tuple[str, ...] = ("sale", "refund", "void", "reprint", "settle")

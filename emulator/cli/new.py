"""``posemu new NAME [--from STORY]``: write a commented scenario template.

``NAME`` is the file to write (``.toml`` is added when it has no suffix); the
scenario's ``name`` is its stem. Without ``--from`` the template is an approved
sale with every optional section shown commented out; ``--from STORY`` starts
from a seed story instead, named by the anomaly it reproduces (``posemu new
--help`` lists them). Either way the file is valid and passes as written, so
``posemu check`` and ``posemu run`` work on it at once. The file is written
through a temporary file linked into place, so it appears whole or not at all,
and an existing file is never overwritten (exit status 2). Card numbers are
generated test numbers (prefix 999999), as ``posemu fuzz`` writes them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from devices.errors import UsageError
from emulator.fuzz.workload import sample_pan


@dataclass(frozen=True)
class Story:
    """What a template fills in: the world, the steps, the fault and the expectations."""

    description: str
    profile: str
    card: str
    balance: str
    amount: str
    fault: str
    expect: str
    do: str = "sale"
    knobs: str = ""
    more_steps: str = ""


_NO_FAULT = """\
# [[faults]]                      # what goes wrong: `posemu faults` lists them
# fault = "printer.paper_jam"
# on = "printer.job_started"      # trigger: the nth time this event happens (`posemu events`)
# nth = 1
# step = "s1"                     # ... among this step's events
# at_s = 12.0                     # ... or at a simulated time: exactly one of on / at_s
# for_s = 120                     # cleared after this long; omitted = never cleared
# optional = true                 # may not fire; otherwise a run where it never fires fails"""

_RETRY = """\
# [[steps]]                       # the cashier's reaction to what s1 showed
# id = "s2"
# after = "s1"                    # when s1 is done ...
# delay_s = 20                    # ... and 20 s have passed ...
# if_screen = ["timeout"]         # ... if s1 showed one of these screens (else: skipped)
# retry_of = "s1"                 # the same purchase run again: charged twice is an anomaly
# do = "sale"
# card = "alice"
# amount = "12.50"
"""

BLANK = Story(
    description="An approved sale: the customer pays 12.50 and gets the receipt.",
    profile="robust", card="alice", balance="250.00", amount="12.50", fault=_NO_FAULT,
    more_steps=_RETRY,
    expect='anomalies = []\nend_states = { s1 = "approved" }\n'
           'screens = { s1 = "approved" }               # what the terminal showed\n'
           'receipts = { s1 = ["approved"] }            # the slips printed, in order\n'
           '# faults_fired = ["printer.paper_jam"]      # the faults that fired\n'
           'balances = { alice = "237.50" }',
)

STORIES: dict[str, Story] = {
    "charged_no_receipt": Story(
        description="Seed story 1: the bank approves and debits, then the printer jams as "
                    "the receipt starts;\nthe naive firmware shows the sale approved.",
        profile="naive", card="alice", balance="250.00", amount="12.50",
        fault='[[faults]]\nfault = "printer.paper_jam"\non = "printer.job_started"\n'
              'step = "s1"\nfor_s = 120',
        expect='anomalies = ["charged_no_receipt"]\nend_states = { s1 = "charged_no_receipt" }'
               '\nscreens = { s1 = "approved" }\nreceipts = { s1 = ["cut_short"] }\n'
               'faults_fired = ["printer.paper_jam"]\nbalances = { alice = "237.50" }',
    ),
    "wrong_amount": Story(
        description="Seed story 2: the issuer approves only 7.50 of a 12.50 sale (code 10);"
                    "\nthe naive firmware prints 12.50.",
        profile="naive", card="bob", balance="100.00", amount="12.50",
        fault='[[faults]]\nfault = "bank.respond"\non = "terminal.request_sent"\n'
              'step = "s1"\ncode = "10"                       # partial approval ...\n'
              'amount = "7.50"                   # ... of this much\ncount = 1',
        expect='anomalies = ["wrong_amount"]\nend_states = { s1 = "wrong_amount" }\n'
               'screens = { s1 = "partial_approval" }\nreceipts = { s1 = ["approved"] }\n'
               'faults_fired = ["bank.respond"]\nbalances = { bob = "92.50" }',
    ),
    "refund_shown_failed_but_credited": Story(
        description="Seed story 3: the host credits the refund, then answers 96; the naive "
                    "firmware\nsends it again as a new refund and shows a system error.",
        profile="naive", card="carol", balance="40.00", amount="20.00", do="refund",
        fault='[[faults]]\nfault = "bank.respond"\nat_s = 0\ncode = "96"\n'
              'posted = true                     # the money moves before the error',
        expect='anomalies = ["duplicate_refund", "refund_shown_failed_but_credited"]\n'
               'end_states = { s1 = "duplicate_refund" }\nscreens = { s1 = "system_error" }\n'
               'receipts = { s1 = [] }\nfaults_fired = ["bank.respond"]\n'
               'balances = { carol = "80.00" }',
    ),
    "charged_shown_unpaid": Story(
        description="Seed story 4: the host debits the card but answers 45 s late; the "
                    "terminal gives up\nafter 30 s and, with no reversal, shows the sale "
                    "failed.",
        profile="naive", card="dave", balance="80.00", amount="30.00",
        knobs="request_retries = 0               # give up after the first request\n",
        fault='[[faults]]\nfault = "bank.timeout"\non = "bank.request_received"\n'
              'step = "s1"\ndelay_s = 45\ncount = 1',
        expect='anomalies = ["charged_shown_unpaid"]\n'
               'end_states = { s1 = "charged_shown_unpaid" }\nscreens = { s1 = "timeout" }\n'
               'receipts = { s1 = [] }\nfaults_fired = ["bank.timeout"]\n'
               'balances = { dave = "50.00" }',
    ),
    "duplicate_charge": Story(
        description="Seed story 5 as the customer tells it: the terminal showed a timeout, "
                    "the cashier\nran the card again 20 s later, and the host, which had "
                    "debited the first sale,\ndebited the second too.",
        profile="naive", card="erin", balance="200.00", amount="45.00",
        knobs="request_retries = 0               # give up after the first request\n",
        more_steps='[[steps]]\nid = "s2"\nafter = "s1"                      # the cashier '
                   'reacts to s1 ...\ndelay_s = 20                      # ... 20 s later ...'
                   '\nif_screen = ["timeout"]           # ... if it showed the timeout\n'
                   'retry_of = "s1"                   # the same purchase, run again\n'
                   'do = "sale"\ncard = "erin"\namount = "45.00"\n',
        fault='[[faults]]\nfault = "bank.timeout"             # the host posts s1, never '
              'answers\non = "bank.request_received"\nstep = "s1"\ncount = 1',
        expect='anomalies = ["charged_shown_unpaid", "duplicate_charge"]\n'
               'end_states = { s1 = "charged_shown_unpaid", s2 = "duplicate_charge" }\n'
               'screens = { s1 = "timeout", s2 = "approved" }\n'
               'receipts = { s1 = [], s2 = ["approved"] }\nfaults_fired = ["bank.timeout"]\n'
               'balances = { erin = "110.00" }',
    ),
}

_TEMPLATE = """\
# A posemu scenario (format 1). Every key: docs/scenario-format.md.
# Check it without running: posemu check {path}
# Run it:                   posemu run {path}
format = 1
name = {name}
description = \"\"\"{description}\"\"\"
seed = 0                          # the only source of randomness: same seed, same trace
# start = "2026-11-22T09:00:00"   # simulated wall clock at t = 0 (receipts, field 7)
# until_s = 3600                  # horizon; omitted = until nothing is left to happen

[terminal]
{profile_line}
{knobs}# response_timeout_s = 30        # any knob or setting (`posemu profiles`) may be set here

# [bank]                          # the acquirer host
# duplicate_check = true
# [network]
# latency_s = 0.12
# jitter_s = 0.04
# [printer]
# paper_m = 20.0                  # paper left on the roll
# [liveness]                      # faults stop at horizon_s; quiet_s later, the end of the
# horizon_s = 600                 # run (no until_s), the terminal must be quiet: not_quiet

[[cards]]                         # a test card; steps and [expect] name it by id
id = "{card}"
pan = "{pan}"
balance = "{balance}"

[[steps]]                         # what the cashier does, at simulated times
id = "s1"
at_s = 0
do = "{do}"                       # sale | refund | void | reprint | settle
card = "{card}"
{amount_line}

{more_steps}
{fault}

[expect]                          # omitted: the scenario passes when no anomaly is found
{expect}
"""

_NOTE = {"robust": "firmware: robust or naive (`posemu profiles`)",
         "naive": "the firmware that lets it happen; robust prevents it"}


def _commented(line: str, comment: str) -> str:
    return f"{line:<33} # {comment}"


def template(story: Story, name: str, path: str) -> str:
    """The commented scenario text of ``story``, named ``name``, to be written at ``path``."""
    return _TEMPLATE.format(
        path=path, name=json.dumps(name), description=story.description,
        profile_line=_commented(f'profile = "{story.profile}"', _NOTE[story.profile]),
        knobs=story.knobs, card=story.card, pan=sample_pan(1), balance=story.balance,
        do=story.do, fault=story.fault, expect=story.expect, more_steps=story.more_steps,
        amount_line=_commented(f'amount = "{story.amount}"', "a decimal string, to the cent"),
    )


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``posemu new``."""
    new = commands.add_parser(
        "new", help="write a commented scenario template (never over an existing file)")
    new.add_argument("name", metavar="NAME", help="the file to write (.toml added if missing)")
    new.add_argument("--from", dest="story", choices=list(STORIES), metavar="STORY",
                     help="start from the seed story of this anomaly: " + ", ".join(STORIES))
    new.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                     help="show tracebacks on errors")


def scenario_name(path: Path) -> str:
    """A valid scenario name from a file name: printable ASCII, at most 40 characters."""
    name = re.sub(r"[^ -~]", "_", path.stem)[:40]
    return name or "scenario"


def write_new(path: Path, text: str) -> None:
    """Write ``text`` at ``path`` whole or not at all; UsageError if ``path`` exists."""
    if path.exists():
        raise UsageError(f"{path}: already exists; not overwritten (choose another NAME)")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as out:
            out.write(text)
        os.link(tmp, path)  # fails rather than replace a file created meanwhile
    except FileExistsError as exc:
        raise UsageError(f"{path}: already exists; not overwritten (choose another NAME)") from exc
    except OSError as exc:  # named after the file asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    finally:
        tmp.unlink(missing_ok=True)


def run_command(args: argparse.Namespace) -> int:
    """Write the template; say where and what to do next."""
    path = Path(args.name)
    if not path.name or path.is_dir():
        raise UsageError(f"{args.name!r}: NAME must name a file to write, not a directory")
    if not path.suffix:
        path = path.with_suffix(".toml")
    if not path.parent.is_dir():
        raise UsageError(f"{path.parent}: no such directory")
    story = BLANK if args.story is None else STORIES[args.story]
    write_new(path, template(story, scenario_name(path), str(path)))
    print(f"wrote {path}: posemu check {path}, then posemu run {path}")
    return 0

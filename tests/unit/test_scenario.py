"""Scenario files: the contract's example loads; every kind of mistake is one clear line."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from devices.errors import ScenarioError
from emulator.scenario.load import load_scenario, parse_scenario, scenario_from_dict
from emulator.scenario.model import (
    DEFAULT_START,
    BankSpec,
    Liveness,
    MerchantSpec,
    NetworkSpec,
    PrinterSpec,
    Scenario,
)
from emulator.scenario.profiles import PROFILES, make_policy

PAN = "4111111111111111"
OTHER_PAN = "5555555555554444"  # Luhn-valid, not in the scenario

CONTRACT_EXAMPLE = """\
format = 1                      # required; anything else is a clear error
name = "Paper jam after approval"
description = "Seed story: customer charged, no receipt printed."
seed = 7                        # optional, default 0; the only source of randomness
start = "2026-11-22T09:00:00"   # optional simulated wall clock at t = 0
until_s = 3600                  # optional horizon

[terminal]
profile = "naive"               # firmware behaviour: "robust" (default) or "naive"
response_timeout_s = 30         # any policy knob of the profile may be overridden here

[bank]                          # the acquirer host (holds the cardholder accounts too)
duplicate_check = true

[network]
latency_s = 0.12
jitter_s = 0.04

[printer]
paper_m = 20.0                  # paper left on the roll

[[cards]]
id = "alice"                    # optional label; default: the masked PAN
pan = "4111111111111111"
balance = "250.00"

[[steps]]                       # what the operator does, at simulated times
id = "s1"                       # optional label; default "t1", "t2", ... in file order
at_s = 0
do = "sale"                     # sale | refund | void | reprint | settle
card = "alice"                  # card id or PAN
amount = "12.50"                # decimal string in major units (a TOML number is accepted)

[[faults]]
fault = "printer.paper_jam"
on = "printer.job_started"      # trigger: the nth time this trace event happens ...
nth = 1
# at_s = 12.0                   # ... or an absolute simulated time (exactly one of on / at_s)
for_s = 120                     # cleared after this long; omitted = never cleared

[expect]                        # optional
anomalies = ["charged_no_receipt"]       # the anomaly kinds found, as a multiset
end_states = { s1 = "charged_no_receipt" }
balances = { alice = "237.50" }
"""

# A small valid scenario that the mistake tests extend: one card, one sale.
BASE = f"""\
format = 1
[[cards]]
id = "alice"
pan = "{PAN}"
balance = "100.00"
[[steps]]
id = "s1"
do = "sale"
card = "alice"
amount = "10.00"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scn.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> Scenario:
    return load_scenario(write(tmp_path, text))


def error(tmp_path: Path, text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load(tmp_path, text)
    message = str(info.value)
    assert "\n" not in message
    assert PAN not in message
    assert OTHER_PAN not in message
    return info.value


def test_contract_example_loads(tmp_path: Path) -> None:
    s = load(tmp_path, CONTRACT_EXAMPLE)
    assert (s.path, s.name, s.seed) == (str(tmp_path / "scn.toml"), "Paper jam after approval", 7)
    assert s.description.startswith("Seed story")
    assert s.start == datetime(2026, 11, 22, 9, 0, 0)
    assert s.until_s == 3600.0
    assert s.profile == "naive"
    assert s.overrides == {"response_timeout_s": 30.0}
    assert s.policy == make_policy("naive", {"response_timeout_s": 30.0})
    assert s.policy.on_receipt_failure == "ignore"
    assert s.bank == BankSpec(duplicate_check=True)
    assert s.network == NetworkSpec(latency_s=0.12, jitter_s=0.04)
    assert s.printer == PrinterSpec(paper_m=20.0)
    assert s.merchant == MerchantSpec()
    (card,) = s.cards
    assert (card.id, card.pan, card.balance_minor, card.blocked) == ("alice", PAN, 25000, False)
    (step,) = s.steps
    assert (step.id, step.at_s, step.do, step.card, step.amount_minor, step.target) == (
        "s1", 0.0, "sale", "alice", 1250, None,
    )
    (fault,) = s.faults
    assert (fault.index, fault.fault, fault.on, fault.at_s, fault.nth, fault.for_s) == (
        0, "printer.paper_jam", "printer.job_started", None, 1, 120.0,
    )
    assert fault.params == {}
    assert s.expect is not None
    assert s.expect.anomalies == ("charged_no_receipt",)
    assert s.expect.end_states == {"s1": "charged_no_receipt"}
    assert s.expect.balances == {"alice": 23750}


def test_defaults_fill_in_ids_params_and_world(tmp_path: Path) -> None:
    s = load(tmp_path, f"""\
format = 1
[[cards]]
pan = "{PAN}"
balance = 20
[[steps]]
do = "sale"
card = "{PAN}"
amount = 12.5
[[steps]]
at_s = 5
do = "void"
target = "t1"
[[faults]]
fault = "network.drop"
at_s = 1.5
[[faults]]
fault = "bank.respond"
on = "bank.request_received"
step = "t1"
code = "10"
amount = "5.00"
""")
    assert (s.name, s.seed, s.start, s.until_s, s.expect) == ("scn", 0, DEFAULT_START, None, None)
    assert (s.profile, s.policy, s.overrides) == ("robust", PROFILES["robust"], {})
    assert s.cards[0].id == "411111******1111"
    assert s.cards[0].balance_minor == 2000
    assert [(t.id, t.card, t.amount_minor, t.target) for t in s.steps] == [
        ("t1", "411111******1111", 1250, None), ("t2", None, None, "t1"),
    ]
    assert s.faults[0].params == {"direction": "both", "count": 1}
    assert s.faults[1].params == {"code": "10", "amount": 500, "posted": False, "count": 0}
    assert s.faults[1].step == "t1"
    assert (s.bank, s.network, s.printer) == (BankSpec(), NetworkSpec(), PrinterSpec())
    assert PAN not in repr(s)


def test_terminal_knobs_and_money_knob(tmp_path: Path) -> None:
    s = load(tmp_path, BASE + """\
[terminal]
on_receipt_failure = "undo"
request_retries = 2
offline_floor = "25.00"
verify_mac = false
""")
    assert s.overrides == {
        "on_receipt_failure": "undo", "request_retries": 2, "offline_floor": 2500,
        "verify_mac": False,
    }
    assert (s.policy.offline_floor, s.policy.reverse_on_timeout) == (2500, True)


def test_with_overrides_reapplies_file_knobs(tmp_path: Path) -> None:
    s = load(tmp_path, BASE + "[terminal]\nresponse_timeout_s = 7\n")
    naive = s.with_overrides(seed=3, profile="naive")
    assert (naive.seed, naive.profile) == (3, "naive")
    assert naive.policy == make_policy("naive", {"response_timeout_s": 7.0})
    assert s.with_overrides().policy == s.policy
    with pytest.raises(ScenarioError, match=r"unknown profile 'navie' \(did you mean 'naive'\?\)"):
        s.with_overrides(profile="navie")


def test_scenario_from_dict_and_parse_scenario_agree(tmp_path: Path) -> None:
    data = {
        "format": 1, "cards": [{"id": "bob", "pan": PAN, "balance": "1.00"}],
        "steps": [{"do": "refund", "card": "bob", "amount": "1.00"}],
    }
    from_dict = scenario_from_dict(data)
    assert (from_dict.steps[0].amount_minor, from_dict.path) == (100, None)
    text = f'format = 1\n[[cards]]\nid = "bob"\npan = "{PAN}"\nbalance = "1.00"\n'
    text += '[[steps]]\ndo = "refund"\ncard = "bob"\namount = "1.00"\n'
    assert parse_scenario(text).steps == from_dict.steps


# ------------------------------------------------------------------ mistakes


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    err = error(tmp_path, "format = 1\nname = 'x'\nseed = = 3\n")
    assert err.line == 3
    assert str(err).startswith(f"{tmp_path / 'scn.toml'}:3: invalid TOML: ")
    assert str(err).endswith("(column 8)")


@pytest.mark.parametrize("value", ["[" * 5000 + "]" * 5000, "{a=" * 5000 + "1" + "}" * 5000])
def test_nesting_past_the_parsers_depth_is_an_error_not_a_crash(
        tmp_path: Path, value: str) -> None:
    err = error(tmp_path, f"format = 1\nname = 'x'\nx = {value}\n")
    assert str(err) == f"{tmp_path / 'scn.toml'}: invalid TOML: arrays or tables nested too deeply"


def test_unknown_top_level_key(tmp_path: Path) -> None:
    err = error(tmp_path, "seeds = 3\n" + BASE)
    assert str(err) == f"{tmp_path / 'scn.toml'}: seeds: unknown key 'seeds' (did you mean 'seed'?)"
    assert (err.key, err.line) == ("seeds", None)


def test_unknown_key_inside_faults(tmp_path: Path) -> None:
    text = BASE + '[[faults]]\nfault = "network.latency"\nat_s = 1\ndealy_s = 5\n'
    assert str(error(tmp_path, text)).endswith(
        ": faults[0].dealy_s: unknown key 'dealy_s' (did you mean 'delay_s'?)"
    )
    # another fault's parameter is unknown here
    text = BASE + '[[faults]]\nfault = "printer.paper_jam"\nat_s = 1\ndelay_s = 5\n'
    assert error(tmp_path, text).key == "faults[0].delay_s"


@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        ('seed = "7"\n', "seed", "expected an integer, got a string"),
        ("seed = 1.5\n", "seed", "expected an integer, got a number"),
        ("[network]\nlatency_s = true\n", "network.latency_s", "expected a number, got a boolean"),
        ("[bank]\nduplicate_check = 1\n", "bank.duplicate_check",
         "expected a boolean, got an integer"),
        ("until_s = [1]\n", "until_s", "expected a number, got an array"),
        ("expect = 3\n", "expect", "expected a table, got an integer"),
        ("start = 2026-11-22\n", "start", "expected a date-time, got a date"),
    ],
)
def test_wrong_type(tmp_path: Path, extra: str, key: str, message: str) -> None:
    text = extra + BASE if not extra.startswith("[") else BASE + extra
    assert str(error(tmp_path, text)) == f"{tmp_path / 'scn.toml'}: {key}: {message}"


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ('"12.345"', "more than two decimals: '12.345'"),
        ('"abc"', "not an amount: 'abc'"),
        ("12.345", "more than two decimals: 12.345"),
        ('"0.00"', "must be more than 0"),
        ('"-1.00"', "must be more than 0"),
        ("true", "expected an amount like \"12.50\", got a boolean"),
    ],
)
def test_bad_amount(tmp_path: Path, amount: str, message: str) -> None:
    text = BASE.replace('amount = "10.00"', f"amount = {amount}")
    assert str(error(tmp_path, text)).startswith(
        f"{tmp_path / 'scn.toml'}: steps[0].amount: {message}"
    )


def test_bad_balance_amount(tmp_path: Path) -> None:
    text = BASE + '[expect]\nbalances = { alice = "1.001" }\n'
    assert error(tmp_path, text).key == "expect.balances.alice"


def test_unknown_fault(tmp_path: Path) -> None:
    text = BASE + '[[faults]]\nfault = "printer.paper_jamm"\nat_s = 1\n'
    assert str(error(tmp_path, text)).endswith(
        ": faults[0].fault: unknown fault 'printer.paper_jamm' (did you mean 'printer.paper_jam'?)"
    )


def test_unknown_event(tmp_path: Path) -> None:
    text = BASE + '[[faults]]\nfault = "bank.down"\non = "door.opened"\n'
    err = error(tmp_path, text)
    assert err.key == "faults[0].on"
    assert "unknown trigger event 'door.opened'; one of: terminal.txn_started," in str(err)


def test_unknown_card(tmp_path: Path) -> None:
    text = BASE.replace('card = "alice"', 'card = "alica"')
    assert str(error(tmp_path, text)).endswith(
        ": steps[0].card: unknown card 'alica' (did you mean 'alice'?)"
    )


def test_unknown_step_target(tmp_path: Path) -> None:
    text = BASE + '[[steps]]\ndo = "void"\ntarget = "s9"\n'
    assert str(error(tmp_path, text)).endswith(": steps[1].target: unknown step 's9'; one of: s1")
    # a target must come earlier in the file
    text = BASE.replace('do = "sale"', 'do = "void"\ntarget = "s2"').replace(
        'card = "alice"\namount = "10.00"\n', ""
    ) + '[[steps]]\nid = "s2"\ndo = "sale"\ncard = "alice"\namount = 1\n'
    assert "must name an earlier step" in str(error(tmp_path, text))


def test_unknown_step_in_fault_and_expect(tmp_path: Path) -> None:
    text = BASE + '[[faults]]\nfault = "bank.down"\non = "card.read"\nstep = "s2"\n'
    assert error(tmp_path, text).key == "faults[0].step"
    text = BASE + '[expect]\nend_states = { s2 = "approved" }\n'
    assert error(tmp_path, text).key == "expect.end_states.s2"
    text = BASE + '[expect]\nend_states = { s1 = "aproved" }\n'
    assert "unknown end state 'aproved' (did you mean 'approved'?)" in str(error(tmp_path, text))


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ('on = "card.read"\nat_s = 3\n', "both `on` and `at_s` given"),
        ("nth = 2\n", "neither `on` nor `at_s` given"),
    ],
)
def test_exactly_one_of_on_and_at_s(tmp_path: Path, trigger: str, message: str) -> None:
    text = BASE + '[[faults]]\nfault = "bank.down"\n' + trigger
    assert str(error(tmp_path, text)) == (
        f"{tmp_path / 'scn.toml'}: faults[0]: {message}: a fault takes exactly one trigger"
    )


@pytest.mark.parametrize(
    ("head", "message"),
    [
        ("", "format: missing (required): write `format = 1` at the top"),
        ("format = 2\n", "format: unsupported format 2: this posemu reads format 1"),
        ('format = "1"\n', "format: unsupported format '1': this posemu reads format 1"),
    ],
)
def test_format_must_be_1(tmp_path: Path, head: str, message: str) -> None:
    text = head + BASE.removeprefix("format = 1\n")
    assert str(error(tmp_path, text)) == f"{tmp_path / 'scn.toml'}: {message}"


@pytest.mark.parametrize(
    ("knob", "key", "message"),
    [
        ('on_receipt_failure = "later"', "terminal.on_receipt_failure",
         "unknown value 'later'; one of: reprint, undo, ignore"),
        ("response_timeout_s = -1", "terminal.response_timeout_s", "must be > 0"),
        ("response_timeout_s = nan", "terminal.response_timeout_s", "must be > 0"),
        ("saf_expiry_s = inf", "terminal.saf_expiry_s", "must be <= 1000000000"),
        ("request_retries = 1.5", "terminal.request_retries", "expected an integer, got a number"),
        ("reverse_on_timeout = 'yes'", "terminal.reverse_on_timeout",
         "expected a boolean, got a string"),
        ('offline_floor = "1.234"', "terminal.offline_floor", "more than two decimals"),
        ('profile = "paranoid"', "terminal.profile", "unknown profile 'paranoid'"),
    ],
)
def test_bad_knob_value(tmp_path: Path, knob: str, key: str, message: str) -> None:
    assert str(error(tmp_path, BASE + f"[terminal]\n{knob}\n")).startswith(
        f"{tmp_path / 'scn.toml'}: {key}: {message}"
    )


def test_unknown_knob(tmp_path: Path) -> None:
    text = BASE + "[terminal]\nrespons_timeout_s = 10\n"
    assert str(error(tmp_path, text)).endswith(
        ": terminal.respons_timeout_s: unknown key 'respons_timeout_s' "
        "(did you mean 'response_timeout_s'?)"
    )


def test_duplicate_ids(tmp_path: Path) -> None:
    text = BASE + '[[steps]]\nid = "s1"\ndo = "settle"\n'
    assert str(error(tmp_path, text)).endswith(": steps[1].id: duplicate step id 's1'")
    text = BASE + f'[[cards]]\nid = "alice"\npan = "{OTHER_PAN}"\n'
    assert str(error(tmp_path, text)).endswith(": cards[1].id: duplicate card id 'alice'")
    text = BASE + f'[[cards]]\nid = "bob"\npan = "{PAN}"\n'
    assert str(error(tmp_path, text)).endswith(
        ": cards[1].pan: duplicate card number 411111******1111"
    )


@pytest.mark.parametrize(
    ("step", "key", "message"),
    [
        ('do = "sale"\ncard = "alice"', "steps[1].amount", "missing: a sale needs `amount`"),
        ('do = "settle"\ncard = "alice"', "steps[1].card", "a settle takes no `card`"),
        ('do = "void"', "steps[1].target", "missing: a void needs `target`"),
        ('do = "void"\ntarget = "s1"\namount = 1', "steps[1].amount", "a void takes no `amount`"),
        ('do = "reprint"\ntarget = "s1"\nat_s = -1', "steps[1].at_s", "must be >= 0"),
        ('do = "pay"', "steps[1].do", "unknown step kind 'pay'"),
    ],
)
def test_step_rules(tmp_path: Path, step: str, key: str, message: str) -> None:
    text = BASE + f"[[steps]]\n{step}\n"
    assert str(error(tmp_path, text)).startswith(f"{tmp_path / 'scn.toml'}: {key}: {message}")


def test_void_must_target_a_sale(tmp_path: Path) -> None:
    text = BASE + '[[steps]]\nid = "r"\ndo = "settle"\n[[steps]]\ndo = "void"\ntarget = "r"\n'
    assert str(error(tmp_path, text)).endswith(
        ": steps[2].target: a void cannot target a settle ('r')"
    )


@pytest.mark.parametrize(
    ("params", "key", "message"),
    [
        ('direction = "sideways"', "faults[0].direction", "unknown direction 'sideways'"),
        ("count = -1", "faults[0].count", "must be >= 0"),
        ("for_s = 0", "faults[0].for_s", "must be > 0"),
        ("nth = 0", "faults[0].nth", "must be >= 1"),
    ],
)
def test_bad_fault_parameter(tmp_path: Path, params: str, key: str, message: str) -> None:
    text = BASE + f'[[faults]]\nfault = "network.drop"\non = "network.sent"\n{params}\n'
    assert str(error(tmp_path, text)).startswith(f"{tmp_path / 'scn.toml'}: {key}: {message}")


def test_bad_response_code(tmp_path: Path) -> None:
    text = BASE + '[[faults]]\nfault = "bank.respond"\nat_s = 0\ncode = "5"\n'
    assert str(error(tmp_path, text)).endswith(
        ': faults[0].code: must be a two-digit response code, e.g. "05"'
    )


def test_missing_file_directory_and_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "nope.toml")
    assert str(info.value) == f"{tmp_path / 'nope.toml'}: no such file"
    with pytest.raises(ScenarioError, match="is a directory"):
        load_scenario(tmp_path)
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'format = 1\nname = "caf\xe9"\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert (str(info.value), info.value.line) == (f"{path}:2: not UTF-8 text", 2)


@pytest.mark.parametrize(
    "text",
    [
        BASE.replace('card = "alice"', f'card = "{OTHER_PAN}"'),  # unknown PAN as a card ref
        BASE.replace(PAN, "4111111111111112"),  # fails Luhn
        BASE + f'[[steps]]\ndo = "{OTHER_PAN}"\n',  # a PAN where a name goes
        BASE + f'[expect]\nbalances = {{ "{OTHER_PAN}" = "1.00" }}\n',
        BASE + f'[[cards]]\nid = "{OTHER_PAN}"\npan = "{OTHER_PAN}"\n',
    ],
)
def test_pan_never_echoed(tmp_path: Path, text: str) -> None:
    message = str(error(tmp_path, text))  # error() asserts neither PAN is in the message
    assert "4111111111111112" not in message
    assert "******" in message


def test_times_must_be_finite(tmp_path: Path) -> None:
    text = BASE + '[[faults]]\nfault = "bank.down"\nat_s = inf\n'
    assert error(tmp_path, text).key == "faults[0].at_s"
    text = BASE.replace('do = "sale"', 'do = "sale"\nat_s = nan')
    assert str(error(tmp_path, text)).endswith(": steps[0].at_s: must be >= 0")


def test_start_accepts_toml_datetimes_and_normalises_offsets(tmp_path: Path) -> None:
    s = load(tmp_path, "start = 2026-11-22T10:00:00+01:00\n" + BASE)
    assert s.start == datetime(2026, 11, 22, 9, 0, 0)


# ------------------------------------------------------------ [liveness]


def test_liveness_ends_the_run_and_quiet_s_has_a_default(tmp_path: Path) -> None:
    s = load(tmp_path, BASE + "[liveness]\nhorizon_s = 100\n")
    assert s.liveness == Liveness(100.0, 600.0)
    assert s.until_s == 700.0  # the run ends, and is judged, at horizon_s + quiet_s
    s = load(tmp_path, BASE + "[liveness]\nhorizon_s = 100\nquiet_s = 10.5\n")
    assert (s.liveness, s.until_s) == (Liveness(100.0, 10.5), 110.5)
    assert load(tmp_path, BASE).liveness is None


@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        ("[liveness]\nquiet_s = 10\n", "liveness.horizon_s", "missing (required)"),
        ("[liveness]\nhorizon_s = -1\n", "liveness.horizon_s", "must be >= 0"),
        ("[liveness]\nhorizon_s = 1\nquiet_s = 2e9\n", "liveness.quiet_s",
         "must be <= 1000000000"),
        ('[liveness]\nhorizon_s = "1"\n', "liveness.horizon_s", "expected a number, got a string"),
        ("[liveness]\nhorizon_s = 1\nquite_s = 2\n", "liveness.quite_s",
         "unknown key 'quite_s' (did you mean 'quiet_s'?)"),
        ("[liveness]\nhorizon_s = 0\nquiet_s = 0\n", "liveness.quiet_s",
         "liveness.horizon_s + liveness.quiet_s must be more than 0"),
        ("until_s = 50\n[liveness]\nhorizon_s = 1\n", "until_s",
         "a [liveness] run ends at liveness.horizon_s + liveness.quiet_s: leave out until_s"),
        ("[liveness]\nhorizon_s = 1\nquiet_s = 2\n[[steps]]\ndo = \"settle\"\nat_s = 4\n",
         "steps[1].at_s",
         "after the end of the run, liveness.horizon_s + liveness.quiet_s = 3"),
        ('[liveness]\nhorizon_s = 10\n[[faults]]\nfault = "bank.down"\nat_s = 11\n',
         "faults[0].at_s", "after the liveness horizon (liveness.horizon_s = 10), where no "
         "fault starts: it would never fire (mark it `optional = true` if that is meant)"),
        ("[expect]\nanomalies = [\"not_quite\"]\n", "expect.anomalies[0]",
         "unknown anomaly 'not_quite' (did you mean 'not_quiet'?)"),
    ],
)
def test_liveness_mistakes(tmp_path: Path, extra: str, key: str, message: str) -> None:
    head, tail = extra.split("\n", 1) if extra.startswith("until_s") else ("", extra)
    text = head + "\n" + BASE + tail
    assert str(error(tmp_path, text)) == f"{tmp_path / 'scn.toml'}: {key}: {message}"


def test_an_optional_fault_after_the_horizon_and_not_quiet_expected_are_fine(
    tmp_path: Path,
) -> None:
    s = load(tmp_path, BASE + '[liveness]\nhorizon_s = 10\n[[faults]]\nfault = "bank.down"\n'
             'at_s = 11\noptional = true\n[expect]\nanomalies = ["not_quiet"]\n')
    assert s.expect is not None
    assert s.expect.anomalies == ("not_quiet",)

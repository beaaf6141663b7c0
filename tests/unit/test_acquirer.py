"""The acquirer host core: every response code path, idempotence, conservation."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.bank.acquirer import Account, Acquirer, Forced, Reply
from devices.errors import ConservationError
from devices.iso8583.message import corrupt, decode, encode, mac_ok, original_data

NOW = datetime(2026, 11, 22, 9, 0)
DAY = timedelta(days=1)
F7 = "1122090000"
TID = "TERM0001"
ALICE = "4111111111111111"
BOB = "5500000000000004"
BLOCKED = "4000000000000002"
EXPIRED = "4000000000000010"
OFFLINE = "4000000000000028"
UNKNOWN = "4999999999999999"
KEY = b"mac key for tests"


def bank(**options: object) -> Acquirer:
    accounts = {
        ALICE: Account("alice", 25_000, "2812"),
        BOB: Account("bob", 1_000),
        BLOCKED: Account("blocked", 5_000, blocked=True),
        EXPIRED: Account("expired", 5_000, "2610"),
        OFFLINE: Account("offline", 5_000, issuer_down=True),
    }
    return Acquirer(accounts, merchant_balance_minor=100_000, **options)  # type: ignore[arg-type]


def fin(
    stan: int, amount: int, pan: str = ALICE, *, mti: str = "0200", proc: str = "000000",
    f7: str = F7, key: bytes | None = None,
) -> bytes:
    return encode({
        "t": mti, "2": pan, "3": proc, "4": f"{amount:012d}", "7": f7, "11": f"{stan:06d}",
        "41": TID, "42": "MERCHANT0000001", "49": "978",
    }, key)


def orig(mti: str, stan: int, of_stan: int, reason: str | None = None, f7: str = F7) -> bytes:
    fields = {"t": mti, "7": f7, "11": f"{stan:06d}", "41": TID,
              "90": original_data("0200", of_stan, F7)}
    if reason:
        fields["39"] = reason
    return encode(fields)


def batch(stan: int, credits: int, debits: int, credit_amt: int, debit_amt: int) -> bytes:
    return encode({
        "t": "0500", "7": F7, "11": f"{stan:06d}", "41": TID, "74": f"{credits:010d}",
        "76": f"{debits:010d}", "86": f"{credit_amt:016d}", "88": f"{debit_amt:016d}",
    })


def resp(reply: Reply) -> dict[str, str | bytes]:
    assert reply.response is not None
    return decode(reply.response)


def test_sale_approved_moves_money() -> None:
    host = bank()
    total = host.total_minor()
    reply = host.handle(fin(1, 1250), NOW)
    out = resp(reply)
    assert (reply.code, out["t"], out["11"], out["41"], out["4"]) == (
        "00", "0210", "000001", TID, "000000001250")
    assert len(str(out["37"])) == 12
    assert len(str(out["38"])) == 6
    assert host.balances()[ALICE] == 25_000 - 1250
    assert host.ledger.merchant_balance_minor == 100_000 + 1250
    assert host.total_minor() == total
    assert reply.key == (TID, "000001", F7)
    assert host.ledger.standing_minor((TID, "000001", F7)) == 1250
    assert [p.kind for p in reply.postings] == ["sale"]


def test_refund_credits_the_card() -> None:
    host = bank()
    reply = host.handle(fin(1, 700, BOB, proc="200000"), NOW)
    assert reply.code == "00"
    assert host.balances()[BOB] == 1_700
    assert reply.postings[0].kind == "refund"


@pytest.mark.parametrize(
    ("pan", "amount", "proc", "code"),
    [
        (BLOCKED, 100, "000000", "05"),
        (UNKNOWN, 100, "000000", "14"),
        (BOB, 1_001, "000000", "51"),
        (EXPIRED, 100, "000000", "54"),
        (OFFLINE, 100, "000000", "91"),
        (ALICE, 100, "310000", "12"),
        (ALICE, 0, "000000", "13"),
    ],
)
def test_declines_move_nothing(pan: str, amount: int, proc: str, code: str) -> None:
    host = bank()
    before = host.balances()
    reply = host.handle(fin(1, amount, pan, proc=proc), NOW)
    assert reply.code == code
    assert resp(reply)["39"] == code
    assert "38" not in resp(reply)
    assert host.balances() == before
    assert not reply.postings


def test_card_valid_through_its_expiry_month() -> None:
    host = bank()
    assert host.handle(fin(1, 100, EXPIRED), datetime(2026, 10, 31, 23, 59)).code == "00"
    assert host.handle(fin(2, 100, EXPIRED), datetime(2026, 11, 1)).code == "54"


def test_undecodable_request_gets_30_with_what_decoded() -> None:
    host = bank()
    frame = bytearray(fin(7, 100))
    frame[-3] = ord("X")  # field 49 (currency) no longer numeric
    reply = host.handle(bytes(frame), NOW)
    assert reply.code == "30"
    out = resp(reply)
    assert (out["t"], out["11"], out["41"], out["39"]) == ("0210", "000007", TID, "30")
    assert reply.request_fields["4"] == "000000000100"
    assert host.balances()[ALICE] == 25_000


def test_no_mti_no_response() -> None:
    host = bank()
    frame = bytearray(fin(7, 100))
    frame[2] = 0xFF
    reply = host.handle(bytes(frame), NOW)
    assert (reply.response, reply.code) == (None, "30")
    assert host.handle(b"\x00\x05abc", NOW).response is None


def test_a_response_sent_to_the_host_is_ignored() -> None:
    reply = bank().handle(encode({"t": "0210", "11": "000001", "39": "00"}), NOW)
    assert reply.response is None


def test_mac_checked_and_responses_signed() -> None:
    host = bank(mac_key=KEY)
    good = host.handle(fin(1, 100, key=KEY), NOW)
    assert good.code == "00"
    assert good.response is not None
    assert mac_ok(good.response, KEY)
    bad = bytearray(fin(2, 100, key=KEY))
    bad[-1] ^= 1
    reply = host.handle(bytes(bad), NOW)
    assert reply.code == "63"
    assert reply.response is not None
    assert mac_ok(reply.response, KEY)
    assert host.handle(fin(3, 100), NOW).code == "63"  # no MAC at all
    assert host.balances()[ALICE] == 25_000 - 100


def test_duplicate_check_returns_original_response() -> None:
    host = bank()
    first = host.handle(fin(1, 1250), NOW)
    again = host.handle(fin(1, 1250, mti="0201"), NOW)
    assert again.duplicate
    assert again.response == first.response
    assert (again.code, resp(again)["37"]) == ("00", resp(first)["37"])
    assert not again.postings
    assert host.balances()[ALICE] == 25_000 - 1250
    declined = host.handle(fin(2, 99_999), NOW)
    assert host.handle(fin(2, 99_999, mti="0201"), NOW).response == declined.response


@pytest.mark.parametrize(("amount", "pan"), [(1300, ALICE), (1250, BOB)])
def test_same_key_different_content_is_94(amount: int, pan: str) -> None:
    host = bank()
    host.handle(fin(1, 1250), NOW)
    reply = host.handle(fin(1, amount, pan, mti="0201"), NOW)
    assert reply.code == "94"
    assert host.balances()[ALICE] == 25_000 - 1250
    assert host.balances()[BOB] == 1_000


def test_without_duplicate_check_a_repeat_debits_twice() -> None:
    host = bank(duplicate_check=False)
    host.handle(fin(1, 1250), NOW)
    reply = host.handle(fin(1, 1250, mti="0201"), NOW)
    assert (reply.code, reply.duplicate) == ("00", False)
    assert host.balances()[ALICE] == 25_000 - 2500
    assert host.ledger.standing_minor((TID, "000001", F7)) == 2500


def test_advice_posts_like_a_sale_once() -> None:
    host = bank()
    assert resp(host.handle(fin(1, 500, mti="0220"), NOW))["t"] == "0230"
    again = host.handle(fin(1, 500, mti="0221"), NOW)
    assert again.duplicate
    assert host.balances()[ALICE] == 25_000 - 500
    short = host.handle(fin(2, 5_000, BOB, mti="0220"), NOW)
    assert short.code == "51"
    assert host.balances()[BOB] == 1_000


def test_reversal_is_idempotent() -> None:
    host = bank()
    host.handle(fin(1, 1250), NOW)
    first = host.handle(orig("0400", 2, 1, "68"), NOW)
    assert (first.code, resp(first)["t"], len(first.reversed)) == ("00", "0410", 1)
    assert host.balances()[ALICE] == 25_000
    again = host.handle(orig("0401", 2, 1, "68"), NOW)
    assert (again.code, resp(again)["t"], again.reversed) == ("00", "0410", ())
    assert host.balances()[ALICE] == 25_000
    assert host.ledger.standing_minor((TID, "000001", F7)) == 0


def test_reversal_of_unknown_or_declined_original() -> None:
    host = bank()
    assert host.handle(orig("0400", 2, 1), NOW).code == "25"
    host.handle(fin(3, 99_999), NOW)  # declined 51
    assert host.handle(orig("0400", 4, 3), NOW).code == "00"


def test_a_reversal_that_overtakes_its_original_keeps_it_from_posting() -> None:
    host = bank()
    assert host.handle(orig("0400", 2, 1, "68"), NOW).code == "25"
    assert host.remembered() == (0, 0, 1)
    late = host.handle(fin(1, 1250), NOW + 10 * DAY)  # however late, without retention
    assert (late.code, late.postings, host.remembered()) == ("68", (), (1, 0, 0))
    assert host.balances()[ALICE] == 25_000
    assert host.handle(fin(1, 1250, mti="0201"), NOW + 10 * DAY).code == "68"  # its repeat


def test_reversal_after_batch_close_is_12() -> None:
    host = bank()
    host.handle(fin(1, 1250), NOW)
    assert host.handle(batch(2, 0, 1, 0, 1250), NOW).code == "00"
    reply = host.handle(orig("0400", 3, 1), NOW)
    assert reply.code == "12"
    assert host.balances()[ALICE] == 25_000 - 1250


def test_reversal_without_field_90_is_30() -> None:
    reply = bank().handle(encode({"t": "0400", "11": "000002", "41": TID}), NOW)
    assert reply.code == "30"


def test_partial_approval_moves_only_the_approved_amount() -> None:
    host = bank()
    reply = host.handle(fin(1, 1250), NOW, Forced("10", 500))
    assert (reply.code, resp(reply)["4"]) == ("10", "000000000500")
    assert "38" in resp(reply)
    assert host.balances()[ALICE] == 25_000 - 500
    status = host.handle(orig("0600", 2, 1), NOW)
    assert (status.code, resp(status)["4"]) == ("00", "000000000500")


def test_forced_code_moves_nothing_and_is_remembered() -> None:
    host = bank()
    reply = host.handle(fin(1, 1250), NOW, Forced("05"))
    assert reply.code == "05"
    assert host.balances()[ALICE] == 25_000
    assert host.handle(orig("0600", 2, 1), NOW).code == "05"
    assert host.handle(fin(1, 1250, mti="0201"), NOW).code == "05"
    assert host.handle(orig("0400", 3, 1), NOW, Forced("96")).code == "96"


def test_posted_then_96() -> None:
    host = bank()
    reply = host.handle(fin(1, 700, BOB, proc="200000"), NOW, Forced("96", posted=True))
    assert reply.code == "96"
    assert resp(reply)["39"] == "96"
    assert host.balances()[BOB] == 1_700  # credited although the answer says error
    status = host.handle(orig("0600", 2, 1), NOW)
    assert (status.code, resp(status)["4"]) == ("00", "000000000700")
    repeat = host.handle(fin(1, 700, BOB, mti="0201", proc="200000"), NOW)
    assert (repeat.code, repeat.duplicate, repeat.response) == ("96", True, reply.response)
    assert host.balances()[BOB] == 1_700


def test_batch_close_balanced_and_out_of_balance() -> None:
    host = bank()
    host.handle(fin(1, 1250), NOW)
    host.handle(fin(2, 300), NOW)
    host.handle(fin(3, 200, BOB, proc="200000"), NOW)
    host.handle(orig("0400", 4, 2), NOW)  # reversed: not in the totals
    assert host.host_totals(TID) == (1, 1, 200, 1250)
    wrong = host.handle(batch(5, 1, 2, 200, 1550), NOW)
    assert wrong.code == "95"
    assert (resp(wrong)["76"], resp(wrong)["88"]) == ("0000000001", "0000000000001250")
    assert host.open_batch(TID) == 1
    right = host.handle(batch(6, 1, 1, 200, 1250), NOW)
    assert (right.code, resp(right)["t"]) == ("00", "0510")
    assert host.open_batch(TID) == 2
    assert host.host_totals(TID) == (0, 0, 0, 0)
    assert host.handle(batch(7, 0, 0, 0, 0), NOW).code == "00"


def test_status_query() -> None:
    host = bank()
    host.handle(fin(1, 1250), NOW)
    host.handle(fin(2, 99_999), NOW)
    ok = host.handle(orig("0600", 10, 1), NOW)
    assert (ok.code, resp(ok)["t"], resp(ok)["4"]) == ("00", "0610", "000000001250")
    assert host.handle(orig("0600", 11, 2), NOW).code == "51"
    assert host.handle(orig("0600", 12, 3), NOW).code == "25"
    host.handle(orig("0400", 13, 1), NOW)
    assert host.handle(orig("0600", 14, 1), NOW).code == "25"


def test_ids_are_deterministic() -> None:
    def run() -> list[bytes | None]:
        host = bank()
        return [host.handle(fin(i, 100), NOW).response for i in range(1, 5)]

    assert run() == run()
    rrns = {decode(r)["37"] for r in run() if r is not None}
    assert len(rrns) == 4


def test_echo_and_unknown_mti() -> None:
    host = bank()
    assert host.handle(encode({"t": "0800", "11": "000001", "41": TID}), NOW).code == "00"
    assert host.handle(encode({"t": "0100", "11": "000001", "41": TID}), NOW).code == "12"


def test_no_full_pan_in_reprs() -> None:
    host = bank()
    reply = host.handle(fin(1, 1250), NOW)
    for text in (repr(reply), repr(reply.postings[0]), repr(host), repr(host.ledger)):
        assert ALICE not in text
    assert "411111******1111" in repr(reply.postings[0])


def test_conservation_violation_is_loud() -> None:
    host = bank()
    host.ledger.accounts[ALICE].balance_minor += 1
    with pytest.raises(ConservationError):
        host.handle(fin(1, 100), NOW)


OPS = st.lists(
    st.tuples(
        st.sampled_from(["sale", "refund", "repeat", "advice", "reversal", "status", "batch",
                         "forced"]),
        st.integers(1, 6),  # STAN
        st.integers(0, 3_000),  # amount
        st.sampled_from([ALICE, BOB, BLOCKED, UNKNOWN]),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(OPS, st.booleans())
def test_money_is_conserved(ops: list[tuple[str, int, int, str]], dup_check: bool) -> None:
    host = bank(duplicate_check=dup_check)
    total = host.total_minor()
    initial = host.balances()
    next_stan = 100
    for op, stan, amount, pan in ops:
        next_stan += 1
        if op == "sale":
            host.handle(fin(stan, amount, pan), NOW)
        elif op == "refund":
            host.handle(fin(stan, amount, pan, proc="200000"), NOW)
        elif op == "repeat":
            host.handle(fin(stan, amount, pan, mti="0201"), NOW)
        elif op == "advice":
            host.handle(fin(stan, amount, pan, mti="0220"), NOW)
        elif op == "reversal":
            host.handle(orig("0400", next_stan, stan), NOW)
        elif op == "status":
            host.handle(orig("0600", next_stan, stan), NOW)
        elif op == "batch":
            host.handle(batch(next_stan, *host.host_totals(TID)), NOW)
        else:
            host.handle(fin(stan, amount, pan), NOW, Forced("10", amount // 2 or None))
        assert host.total_minor() == total
    expected = dict(initial)
    for posting in host.ledger.postings:
        if not posting.reversed:
            expected[posting.pan] += posting.card_delta
    assert host.balances() == expected
    if dup_check:
        for key in host.ledger.txn_keys():
            assert len(host.ledger.postings_for(key)) == 1


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.sampled_from(["0200", "0400", "0500"]))
def test_corrupted_requests_never_crash(seed: int, nbytes: int, mti: str) -> None:
    host = bank()
    total = host.total_minor()
    host.handle(fin(1, 1250), NOW)
    frame = {"0200": fin(2, 300), "0400": orig("0400", 3, 1), "0500": batch(4, 0, 1, 0, 1250)}
    bad = corrupt(frame[mti], random.Random(seed), nbytes=nbytes)
    reply = host.handle(bad, NOW)
    assert reply.code
    if reply.response is not None:
        answered = str(decode(reply.response)["t"])  # the corruption may change the MTI
        assert answered[2] in "13579"  # a response MTI: the request's function + 1
    assert host.total_minor() == total


@settings(max_examples=150, deadline=None)
@given(OPS)
def test_open_batch_totals_are_the_standing_postings_since_the_last_close(
    ops: list[tuple[str, int, int, str]],
) -> None:
    """The totals are kept as postings come and go; they equal a scan of the ledger."""
    host = bank()
    next_stan = 100
    for op, stan, amount, pan in ops:
        next_stan += 1
        if op in ("sale", "repeat", "forced"):
            host.handle(fin(stan, amount, pan), NOW)
        elif op == "refund":
            host.handle(fin(stan, amount, pan, proc="200000"), NOW)
        elif op == "advice":
            host.handle(fin(stan, amount, pan, mti="0220"), NOW)
        elif op in ("reversal", "status"):
            host.handle(orig("0400", next_stan, stan), NOW)
        else:
            host.handle(batch(next_stan, *host.host_totals(TID)), NOW)
        mine = [p for p in host.ledger.postings
                if p.batch == host.open_batch(TID) and not p.reversed]
        credits = [p.amount_minor for p in mine if p.kind == "refund"]
        debits = [p.amount_minor for p in mine if p.kind != "refund"]
        assert host.host_totals(TID) == (len(credits), len(debits), sum(credits), sum(debits))


# -- retention: what the host forgets, and when ------------------------------------------


def test_without_retention_nothing_is_forgotten() -> None:
    host = bank()
    host.handle(fin(1, 100), NOW)
    host.handle(batch(2, 0, 1, 0, 100), NOW)
    host.handle(fin(3, 100), NOW + 10 * DAY)
    assert len(host.ledger.postings) == 2
    assert host.handle(fin(1, 100, mti="0201"), NOW + 10 * DAY).duplicate


def test_an_open_batch_is_kept_however_old() -> None:
    host = bank(retention_s=60)
    host.handle(fin(1, 100), NOW)
    host.handle(fin(2, 200), NOW + 10 * DAY)
    assert [p.stan for p in host.ledger.postings] == ["000001", "000002"]
    assert host.handle(orig("0400", 3, 1), NOW + 10 * DAY).code == "00"  # still voidable


def test_a_closed_batch_is_forgotten_after_retention() -> None:
    told: list[list[object]] = []
    host = bank(retention_s=3600, on_retire=told.append)
    total = host.total_minor()
    host.handle(fin(1, 100), NOW)
    host.handle(fin(2, 50, BLOCKED), NOW)  # declined (05): remembered, then forgotten too
    assert host.handle(batch(3, 0, 1, 0, 100), NOW).code == "00"
    host.handle(fin(4, 300), NOW + timedelta(minutes=59))
    assert host.handle(fin(1, 100, mti="0201"), NOW + timedelta(minutes=59)).duplicate
    host.handle(fin(5, 300), NOW + timedelta(minutes=61))  # the close is an hour old
    assert [p.stan for p in host.ledger.postings] == ["000004", "000005"]
    assert [[p.stan for p in gone] for gone in told] == [["000001"]]  # type: ignore[attr-defined]
    assert host.ledger.count == 3
    assert host.total_minor() == total
    assert host.balances()[ALICE] == 25_000 - 700
    # the host no longer knows it: a status query finds nothing, a late copy posts again
    assert host.handle(orig("0600", 6, 1), NOW + 2 * DAY).code == "25"
    assert host.handle(orig("0600", 7, 2), NOW + 2 * DAY).code == "25"  # was 05
    again = host.handle(fin(1, 100, mti="0201"), NOW + 2 * DAY)
    assert (again.code, again.duplicate) == ("00", False)


def test_a_close_is_answered_alike_until_retention_then_weighed_anew() -> None:
    host = bank(retention_s=3600)
    host.handle(fin(1, 100), NOW)
    close = host.handle(batch(2, 0, 1, 0, 100), NOW)
    assert (close.code, host.open_batch(TID), host.remembered()) == ("00", 2, (1, 1, 0))
    host.handle(fin(3, 300), NOW + timedelta(minutes=30))  # each request retires the old
    copy = host.handle(batch(2, 0, 1, 0, 100), NOW + timedelta(minutes=59))
    assert (copy.code, copy.response) == ("00", close.response)
    assert host.remembered() == (2, 1, 0)
    host.handle(fin(4, 200), NOW + timedelta(minutes=61))  # the close is an hour old
    assert host.remembered() == (2, 0, 0)  # the sales of the open batch
    late = host.handle(batch(2, 0, 1, 0, 100), NOW + timedelta(minutes=62))
    assert late.code == "95"  # against the open batch's 5.00, not the closed 1.00
    assert (resp(late)["88"], host.open_batch(TID)) == ("0000000000000500", 2)


def test_without_retention_a_close_is_kept_for_good() -> None:
    host = bank()
    close = host.handle(batch(1, 0, 0, 0, 0), NOW)
    host.handle(fin(2, 100), NOW + 10 * DAY)
    copy = host.handle(batch(1, 0, 0, 0, 0), NOW + 10 * DAY)
    assert (copy.response, host.open_batch(TID)) == (close.response, 2)
    assert host.remembered() == (1, 1, 0)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["sale", "close", "copy"]),
                          st.sampled_from([0, 1, 30, 59, 60, 61, 90]),  # waits, s
                          st.integers(0, 5)), max_size=30))
def test_a_close_is_answered_from_memory_exactly_while_retention_keeps_it(
    ops: list[tuple[str, int, int]],
) -> None:
    """A model of the host's memory of closes: each request from the terminal first
    forgets those answered more than ``retention_s`` before it; a copy of one still kept
    gets its answer, a copy of one forgotten is weighed against the open batch."""
    host = bank(retention_s=60)
    now, stan = NOW, 0
    sent: list[tuple[bytes, tuple[int, int, int, int]]] = []  # every close, with its totals
    kept: dict[bytes, tuple[datetime, bytes | None]] = {}  # answered 00: when, the answer
    for op, wait_s, pick in ops:
        now, stan = now + timedelta(seconds=wait_s), stan + 1
        kept = {k: v for k, v in kept.items() if v[0] >= now - timedelta(seconds=60)}
        if op == "sale":
            host.handle(fin(stan, 100 + stan), now)
        elif op == "close" or not sent:
            totals = host.host_totals(TID)
            sent.append((batch(stan, *totals), totals))
            reply = host.handle(sent[-1][0], now)
            assert reply.code == "00"
            kept[sent[-1][0]] = (now, reply.response)
        else:
            frame, totals = sent[pick % len(sent)]
            weighed = "00" if totals == host.host_totals(TID) else "95"
            reply = host.handle(frame, now)
            if frame in kept:
                assert reply.response == kept[frame][1]
            else:
                assert reply.code == weighed
                if weighed == "00":
                    kept[frame] = (now, reply.response)
        assert host.remembered()[1] == len(kept)


def test_a_reversal_without_original_is_remembered_until_retention() -> None:
    host = bank(retention_s=3600)
    assert host.handle(orig("0400", 2, 1, "68"), NOW).code == "25"
    host.handle(orig("0400", 4, 3, "68"), NOW + timedelta(minutes=30))
    host.handle(fin(5, 100), NOW + timedelta(minutes=59))  # each request retires the old
    assert host.remembered() == (1, 0, 2)
    assert host.handle(fin(3, 300), NOW + timedelta(minutes=59)).code == "68"
    host.handle(fin(6, 100), NOW + timedelta(minutes=61))  # the first reversal is an hour old
    assert host.remembered() == (3, 0, 0)
    late = host.handle(fin(1, 1250), NOW + timedelta(minutes=62))
    assert (late.code, len(late.postings)) == ("00", 1)  # a new transaction to the host
    assert host.balances()[ALICE] == 25_000 - 100 - 100 - 1250


def test_a_late_request_is_weighed_after_what_it_outlived_is_forgotten() -> None:
    """The first request after ``retention_s`` is weighed as new, even when it is the
    terminal's only one since: forgetting comes before weighing."""
    late = NOW + timedelta(minutes=61)
    host = bank(retention_s=3600)
    host.handle(fin(1, 100), NOW)
    host.handle(batch(2, 0, 1, 0, 100), NOW)
    copy = host.handle(fin(1, 100, mti="0201"), late)
    assert (copy.code, copy.duplicate, len(copy.postings)) == ("00", False, 1)

    host = bank(retention_s=3600)
    close = host.handle(batch(1, 0, 0, 0, 0), NOW)
    assert (close.code, host.open_batch(TID)) == ("00", 2)
    again = host.handle(batch(1, 0, 0, 0, 0), late)  # weighed anew: closes batch 2
    assert (again.code, host.open_batch(TID)) == ("00", 3)

    host = bank(retention_s=3600)
    assert host.handle(orig("0400", 2, 1, "68"), NOW).code == "25"
    original = host.handle(fin(1, 1250), late)
    assert (original.code, len(original.postings)) == ("00", 1)
    assert host.remembered() == (1, 0, 0)


def test_retention_keeps_the_close_totals_of_the_open_batch() -> None:
    host = bank(retention_s=0)
    host.handle(fin(1, 100), NOW)
    assert host.handle(batch(2, 0, 1, 0, 100), NOW).code == "00"
    host.handle(fin(3, 250), NOW + DAY)
    host.handle(fin(4, 40, proc="200000"), NOW + DAY)
    assert host.host_totals(TID) == (1, 1, 40, 250)
    assert host.handle(batch(5, 1, 1, 40, 250), NOW + DAY).code == "00"

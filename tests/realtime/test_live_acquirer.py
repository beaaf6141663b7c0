"""The live acquirer over real sockets, driven by an independent pyiso8583 client.

Each test serves a scenario in-process on 127.0.0.1, port 0, for well under a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devices.net.framing import Framing
from emulator.engine.wiring import MAC_KEY
from emulator.live.acquirer import LiveAcquirer, Running
from emulator.scenario.load import scenario_from_dict
from tests.realtime.live_client import Client, encode, request

CARDS = [{"id": "alice", "pan": "4111111111111111", "balance": "100.00"},
         {"id": "bob", "pan": "5500000000000004", "balance": "5.00"}]


def world(**bank: Any) -> dict[str, Any]:
    return {"format": 1, "name": "live", "cards": CARDS,
            "bank": {"processing_s": 0.0, "verify_mac": False, **bank}}


@pytest.fixture
def serve() -> Iterator[Any]:
    running: list[Running] = []

    def start(data: dict[str, Any], framing: str = "len2", tpdu: bool = False) -> Running:
        acquirer = LiveAcquirer(scenario_from_dict(data), Framing.parse(framing, tpdu=tpdu))
        run = Running(acquirer).__enter__()
        running.append(run)
        return run

    yield start
    for run in running:
        run.stop()


def test_a_sale_is_approved_posted_and_judged_clean(serve):
    run = serve(world())
    with Client(run.address) as client:
        answer = client.ask(request("0200", 1, amount=1250))
    assert (answer["t"], answer["39"], answer["11"]) == ("0210", "00", "000001")
    result = run.stop()
    assert result.balances_minor["alice"] == 10000 - 1250
    assert [(p["stan"], p["amount"], p["reversed"]) for p in result.postings] == [
        ("000001", "12.50", False)]
    assert result.anomalies == []
    assert result.passed


def test_declines_move_nothing(serve):
    run = serve(world())
    with Client(run.address) as client:
        answer = client.ask(request("0200", 2, pan="5500000000000004", amount=600))
    assert answer["39"] == "51"
    assert run.stop().balances_minor["bob"] == 500


def test_the_mac_is_checked_as_documented(serve):
    run = serve({**world(), "bank": {"processing_s": 0.0}})
    with Client(run.address) as client:
        good = client.ask(request("0200", 3), mac_key=MAC_KEY)
        bad = client.ask(request("0200", 4), mac_key=b"another key")
    assert (good["39"], bad["39"]) == ("00", "63")
    assert len(good["64"]) == 16  # 8 bytes, shown as hex by pyiso8583


def test_a_mac_key_from_the_scenario(serve):
    run = serve({**world(), "bank": {"processing_s": 0.0, "mac_key": "00112233445566778899"}})
    with Client(run.address) as client:
        answer = client.ask(request("0200", 5), mac_key=bytes.fromhex("00112233445566778899"))
    assert answer["39"] == "00"


@pytest.mark.parametrize("framing", [k + s for k in ("len2", "len2le", "bcd2", "ascii4", "hex4")
                                     for s in ("", "+self")])
def test_framings_serve_the_independent_client(serve, framing):
    run = serve(world(), framing)
    with Client(run.address, header=framing) as client:
        echo = client.ask(request("0800", 6, **{"70": "301"}))
    assert (echo["t"], echo["39"], echo["70"]) == ("0810", "00", "301")  # echo test answered


def test_many_messages_on_one_connection_and_many_connections(serve):
    run = serve(world())
    with Client(run.address) as one, Client(run.address) as two:
        for stan in range(10, 15):
            assert one.ask(request("0200", stan, amount=100))["11"] == f"{stan:06d}"
            assert two.ask(request("0200", stan, amount=100, tid="TERM0002"))["39"] == "00"
    result = run.stop()
    assert result.balances_minor["alice"] == 10000 - 10 * 100
    assert {p["terminal_id"] for p in result.postings} == {"TERM0001", "TERM0002"}


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # not a frame at all: 18245 bytes announced
    b"\xff\xff" + b"0" * 100,  # a 64 KB length
    b"\x00\x02ab",  # shorter than an MTI
])
def test_bad_frames_close_their_connection_and_others_are_served(serve, garbage):
    run = serve(world())
    with Client(run.address) as good, Client(run.address) as bad:
        bad.send_raw(garbage)
        assert bad.closed_by_peer()
        assert good.ask(request("0200", 20))["39"] == "00"
    assert run.stop().passed


def test_a_client_that_leaves_mid_frame_is_forgotten(serve):
    run = serve(world())
    with Client(run.address) as half:
        half.send_raw(b"\x00\x40" + b"0200")
    with Client(run.address) as good:
        assert good.ask(request("0200", 21))["39"] == "00"
    result = run.stop()
    assert result.balances_minor["alice"] == 9000  # only the whole request moved money


def test_an_undecodable_message_is_answered_30(serve):
    run = serve(world())
    with Client(run.address) as client:
        client.send(b"0200" + b"\xff" * 20)
        assert client.receive()["39"] == "30"


def test_a_tpdu_is_swapped_in_the_answer(serve):
    run = serve(world(), "len2", tpdu=True)
    with Client(run.address) as client:
        body = b"\x60\x00\x01\x00\x02" + encode(request("0800", 7))
        client.send_raw(len(body).to_bytes(2, "big") + body)
        head = client._exactly(2)
        back = client._exactly(int.from_bytes(head, "big"))
    assert back[:5] == b"\x60\x00\x02\x00\x01"
    assert back[5:9] == b"0810"


def timeout_fault(**params: Any) -> dict[str, Any]:
    return {"fault": "bank.timeout", "on": "bank.request_received", "nth": 1, **params}


def test_a_lost_answer_never_reversed_is_in_doubt(serve):
    run = serve({**world(in_doubt_after_s=0.1), "faults": [timeout_fault()]})
    with Client(run.address) as client:
        client.send(encode(request("0200", 30)))
        client.sock.settimeout(0.15)
        with pytest.raises(TimeoutError):
            client.receive()
    result = run.stop()
    assert [(a.kind, a.stan, a.terminal_id) for a in result.anomalies] == [
        ("in_doubt", "000030", "TERM0001")]
    assert not result.passed


def test_a_sale_keyed_again_after_a_lost_answer_is_a_duplicate_charge(serve):
    run = serve({**world(in_doubt_after_s=5), "faults": [timeout_fault(count=1)]})
    with Client(run.address) as client:
        client.send(encode(request("0200", 31)))
        client.sock.settimeout(0.15)
        with pytest.raises(TimeoutError):
            client.receive()
        client.sock.settimeout(3)
        assert client.ask(request("0200", 32))["39"] == "00"  # a new STAN: a new purchase
    result = run.stop()
    assert [(a.kind, a.stan) for a in result.anomalies] == [("duplicate_charge", "000032")]
    assert result.balances_minor["alice"] == 8000


def test_a_lost_answer_reversed_in_time_is_clean(serve):
    run = serve({**world(in_doubt_after_s=5), "faults": [timeout_fault(count=1)]})
    original = "0200000033" + "1122090000" + "0" * 22
    with Client(run.address) as client:
        client.send(encode(request("0200", 33)))
        client.sock.settimeout(0.15)
        with pytest.raises(TimeoutError):
            client.receive()
        client.sock.settimeout(3)
        reversal = client.ask(request("0400", 34, **{"39": "68", "90": original}))
        assert reversal["39"] == "00"
        assert client.ask(request("0200", 35))["39"] == "00"
    result = run.stop()
    assert result.anomalies == []
    assert result.balances_minor["alice"] == 9000


def test_bank_down_refuses_connections(serve):
    run = serve({**world(), "faults": [{"fault": "bank.down", "at_s": 0}]})
    with Client(run.address) as refused:
        assert refused.closed_by_peer()
    assert run.stop().postings == []


def on_request(fault: str, **params: Any) -> dict[str, Any]:
    return {"fault": fault, "on": "bank.request_received", **params}


@pytest.mark.parametrize("fault", ["network.close", "network.reset"])
def test_a_connection_cut_instead_of_the_answer_leaves_the_money_in_doubt(serve, fault):
    run = serve({**world(in_doubt_after_s=0.1), "faults": [on_request(fault)]})
    with Client(run.address) as client:
        client.send(encode(request("0200", 40)))
        assert client.closed_by_peer()
    with Client(run.address) as again:  # count = 1: the next connection is answered
        assert again.ask(request("0200", 41, amount=100))["39"] == "00"
    result = run.stop()
    assert [(a.kind, a.stan) for a in result.anomalies] == [("in_doubt", "000040")]


def test_an_answer_split_across_segments_is_reassembled(serve):
    run = serve({**world(), "faults": [on_request("network.split", pieces=3, delay_s=0.02)]})
    with Client(run.address) as client:
        client.send(encode(request("0200", 42)))
        first = client.sock.recv(4096)  # the first piece only: the rest comes 20 ms later
        assert 0 < len(first) < 60
        client.sock.settimeout(3)
        rest = b""
        while len(first + rest) < 2 + int.from_bytes(first[:2], "big"):
            rest += client.sock.recv(4096)
    assert (first + rest)[2:6] == b"0210"
    assert run.stop().anomalies == []


def test_an_answer_written_twice(serve):
    run = serve({**world(), "faults": [on_request("network.duplicate", direction="to_terminal",
                                                  count=1)]})
    with Client(run.address) as client:
        once = client.ask(request("0200", 43))
        twice = client.receive()
    assert once == twice
    assert once["39"] == "00"


def test_a_request_dropped_on_the_way_moves_nothing(serve):
    run = serve({**world(), "faults": [{"fault": "network.drop", "at_s": 0,
                                        "direction": "to_bank"}]})
    with Client(run.address) as client:
        client.send(encode(request("0200", 44)))
        client.sock.settimeout(0.15)
        with pytest.raises(TimeoutError):
            client.receive()
        client.sock.settimeout(3)
        assert client.ask(request("0200", 45))["39"] == "00"  # count = 1
    result = run.stop()
    assert [p["stan"] for p in result.postings] == ["000045"]


def test_a_fault_triggered_by_a_link_event_still_fires(serve):
    drop = {"fault": "network.drop", "on": "network.sent", "nth": 1, "direction": "to_bank"}
    run = serve({**world(), "faults": [drop]})
    with Client(run.address) as client:
        client.send(encode(request("0200", 46)))  # the first frame on the link: dropped
        client.sock.settimeout(0.15)
        with pytest.raises(TimeoutError):
            client.receive()
        client.sock.settimeout(3)
        assert client.ask(request("0200", 47))["39"] == "00"
    assert [p["stan"] for p in run.stop().postings] == ["000047"]


def test_a_request_corrupted_on_the_way_reaches_the_bank_changed(serve):
    corrupt = {"fault": "network.corrupt", "at_s": 0, "direction": "to_bank", "field": 4}
    run = serve({**world(), "faults": [corrupt]})
    with Client(run.address) as client:
        answer = client.ask(request("0200", 48, amount=1000))
    run.stop()
    assert answer["11"] == "000048"
    assert answer["4"] != f"{1000:012d}"  # no MAC checked here: the changed digit passed

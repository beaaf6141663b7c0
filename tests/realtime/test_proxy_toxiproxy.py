"""``posemu proxy`` driven by a Toxiproxy client library (toxiproxy-python, a dev
dependency): create and list proxies, add and remove the byte-level toxics, reset; a
pyiso8583 client on one side, posemu's acquirer on the other, on loopback."""

from __future__ import annotations

import socket

import pytest
from toxiproxy.api import APIConsumer  # type: ignore[import-untyped]
from toxiproxy.server import Toxiproxy  # type: ignore[import-untyped]

from tests.realtime.live_client import Client, request
from tests.realtime.proxy_support import acquirer, frames, proxy, stop_acquirer

PAN = "4012888888881881"


@pytest.fixture
def toxiproxy_at(monkeypatch):
    """A client pointed at the proxy's API (the library keeps its address on a class)."""

    def make(api: tuple[str, int]) -> Toxiproxy:
        monkeypatch.setattr(APIConsumer, "host", api[0])
        monkeypatch.setattr(APIConsumer, "port", api[1])
        return Toxiproxy()

    return make


def test_a_toxiproxy_client_creates_a_proxy_and_toxics_act(tmp_path, toxiproxy_at):
    with acquirer() as bank, proxy(bank.address, tmp_path) as running:
        server = toxiproxy_at(running.api)
        assert list(server.proxies()) == ["posemu"]
        upstream = f"{bank.address[0]}:{bank.address[1]}"
        second = server.create(upstream=upstream, name="second", listen="127.0.0.1:0")
        host, port = second.listen.rsplit(":", 1)
        assert sorted(server.proxies()) == ["posemu", "second"]
        assert port != "0"
        second.add_toxic(type="latency", stream="downstream", attributes={"latency": 20})
        second.add_toxic(type="bandwidth", stream="downstream", attributes={"rate": 100})
        second.add_toxic(type="slicer", stream="upstream", name="slices",
                         attributes={"average_size": 7, "size_variation": 3, "delay": 100})
        assert sorted(second.toxics()) == ["bandwidth_downstream", "latency_downstream", "slices"]
        with Client((host, int(port))) as client:  # sliced on the way, still one frame
            answer = client.ask(request("0200", 1, pan=PAN, amount=1200))
        second.destroy_toxic("slices")
        assert sorted(second.toxics()) == ["bandwidth_downstream", "latency_downstream"]
        with second.down(), pytest.raises(ConnectionRefusedError):
            Client((host, int(port)))  # disabled: nothing listens
        second.add_toxic(type="limit_data", stream="downstream", name="cut",
                         attributes={"bytes": 10})
        with Client((host, int(port))) as client, pytest.raises(ConnectionError):
            client.ask(request("0200", 2, pan=PAN, amount=1300))
        assert server.reset()
        assert second.toxics() == {}
        summary = running.stop()
        bank_side = stop_acquirer(bank)
    assert answer["39"] == "00"
    assert answer["11"] == "000001"
    # the second sale was posted and its answer cut short by limit_data
    assert [p["amount"] for p in bank_side.postings] == ["12.00", "13.00"]
    acted = {f["name"]: f["acted"] for f in summary["faults"]}
    assert acted == {}  # reset removed every toxic: the summary lists those in force
    assert frames(running.trace())[:2] == [("to_bank", "0200", ["slices"]),
                                          ("to_terminal", "0210",
                                           ["latency_downstream", "bandwidth_downstream"])]
    kinds = [e["type"] for e in running.trace() if e["event"] == "proxy.toxic"]
    assert kinds == ["limit_data"]


def read_until_closed(sock: socket.socket) -> None:
    """Read until the peer closes; bounded (50 reads of at most 0.2 s each)."""
    sock.settimeout(0.2)
    for _ in range(50):
        try:
            if sock.recv(1) == b"":
                return
        except TimeoutError:
            continue


def test_reset_peer_and_timeout_toxics_close_the_connection(tmp_path, toxiproxy_at):
    with acquirer() as bank, proxy(bank.address, tmp_path) as running:
        main = toxiproxy_at(running.api).get_proxy("posemu")
        main.add_toxic(type="reset_peer", stream="downstream", attributes={"timeout": 50})
        with Client(running.listen) as client, pytest.raises(ConnectionResetError):
            read_until_closed(client.sock)
        main.destroy_toxic("reset_peer_downstream")
        main.add_toxic(type="timeout", stream="upstream", attributes={"timeout": 50})
        with Client(running.listen) as client:
            client.send_raw(b"\x00\x04" + b"0800")
            assert client.closed_by_peer()
        running.stop()
        bank_side = stop_acquirer(bank)
    assert bank_side.postings == []
    cut = [(e["type"]) for e in running.trace() if e["event"] == "proxy.toxic"]
    assert cut[0] == "reset_peer"
    assert "timeout" in cut
    assert frames(running.trace()) == [("to_bank", "0800", ["timeout_upstream"])]

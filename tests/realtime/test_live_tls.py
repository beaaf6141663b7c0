"""TLS and mutual TLS on the live acquirer, with certificates made here by the openssl CLI."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest

from emulator.live.acquirer import LiveAcquirer, Running
from emulator.live.client import run_remote
from emulator.live.command import tls_server_context
from emulator.scenario.load import scenario_from_dict
from tests.realtime.live_client import Client, request

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl CLI")

CARDS = [{"id": "alice", "pan": "4111111111111111", "balance": "100.00"}]
BANK = {"format": 1, "name": "tls bank", "cards": CARDS,
        "bank": {"processing_s": 0.0, "verify_mac": False}}


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)


def _issue(d: Path, name: str, ext: str) -> None:
    """A key and a certificate for ``name`` signed by the test CA in ``d``."""
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", d / f"{name}.key", "-out", d / f"{name}.csr", "-subj", f"/CN={name}")
    (d / f"{name}.ext").write_text(ext)
    _openssl("x509", "-req", "-in", d / f"{name}.csr", "-CA", d / "ca.pem", "-CAkey",
             d / "ca.key", "-CAcreateserial", "-out", d / f"{name}.pem", "-days", "1",
             "-extfile", d / f"{name}.ext")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", d / "ca.key", "-out", d / "ca.pem", "-days", "1",
             "-subj", "/CN=posemu test CA")
    _issue(d, "server", "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _issue(d, "client", "extendedKeyUsage=clientAuth\n")
    return d


def serving(certs: Path, mutual: bool, data: dict[str, Any] = BANK) -> Running:
    tls = tls_server_context(certs / "server.pem", certs / "server.key",
                             certs / "ca.pem" if mutual else None)
    return Running(LiveAcquirer(scenario_from_dict(data), tls=tls))


def client_context(certs: Path, with_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certs / "ca.pem")
    if with_cert:
        context.load_cert_chain(certs / "client.pem", certs / "client.key")
    return context


def test_a_sale_over_tls(certs: Path):
    with serving(certs, mutual=False) as run, Client(
        run.address, tls=client_context(certs, False),
    ) as client:
        answer = client.ask(request("0800", 1, **{"70": "301"}))
    assert answer["39"] == "00"


def test_mutual_tls_refuses_a_client_without_its_certificate(certs: Path):
    with serving(certs, mutual=True) as run:
        with pytest.raises((ssl.SSLError, ConnectionError)), Client(
            run.address, tls=client_context(certs, False),
        ) as client:
            client.ask(request("0800", 2, **{"70": "301"}))  # TLS 1.3: refused here
        with Client(run.address, tls=client_context(certs, True)) as client:
            assert client.ask(request("0800", 3, **{"70": "301"}))["39"] == "00"


def test_posemus_terminal_over_mutual_tls(certs: Path):
    terminal = {**BANK, "bank": {"processing_s": 0.0}, "terminal": {"profile": "robust"},
                "steps": [{"id": "s1", "do": "sale", "card": "alice", "amount": "20.00"}]}
    with serving(certs, mutual=True, data={**BANK, "bank": {"processing_s": 0.0}}) as run:
        host, port = run.address
        url = (f"tcp://{host}:{port}?tls=1&ca={certs / 'ca.pem'}&cert={certs / 'client.pem'}"
               f"&key={certs / 'client.key'}")
        seen = run_remote(scenario_from_dict(terminal), url, speed=50)
        bank = run.stop()
    assert seen.steps[0].end_state == "approved"
    assert bank.balances_minor["alice"] == 8000
    assert bank.anomalies == []

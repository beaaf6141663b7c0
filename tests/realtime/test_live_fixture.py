"""The ``posemu_acquirer`` pytest fixture, as a POS app's own test suite would use it."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

APP_TESTS = '''
import socket

import iso8583
from iso8583.specs import default_ascii

BANK = {
    "format": 1, "name": "app bank",
    "bank": {"processing_s": 0, "verify_mac": False, "in_doubt_after_s": 0.1},
    "cards": [{"id": "alice", "pan": "4111111111111111", "balance": "100.00"}],
}
SALE = {"t": "0200", "2": "4111111111111111", "3": "000000", "4": "000000001000",
        "7": "1122090000", "11": "000001", "41": "TERM0001", "42": "MERCHANT0000001"}


def pay(address):
    raw, _ = iso8583.encode(dict(SALE), default_ascii)
    with socket.create_connection(address, timeout=0.3) as sock:
        sock.sendall(len(raw).to_bytes(2, "big") + bytes(raw))
        return sock.recv(2)


def test_my_app_pays(posemu_acquirer):
    acquirer = posemu_acquirer(BANK)
    assert pay(acquirer.address)
    result = acquirer.stop()
    assert result.anomalies == []
    assert result.balances_minor["alice"] == 9000


def test_my_app_loses_an_answer(posemu_acquirer):
    late = {"fault": "bank.timeout", "on": "bank.request_received"}
    acquirer = posemu_acquirer({**BANK, "faults": [late]})
    try:
        pay(acquirer.address)
    except TimeoutError:
        pass  # the app gives up and never reverses: the acquirer fails the test after it
'''


def test_the_fixture_serves_and_fails_a_test_with_an_anomaly(pytester: pytest.Pytester):
    pytester.makepyfile(test_app=APP_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*posemu acquirer: anomalies: expected [], found ['in_doubt']*"])

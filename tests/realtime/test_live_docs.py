"""docs/live.md's five-minute walkthrough, run as written: its scenario, its client, its report."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.support import DOCS, POSEMU

TIMEOUT_S = 20
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def test_the_walkthrough_runs_as_documented(tmp_path: Path):
    blocks = FENCE.findall((DOCS / "live.md").read_text(encoding="utf-8"))
    scenario = next(body for kind, body in blocks if kind == "toml")
    client = next(body for kind, body in blocks if kind == "python" and "sys.argv" in body)
    shown = next(body for kind, body in blocks if kind == "text" and "ANOMALY" in body)
    (tmp_path / "bank.toml").write_text(scenario)
    (tmp_path / "client.py").write_text(client)
    with subprocess.Popen([POSEMU, "acquirer", "bank.toml", "--listen", "127.0.0.1:0",
                           "--trace", "live.jsonl"], cwd=tmp_path, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as acquirer:
        try:
            assert acquirer.stdout is not None
            listen = acquirer.stdout.readline().split()
            assert listen[0] == "LISTEN"
            said = subprocess.run([sys.executable, "client.py", listen[1]], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=TIMEOUT_S, check=True)
            acquirer.send_signal(signal.SIGINT)
            out, err = acquirer.communicate(timeout=TIMEOUT_S)
        finally:
            acquirer.kill()
    assert said.stdout == "000001 no answer\n000002 answered 00\n"
    assert acquirer.returncode == 1, err
    # the report as shown, but for the port, the time served and the number of events
    variable = re.compile(r"127\.0\.0\.1:\d+ for [\d.]+ s, \d+ events")
    assert variable.sub("...", out.strip()) == variable.sub("...", shown.strip())
    assert (tmp_path / "live.jsonl").read_text().count('"event":"posted"') == 2

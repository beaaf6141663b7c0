"""The docs/cli.md examples that work in /tmp (replay, new), run in bash as written.

The other examples run in-process (tests/frontends/test_cli_report.py); these need a
shell (``sed``, ``gzip``, ``<(...)``, ``> /dev/null``) and files that persist from one
block to the next, so they run one after the other in a fresh directory standing in
for /tmp.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.support import POSEMU, ROOT

CLI_MD = ROOT / "docs" / "cli.md"
_CONSOLE = re.compile(r"^```console\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def tmp_examples() -> list[tuple[str, list[str]]]:
    """Each ``$ command`` of a console block using /tmp, with the lines shown after it."""
    found: list[tuple[str, list[str]]] = []
    for block in _CONSOLE.findall(CLI_MD.read_text(encoding="utf-8")):
        if "/tmp/" in block:
            for chunk in block.split("\n$ "):
                command, *shown = chunk.removeprefix("$ ").rstrip("\n").split("\n")
                found.append((command, shown))
    return found


def test_tmp_examples_cover_replay_and_new() -> None:
    commands = [c for c, _ in tmp_examples()]
    assert any(c.startswith("sed -i ") for c in commands)
    assert any(c.startswith(".venv/bin/posemu new ") for c in commands)
    assert sum(c.startswith(".venv/bin/posemu replay ") for c in commands) == 3


def test_tmp_examples_print_what_the_doc_shows(tmp_path: Path) -> None:
    here = f"{tmp_path}/"
    for command, shown in tmp_examples():
        line = command.replace("/tmp/", here).replace(".venv/bin/posemu", str(POSEMU))
        proc = subprocess.run(["bash", "-c", line], cwd=ROOT, capture_output=True, text=True,
                              check=False, timeout=120)
        printed = (proc.stdout + proc.stderr).replace(here, "/tmp/").splitlines()
        assert printed == shown, command

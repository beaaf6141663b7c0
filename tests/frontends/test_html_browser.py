"""The HTML report in a real browser: headless Chromium (Debian's ``chromium`` package,
which ``make test`` installs when it runs as root) opens the report of a seed story and
of a clean run. The DOM it builds is checked (lanes, arrows, anomaly pins, receipts'
text, the event shown for a link to it) and a screenshot must not be blank. Three browser
runs in all: each starts Chromium afresh, which takes seconds.

Skipped, saying why, where Chromium is missing. ``POSEMU_CHROMIUM`` names another binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from emulator import load_scenario, run_scenario
from tests.support import JAM, LIBRARY, POSEMU

CLEAN = LIBRARY / "sale_approved.toml"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars")
BROWSER_TIMEOUT_S = 90


def _binary() -> str | None:
    named = os.environ.get("POSEMU_CHROMIUM")
    return named or shutil.which("chromium") or shutil.which("chromium-browser")


pytestmark = pytest.mark.skipif(
    _binary() is None,
    reason="headless Chromium not found: install Debian's chromium package "
           "(make test does, as root) or set POSEMU_CHROMIUM")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run Chromium once with a fresh profile; its network is never used (file:// only)."""
    binary = _binary()
    assert binary is not None
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    proc = subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
        text=True, check=False, timeout=BROWSER_TIMEOUT_S, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


class Dom(HTMLParser):
    """The elements of a page: (tag, attributes, text inside) each, text of nested ones
    included."""

    VOID = frozenset(("meta", "img", "br", "input", "hr", "link", "circle", "line", "rect",
                      "path"))

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str], list[str]]] = []
        self._open: list[int] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}, []))
        if tag not in self.VOID:
            self._open.append(len(self.elements) - 1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}, []))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self.elements[self._open.pop()][0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for i in self._open:
            self.elements[i][2].append(data)

    def having(self, css: str) -> list[tuple[str, dict[str, str], str]]:
        """Elements whose class list holds every class in ``css`` (space-separated)."""
        wanted = set(css.split())
        return [(tag, attrs, "".join(text)) for tag, attrs, text in self.elements
                if wanted <= set(attrs.get("class", "").split())]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    proc = subprocess.run([str(POSEMU), "run", str(JAM), str(CLEAN), "--json", "--html",
                           str(out)], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return out


def dom(tmp_path: Path, page: Path, fragment: str = "") -> Dom:
    proc = chromium(tmp_path, "--dump-dom", page.as_uri() + fragment)
    assert "</html>" in proc.stdout
    return Dom(proc.stdout)


def test_seed_story_report_in_the_browser(report: Path, tmp_path: Path) -> None:
    events = run_scenario(load_scenario(JAM)).trace.events
    sent = next(i for i, e in enumerate(events) if e.name == "terminal.request_sent")
    page = dom(tmp_path, report / "sale_paper_jam.html", f"#ev-{sent}")  # a link to an event
    assert len([e for e in page.elements if e[0] == "svg"]) == 2
    lanes = [attrs["data-lane"] for _, attrs, _ in page.having("lane")]
    assert lanes == ["card", "terminal", "link", "bank", "printer"] * 2  # both time scales
    frames = [attrs["data-mti"] for _, attrs, _ in page.having("arrow frame")]
    assert frames == ["0200", "0210"] * 2
    assert len(page.having("arrow print")) == 2
    pins = [attrs["data-kind"] for _, attrs, _ in page.having("anomaly-pin")]
    assert pins == ["charged_no_receipt"] * 2
    faults = [attrs["data-fault"] for _, attrs, _ in page.having("fault-span")]
    assert faults == ["printer.paper_jam"] * 2
    [(_, _, verdict)] = [e for e in page.having("verdict") if e[0] == "p"]
    assert verdict == "verdict PASS"
    [(_, attrs, text)] = page.having("anomaly")
    assert attrs["data-kind"] == "charged_no_receipt"
    assert "on_receipt_failure" in text
    assert "confirm_print" in text
    [(_, attrs, text)] = page.having("receipt")
    assert "failed" in attrs["class"].split()
    assert "(nothing printed)" in text
    assert "CUT SHORT: jam" in text
    # the script shows the event the link names, whole
    [(_, _, shown)] = [(t, a, x) for t, a, x in page.having("event") if t == "pre"]
    assert '"event": "terminal.request_sent"' in shown
    assert '"stan": "000001"' in shown


def test_clean_run_report_in_the_browser(report: Path, tmp_path: Path) -> None:
    page = dom(tmp_path, report / "sale_approved.html")
    assert not page.having("anomaly-pin")
    assert not page.having("fault-span")
    [(_, _, verdict)] = [e for e in page.having("verdict") if e[0] == "p"]
    assert verdict == "verdict PASS"
    [(_, attrs, text)] = page.having("receipt")
    assert "done" in attrs["class"].split()
    assert "APPROVED" in text
    assert "**** **** **** " in text
    assert "CUT SHORT" not in text
    rows = [(attrs["class"].split(), text) for _, attrs, text in page.having("prow")]
    assert (["prow", "center", "t1"], "APPROVED") in rows
    assert len(page.having("cut")) == 1
    balances = {a["data-account"]: x for _, a, x in page.having("") if "data-account" in a}
    assert set(balances) == {"alice", "merchant"}


def test_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600",
             (report / "sale_paper_jam.html").as_uri())
    with Image.open(shot) as image:
        grey = image.convert("L")
        assert grey.size == (1200, 1600)
        assert ImageStat.Stat(grey).stddev[0] > 20  # not one flat colour
        assert len(grey.getcolors(256) or []) > 30  # text, lanes, shading

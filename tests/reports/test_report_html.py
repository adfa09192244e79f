"""reports.html rendered by a real headless Chromium with the network cut off: every chart drawn with data."""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from reports import build
from tests.reports.helpers import chromium_or_skip

OFFLINE = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=20000"]


class _Charts(HTMLParser):
    """Collects the chart divs' attributes, the body's attributes, drawn plotly SVGs and every src/href."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, dict[str, str]] = {}
        self.body: dict[str, str] = {}
        self.svgs = 0
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record what the tests look at."""
        a = {k: v or "" for k, v in attrs}
        self.links += [f"{tag} {k}={v}" for k, v in a.items() if k in ("src", "href")]
        if tag == "body":
            self.body = a
        if tag == "div" and a.get("id", "").startswith("fig-"):
            self.charts[a["id"]] = a
        if tag == "svg" and "main-svg" in a.get("class", ""):
            self.svgs += 1


def _chromium(exe: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [exe, *OFFLINE, f"--user-data-dir={tmp / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _dom(exe: str, html: Path, tmp: Path) -> _Charts:
    res = _chromium(exe, tmp, "--dump-dom", html.as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    parser = _Charts()
    parser.feed(res.stdout)
    return parser


def test_report_is_self_contained(synthetic: dict[str, Path], tmp_path: Path) -> None:
    """The HTML loads nothing from anywhere: no external scripts, stylesheets or images."""
    html = build(synthetic["confirmed"], tmp_path).html.read_text()
    tags = _Charts()
    tags.feed(html)
    assert tags.links == []
    assert len(re.findall(r"<script\b", html)) == 3 and "Plotly.newPlot" in html


def test_every_chart_renders_with_data_offline(any_run: Path, tmp_path: Path) -> None:
    """Chromium, with no network, draws every chart of the report and each one has plotted points."""
    exe = chromium_or_skip()
    paths = build(any_run, tmp_path / "out")
    dom = _dom(exe, paths.html, tmp_path)
    assert "data-charts-error" not in dom.body
    assert dom.charts and dom.body.get("data-charts-ready") == str(len(dom.charts))
    for cid, attrs in dom.charts.items():
        assert int(attrs.get("data-points", "0")) > 0, f"{cid} has no data"
    assert dom.svgs >= len(dom.charts)


def test_screenshot_of_compared_runs(synthetic: dict[str, Path], tmp_path: Path) -> None:
    """A report overlaying two runs renders, and Chromium writes a screenshot of it."""
    exe = chromium_or_skip()
    paths = build(synthetic["aborted"], tmp_path / "out", compare=[synthetic["refuted"]])
    html = paths.html.read_text()
    assert "Rollback problem" in html and "Compared runs" in html
    shot = tmp_path / "report.png"
    res = _chromium(exe, tmp_path, f"--screenshot={shot}", "--window-size=1400,3000", paths.html.as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    dom = _dom(exe, paths.html, tmp_path)
    assert dom.body.get("data-charts-ready") == str(len(dom.charts))
    assert all(int(a.get("data-traces", "0")) >= 2 for cid, a in dom.charts.items() if cid != "fig-0")

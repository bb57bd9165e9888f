"""`gitcanary audit --format html` on the demo repo: a page a browser opens, one chart per rollout.

The demo takes a while, so `tests/test_demo.py` calls `check_audit_report` on the repo its own
demo run leaves, instead of a second run here.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

from typer.testing import CliRunner

from gitcanary.commands.cli import app


class Page(HTMLParser):
    """What matters in the report: charts per rollout section, and anything that would load from elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[int] = []  # <svg> count per rollout section
        self.svgs = 0
        self.paths = 0
        self.scripts = 0
        self.external: list[str] = []
        self.titles: list[str] = []
        self._in_h3 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "section" and values.get("class") == "rollout":
            self.sections.append(0)
        if tag == "svg":
            self.svgs += 1
            if self.sections:
                self.sections[-1] += 1
        self.paths += tag == "path"
        self.scripts += tag == "script"
        if tag == "h3":
            self._in_h3 = True
        for name in ("src", "href"):
            if values.get(name):
                self.external.append(str(values[name]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "h3":
            self._in_h3 = False

    def handle_data(self, data: str) -> None:
        if self._in_h3:
            self.titles.append(data)


def check_audit_report(directory: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "--repo", str(directory), "--format", "html"])
    assert result.exit_code == 0, result.stderr
    page = Page()
    page.feed(result.stdout)
    page.close()
    details = runner.invoke(app, ["audit", "--repo", str(directory), "-o", "json"])
    count = len(json.loads(details.stdout)["details"])
    # 6.1.0 -> 6.1.1 promoted, 6.1.1 -> 6.1.2 rolled back, a config-only 6.1.1 release rolled back
    assert count == 3
    assert page.sections == [1] * count and page.svgs == count
    assert page.scripts == 0 and page.external == []  # self-contained: no JavaScript, no CDN
    assert page.paths >= count  # each chart draws at least the weight line
    text = result.stdout
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "request-success-rate" in text and "threshold 99" in text
    assert any("rolled back" in title for title in page.titles), page.titles
    assert any("promoted" in title for title in page.titles), page.titles

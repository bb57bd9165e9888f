"""The gate's evidence table fits GitHub's 780 px PR column, measured by rendering, not counted.

Each generated gate body is rendered to HTML by markdown-it-py (CommonMark plus GFM tables, as
GitHub renders a PR description), styled with GitHub's Markdown CSS for tables at a comment's
14 px in a 780 px column (tests/data/github/markdown-table.css, see SOURCES), and loaded into
headless Chromium. No cell may wrap: each row must be exactly as high as the same row with every
cell's text replaced by one letter per line it is meant to have (a cell that stacks two values
with `<br>`, e.g. the canary's and the primary's, is meant to have two). The table must not
scroll sideways either (GitHub's tables scroll instead of overflowing the column).

Chromium has none of GitHub's fonts (-apple-system, Segoe UI, Helvetica); it falls back to the
machine's sans-serif (DejaVu Sans here, wider than all of them), so a pass is on the safe side.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from gitcanary.forge import gate
from gitcanary.git.checks import Check

CSS = (Path(__file__).parent / "data" / "github" / "markdown-table.css").read_text()
MD = MarkdownIt("commonmark").enable("table")
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
START = datetime(2026, 11, 1, 11, 3, tzinfo=UTC)
# Row heights in one page: every table's rows, and a one-word row of each table for the line.
MEASURE = """
return Array.from(document.querySelectorAll('table')).map(t => ({
  scroll: t.scrollWidth, client: t.clientWidth,
  rows: Array.from(t.querySelectorAll('tr')).map(r => ({
    header: r.parentElement.tagName === 'THEAD',
    height: r.getBoundingClientRect().height,
    text: r.innerText})),
  line: (() => {
    const probe = t.cloneNode(true); probe.style.visibility = 'hidden';
    probe.querySelectorAll('th, td').forEach(c => {
      c.innerHTML = Array(c.querySelectorAll('br').length + 1).fill('x').join('<br>');
    });
    t.parentElement.appendChild(probe);
    const h = Array.from(probe.querySelectorAll('tr')).map(r => r.getBoundingClientRect().height);
    probe.remove();
    return h;
  })()
}));
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    assert CHROMIUM and DRIVER, "scripts/test.sh installs Debian's chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1000,2000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def measure(browser: webdriver.Chrome, body: str, tmp: Path) -> list[dict[str, object]]:
    page = tmp / "gate.html"
    page.write_text(
        f'<!doctype html><html><head><meta charset="utf-8"><style>{CSS}</style></head>'
        f'<body><div class="markdown-body">{MD.render(body)}</div></body></html>'
    )
    browser.get(page.as_uri())
    return browser.execute_script(MEASURE)  # type: ignore[no-any-return]


BUILTINS = ("request-success-rate", "request-duration")
names = st.sampled_from(
    [*BUILTINS, "error-rate", "p99-latency", "queue-depth", "cpu-usage", "5xx-ratio", "saturation"]
)
values = st.floats(min_value=0, max_value=100_000, allow_nan=False, allow_infinity=False)


@st.composite
def views(draw: st.DrawFn) -> gate.View:
    chosen = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    metrics = [
        gate.Metric(
            name,
            draw(st.sampled_from(["1m", "2m", "30s", "5m"])),
            *(
                (99.0, None)
                if name == "request-success-rate"
                else (None, draw(st.sampled_from([1.0, 500.0, 0.05])))
            ),
        )
        for name in chosen
    ]
    rows = []
    weight = 0
    for i in range(draw(st.integers(1, 12))):
        action = draw(st.sampled_from(["advance", "advance", "halt", "promote"]))
        checks = tuple(Check(m.name, draw(values), m.min, m.max, draw(st.booleans())) for m in metrics)
        before, weight = weight, min(100, weight + 10) if action == "advance" else weight
        requests = draw(
            st.sampled_from(
                ["", "n/a", f"canary={draw(st.integers(0, 10**7))} primary={draw(st.integers(0, 10**8))}"]
            )
        )
        rows.append(
            gate.Row(
                f"{i:02x}" * 20,
                START + timedelta(minutes=i * draw(st.integers(1, 90))),
                action,
                str(weight),
                str(before),
                checks,
                requests=requests,
            )
        )
    return gate.View(
        key="prod/backend",
        primary="6.1.0",
        canary="6.1.1",
        rollout_id="6.1.0..6.1.1/2026-11-01T11:00:00Z",
        state=draw(st.sampled_from([gate.State.WAITING, gate.State.HALTED, gate.State.ANALYSING])),
        rows=rows,
        metrics=metrics,
        web_url="https://github.com/acme/config",
        now=rows[-1].time,
    )


@settings(max_examples=25, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(views())
def test_no_row_of_the_evidence_table_wraps_in_githubs_780px_column(
    browser: webdriver.Chrome, tmp_path_factory: pytest.TempPathFactory, view: gate.View
) -> None:
    body = gate.body(view)
    tables = measure(browser, body, tmp_path_factory.mktemp("render"))
    assert tables, body
    for table in tables:
        assert table["scroll"] <= table["client"] + 1, ("scrolls sideways", table)
        line = table["line"]
        for row, one in zip(table["rows"], line, strict=True):
            assert row["height"] <= one + 0.5, ("a row wraps", row, one)

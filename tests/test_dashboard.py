"""The live dashboard in a real headless Chromium (Debian's `chromium`, driven by Selenium through
its own `chromedriver`): it shows the demo repository's canaries and charts, updates in place when a
commit lands, logs no console errors, paints first in under a second, and stays correct on a
repository of 1,000 canaries. The static page works without JavaScript."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import ConfigRepo, git
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from gitcanary.service.dashboard import take_snapshot

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
STALE = (NoSuchElementException, StaleElementReferenceException)


@contextmanager
def _serve(repo: Path, tmp: Path) -> Iterator[str]:
    log = (tmp / "dashboard.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitcanary", "dashboard", "--repo", str(repo), "--listen", "127.0.0.1:0"],
        stdout=log, stderr=subprocess.STDOUT, env=ENV,
    )
    try:
        for _ in range(1800):  # it reads the repository before it serves: 1,000 canaries take a while
            match = re.search(r"on (http://\S+)/ ", (tmp / "dashboard.log").read_text())
            if match:
                break
            assert proc.poll() is None, (tmp / "dashboard.log").read_text()
            time.sleep(0.1)
        else:
            raise AssertionError("the dashboard did not start")
        yield match[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's demo, run once (faster analysis intervals): a promoted and a rolled-back rollout."""
    base = tmp_path_factory.mktemp("demo")
    result = subprocess.run(
        [sys.executable, "-m", "gitcanary", "demo", "--dir", str(base / "demo"), "--speed", "0.3"],
        capture_output=True, text=True, env=ENV, timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return base / "demo"


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    assert CHROMIUM and DRIVER, "scripts/test.sh installs Debian's chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--window-size=1200,1600"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _errors(driver: webdriver.Chrome) -> list[dict[str, object]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_the_page_shows_the_demo_and_updates_when_a_commit_lands(
    demo: Path, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    remote = Path(f"{demo}.remote.git")
    # What the page must show, read from Git without gitcanary: the status file at the remote head.
    status = yaml.safe_load(git("show", "main:apps/backend-gitcanary/gitcanary-status.yaml", cwd=remote))
    expected = status["status"]
    with _serve(remote, tmp_path) as url:
        browser.get(url + "/")
        card = browser.find_element(By.ID, "prod/backend")
        assert expected["phase"] in card.find_element(By.CLASS_NAME, "phase").text
        assert f"weight {expected.get('canaryWeight', 0)}%" in card.text
        assert "gitcanary retry prod/backend" in card.text  # a Failed rollout can be retried
        chart = card.find_element(By.CSS_SELECTOR, "img.chart")
        loaded = "return arguments[0].complete"
        WebDriverWait(browser, 10, ignored_exceptions=STALE).until(
            lambda d, img=chart: d.execute_script(loaded, img)
        )
        assert browser.execute_script("return arguments[0].naturalWidth", chart) > 0, "the chart SVG loaded"
        paint = browser.execute_script(
            "return performance.getEntriesByType('paint').map(e => [e.name, e.startTime])"
        )
        first = dict(paint).get("first-contentful-paint")
        assert first is not None and first < 1000, paint
        print(f"first contentful paint: {first:.0f} ms")
        screenshots = Path(os.environ.get("GITCANARY_SCREENSHOT_DIR", tmp_path))
        screenshots.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(screenshots / "dashboard.png"))

        # A commit lands (a person pauses the canary); the page must change in place, without a reload.
        browser.execute_script("window.__sameDocument = true")
        before = browser.find_element(By.TAG_NAME, "main").get_attribute("data-head")
        paused = subprocess.run(
            [sys.executable, "-m", "gitcanary", "pause", "prod/backend", "--repo", str(demo)],
            capture_output=True, text=True, env=ENV, timeout=60,
        )
        assert paused.returncode == 0, paused.stderr
        head = git("rev-parse", "main", cwd=remote).strip()
        assert head != before
        # The page swaps <main> (outerHTML) when it sees the new head: an element found before the swap
        # goes stale. Each read is one script, atomic against the page's own script, and the waits
        # also ride out a stale element rather than fail on one.
        shown_head = "var m = document.querySelector('main'); return m ? m.dataset.head : null"
        WebDriverWait(browser, 30, ignored_exceptions=STALE).until(
            lambda d: d.execute_script(shown_head) == head
        )
        card_text = "var c = document.getElementById('prod/backend'); return c ? c.innerText : ''"
        WebDriverWait(browser, 10, ignored_exceptions=STALE).until(
            lambda d: "(paused)" in d.execute_script(card_text)
        )
        text = browser.execute_script(card_text)
        assert "(paused)" in text and "gitcanary resume prod/backend" in text
        assert browser.execute_script("return window.__sameDocument === true"), "updated without a reload"
        assert _errors(browser) == []


def test_the_static_page_works_without_javascript(demo: Path, tmp_path: Path) -> None:
    with _serve(demo, tmp_path) as url:
        html = httpx.get(url + "/", timeout=10).text
        assert "<noscript><meta http-equiv=refresh" in html
        assert "id='prod/backend'" in html and "/dashboard/chart.svg?canary=prod/backend" in html
        svg = httpx.get(url + "/dashboard/chart.svg", params={"canary": "prod/backend"}, timeout=10)
        assert svg.status_code == 200 and svg.text.lstrip().startswith("<svg")
        state = httpx.get(url + "/dashboard/state", timeout=10).json()
        assert state["head"] == git("rev-parse", "HEAD", cwd=demo).strip()
        missing = httpx.get(url + "/dashboard/chart.svg", params={"canary": "x/y"}, timeout=10)
        assert missing.status_code == 404


@pytest.mark.timeout(900)
def test_a_thousand_canaries(tmp_path: Path) -> None:
    """Every canary listed with the phase its status file holds; the page is read once per head."""
    repo = tmp_path / "repo"
    canary = yaml.safe_load((ROOT / "examples/istio/apps/backend/canary.yaml").read_text())
    phases = ["Initialized", "Progressing", "Succeeded", "Failed", "WaitingPromotion"]
    now = datetime(2026, 1, 1, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    expected = {}
    for i in range(1000):
        name, namespace = f"app{i:04d}", f"team{i % 7}"
        doc = json.loads(json.dumps(canary))
        doc["metadata"] = {"name": name, "namespace": namespace}
        doc["spec"]["targetRef"]["name"] = name
        app = repo / "apps" / name
        app.mkdir(parents=True)
        (app / "canary.yaml").write_text(yaml.safe_dump(doc))
        phase = phases[i % len(phases)]
        generated = repo / "apps" / f"{name}-gitcanary"
        generated.mkdir()
        (generated / "gitcanary-status.yaml").write_text(yaml.safe_dump({
            "apiVersion": "gitcanary.io/v1alpha1", "kind": "CanaryStatus",
            "metadata": {"name": name, "namespace": namespace},
            "status": {"phase": phase, "canaryWeight": i % 50, "failedChecks": 0,
                       "lastAppliedSpec": "a", "lastPromotedSpec": "a", "lastTransitionTime": now},
        }))
        expected[f"{namespace}/{name}"] = (phase, i % 50)
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "seed", cwd=repo)
    started = time.monotonic()
    snap = take_snapshot(repo)
    took = time.monotonic() - started
    assert {card.key: (card.phase, card.weight) for card in snap.cards} == expected
    assert snap.problems == []
    # A commit moves one canary and removes another: the next head re-reads those files only.
    status = repo / "apps/app0001-gitcanary/gitcanary-status.yaml"
    status.write_text(status.read_text().replace("phase: Progressing", "phase: Succeeded"))
    (repo / "apps/app0002/canary.yaml").unlink()
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "step", cwd=repo)
    expected["team1/app0001"] = ("Succeeded", 1)
    del expected["team2/app0002"]
    started = time.monotonic()
    again = take_snapshot(repo, snap)
    incremental = time.monotonic() - started
    assert {card.key: (card.phase, card.weight) for card in again.cards} == expected
    assert incremental < took / 4, (incremental, took)
    with _serve(repo, tmp_path) as url:
        html = httpx.get(url + "/", timeout=120).text
        assert html.count("<section class=card") == 999
        state = httpx.get(url + "/dashboard/state", timeout=60).json()
        assert len(state["canaries"]) == 999
    print(f"1000 canaries read in {took:.2f}s, the next head in {incremental:.2f}s")


def test_run_listen_serves_the_page_at_the_root(config_repo: ConfigRepo, tmp_path: Path) -> None:
    from gitcanary.commands.cli import _serve
    from gitcanary.service.instrumented import MonitoredReconciler
    from gitcanary.service.settings import Settings

    settings = Settings(repo=str(config_repo.remote), workdir=tmp_path / "work", settle=0, cluster="off")
    reconciler = MonitoredReconciler(settings)
    server = _serve("127.0.0.1:0", reconciler)
    try:
        reconciler.tick()  # initializes prod/backend: a commit in the reconciler's clone
        status = yaml.safe_load(
            git("show", "main:apps/backend-gitcanary/gitcanary-status.yaml", cwd=config_repo.remote)
        )["status"]
        page = httpx.get(server.url + "/", timeout=30)
        assert page.status_code == 200 and "id='prod/backend'" in page.text
        assert f">{status['phase']}</span>" in page.text
        state = httpx.get(server.url + "/dashboard/state", timeout=30).json()
        assert state["head"] == git("rev-parse", "main", cwd=config_repo.remote).strip()
        alive = httpx.get(server.url + "/healthz", timeout=5)
        assert alive.status_code == 200 and alive.text.startswith("ok"), alive.text
    finally:
        server.stop()


def test_commits_and_prs_link_to_github(demo: Path) -> None:
    from gitcanary.service.dashboard import Dashboard, github_commit_url, main

    assert github_commit_url("https://api.github.com", "acme/config") == (
        "https://github.com/acme/config/commit/{sha}"
    )
    assert github_commit_url("https://ghe.acme.io/api/v3", "acme/config") == (
        "https://ghe.acme.io/acme/config/commit/{sha}"
    )
    board = Dashboard(lambda: demo, str(demo), commit_url=github_commit_url("https://api.github.com", "a/c"))
    html = main(board.snapshot(), board)
    head = git("rev-parse", "HEAD", cwd=demo).strip()
    assert f'href="https://github.com/a/c/commit/{head}"' in html
    assert board.pr_link("12") == '<a href="https://github.com/a/c/pull/12">#12</a>'
    assert Dashboard(lambda: demo, str(demo)).pr_link("12") == "#12"  # nowhere to link


def test_no_credential_of_the_repository_url_reaches_the_page(demo: Path) -> None:
    from gitcanary.service.dashboard import Dashboard, page

    board = Dashboard(lambda: demo, "https://bot:ghp_s3cr3t@github.com/acme/config.git")
    html = page(board.snapshot(), board)
    assert "ghp_s3cr3t" not in html and "https://***@github.com/acme/config.git" in html


def test_checks_against_the_primary_show_its_value_and_p(demo: Path) -> None:
    """Where the compare judge measured the primary, the page shows it beside the canary's value."""
    from gitcanary.git.checks import Check
    from gitcanary.service.dashboard import Card, Dashboard, _card_html

    compared = [
        Check(
            "request-duration", 480.0, max=500.0, primary=310.0, p_value=0.004, effect="x1.55", verdict="fail"
        ),
        Check("error-rate", None, max=1.0, verdict="wait"),
    ]

    class Measured(Card):
        checks: list[Check] = []

        @property
        def last_checks(self) -> list[Check]:
            return self.checks

    board = Dashboard(lambda: demo, str(demo))
    card = Measured(
        key="prod/backend",
        source="apps/backend/canary.yaml",
        phase="Progressing",
        weight=20,
        thresholds={"request-duration": (None, 500.0), "error-rate": (None, 1.0)},
    )
    card.checks = compared
    html = _card_html(card, board)
    assert "<th>primary</th>" in html
    assert "<td>request-duration</td><td>480</td><td>310 (p=0.004)</td><td>&lt;= 500</td>" in html
    waiting = "<td>error-rate</td><td>no data</td><td>-</td><td>&lt;= 1</td><td><span class=muted>wait</span>"
    assert waiting in html
    card.checks = [Check("request-duration", 480.0, max=500.0, ok=True)]  # the threshold judge's
    assert "<th>primary</th>" not in _card_html(card, board)


def test_a_persons_commit_with_gitcanary_trailers_is_never_shown_as_a_step(
    demo: Path, tmp_path: Path
) -> None:
    """Forged steps of every kind (any author but the bot, any action, weight and phase, naming the
    latest rollout) stay off the page: only commits `history --verify` accepts are steps, as the
    oracle `git log --author=<bot>` says; each forged one is listed under problems instead."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    repo = tmp_path / "clone"
    git("clone", "-q", str(demo), str(repo), cwd=tmp_path)
    bot = "gitcanary@users.noreply.local"
    snap = take_snapshot(repo)
    card = next(c for c in snap.cards if c.key == "prod/backend")
    assert card.rollout is not None
    rollout = card.rollout.id

    def genuine() -> set[str]:
        out = git("log", f"--author={bot}", "--format=%H", "--grep=Gitcanary-Rollout: " + rollout, cwd=repo)
        return set(out.split())

    @settings(max_examples=6, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.sampled_from(["pat@example.com", "gitcanary@users.noreply.local.evil", "Gitcanary@evil"]),
        st.sampled_from(["promote", "advance", "rollback", "finalize", "succeed"]),
        st.integers(0, 100),
    )
    def forged(email: str, action: str, weight: int) -> None:
        nonlocal snap
        message = (
            f"gitcanary: {action} prod/backend\n\n"
            f"Gitcanary-Canary: prod/backend\nGitcanary-Action: {action}\n"
            f"Gitcanary-Weight: {weight}\nGitcanary-Phase: Succeeded\nGitcanary-Rollout: {rollout}\n"
        )
        person = ("-c", "user.name=Pat", "-c", f"user.email={email}")
        git(*person, "commit", "-q", "--allow-empty", "-m", message, cwd=repo)
        sha = git("rev-parse", "HEAD", cwd=repo).strip()
        snap = take_snapshot(repo, snap)
        shown = next(c for c in snap.cards if c.key == "prod/backend").rollout
        assert shown is not None and shown.id == rollout
        assert {step.commit for step in shown.steps} <= genuine()
        assert sha not in {step.commit for step in shown.steps}
        assert any(sha[:12] in problem and "history --verify" in problem for problem in snap.problems)

    forged()

"""The dashboard's list view, filters, primary, earlier rollouts, pods and images.

Oracles are computed from the repository and the cluster as the test wrote them (status files read
with PyYAML, rollouts from `git log --author=<bot>`, pods as put into the kube emulator), never from
the dashboard's own output. The filter is checked in headless Chromium with JavaScript switched
off: the filters are query parameters the server applies, so the page needs no script for them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import git
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kube_emulator import DEPLOYMENTS, deployment, running_emulator
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import Select, WebDriverWait
from test_dashboard import CHROMIUM, DRIVER, ENV, STALE, _serve

from gitcanary.service.dashboard import Card, Dashboard, Filters, Snapshot, _workload_row, main, take_snapshot
from gitcanary.service.dashboard_cluster import Pod, Workload

ROOT = Path(__file__).resolve().parent.parent
CANARY = yaml.safe_load((ROOT / "examples/istio/apps/backend/canary.yaml").read_text())
PHASES = ["Initialized", "Progressing", "Succeeded", "Failed", "WaitingPromotion", "Promoting"]
NOW = datetime(2026, 1, 1, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
BOT = "gitcanary@users.noreply.local"
PODS = "v1/pods"


def _write_repo(repo: Path, canaries: list[tuple[str, str, str | None]]) -> None:
    """One Canary per (name, namespace, phase); a status file when the phase is not None."""
    for name, namespace, phase in canaries:
        doc = json.loads(json.dumps(CANARY))
        doc["metadata"] = {"name": name, "namespace": namespace}
        doc["spec"]["targetRef"]["name"] = name
        app = repo / "apps" / namespace / name
        app.mkdir(parents=True)
        (app / "canary.yaml").write_text(yaml.safe_dump(doc))
        if phase is None:
            continue
        generated = repo / "apps" / namespace / f"{name}-gitcanary"
        generated.mkdir()
        (generated / "gitcanary-status.yaml").write_text(yaml.safe_dump({
            "apiVersion": "gitcanary.io/v1alpha1", "kind": "CanaryStatus",
            "metadata": {"name": name, "namespace": namespace},
            "status": {"phase": phase, "canaryWeight": 10, "failedChecks": 0,
                       "lastAppliedSpec": "a", "lastPromotedSpec": "a", "lastTransitionTime": NOW},
        }))
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "seed", cwd=repo)


def _oracle(repo: Path) -> dict[str, str]:
    """Each canary's phase as the repository holds it, read with PyYAML: Uninitialized without a
    status file."""
    phases = {}
    for path in sorted(repo.glob("apps/*/*/canary.yaml")):
        meta = yaml.safe_load(path.read_text())["metadata"]
        status = path.parent.parent / f"{path.parent.name}-gitcanary" / "gitcanary-status.yaml"
        phase = yaml.safe_load(status.read_text())["status"]["phase"] if status.exists() else "Uninitialized"
        phases[f"{meta['namespace']}/{meta['name']}"] = phase
    return phases


class _Page(HTMLParser):
    """What the browser would see: the list's rows, the cards, every tag and attribute, the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[dict[str, str]] = []
        self.cards: list[str] = []
        self.counts: dict[str, str] = {}
        self.tags: Counter[str] = Counter()
        self.attributes: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        found = {k: v or "" for k, v in attrs}
        self.attributes |= set(found)
        if tag == "tr" and found.get("class") == "row":
            self.rows.append(found)
        if tag == "section" and found.get("class") == "card":
            self.cards.append(found["id"])
        if tag == "p" and found.get("id") == "counts":
            self.counts = found

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Page:
    parsed = _Page()
    parsed.feed(html)
    parsed.close()
    return parsed


canary_sets = st.lists(
    st.tuples(
        st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True),
        st.sampled_from(["prod", "test", "team-a", "x"]),
        st.sampled_from([*PHASES, None]),
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda t: (t[0], t[1]),
)


@settings(max_examples=12, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(canary_sets, st.data())
def test_the_list_and_its_counts_match_the_repository_for_every_filter(
    tmp_path_factory: pytest.TempPathFactory, canaries: list[tuple[str, str, str | None]], data: st.DataObject
) -> None:
    """For any set of canaries and any namespace/phase filter, the list shows exactly the canaries
    the repository's status files say match, its counts are theirs, and a card follows each row."""
    repo = tmp_path_factory.mktemp("repo")
    _write_repo(repo, canaries)
    expected = _oracle(repo)
    snap = take_snapshot(repo)
    board = Dashboard(lambda: repo, str(repo))
    namespaces = sorted({key.split("/")[0] for key in expected})
    namespace = data.draw(st.sampled_from(["", *namespaces, "absent"]), label="namespace")
    phase = data.draw(st.sampled_from(["", *sorted(set(expected.values())), "Failed"]), label="phase")
    page = _parse(main(snap, board, Filters(namespace, phase)))
    wanted = {
        key: p
        for key, p in expected.items()
        if (not namespace or key.split("/")[0] == namespace) and (not phase or p == phase)
    }
    assert {row["data-key"]: row["data-phase"] for row in page.rows} == wanted
    assert page.cards == sorted(wanted)
    assert (page.counts["data-shown"], page.counts["data-total"]) == (str(len(wanted)), str(len(expected)))
    text = "".join(page.text)
    for p, n in Counter(wanted.values()).items():
        assert f"{p} {n}" in text


hostile = st.lists(
    st.sampled_from([*"<>&\"'/= abc", "<script>", "</td>", "<img src=x onerror=alert(1)>", "&amp;", "-->"]),
    min_size=1,
    max_size=12,
).map("".join)
ALLOWED_TAGS = {"main", "p", "b", "code", "form", "label", "select", "option", "button", "a", "table", "tr",
                "th", "td", "span", "section", "h2", "div", "br"}


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(hostile, hostile, hostile, hostile, hostile, hostile)
def test_every_name_the_page_shows_is_escaped(
    name: str, namespace: str, message: str, revisions: str, pod: str, image: str
) -> None:
    """Whatever a canary's key, message, revisions, pod names and images hold, the page has only its
    own tags and no event-handler attribute, and shows each of those strings as text."""
    namespace = namespace.replace("/", "|")  # a key is NAMESPACE/NAME: the namespace holds no slash
    key = f"{namespace}/{name}"
    card = Card(key, "apps/x/canary.yaml", "Progressing", message=message, revisions=revisions)
    snap = Snapshot(head="0" * 40, cards=[card], problems=[f"cannot load {name}"], took=0.0)
    board = Dashboard(lambda: Path("."), "repo")
    html = main(snap, board, Filters(namespace=namespace)) + "<table>" + _workload_row(
        "canary", Workload(name, (image,), 1, 1, (Pod(pod, "Running", True, (image,)),))
    ) + "</table>"
    page = _parse(html)
    assert set(page.tags) <= ALLOWED_TAGS, page.tags
    assert not {a for a in page.attributes if a.startswith("on")}
    assert "script" not in page.tags
    text = "".join(page.text)
    for shown in (name, namespace, message, revisions, pod, image):
        assert shown.strip() in text
    assert [row["data-key"] for row in page.rows] == [key]


def _chrome(script: bool) -> Iterator[webdriver.Chrome]:
    assert CHROMIUM and DRIVER
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1200,1600"):
        options.add_argument(flag)
    if not script:  # JavaScript off: the filter must work as a plain HTML form
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def no_script_browser() -> Iterator[webdriver.Chrome]:
    yield from _chrome(script=False)


@pytest.fixture
def script_browser() -> Iterator[webdriver.Chrome]:
    yield from _chrome(script=True)


def test_the_filter_hides_and_shows_rows_in_chromium_without_javascript(
    no_script_browser: webdriver.Chrome, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    canaries = [(f"app{i}", ["prod", "test", "team-a"][i % 3], [*PHASES, None][i % 7]) for i in range(14)]
    _write_repo(repo, canaries)
    expected = _oracle(repo)
    browser = no_script_browser
    with _serve(repo, tmp_path) as url:
        # No framework: one inline script (the live refresh), nothing loaded from elsewhere.
        html = httpx.get(url + "/", timeout=30).text
        assert html.count("<script") == 1 and "<script src" not in html and "<link rel=stylesheet" not in html
        browser.get(url + "/")
        # Scripting is off in the page: a <noscript> holds parsed elements only then.
        assert browser.execute_script("return document.querySelector('noscript meta') !== null")

        def shown() -> dict[str, str]:
            rows = browser.find_elements(By.CSS_SELECTOR, "#canaries tr.row")
            return {r.get_attribute("data-key"): r.find_element(By.CLASS_NAME, "phase").text for r in rows}

        def submit(button: str = "#filters button") -> None:
            old = browser.find_element(By.ID, "canaries")
            browser.find_element(By.CSS_SELECTOR, button).click()
            WebDriverWait(browser, 10).until(staleness_of(old))  # a new page, served with the filter

        assert shown() == expected
        assert browser.find_element(By.ID, "counts").text.startswith(f"{len(expected)} of {len(expected)}")
        Select(browser.find_element(By.ID, "filter-namespace")).select_by_value("test")
        submit()
        assert "namespace=test" in browser.current_url
        in_test = {k: v for k, v in expected.items() if k.startswith("test/")}
        assert shown() == in_test
        cards = browser.find_elements(By.CSS_SELECTOR, "section.card")
        assert sorted(c.get_attribute("id") for c in cards) == sorted(in_test)
        Select(browser.find_element(By.ID, "filter-phase")).select_by_value("Failed")
        submit()
        failed = {k: v for k, v in in_test.items() if v == "Failed"}
        assert shown() == failed and failed
        submit("#filters a")
        assert shown() == expected  # cleared: every row is back


SET_UP = {"initialize", "initialized", "update", "restore-status"}  # steps of no release


def _rollouts_of(repo: Path, canary: str) -> list[str]:
    """The releases the bot's commits name for `canary`, oldest first (the oracle: git log): rollout
    ids with at least one step that is neither a set-up step nor a person's request."""
    fields = ("Canary", "Rollout", "Action")
    form = "%x1e" + "%x1f".join(f"%(trailers:key=Gitcanary-{f},valueonly,separator=)" for f in fields)
    out = git("log", "--reverse", f"--author={BOT}", f"--format={form}", cwd=repo)
    ids: list[str] = []
    for record in out.split("\x1e")[1:]:
        who, rollout, action = (part.strip() for part in record.split("\x1f"))
        if who != canary or not rollout or action in SET_UP or action.startswith("manual-"):
            continue
        if rollout not in ids:
            ids.append(rollout)
    return ids


def test_earlier_rollouts_are_listed_and_each_chart_draws_the_primary(demo: Path) -> None:
    remote = Path(f"{demo}.remote.git")
    ids = _rollouts_of(remote, "prod/backend")
    assert len(ids) >= 2, ids  # the demo promotes one release, then rolls one back
    snap = take_snapshot(demo)
    board = Dashboard(lambda: demo, str(demo))
    html = main(snap, board)
    card = html[html.index("<section class=card id='prod/backend'>"):]
    card = card[: card.index("</section>")]
    earlier = re.findall(r"<tr class=rollout data-rollout='([^']+)'>", card)
    assert earlier == list(reversed(ids[:-1]))  # newest first, the latest drawn above them
    row = _parse(html).rows[0]
    assert row["data-key"] == "prod/backend"
    from gitcanary.service.http import HttpServer, Router

    router = Router()
    board.mount(router)
    server = HttpServer(router, "127.0.0.1:0").start()
    try:
        for rollout in [*ids, ""]:
            params = {"canary": "prod/backend", **({"rollout": rollout} if rollout else {})}
            svg = httpx.get(server.url + "/dashboard/chart.svg", params=params, timeout=10)
            assert svg.status_code == 200, rollout
            assert "<title>primary weight</title>" in svg.text  # the primary beside the canary
        missing = httpx.get(server.url + "/dashboard/chart.svg",
                            params={"canary": "prod/backend", "rollout": "nope"}, timeout=10)
        assert missing.status_code == 404
    finally:
        server.stop()


def _pod(name: str, app: str, image: str, ready: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "prod", "labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": image}]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": "app", "ready": ready, "restartCount": 0, "image": image, "imageID": ""},
        ]},
    }


def test_pods_and_images_of_the_canary_and_its_primary(demo: Path, tmp_path: Path) -> None:
    """With --cluster, each card shows the images and pods the cluster reports for the canary's
    Deployment and its primary; a pod the Deployment's selector does not match is not shown; the
    dashboard only reads (every request a GET)."""
    with running_emulator({PODS: "Pod"}) as cluster:
        primary = deployment("backend-primary")
        primary["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/backend:1.0.0"
        canary = deployment("backend", replicas=1)
        canary["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/backend:1.1.0"
        cluster.put(DEPLOYMENTS, primary)
        cluster.put(DEPLOYMENTS, canary)
        pods = [
            _pod("backend-primary-7d9-a", "backend-primary", "ghcr.io/acme/backend:1.0.0"),
            _pod("backend-primary-7d9-b", "backend-primary", "ghcr.io/acme/backend:1.0.0"),
            _pod("backend-5c4-a", "backend", "ghcr.io/acme/backend:1.1.0", ready=False),
            _pod("frontend-1", "frontend", "ghcr.io/acme/frontend:2.0.0"),
        ]
        for pod in pods:
            cluster.put(PODS, pod)
        config = cluster.kubeconfig(tmp_path)
        log = (tmp_path / "dashboard.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "gitcanary", "dashboard", "--repo", str(demo), "--listen", "127.0.0.1:0",
             "--cluster", "on", "--kubeconfig", str(config)],
            stdout=log, stderr=subprocess.STDOUT, env=ENV,
        )
        try:
            url = None
            for _ in range(600):
                match = re.search(r"on (http://\S+)/ ", (tmp_path / "dashboard.log").read_text())
                if match:
                    url = match[1]
                    break
                assert proc.poll() is None, (tmp_path / "dashboard.log").read_text()
                import time

                time.sleep(0.1)
            assert url, "the dashboard did not start"
            html = httpx.get(url + "/", timeout=30).text
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        rows = re.findall(r"<tr class='workload (canary|primary)'>(.*?)</tr>", html)
        seen = dict(rows)
        assert "ghcr.io/acme/backend:1.1.0" in seen["canary"] and "1.0.0" not in seen["canary"]
        assert "ghcr.io/acme/backend:1.0.0" in seen["primary"] and "1.1.0" not in seen["primary"]
        assert "backend-5c4-a Running (not ready)" in seen["canary"]
        assert "backend-primary-7d9-a Running" in seen["primary"]
        assert "backend-primary-7d9-b" in seen["primary"]
        assert "<td>2/2</td>" in seen["primary"] and "<td>1/1</td>" in seen["canary"]
        assert "frontend-1" not in html
        cluster.assert_read_only()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("demo")
    result = subprocess.run(
        [sys.executable, "-m", "gitcanary", "demo", "--dir", str(base / "demo"), "--speed", "0.3"],
        capture_output=True, text=True, env=ENV, timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return base / "demo"


@settings(max_examples=25, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(
            st.integers(0, 100),
            st.lists(st.tuples(st.sampled_from(["latency", "errors", "saturation"]), st.booleans()),
                     max_size=3, unique_by=lambda c: c[0]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_every_chart_draws_the_primary_beside_the_canary(
    steps: list[tuple[int, list[tuple[str, bool]]]],
) -> None:
    """Any rollout (weights, metrics measured by the threshold judge or against the primary): its
    chart draws the primary's weight once, and each metric panel either the primary's line or
    `primary not measured`."""
    from test_audit_parse import message, one_per_commit

    from gitcanary.audit.chart import render_svg
    from gitcanary.audit.model import rollouts
    from gitcanary.audit.parse import parse_commits
    from gitcanary.core.observations import CheckResult
    from gitcanary.core.rollout import Action
    from gitcanary.spec.status import Phase

    texts = [message(Action.START, Phase.PROGRESSING, 0, 0)]
    compared: dict[str, bool] = {}
    for minute, (weight, checks) in enumerate(steps, start=1):
        results = tuple(
            CheckResult(name, 1.0, None, 5.0, True, f"{name} 1 <= 5 ok", primary=0.5 if against else None)
            for name, against in checks
        )
        for name, against in checks:
            compared[name] = compared.get(name, False) or against
        texts.append(message(Action.ADVANCE, Phase.PROGRESSING, weight, minute, checks=results))
    parsed, problems = parse_commits(one_per_commit(texts))
    assert not problems
    [rollout] = rollouts(parsed)
    svg = render_svg(rollout)
    assert svg.count("<title>primary weight</title>") == 1
    assert svg.count("<title>primary</title>") == sum(compared.values())
    assert svg.count("primary not measured") == sum(not v for v in compared.values())


def test_the_live_refresh_keeps_the_filter(script_browser: webdriver.Chrome, tmp_path: Path) -> None:
    """With JavaScript, a commit swaps the content in place, and the swapped-in list is filtered as
    the address says (the script asks for /dashboard/main with the page's query)."""
    repo = tmp_path / "repo"
    _write_repo(repo, [("a", "prod", "Progressing"), ("b", "test", "Progressing"), ("c", "prod", "Failed")])
    rows = (
        "return [...document.querySelectorAll('#canaries tr.row')]"
        ".map(r => r.dataset.key + ' ' + r.dataset.phase)"
    )
    shown_head = "var m = document.querySelector('main'); return m ? m.dataset.head : null"
    with _serve(repo, tmp_path) as url:
        script_browser.get(url + "/?namespace=prod")
        assert sorted(script_browser.execute_script(rows)) == ["prod/a Progressing", "prod/c Failed"]
        script_browser.execute_script("window.__sameDocument = true")
        status = repo / "apps/prod/a-gitcanary/gitcanary-status.yaml"
        status.write_text(status.read_text().replace("phase: Progressing", "phase: Succeeded"))
        git("commit", "-qam", "a succeeded", cwd=repo)
        head = git("rev-parse", "HEAD", cwd=repo).strip()
        wait = WebDriverWait(script_browser, 30, ignored_exceptions=STALE)
        wait.until(lambda d: d.execute_script(shown_head) == head)
        assert sorted(script_browser.execute_script(rows)) == ["prod/a Succeeded", "prod/c Failed"]
        same = script_browser.execute_script("return window.__sameDocument === true")
        assert same, "updated without a reload"


def test_run_listen_shows_pods_when_the_reconciler_reads_the_cluster(
    config_repo: Any, tmp_path: Path
) -> None:
    """`run --listen` with cluster access gives its page the reconciler's read-only client: the
    card of prod/backend lists the primary's pods as the cluster reports them."""
    from gitcanary.commands.cli import _serve as serve_run
    from gitcanary.service.instrumented import MonitoredReconciler
    from gitcanary.service.settings import Settings

    with running_emulator({PODS: "Pod"}) as cluster:
        cluster.put(DEPLOYMENTS, deployment("backend-primary"))
        image = "ghcr.io/stefanprodan/podinfo:6.1.1"
        cluster.put(PODS, _pod("backend-primary-9f8-x", "backend-primary", image))
        settings = Settings(
            repo=str(config_repo.remote), workdir=tmp_path / "work", settle=0, cluster="on",
            kubeconfig=str(cluster.kubeconfig(tmp_path)),
        )
        reconciler = MonitoredReconciler(settings)
        server = serve_run("127.0.0.1:0", reconciler)
        try:
            reconciler.tick()
            html = httpx.get(server.url + "/", timeout=30).text
        finally:
            server.stop()
        seen = dict(re.findall(r"<tr class='workload (canary|primary)'>(.*?)</tr>", html))
        assert "backend-primary-9f8-x Running" in seen["primary"]
        assert "deployment prod/backend not found" in seen["canary"]  # not put: said so, no error page
        cluster.assert_read_only()

"""A tick sends its canaries' analyses together, and a pushed bump does not wait behind them.

Real pieces: generated config repositories (bench/bench_tick.py's generator) on bare remotes, a
real Prometheus with Istio-shaped series, a slow proxy in front of it (a real HTTP server that holds
each query) that counts how many queries are in flight at once, and the push webhook's WSGI app
served over HTTP.
"""

from __future__ import annotations

import contextlib
import http.server
import importlib.util
import json
import shutil
import sys
import threading
import time
import wsgiref.simple_server
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from conftest import git
from hook_server import hook_server
from prometheus_server import DATA_END, PrometheusServer, Traffic, running_prometheus

from gitcanary.analysis.judges import analyze
from gitcanary.git.trailers import parse_trailers
from gitcanary.service.push_webhook import WebhookReceiver, signature
from gitcanary.service.reconciler import Reconciler, TickResult
from gitcanary.service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
START = DATA_END - timedelta(minutes=20)
ANALYSED = (1, 2, 3)  # bumped before the tick under test: their analyses are due in it
IDLE = 4  # Initialized; the webhook test bumps it while the others are in analysis
SECRET = "hook-secret"


def load_bench_tick() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_tick", ROOT / "bench" / "bench_tick.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_tick"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = load_bench_tick()


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> Any:
        return self.now


class SlowProxy:
    """Forwards GETs to Prometheus after `delay` seconds, or sooner once `release()` is called;
    counts the most queries in flight at once."""

    def __init__(self, upstream: str, delay: float) -> None:
        self.upstream = upstream
        self.delay = delay
        self.in_flight = 0
        self.most = 0
        self.seen = 0
        self.freshness = 0  # the threshold judge's stale checks, `max(timestamp(<selector>))`
        self._lock = threading.Lock()
        self._released = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Prometheus answers

            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                with proxy._lock:
                    proxy.in_flight += 1
                    proxy.seen += 1
                    proxy.freshness += "timestamp%28" in self.path or "timestamp(" in self.path
                    proxy.most = max(proxy.most, proxy.in_flight)
                try:
                    proxy._released.wait(proxy.delay)
                    answer = httpx.get(proxy.upstream + self.path, timeout=30)
                finally:
                    with proxy._lock:
                        proxy.in_flight -= 1
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def release(self) -> None:
        """Answer every held query now, and every later one at once."""
        self._released.set()

    def close(self) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def prometheus_apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """app-0001 healthy, app-0002 failing its success rate, app-0003 without traffic (no data)."""
    traffic = [
        Traffic(bench.app_name(1), bench.namespace(1), rps=20, error_ratio=0.001, p99_ms=120),
        Traffic(bench.app_name(2), bench.namespace(2), rps=20, error_ratio=0.2, p99_ms=120),
        Traffic(bench.app_name(IDLE), bench.namespace(IDLE), rps=20, error_ratio=0.001, p99_ms=120),
    ]
    with running_prometheus(traffic, workdir=tmp_path_factory.mktemp("prom")) as server:
        yield server


@contextlib.contextmanager
def slow(upstream: str, delay: float) -> Iterator[SlowProxy]:
    proxy = SlowProxy(upstream, delay)
    try:
        yield proxy
    finally:
        proxy.close()


def reconciler(remote: Path, work: Path, prometheus: str, clock: Clock, **settings: Any) -> Reconciler:
    config = Settings(repo=str(remote), workdir=work, prometheus=prometheus, settle=0, **settings)
    return Reconciler(config, clock=clock, sleep=lambda _: None)


def ok(result: TickResult) -> TickResult:
    assert not result.errors and not any(r.error for r in result.reports.values()), result
    return result


def with_rollout_hook(root: Path, url: str) -> None:
    """Give app-0001..3 a `rollout` webhook, called before each of their analyses."""
    for index in ANALYSED:
        canary = root / "apps" / bench.app_name(index) / "canary.yaml"
        hook = (
            f"    webhooks:\n      - name: check\n        type: rollout\n        url: {url}\n"
            "        timeout: 60s\n"
        )
        canary.write_text(canary.read_text().replace("    metrics:\n", hook + "    metrics:\n"))


def in_analysis(tmp_path: Path, prometheus: str, hook: str | None = None) -> tuple[Path, Path, Clock]:
    """A remote where app-0001..3 have started a rollout whose first analysis is due now.

    Returns the remote, a person's clone, and the clock at the due instant.
    """

    def write(root: Path) -> None:
        bench.generate_repo(root, IDLE, False)
        if hook is not None:
            with_rollout_hook(root, hook)

    remote = bench.make_remote(tmp_path, "remote", write, "apps")
    clock = Clock()
    rec = reconciler(remote, tmp_path / "setup", prometheus, clock)
    for _ in range(4):
        ok(rec.tick())
    assert {r.status.phase.value for r in rec.reports.values() if r.status} == {"Initialized"}
    human = tmp_path / "human"
    git("clone", "-q", str(remote), str(human), cwd=tmp_path)
    for index in ANALYSED:
        bench.bump(human, index)
    git("commit", "-qam", "bump three apps", cwd=human)
    git("push", "-q", "origin", "HEAD:main", cwd=human)
    started = ok(rec.tick())
    assert len(started.commits) == len(ANALYSED)
    clock.now += timedelta(seconds=31)  # the canaries' analysis interval is 30s
    first = ok(rec.tick())  # the first weight goes without an analysis, as in Flagger
    assert len(first.commits) == len(ANALYSED)
    clock.now += timedelta(seconds=31)
    return remote, human, clock


def copy_remote(remote: Path, to: Path) -> Path:
    shutil.copytree(remote, to)
    return to


def gitcanary_commits(remote: Path, since: str) -> list[tuple[str, str]]:
    """(message, tree) of every commit after `since`, oldest first: what a tick wrote, not when."""
    out = git("log", "--reverse", "--format=%H", f"{since}..main", cwd=remote).split()
    return [
        (git("log", "-1", "--format=%B", sha, cwd=remote), git("rev-parse", f"{sha}^{{tree}}", cwd=remote))
        for sha in out
    ]


def commits_by_canary(remote: Path, since: str) -> dict[str, tuple[str, str]]:
    """(message, diff) of every commit after `since`, by canary: what a tick wrote, whatever the
    order its canaries' analyses answered in (each canary's commit touches its own files only)."""
    out = git("log", "--reverse", "--format=%H", f"{since}..main", cwd=remote).split()
    found = {}
    for sha in out:
        message = git("log", "-1", "--format=%B", sha, cwd=remote)
        found[canary_of(message)] = (message, git("show", "--format=", sha, cwd=remote))
    assert len(found) == len(out)  # one commit per canary
    return found


def canary_of(message: str) -> str:
    return parse_trailers(message).get("Canary", "")


def test_concurrent_tick_commits_what_the_serial_tick_commits(
    tmp_path: Path, prometheus_apps: PrometheusServer
) -> None:
    remote, _, clock = in_analysis(tmp_path, prometheus_apps.url)
    base = git("rev-parse", "main", cwd=remote).strip()
    written = {}
    for name, concurrency in (("serial", 1), ("concurrent", 16)):
        copy = copy_remote(remote, tmp_path / f"{name}.git")
        with slow(prometheus_apps.url, 0.3) as proxy:
            rec = reconciler(
                copy, tmp_path / f"work-{name}", proxy.url, clock, analysis_concurrency=concurrency
            )
            ok(rec.tick())
        written[name] = commits_by_canary(copy, base)
        # Serially one canary at a time (its two metrics side by side); concurrently every due
        # canary's queries at once.
        assert proxy.most == 2 * (1 if concurrency == 1 else len(ANALYSED)), (name, proxy.most)
        # Two metrics each, and beside them (for the step's trailers) the primary's value of each
        # and both sides' request counts: 6 queries per canary, none sent twice or wasted. Each
        # value read is also checked for staleness: one query per selector (1 or 2 per query).
        assert proxy.seen - proxy.freshness == 6 * len(ANALYSED)
        assert 0 < proxy.freshness <= 2 * 6 * len(ANALYSED)
    assert written["serial"] == written["concurrent"]
    # The tick analysed every canary: a step for the healthy one, a failed check for the others.
    canaries = list(written["concurrent"])
    assert sorted(canaries) == sorted(f"{bench.namespace(i)}/{bench.app_name(i)}" for i in ANALYSED)
    messages = {key: m for key, (m, _) in written["concurrent"].items()}
    assert "request-success-rate 99.9 >= 99 ok" in messages[f"{bench.namespace(1)}/{bench.app_name(1)}"]
    assert "request-success-rate 80 < 99 failed" in messages[f"{bench.namespace(2)}/{bench.app_name(2)}"]
    assert "no data" in messages[f"{bench.namespace(3)}/{bench.app_name(3)}"]


def test_an_analysis_that_raises_halts_its_canary_alone(
    tmp_path: Path, prometheus_apps: PrometheusServer
) -> None:
    remote, _, clock = in_analysis(tmp_path, prometheus_apps.url)
    base = git("rev-parse", "main", cwd=remote).strip()
    broken = f"{bench.namespace(2)}/{bench.app_name(2)}"

    def analyzer(canary: Any, templates: Any, *, default_address: str, now: Any) -> Any:
        if canary.key == broken:
            raise RuntimeError("the analysis blew up")
        return analyze(canary, templates, default_address=default_address, now=now)

    rec = reconciler(remote, tmp_path / "work", prometheus_apps.url, clock)
    rec.analyzer = analyzer
    result = rec.tick()
    assert "the analysis blew up" in result.reports[broken].error
    landed = [canary_of(message) for message, _ in gitcanary_commits(remote, base)]
    assert sorted(landed) == sorted(f"{bench.namespace(i)}/{bench.app_name(i)}" for i in ANALYSED if i != 2)


def deliver_push(url: str, body: bytes) -> httpx.Response:
    headers = {
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": signature(SECRET.encode(), body),
        "Content-Type": "application/json",
    }
    return httpx.post(url, content=body, headers=headers, timeout=10)


@contextlib.contextmanager
def webhook_server(receiver: WebhookReceiver) -> Iterator[str]:
    class Quiet(wsgiref.simple_server.WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = wsgiref.simple_server.make_server("127.0.0.1", 0, receiver, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/push"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.timeout(300)
def test_a_pushed_bump_is_stepped_while_the_tick_waits_for_slow_analyses(
    tmp_path: Path, prometheus_apps: PrometheusServer
) -> None:
    remote, human, clock = in_analysis(tmp_path, prometheus_apps.url)
    bumped = f"{bench.namespace(IDLE)}/{bench.app_name(IDLE)}"
    # The analyses' queries are held until the bump's start commit landed (or `delay` passed): the
    # tick is still waiting for them when the bump lands, however fast or slow the machine is.
    delay = 60.0
    bound = 4.0  # seconds from the push to the bump's start commit
    with slow(prometheus_apps.url, delay) as proxy:
        # A long poll interval: the analyses' deadline (half of the canaries' 30 s interval) is
        # far beyond the bump's bound, so they are still held when the bump lands.
        rec = reconciler(remote, tmp_path / "work", proxy.url, clock, poll_interval=600)
        receiver = WebhookReceiver(SECRET, rec.wake, branch="main")
        ticked: list[TickResult] = []
        tick = threading.Thread(target=lambda: ticked.append(rec.tick()))
        with webhook_server(receiver) as hook_url:
            tick.start()
            deadline = time.monotonic() + 60
            while proxy.in_flight < 2 * len(ANALYSED) and time.monotonic() < deadline:
                time.sleep(0.02)
            # The tick is waiting for its analyses (each canary's two metrics side by side).
            assert proxy.in_flight == 2 * len(ANALYSED)
            git("pull", "-q", cwd=human)
            bench.bump(human, IDLE)
            git("commit", "-qam", f"bump {bench.app_name(IDLE)}", cwd=human)
            git("push", "-q", "origin", "HEAD:main", cwd=human)
            pushed = time.monotonic()
            assert deliver_push(hook_url, json.dumps({"ref": "refs/heads/main"}).encode()).status_code == 202
            started = None
            while time.monotonic() < pushed + 60:
                log = git("log", "--format=%B%x00", "main", cwd=remote).split("\x00")
                if any(
                    canary_of(m) == bumped and parse_trailers(m).get("Phase") == "Progressing" for m in log
                ):
                    started = time.monotonic() - pushed
                    break
                time.sleep(0.05)
            still_analysing = tick.is_alive() and proxy.in_flight > 0
            proxy.release()
        tick.join(timeout=120)
    assert started is not None, "the bump's start commit never landed"
    # While every analysis was still held: the bump did not wait for the tick.
    assert started < bound, started
    assert still_analysing
    result = ok(ticked[0])
    landed = [canary_of(m) for m, _ in gitcanary_commits(remote, result.commits[0] + "~1")]
    # One start for the bump (from the fast lane), one step for each analysed canary; none twice.
    assert sorted(landed) == sorted(
        [bumped, *(f"{bench.namespace(i)}/{bench.app_name(i)}" for i in ANALYSED)]
    )
    assert canary_of(gitcanary_commits(remote, result.commits[0] + "~1")[0][0]) == bumped


@pytest.mark.timeout(300)
def test_a_pushed_bump_is_stepped_between_two_canaries_of_a_slow_commit_pass(
    tmp_path: Path, prometheus_apps: PrometheusServer
) -> None:
    """The queries answer at once, but each analysed canary's `rollout` webhook takes seconds (the
    first one until the bump is pushed). The bump lands without waiting for the slow analyses:
    what the pass committed so far is pushed first, replayed on the bump."""
    delay = 3.0  # each later canary's webhook
    answering = threading.Event()  # the first canary's webhook is being answered
    answer = threading.Event()  # ...and answers now
    calls: list[object] = []

    def slow_answer(body: object) -> None:
        """The first call is held until the bump was pushed (60 s at most); each later one takes `delay`."""
        calls.append(body)
        if len(calls) == 1:
            answering.set()
            answer.wait(60)
        else:
            time.sleep(delay)

    with hook_server() as hooks:
        remote, human, clock = in_analysis(tmp_path, prometheus_apps.url, hook=f"{hooks.url}/slow")
        bumped = f"{bench.namespace(IDLE)}/{bench.app_name(IDLE)}"
        base = git("rev-parse", "main", cwd=remote).strip()
        hooks.on("/slow", slow_answer)
        rec = reconciler(remote, tmp_path / "work", prometheus_apps.url, clock)
        ticked: list[TickResult] = []
        tick = threading.Thread(target=lambda: ticked.append(rec.tick()))
        tick.start()
        assert answering.wait(60)  # the pass is under way, deciding the first canary
        git("pull", "-q", cwd=human)
        bench.bump(human, IDLE)
        git("commit", "-qam", f"bump {bench.app_name(IDLE)}", cwd=human)
        git("push", "-q", "origin", "HEAD:main", cwd=human)
        pushed = time.monotonic()
        rec.wake()
        answer.set()
        started = None
        while time.monotonic() < pushed + 120:
            log = git("log", "--format=%B%x00", "main", cwd=remote).split("\x00")
            # The bump's start (its canary was initialized before: that commit does not count).
            if any(canary_of(m) == bumped and parse_trailers(m).get("Phase") == "Progressing" for m in log):
                started = time.monotonic() - pushed
                break
            time.sleep(0.05)
        still_running = tick.is_alive()
        tick.join(timeout=120)
    assert started is not None, "the bump's start commit never landed"
    # Two canaries of `delay` seconds each were left in the pass; the bump waited for neither.
    assert started < delay * 1.5, started
    assert still_running
    result = ok(ticked[0])
    landed = [canary_of(m) for m, _ in gitcanary_commits(remote, base) if canary_of(m)]
    # Each once, the bump before the two canaries whose webhooks take `delay`: webhooks are part of
    # each canary's analysis (its worker), so only the held canary, answered as the bump is
    # pushed, may land before it.
    assert bumped in landed[:2], landed
    analysed = [f"{bench.namespace(i)}/{bench.app_name(i)}" for i in ANALYSED]
    assert sorted(landed) == sorted([bumped, *analysed])
    assert len(result.commits) == len(landed)
    assert set(result.commits) == set(
        git("rev-list", f"{base}..main", "--grep=^Gitcanary-Canary:", cwd=remote).split()
    )

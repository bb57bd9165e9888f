"""No canary waits on another's metrics: a slow, huge or hostile answer costs its own canary alone.

Real pieces: generated config repositories (bench/bench_tick.py's generator) on bare remotes, a real
Prometheus with Istio-shaped series (tests/test_analysis_concurrency.py's), and a hostile metrics
server that holds its answers, trickles a huge body or answers nested garbage, behind six
MetricTemplates of one canary. The number the issue asks: with any number of slow or huge metric
answers for one canary, another canary's due step or rollback lands within one poll interval.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import git
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_analysis_concurrency import (  # noqa: F401 - prometheus_apps is a fixture
    ANALYSED,
    Clock,
    bench,
    canary_of,
    copy_remote,
    ok,
    prometheus_apps,
)

from gitcanary.analysis.judges import analyze
from gitcanary.git.trailers import parse_trailers
from gitcanary.service.reconciler import Reconciler
from gitcanary.service.settings import Settings
from gitcanary.spec.load import load_canary

SLOW = 1  # app-0001: its metrics come from the hostile server (and Prometheus)
FAILING = 2  # app-0002: its success rate fails (threshold 2): a halt, then a rollback
INTERVAL = 10.0  # the poll interval of the ticks under test (the default)


ANSWER = b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[0,"1"]}]}}'


class HostileMetrics:
    """Prometheus-shaped answers at /slow (held until `release`), /huge (a 100 MB body trickled
    64 KB at a time) and /error (at once: a 503)."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.seen = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                server.seen += 1
                try:
                    if self.path.startswith("/slow"):
                        server.released.wait(120)
                        self._send(ANSWER)
                    elif self.path.startswith("/huge"):
                        self.send_response(200)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(100 << 20))
                        self.end_headers()
                        chunk = b" " * (64 << 10)
                        for _ in range(1600):
                            if server.released.wait(0.05):
                                return
                            self.wfile.write(chunk)
                    else:
                        self.send_error(503, "overloaded")
                except OSError:
                    pass  # the client gave up (its deadline): expected

            def _send(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def hostile() -> Iterator[HostileMetrics]:
    served = HostileMetrics()
    try:
        yield served
    finally:
        served.close()


KINDS = ("slow", "slow", "slow", "slow", "huge", "error")  # six templates, as in the issue


def with_hostile_templates(root: Path, url: str) -> None:
    """app-0001 lists six MetricTemplates on the hostile server besides its two builtins."""
    ns, name = bench.namespace(SLOW), bench.app_name(SLOW)
    templates, metrics = [], []
    for number, kind in enumerate(KINDS, 1):
        templates.append(
            "apiVersion: flagger.app/v1beta1\nkind: MetricTemplate\n"
            f"metadata:\n  name: {kind}-{number}\n  namespace: {ns}\n"
            f"spec:\n  provider:\n    type: prometheus\n    address: {url}/{kind}\n  query: up\n"
        )
        metrics.append(
            f"      - name: {kind}-{number}\n        templateRef:\n          name: {kind}-{number}\n"
            f"          namespace: {ns}\n        thresholdRange:\n          max: 100\n        interval: 1m\n"
        )
    (root / "metrics").mkdir()
    (root / "metrics" / "templates.yaml").write_text("---\n".join(templates))
    canary = root / "apps" / name / "canary.yaml"
    canary.write_text(canary.read_text() + "".join(metrics))


def bumped(tmp_path: Path, prometheus: str, extra: Callable[[Path], None]) -> tuple[Path, Clock, Reconciler]:
    """A remote of four initialized apps (`extra` adds to the files first) where app-0001..3 were
    just bumped, with the reconciler that will step them."""

    def write(root: Path) -> None:
        bench.generate_repo(root, 4, False)
        extra(root)

    remote = bench.make_remote(tmp_path, "remote", write, "apps")
    clock = Clock()
    rec = reconciler(remote, tmp_path / "setup", prometheus, clock)
    for _ in range(4):
        ok(rec.tick())
    human = tmp_path / "human"
    git("clone", "-q", str(remote), str(human), cwd=tmp_path)
    for index in ANALYSED:
        bench.bump(human, index)
    git("commit", "-qam", "bump three apps", cwd=human)
    git("push", "-q", "origin", "HEAD:main", cwd=human)
    return remote, clock, rec


def in_analysis(tmp_path: Path, prometheus: str, url: str | None) -> tuple[Path, Clock]:
    """A remote where app-0001..3 are in a rollout whose first analysis is due at the clock;
    app-0001 with the hostile templates when `url` is given."""
    remote, clock, rec = bumped(
        tmp_path, prometheus, lambda root: None if url is None else with_hostile_templates(root, url)
    )
    assert len(ok(rec.tick()).commits) == len(ANALYSED)  # started
    clock.now += timedelta(seconds=31)
    assert len(ok(rec.tick()).commits) == len(ANALYSED)  # the first weight, without an analysis
    clock.now += timedelta(seconds=31)
    return remote, clock


def reconciler(remote: Path, work: Path, prometheus: str, clock: Clock, **options: Any) -> Reconciler:
    options = {"poll_interval": INTERVAL, **options}
    config = Settings(repo=str(remote), workdir=work, prometheus=prometheus, settle=0, **options)
    return Reconciler(config, clock=clock, sleep=lambda _: None)


class Landings:
    """When each canary's commits reached the remote, watched from the reconciler's own pushes."""

    def __init__(self, rec: Reconciler, remote: Path) -> None:
        self.remote = remote
        self.at: dict[str, list[tuple[float, str]]] = {}
        self.seen: set[str] = set(git("rev-list", "main", cwd=remote).split())
        push = rec.workspace.push

        def watched() -> None:
            push()
            self.look()

        rec.workspace.push = watched  # type: ignore[method-assign]

    def look(self) -> None:
        now = time.monotonic()
        for sha in git("rev-list", "main", cwd=self.remote).split():
            if sha in self.seen:
                continue
            self.seen.add(sha)
            message = git("log", "-1", "--format=%B", sha, cwd=self.remote)
            self.at.setdefault(canary_of(message), []).append((now, message))


def key(index: int) -> str:
    return f"{bench.namespace(index)}/{bench.app_name(index)}"


@pytest.mark.timeout(300)
def test_a_due_rollback_lands_within_one_interval_while_another_canary_s_metrics_hang(
    tmp_path: Path,
    prometheus_apps: Any,  # noqa: F811 - the fixture
) -> None:
    with hostile() as server:
        remote, clock = in_analysis(tmp_path, prometheus_apps.url, server.url)
        rec = reconciler(remote, tmp_path / "work", prometheus_apps.url, clock)
        landings = Landings(rec, remote)
        budget = 0.5 * INTERVAL  # the default --analysis-budget of the 10 s poll interval: 5 s
        # Two ticks: app-0002 fails its first check (a halt), then its second (the rollback).
        for expected in ("halt", "rollback"):
            started = time.monotonic()
            result = ok(rec.tick())
            took = time.monotonic() - started
            landed, message = landings.at[key(FAILING)][-1]
            assert parse_trailers(message)["Action"] == expected, message
            # The failing canary's commit did not wait for app-0001's six hostile answers.
            assert landed - started < INTERVAL, (expected, landed - started)
            # Nor did the tick: its deadline, not the answers, ended it (plus its Git work).
            assert took < 2 * INTERVAL, took
            slow_landed, slow_message = landings.at[key(SLOW)][-1]
            # Pushed before the slow canary's deadline ended its analysis, not with its commit.
            assert landed < slow_landed, (landed - started, slow_landed - started)
            assert f"slow-1 no answer within the analysis deadline ({budget:g}s): failed" in slow_message
            assert len(result.commits) == len(ANALYSED)  # one commit each, the slow one's too
            clock.now += timedelta(seconds=31)
        assert server.seen >= 2 * len(KINDS)  # every hostile template was asked, both ticks


@pytest.mark.timeout(300)
def test_the_slow_canary_alone_pays_for_its_slow_answers_with_the_old_order_gone(
    tmp_path: Path,
    prometheus_apps: Any,  # noqa: F811 - the fixture
) -> None:
    """Once the hostile server answers at once, app-0001's checks are judged as usual: the deadline
    made its own checks fail, never another canary's."""
    with hostile() as server:
        server.released.set()
        remote, clock = in_analysis(tmp_path, prometheus_apps.url, server.url)
        rec = reconciler(remote, tmp_path / "work", prometheus_apps.url, clock)
        landings = Landings(rec, remote)
        ok(rec.tick())
        slow_message = landings.at[key(SLOW)][-1][1]
        assert "slow-1 1 <= 100 ok" in slow_message, slow_message
        assert "deadline" not in slow_message
        assert "request-success-rate 99.9 >= 99 ok" in slow_message


# -- the class: any delays, sizes and failures for the other canaries --------------------------

Delays = st.lists(
    st.tuples(
        st.integers(min_value=2, max_value=3),  # which canary (app-0004 is at rest: no analysis)
        st.sampled_from(["instant", "slow", "hang", "raise"]),
    ),
    min_size=1,
    max_size=6,
)


@pytest.fixture(scope="module")
def base_remote(tmp_path_factory: pytest.TempPathFactory, prometheus_apps: Any) -> tuple[Path, Clock]:  # noqa: F811
    return in_analysis(tmp_path_factory.mktemp("independence"), prometheus_apps.url, None)


@pytest.mark.timeout(600)
@settings(
    max_examples=5,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=Delays)
def test_the_healthy_canary_s_step_lands_within_one_interval_whatever_the_others_do(
    plan: list[tuple[int, str]],
    base_remote: tuple[Path, Clock],
    tmp_path_factory: pytest.TempPathFactory,
    prometheus_apps: Any,  # noqa: F811 - the fixture
) -> None:
    """Canaries 2 and 3 get, per example, answers that are instant, slow (past the deadline),
    hanging (far past it, until the test ends) or raising; canary 1 is healthy and its step is due.
    Its step commit lands within one (short) poll interval of the tick's start, and the tick ends
    within about one. The reconciler's caches are warm, as in any tick after the first."""
    interval = 10.0  # the default; the deadline is then 5 s (the budget, and the floor)
    behaviour: dict[str, list[str]] = {}
    for index, kind in plan:
        behaviour.setdefault(key(index), []).append(kind)
    release = threading.Event()

    def analyzer(canary: Any, templates: Any, *, default_address: str, now: Any) -> Any:
        for kind in behaviour.get(canary.key, []):
            if kind == "slow":
                release.wait(2 * interval)
            elif kind == "hang":
                release.wait(120)
            elif kind == "raise":
                raise RuntimeError("the metrics server answered garbage")  # an unexpected error
        return analyze(canary, templates, default_address=default_address, now=now)

    remote, clock = base_remote
    tmp = tmp_path_factory.mktemp("example")
    copy = copy_remote(remote, tmp / "remote.git")
    rec = reconciler(copy, tmp / "work", prometheus_apps.url, clock, poll_interval=interval)
    rec.analyzer = analyzer
    rec.refresh(rec.workspace.sync())  # warm: cloned, scanned, built, statuses read
    assert rec.catalog is not None
    for name, loaded in rec.catalog.canaries.items():
        rec._status(name, loaded)
        rec._rendered(name, loaded)
    landings = Landings(rec, copy)
    try:
        started = time.monotonic()
        result = rec.tick()
        took = time.monotonic() - started
    finally:
        release.set()
    landed, message = landings.at[key(SLOW)][-1]
    assert parse_trailers(message)["Action"] == "advance", message
    assert landed - started < interval, (plan, landed - started)
    assert took < 2 * interval, (plan, took)
    for name, kinds in behaviour.items():
        first = next((kind for kind in kinds if kind != "instant"), "instant")
        if first == "raise":
            assert "garbage" in result.reports[name].error  # halted alone
        elif first in ("slow", "hang"):
            halt = landings.at[name][-1][1]
            assert "no answer within the analysis deadline (5s): failed" in halt, halt


@settings(max_examples=50, derandomize=True, deadline=None)
@given(
    poll=st.floats(min_value=0.5, max_value=3600),
    own=st.integers(min_value=1, max_value=7200),
    share=st.floats(min_value=0.05, max_value=1.0),
)
def test_a_deadline_is_never_under_5_s_nor_over_the_share_of_either_interval(
    poll: float, own: int, share: float
) -> None:
    text = bench.CANARY.format(name="app", ns="ns", autoscaler="")
    text = text.replace("interval: 30s", f"interval: {own}s")
    doc = load_canary(yaml.safe_load(text), "c.yaml").canary
    settings_ = Settings(repo="unused", poll_interval=poll, analysis_budget=share)
    rec = Reconciler(settings_)
    deadline = rec._budget(doc)
    assert deadline >= 5.0
    assert deadline <= max(5.0, share * poll) and deadline <= max(5.0, share * own)
    assert deadline >= min(share * poll, share * own) - 1e-9  # not shorter than the share of either


# -- webhooks: a canary's hooks are part of its analysis, under its deadline -----------------------

HOOKED = 3  # app-0003: the canary whose webhooks answer slowly or hang (its metrics have no data)
HOOKS_PER_TYPE = 3
# The hook types a canary in analysis is asked every tick, and those asked at other stages; each of
# app-0003's hooks is `/<type>/<n>` on a real hook server (tests/hook_server.py).
ASKED = ("rollback", "rollout")
OTHERS = ("confirm-rollout", "pre-rollout", "confirm-traffic-increase", "confirm-promotion")


def hook_path(kind: str, number: int) -> str:
    return f"/{kind}/{number}"


def with_hooks(root: Path, url: str) -> None:
    """app-0003 gets HOOKS_PER_TYPE webhooks of every type, each with Flagger's longest usual
    timeout, so only the analysis deadline can cut a slow one short."""
    canary = root / "apps" / bench.app_name(HOOKED) / "canary.yaml"
    hooks = "".join(
        f"      - name: {kind}-{number}\n        type: {kind}\n        url: {url}{hook_path(kind, number)}\n"
        "        timeout: 60s\n"
        for kind in ASKED + OTHERS
        for number in range(1, HOOKS_PER_TYPE + 1)
    )
    text = canary.read_text().replace("    metrics:\n", "    webhooks:\n" + hooks + "    metrics:\n")
    canary.write_text(text)


def instant(server: Any) -> None:
    """Every hook answers at once: rollback hooks 403 (no rollback signalled), the others 200."""
    for kind in ASKED + OTHERS:
        for number in range(1, HOOKS_PER_TYPE + 1):
            server.script(hook_path(kind, number), [403 if kind == "rollback" else 200])


@pytest.fixture(scope="module")
def hooked_remote(
    tmp_path_factory: pytest.TempPathFactory,
    prometheus_apps: Any,  # noqa: F811 - the fixture
) -> Iterator[tuple[Path, Clock, Any]]:
    """A remote one failed analysis further than `in_analysis`: app-0001 at 20% with its next step
    due, app-0002 with one failed check (its rollback due: threshold 2), app-0003 likewise, with
    its webhooks on a hook server that answered every call at once so far."""
    from hook_server import hook_server

    with hook_server() as server:
        instant(server)
        tmp = tmp_path_factory.mktemp("hooked")
        remote, clock, rec = bumped(tmp, prometheus_apps.url, lambda root: with_hooks(root, server.url))
        for _ in range(3):  # started; the first weight; the first analysis (a step, two failed checks)
            assert len(ok(rec.tick()).commits) == len(ANALYSED)
            clock.now += timedelta(seconds=31)
        assert server.posted(hook_path("rollout", 1)), "app-0003's rollout hooks were asked"
        yield remote, clock, server


SlowHooks = st.lists(
    st.tuples(
        st.sampled_from(ASKED + OTHERS),
        st.integers(min_value=1, max_value=HOOKS_PER_TYPE),
        st.sampled_from(["slow", "hang"]),  # slow: past the deadline; hang: far past it
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda hook: hook[:2],
).filter(lambda hooks: any(kind in ASKED for kind, _, _ in hooks))


@pytest.mark.timeout(600)
@settings(
    max_examples=6,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(slow=SlowHooks, metrics=st.sampled_from([0.0, 3.0, 120.0]))
def test_a_due_rollback_and_step_land_within_one_interval_while_another_canary_s_webhooks_hang(
    slow: list[tuple[str, int, str]],
    metrics: float,
    hooked_remote: tuple[Path, Clock, Any],
    tmp_path_factory: pytest.TempPathFactory,
    prometheus_apps: Any,  # noqa: F811 - the fixture
) -> None:
    """app-0003's webhooks (any of its 18, of every type) answer 8 s late or hang, and its metrics
    take `metrics` seconds on top. app-0002's due rollback and app-0001's due step each land within
    one poll interval of the tick's start, before app-0003's commit; the tick ends within about one
    interval; app-0003's slow hook was really called, and its commit says its analysis deadline
    cut it short (a failed webhook or check with the reason, not a halt of the tick)."""
    remote, clock, server = hooked_remote
    instant(server)
    for kind, number, behaviour in slow:
        status = 403 if kind == "rollback" else 200
        server.script(hook_path(kind, number), [status], delay=8.0 if behaviour == "slow" else 120.0)
    release = threading.Event()
    hooked = key(HOOKED)

    def analyzer(canary: Any, templates: Any, *, default_address: str, now: Any) -> Any:
        if canary.key == hooked and metrics:
            release.wait(metrics)
        return analyze(canary, templates, default_address=default_address, now=now)

    tmp = tmp_path_factory.mktemp("hooks")
    copy = copy_remote(remote, tmp / "remote.git")
    rec = reconciler(copy, tmp / "work", prometheus_apps.url, clock)
    rec.analyzer = analyzer
    rec.refresh(rec.workspace.sync())  # warm: cloned, scanned, built, statuses read
    assert rec.catalog is not None
    for name, loaded in rec.catalog.canaries.items():
        rec._status(name, loaded)
        rec._rendered(name, loaded)
    landings = Landings(rec, copy)
    asked_before = len(server.requests)
    try:
        started = time.monotonic()
        result = rec.tick()
        took = time.monotonic() - started
    finally:
        release.set()
    for index, expected in ((1, "advance"), (FAILING, "rollback")):
        landed, message = landings.at[key(index)][-1]
        assert parse_trailers(message)["Action"] == expected, (slow, message)
        assert landed - started < INTERVAL, (slow, expected, landed - started)
        hooked_landed = landings.at[hooked][-1][0]
        assert landed < hooked_landed, (slow, landed - started, hooked_landed - started)
    assert took < 2 * INTERVAL, (slow, took)
    assert not result.reports[hooked].error, result.reports[hooked].error  # no halt of the canary
    called = {request.path for request in server.requests[asked_before:]}
    assert called & {hook_path(kind, number) for kind, number, _ in slow}, (slow, called)
    hooked_message = landings.at[hooked][-1][1]
    # The reason names the deadline: the hook it cut ("no answer within the analysis deadline"),
    # or the next one it kept from starting ("not called: the analysis deadline passed").
    assert "the analysis deadline" in hooked_message, hooked_message

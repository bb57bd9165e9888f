"""Graphite templates against Debian's graphite-carbon (fed over its plaintext protocol) and
graphite-web (the render API Flagger queries), both real, on loopback ports."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gitcanary.analysis.providers import problems
from tests.metrics_servers import Graphite, graphite
from tests.provider_checks import check, template

START = int(time.time()) // 10 * 10 - 900
NOW = datetime.fromtimestamp(START + 590, UTC)  # the analysis instant: the last point before the rise


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graphite]:
    with graphite(tmp_path_factory.mktemp("graphite")) as running:
        # Errors per 10 s for the canary: 1 for the first 10 minutes, then 7 (after NOW).
        running.send([f"app.backend.errors {1 if i < 60 else 7} {START + 10 * i}" for i in range(85)])
        running.send([f"app.backend.requests 100 {START + 10 * i}" for i in range(85)])
        deadline = time.monotonic() + 30
        while (
            "7.0"
            not in httpx.get(f"{running.url}/render?target=app.backend.errors&from=-1h&format=json").text
        ):
            assert time.monotonic() < deadline, "carbon never made the points visible"
            time.sleep(0.5)
        yield running


RATE = "target=asPercent(sumSeries(app.{{ target }}.errors),sumSeries(app.{{ target }}.requests))&from=-5min"


def test_last_datapoint_relative_to_the_analysis_instant(server: Graphite) -> None:
    result = check(template("rate", RATE, type="graphite", address=server.url), now=NOW, bounds={"max": 5})
    assert result.ok and result.value == pytest.approx(1.0), result.line


def test_later_instant_sees_the_regression(server: Graphite) -> None:
    later = datetime.fromtimestamp(START + 800, UTC)
    result = check(template("rate", RATE, type="graphite", address=server.url), now=later, bounds={"max": 5})
    assert not result.ok and result.value == pytest.approx(7.0), result.line


def test_unknown_series_is_no_data(server: Graphite) -> None:
    query = "target=app.idle.errors&from=-5min"
    result = check(template("idle", query, type="graphite", address=server.url), now=NOW)
    assert not result.ok and "no data (graphite returned no datapoint)" in result.line


def test_bad_function_is_a_failed_check_with_graphite_status(server: Graphite) -> None:
    query = "target=noSuchFunction(app.backend.errors)"
    result = check(template("bad", query, type="graphite", address=server.url), now=NOW)
    assert not result.ok and "graphite at" in result.line and "answered HTTP 400" in result.line, result.line


def test_problems() -> None:
    assert problems(template("t", "target=a.b", type="graphite", address="http://g")) == []
    assert problems(template("t", "sum(a.b)", type="graphite")) == [
        "spec.provider.address: graphite needs an address (Flagger refuses a template without one)",
        "spec.query: a graphite query is a render query string with at least one target=",
    ]


def test_series_for_the_comparative_judge(server: Graphite) -> None:
    from gitcanary.analysis.providers import HttpPool, ProviderEnv, Target, build

    subject = template("rate", "target=app.backend.errors", type="graphite", address=server.url)
    provider = build(Target(subject.spec.provider, "prod", server.url), ProviderEnv(), HttpPool())
    start = datetime.fromtimestamp(START + 550, UTC)
    points = provider.query_range("target=app.backend.errors", start, NOW + timedelta(seconds=30), 10)  # type: ignore[attr-defined]
    assert [value for _, value in points] == [1.0] * 4 + [7.0] * 3  # 560..590, then 600..620
    assert points[0][0] == START + 560  # graphite starts after `from`, 10 s buckets

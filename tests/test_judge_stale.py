"""The threshold judge's stale-value check beyond Prometheus: a Graphite series that stopped keeps
answering its last datapoint for the query's whole `from`; the check says "no current data" once
that datapoint's bucket ended before this look's window. Real carbon-cache and graphite-web."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.metrics_servers import Graphite, graphite
from tests.provider_checks import check, template

START = int(time.time()) // 10 * 10 - 1800
POINTS = 60  # one datapoint every 10 s, START .. START + 590
LAST = START + 10 * (POINTS - 1)
SPACING = 10
INTERVAL = 60  # the canary's analysis interval (tests/provider_checks.py: 1m)
QUERY = "target=app.stopping.errors&from=-20min"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graphite]:
    with graphite(tmp_path_factory.mktemp("graphite-stale")) as running:
        running.send([f"app.stopping.errors 3 {START + 10 * i}" for i in range(POINTS)])
        deadline = time.monotonic() + 30
        url = f"{running.url}/render?target=app.stopping.errors&from=-1h&format=json"
        while str(LAST) not in httpx.get(url).text:
            assert time.monotonic() < deadline, "carbon never made the points visible"
            time.sleep(0.5)
        yield running


def test_a_current_series_is_judged_on_its_value(server: Graphite) -> None:
    result = check(
        template("stop", QUERY, type="graphite", address=server.url),
        now=datetime.fromtimestamp(LAST + 5, UTC),
        bounds={"max": 5},
    )
    assert result.ok and result.value == pytest.approx(3.0), result.line


def test_a_stopped_series_is_no_current_data(server: Graphite) -> None:
    now = LAST + 200
    result = check(
        template("stop", QUERY, type="graphite", address=server.url),
        now=datetime.fromtimestamp(now, UTC),
        bounds={"max": 5},
    )
    age = now - (LAST + SPACING)
    assert not result.ok, result.line
    assert f"no current data: the newest datapoint is {age}s old" in result.line, result.line


@settings(
    max_examples=12,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(after=st.integers(min_value=0, max_value=900))
def test_stale_exactly_when_the_newest_bucket_ended_before_the_window(server: Graphite, after: int) -> None:
    """For any analysis instant after the series' last datapoint (whose value, 3, is within the
    rail): the check passes while that datapoint's 10 s bucket ends inside the look's window
    (the analysis interval), and is "no current data" after; never a pass on a stale value."""
    now = LAST + after
    result = check(
        template("stop", QUERY, type="graphite", address=server.url),
        now=datetime.fromtimestamp(now, UTC),
        bounds={"max": 5},
    )
    stale = now - INTERVAL > LAST + SPACING
    assert result.ok is not stale, (after, result.line)
    assert ("no current data" in result.line) is stale, (after, result.line)

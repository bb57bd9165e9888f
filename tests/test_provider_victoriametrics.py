"""A Prometheus-compatible store (Debian's VictoriaMetrics) as a `prometheus` MetricTemplate:
Flagger's PromQL semantics against a real server that is not Prometheus."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.metrics_servers import victoria_metrics, vm_import
from tests.provider_checks import check, template

# VictoriaMetrics drops samples older than its retention (1 month): use recent instants.
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with victoria_metrics(tmp_path_factory.mktemp("vm")) as address:
        lines = []
        # 10 requests per second for 10 minutes, 2% of them 5xx for the canary "backend".
        for second in range(0, 600, 15):
            at = int((NOW - timedelta(seconds=600 - second)).timestamp() * 1000)
            total, errors = 10 * second, round(0.2 * second)
            lines.append(f'http_requests_total{{app="backend",code="200"}} {total - errors} {at}')
            lines.append(f'http_requests_total{{app="backend",code="500"}} {errors} {at}')
        vm_import(address, lines)
        yield address


ERROR_RATE = (
    'sum(rate(http_requests_total{app="{{ target }}",code=~"5.."}[{{ interval }}]))'
    ' / sum(rate(http_requests_total{app="{{ target }}"}[{{ interval }}])) * 100'
)


def test_error_rate_from_victoria_metrics(vm: str) -> None:
    result = check(template("errors", ERROR_RATE, address=vm), now=NOW, interval="2m", bounds={"max": 1})
    assert result.value is not None and abs(result.value - 2.0) < 0.01, result.line
    assert not result.ok  # 2% > 1%: the canary is failing


def test_no_series_is_no_data(vm: str) -> None:
    query = 'sum(rate(http_requests_total{app="idle"}[{{ interval }}]))'
    result = check(template("idle", query, address=vm), now=NOW)
    assert not result.ok and "no data" in result.line

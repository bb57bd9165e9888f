"""Backfilled Prometheus data in every provider's own metrics, for the builtin queries of each.

`openmetrics_all(traffic)` writes the same `Traffic` (requests, error ratio, p99) as Istio's sidecar
(`istio_requests_total`, also what Gateway API's builtins read, as in Flagger), Linkerd's proxy
(`response_total`, `response_latency_ms_bucket`), ingress-nginx (`nginx_ingress_controller_requests`
and its upstream latency sum/count; the ingress is named like the workload) and an app's own
`http_request_duration_seconds` histogram (the `kubernetes` provider). `running_all_providers`
starts a real Prometheus on it.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from prometheus_server import (
    DATA_END,
    DATA_SPAN,
    ISTIO_BUCKETS_MS,
    PrometheusServer,
    Traffic,
    _bucket_fractions,
    openmetrics,
    running_prometheus,
)


def _timeline(traffic: Sequence[Traffic], step: float) -> list[tuple[float, Traffic, float]]:
    out = []
    for item in traffic:
        end = (item.end or DATA_END).timestamp()
        start = (item.start or (item.end or DATA_END) - DATA_SPAN).timestamp()
        moment = start
        while moment <= end + 1e-9:
            out.append((moment, item, moment - start))
            moment += step
    out.sort(key=lambda entry: entry[0])
    return out


def _linkerd(timeline: list[tuple[float, Traffic, float]]) -> list[str]:
    responses = ["# TYPE response counter"]
    latency = ["# TYPE response_latency_ms histogram"]
    for moment, item, elapsed in timeline:
        total = item.rps * elapsed
        errors = total * item.error_ratio
        labels = f'namespace="{item.namespace}",deployment="{item.workload}",direction="inbound"'
        for classification, count in (("success", total - errors), ("failure", errors)):
            responses.append(
                f'response_total{{{labels},classification="{classification}"}} {count:.17g} {moment:.3f}'
            )
        for bound, fraction in zip(ISTIO_BUCKETS_MS, _bucket_fractions(item.p99_ms), strict=True):
            latency.append(
                f'response_latency_ms_bucket{{{labels},le="{bound}"}} {total * fraction:.17g} {moment:.3f}'
            )
        latency.append(f'response_latency_ms_bucket{{{labels},le="+Inf"}} {total:.17g} {moment:.3f}')
        latency.append(f"response_latency_ms_count{{{labels}}} {total:.17g} {moment:.3f}")
    return responses + latency


def _nginx(timeline: list[tuple[float, Traffic, float]]) -> list[str]:
    # ingress-nginx's names carry no `_total` suffix: declared `unknown`, which PromQL treats the same.
    requests = ["# TYPE nginx_ingress_controller_requests unknown"]
    name = "nginx_ingress_controller_ingress_upstream_latency_seconds"
    sums, counts = [f"# TYPE {name}_sum unknown"], [f"# TYPE {name}_count unknown"]
    for moment, item, elapsed in timeline:
        total = item.rps * elapsed
        errors = total * item.error_ratio
        labels = f'namespace="{item.namespace}",ingress="{item.workload}"'
        for status, count in (("200", total - errors), ("500", errors)):
            requests.append(
                f'nginx_ingress_controller_requests{{{labels},status="{status}"}} {count:.17g} {moment:.3f}'
            )
        # The builtin is an average: every request takes p99_ms here.
        sums.append(f"{name}_sum{{{labels}}} {total * item.p99_ms / 1000:.17g} {moment:.3f}")
        counts.append(f"{name}_count{{{labels}}} {total:.17g} {moment:.3f}")
    return requests + sums + counts


def _http(timeline: list[tuple[float, Traffic, float]]) -> list[str]:
    lines = ["# TYPE http_request_duration_seconds histogram"]
    for moment, item, elapsed in timeline:
        total = item.rps * elapsed
        errors = total * item.error_ratio
        pod = f"{item.workload}-5d8f7c9b6-x2x7k"
        for status, count in (("200", total - errors), ("500", errors)):
            labels = f'kubernetes_namespace="{item.namespace}",kubernetes_pod_name="{pod}",status="{status}"'
            for bound, fraction in zip(ISTIO_BUCKETS_MS, _bucket_fractions(item.p99_ms), strict=True):
                lines.append(
                    f'http_request_duration_seconds_bucket{{{labels},le="{bound / 1000:g}"}} '
                    f"{count * fraction:.17g} {moment:.3f}"
                )
            lines.append(
                f'http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {count:.17g} {moment:.3f}'
            )
            lines.append(f"http_request_duration_seconds_count{{{labels}}} {count:.17g} {moment:.3f}")
    return lines


def openmetrics_all(traffic: Sequence[Traffic], *, step: float = 15.0) -> str:
    istio = openmetrics(traffic, step=step).removesuffix("# EOF\n")
    timeline = _timeline(traffic, step)
    return istio + "\n".join([*_linkerd(timeline), *_nginx(timeline), *_http(timeline), "# EOF", ""])


@contextlib.contextmanager
def running_all_providers(traffic: Sequence[Traffic], workdir: Path) -> Iterator[PrometheusServer]:
    """A real Prometheus backfilled with `traffic` in every provider's metrics."""
    tsdb = workdir / "tsdb"
    tsdb.mkdir(parents=True, exist_ok=True)
    data = workdir / "providers.om"
    data.write_text(openmetrics_all(traffic))
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(data), str(tsdb)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    # No traffic here: running_prometheus starts on the blocks already in workdir/tsdb.
    with running_prometheus((), workdir=workdir) as server:
        yield server

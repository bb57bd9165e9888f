"""A real Prometheus for tests, fed with Istio-shaped traffic.

Two ways to feed it:
- backfill (default): `Traffic` is written as OpenMetrics, turned into TSDB blocks by
  `promtool tsdb create-blocks-from openmetrics`, and Prometheus starts on them. The data ends at
  `DATA_END`, a fixed instant long past, so query at a time inside it (e.g. `QUERY_AT`).
- scrape: `Exporter` is a tiny HTTP server whose counters a test moves by hand; Prometheus scrapes
  it every second, so data is "now" and queries run at wall-clock time.

Use from a test module (or tests/conftest.py):

    from tests.prometheus_server import QUERY_AT, Traffic, prometheus  # noqa: F401

    def test_x(prometheus):
        server = prometheus(Traffic("backend", "prod", error_ratio=0.1))
        assert server.query('sum(istio_requests_total)', QUERY_AT) > 0
"""

from __future__ import annotations

import bisect
import contextlib
import http.server
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

# Backfilled samples end here; a fixed instant far enough in the past that promtool and the TSDB
# head never overlap it, whatever day the tests run.
DATA_END = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
DATA_SPAN = timedelta(minutes=30)
# A good instant to query backfilled data at: the last minute is inside the data.
QUERY_AT = DATA_END - timedelta(seconds=30)

# Istio's default buckets for istio_request_duration_milliseconds.
ISTIO_BUCKETS_MS = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
    1800000, 3600000,
)  # fmt: skip


@dataclass(frozen=True)
class Traffic:
    """Steady requests to one workload, as Istio's sidecar (reporter="destination") counts them.

    `p99_ms` is laid out over Istio's buckets so that `histogram_quantile(0.99, ...)` returns it
    (exact for values above 0.5ms). `start`/`end` default to the `DATA_SPAN` ending at `DATA_END`.
    """

    workload: str
    namespace: str = "default"
    rps: float = 10.0
    error_ratio: float = 0.0
    p99_ms: float = 100.0
    start: datetime | None = None
    end: datetime | None = None


def healthy_then_failing(
    workloads: list[tuple[str, str]], good_from: datetime, bad_from: datetime
) -> list[Traffic]:
    """Each (workload, namespace) healthy from `good_from` (no errors, p99 80ms), then failing
    from `bad_from` to the end of the data (20% errors, p99 90ms): a release to promote, then one
    to roll back."""
    traffic = []
    for workload, namespace in workloads:
        traffic += [
            Traffic(workload, namespace, rps=20, error_ratio=0.0, p99_ms=80, start=good_from, end=bad_from),
            Traffic(workload, namespace, rps=20, error_ratio=0.2, p99_ms=90, start=bad_from, end=DATA_END),
        ]
    return traffic


def _bucket_fractions(p99_ms: float) -> list[float]:
    """Cumulative fraction of requests at or below each Istio bucket bound.

    1% of requests sit inside the bucket (lower, upper] holding p99_ms, 0.99 - 0.01x below it and
    0.01x above it, where x is p99_ms's position in that bucket: the 0.99 rank then interpolates
    to exactly p99_ms.
    """
    index = bisect.bisect_left(ISTIO_BUCKETS_MS, p99_ms)
    if index == 0:
        return [1.0] * len(ISTIO_BUCKETS_MS)
    if index == len(ISTIO_BUCKETS_MS):
        return [0.0] * len(ISTIO_BUCKETS_MS)
    lower, upper = ISTIO_BUCKETS_MS[index - 1], ISTIO_BUCKETS_MS[index]
    x = (p99_ms - lower) / (upper - lower)
    below = 0.99 - 0.01 * x
    return [below if i < index else below + 0.01 for i in range(len(ISTIO_BUCKETS_MS))]


def openmetrics(traffic: Sequence[Traffic], *, step: float = 15.0) -> str:
    """OpenMetrics text of `traffic`, one sample per series every `step` seconds."""
    timeline: list[tuple[float, Traffic, float]] = []  # (timestamp, traffic, seconds since start)
    for item in traffic:
        end = (item.end or DATA_END).timestamp()
        start = (item.start or (item.end or DATA_END) - DATA_SPAN).timestamp()
        moment = start
        while moment <= end + 1e-9:
            timeline.append((moment, item, moment - start))
            moment += step
    timeline.sort(key=lambda entry: entry[0])

    requests = ["# TYPE istio_requests counter"]
    durations = ["# TYPE istio_request_duration_milliseconds histogram"]
    for moment, item, elapsed in timeline:
        total = item.rps * elapsed
        labels = (
            f'reporter="destination",destination_workload="{item.workload}",'
            f'destination_workload_namespace="{item.namespace}"'
        )
        errors = total * item.error_ratio
        for code, count in (("200", total - errors), ("500", errors)):
            requests.append(
                f'istio_requests_total{{{labels},response_code="{code}"}} {count:.17g} {moment:.3f}'
            )
        for bound, fraction in zip(ISTIO_BUCKETS_MS, _bucket_fractions(item.p99_ms), strict=True):
            durations.append(
                f'istio_request_duration_milliseconds_bucket{{{labels},le="{bound}"}} '
                f"{total * fraction:.17g} {moment:.3f}"
            )
        durations.append(
            f'istio_request_duration_milliseconds_bucket{{{labels},le="+Inf"}} {total:.17g} {moment:.3f}'
        )
        durations.append(f"istio_request_duration_milliseconds_count{{{labels}}} {total:.17g} {moment:.3f}")
        durations.append(
            f"istio_request_duration_milliseconds_sum{{{labels}}} {total * item.p99_ms:.17g} {moment:.3f}"
        )
    return "\n".join([*requests, *durations, "# EOF", ""])


class Exporter:
    """An HTTP endpoint serving Istio-shaped counters that a test sets (for scrape mode).

    `add(workload, namespace, requests=..., errors=..., latency_ms=...)` moves the counters; each
    request is observed in the Istio bucket holding `latency_ms`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], float] = {}
        self._buckets: dict[tuple[str, str], list[float]] = {}
        self._sums: dict[tuple[str, str], float] = {}
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def target(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def add(
        self, workload: str, namespace: str = "default", *, requests: int, errors: int = 0, latency_ms: float
    ) -> None:
        key = (workload, namespace)
        with self._lock:
            for code, count in (("200", requests - errors), ("500", errors)):
                self._requests[(*key, code)] = self._requests.get((*key, code), 0.0) + count
            buckets = self._buckets.setdefault(key, [0.0] * len(ISTIO_BUCKETS_MS))
            for i, bound in enumerate(ISTIO_BUCKETS_MS):
                if latency_ms <= bound:
                    buckets[i] += requests
            self._sums[key] = self._sums.get(key, 0.0) + requests * latency_ms

    def render(self) -> str:
        lines = ["# TYPE istio_requests_total counter"]
        with self._lock:
            for (workload, namespace, code), count in sorted(self._requests.items()):
                lines.append(
                    f'istio_requests_total{{{_labels(workload, namespace)},response_code="{code}"}} {count}'
                )
            lines.append("# TYPE istio_request_duration_milliseconds histogram")
            for (workload, namespace), buckets in sorted(self._buckets.items()):
                labels = _labels(workload, namespace)
                for bound, count in zip(ISTIO_BUCKETS_MS, buckets, strict=True):
                    lines.append(
                        f'istio_request_duration_milliseconds_bucket{{{labels},le="{bound}"}} {count}'
                    )
                total = self._requests.get((workload, namespace, "200"), 0.0) + self._requests.get(
                    (workload, namespace, "500"), 0.0
                )
                lines.append(f'istio_request_duration_milliseconds_bucket{{{labels},le="+Inf"}} {total}')
                lines.append(f"istio_request_duration_milliseconds_count{{{labels}}} {total}")
                lines.append(
                    f"istio_request_duration_milliseconds_sum{{{labels}}} {self._sums[(workload, namespace)]}"
                )
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _labels(workload: str, namespace: str) -> str:
    return (
        f'reporter="destination",destination_workload="{workload}",'
        f'destination_workload_namespace="{namespace}"'
    )


@dataclass
class PrometheusServer:
    """A running Prometheus; `url` is its base address (http://127.0.0.1:<port>)."""

    url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    log: Path
    _http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0))

    def query(self, promql: str, at: datetime) -> list[dict]:
        """Raw instant-query result (a helper for assertions; the product uses its own client)."""
        response = self._http.get(
            f"{self.url}/api/v1/query", params={"query": promql, "time": at.timestamp()}
        )
        response.raise_for_status()
        return response.json()["data"]["result"]

    def wait_for(self, promql: str, *, timeout: float = 15.0) -> None:
        """Wait until `promql` returns a series now (scrape mode: the first scrapes landed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.query(promql, datetime.now(UTC)):
                return
            time.sleep(0.2)
        raise TimeoutError(f"{promql!r} returned nothing within {timeout}s")

    def stop(self) -> None:
        self._http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class _Unavailable(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        body = b"prometheus is down\n"
        self.send_response(503)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


_unavailable: http.server.ThreadingHTTPServer | None = None
_unavailable_lock = threading.Lock()


def unavailable_prometheus() -> str:
    """The address of a Prometheus that is down behind its proxy: every query answers HTTP 503 at once.

    For tests whose canaries have no metrics of their own (forges, gates): only the request counts
    measured beside each step reach it, and they come back as "none". An address nothing listens
    on gives the same answers, after retrying each query (0.6 s; analysis/providers/http.py).
    One server per test process, stopped with it.
    """
    global _unavailable
    with _unavailable_lock:
        if _unavailable is None:
            _unavailable = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
            _unavailable.daemon_threads = True
            threading.Thread(target=_unavailable.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{_unavailable.server_address[1]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(server: PrometheusServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"prometheus exited with {server.process.returncode}:\n{server.log.read_text()}"
            )
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{server.url}/-/ready", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"prometheus not ready after {timeout}s:\n{server.log.read_text()}")


@contextlib.contextmanager
def running_prometheus(
    traffic: Sequence[Traffic] = (),
    *,
    workdir: Path | None = None,
    exporter: Exporter | None = None,
    step: float = 15.0,
    ready_timeout: float = 30.0,
) -> Iterator[PrometheusServer]:
    """Backfill `traffic`, start Prometheus on it (scraping `exporter` every 1s if given), stop it after."""
    for tool in ("prometheus", "promtool"):
        if shutil.which(tool) is None:
            # A missing real component is a broken setup, never a skipped test: .ci/run installs it.
            raise RuntimeError(f"{tool} is not installed: run scripts/test.sh (apt-get install prometheus)")
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="prometheus-")))
        tsdb = workdir / "tsdb"
        tsdb.mkdir(parents=True, exist_ok=True)
        if traffic:
            data = workdir / "data.om"
            data.write_text(openmetrics(traffic, step=step))
            subprocess.run(
                ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(data), str(tsdb)],
                check=True,
                capture_output=True,
                timeout=60,
            )
        config = workdir / "prometheus.yml"
        scrape = ""
        if exporter is not None:
            scrape = (
                "scrape_configs:\n"
                "  - job_name: exporter\n"
                "    scrape_interval: 1s\n"
                f"    static_configs: [{{targets: ['{exporter.target}']}}]\n"
            )
        config.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n" + scrape)
        port = free_port()
        log = workdir / "prometheus.log"
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tsdb}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=100y",
                    "--log.level=warn",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        server = PrometheusServer(f"http://127.0.0.1:{port}", process, workdir, log)
        try:
            _wait_ready(server, ready_timeout)
            yield server
        finally:
            server.stop()


@pytest.fixture
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., PrometheusServer]]:
    """Factory: `prometheus(*traffic, exporter=None) -> PrometheusServer`; all stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(
            *traffic: Traffic, exporter: Exporter | None = None, step: float = 15.0
        ) -> PrometheusServer:
            workdir = tmp_path_factory.mktemp("prometheus")
            return stack.enter_context(
                running_prometheus(traffic, workdir=workdir, exporter=exporter, step=step)
            )

        yield start


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    """A running `Exporter` for scrape mode; pass it to `prometheus(exporter=...)`."""
    served = Exporter()
    try:
        yield served
    finally:
        served.close()

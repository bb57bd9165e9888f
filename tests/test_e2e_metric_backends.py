"""End to end for every metrics backend: the reconciler drives a full promotion and a full rollback
of the istio example on a real Git repository, its one check a MetricTemplate of that backend, its
secret read from the secrets directory (`--secrets-dir`). No data never promotes.

Real servers where Debian or PyPI has one (VictoriaMetrics behind its own basic auth and TLS,
Graphite, InfluxDB, CloudWatch through moto); validated stand-ins for the SaaS-only backends
(Datadog, New Relic, Dynatrace, Splunk, Google Cloud Monitoring) and for the Kubernetes external
metrics API. Each backend is told the value the
canary's error rate has at the analysis instant; the oracle checks the tree after every commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import ConfigRepo, make_config_repo
from moto.server import ThreadedMotoServer
from test_e2e_rollout import Clock, check_invariant

from gitcanary.service.reconciler import Reconciler
from gitcanary.service.settings import Settings
from tests.metrics_servers import graphite, influx_query, influx_write, influxdb, victoria_metrics, vm_import
from tests.prometheus_server import free_port, unavailable_prometheus
from tests.test_provider_stackdriver import service_account
from tests.vendor_server import Reply, Spec, VendorServer, serve

# Real stores keep samples for a bounded time: analyse an hour ago, inside every retention.
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
GOOD, BAD = 0.2, 7.5


@dataclass
class Backend:
    """One backend as the test drives it: the template's provider and query, the secret's keys, and
    `record(value, at)` that makes the canary's error rate `value` at instant `at`."""

    provider: dict[str, Any]
    query: str
    secret: dict[str, str] = field(default_factory=dict)
    record: Callable[[float | None, datetime], None] = lambda value, at: None


def standin(
    server: VendorServer, reply: Callable[[float | None], Reply]
) -> Callable[[float | None, datetime], None]:
    def record(value: float | None, at: datetime) -> None:
        server.answer = lambda request: reply(value)

    return record


@contextmanager
def datadog(work: Path) -> Iterator[Backend]:
    spec = Spec.load("datadog/openapi-v1-query.json", "/api/v1/query")
    with _serving(VendorServer(lambda r: Reply(200, {"series": []}), spec)) as server:

        def reply(value: float | None) -> Reply:
            series = [] if value is None else [{"pointlist": [[1.0, value]]}]
            return Reply(200, {"status": "ok", "series": series})

        yield Backend(
            {"type": "datadog", "address": server.url},
            "sum:errors{service:{{ target }}}",
            {"datadog_api_key": "a", "datadog_application_key": "b"},
            standin(server, reply),
        )
        assert server.errors == []


@contextmanager
def newrelic(work: Path) -> Iterator[Backend]:
    with _serving(VendorServer(lambda r: Reply(200, {"results": []}))) as server:
        yield Backend(
            {"type": "newrelic", "address": server.url},
            "SELECT percentage(count(*), WHERE error IS true) FROM Transaction"
            " WHERE appName = '{{ target }}'",
            {"newrelic_account_id": "1234", "newrelic_query_key": "k"},
            standin(server, lambda v: Reply(200, {"results": [{"result": v}]})),
        )


@contextmanager
def dynatrace(work: Path) -> Iterator[Backend]:
    spec = Spec.load("dynatrace/openapi-metrics-query.json", "/metrics/query")
    with _serving(VendorServer(lambda r: Reply(200, {}), spec, prefix="/api/v2")) as server:

        def reply(value: float | None) -> Reply:
            data = (
                []
                if value is None
                else [{"dimensions": [], "dimensionMap": {}, "timestamps": [1], "values": [value]}]
            )
            result = [{"metricId": "m", "dataPointCountRatio": 0.1, "dimensionCountRatio": 0.1, "data": data}]
            return Reply(200, {"totalCount": 1, "resolution": "Inf", "warnings": [], "result": result})

        yield Backend(
            {"type": "dynatrace", "address": server.url},
            "builtin:service.errors.total.rate:avg",
            {"dynatrace_token": "t"},
            standin(server, reply),
        )
        assert server.errors == []


@contextmanager
def splunk(work: Path) -> Iterator[Backend]:
    with _serving(VendorServer(lambda r: Reply(200, raw=b""))) as server:

        def reply(value: float | None) -> Reply:
            data = json.dumps({"data": [{"tsId": "A", "value": value}], "logicalTimestampMs": 1})
            return Reply(200, raw=f"event: data\ndata: {data}\n\n".encode(), content_type="text/event-stream")

        yield Backend(
            {"type": "splunk", "address": server.url},
            "data('errors', filter=filter('app', '{{ target }}')).publish()",
            {"sf_token_key": "t"},
            standin(server, reply),
        )


@contextmanager
def stackdriver(work: Path) -> Iterator[Backend]:
    spec = Spec.load(
        "google-monitoring/openapi-timeseries-query.json",
        "/v3/projects/{projectsId}/timeSeries:query",
        "post",
    )
    with _serving(VendorServer(lambda r: Reply(200, {}), spec)) as server:
        server.extra["/token"] = lambda r: Reply(
            200, {"access_token": "ya29.x", "expires_in": 3600, "token_type": "Bearer"}
        )

        def reply(value: float | None) -> Reply:
            series = [] if value is None else [{"pointData": [{"values": [{"doubleValue": value}]}]}]
            return Reply(200, {"timeSeriesData": series})

        yield Backend(
            {"type": "stackdriver", "address": server.url},
            "fetch k8s_container | filter resource.container_name == '{{ target }}' | within {{ interval }}",
            {"project": "shop", "serviceAccountKey": service_account(server)},
            standin(server, reply),
        )
        assert server.errors == []


@contextmanager
def externalmetrics(work: Path) -> Iterator[Backend]:
    with _serving(VendorServer(lambda r: Reply(200, {}))) as server:

        def reply(value: float | None) -> Reply:
            items = (
                []
                if value is None
                else [{"metricName": "errors", "metricLabels": {}, "value": f"{int(value * 1000)}m"}]
            )
            return Reply(
                200,
                {
                    "kind": "ExternalMetricValueList",
                    "apiVersion": "external.metrics.k8s.io/v1beta1",
                    "items": items,
                },
            )

        yield Backend(
            {"type": "externalmetrics", "address": server.url},
            "prod/errors?labelSelector=app%3D{{ target }}",
            {"token": "cluster-token"},
            standin(server, reply),
        )
        assert all(r.headers.get("authorization") == "Bearer cluster-token" for r in server.requests)


@contextmanager
def victoriametrics(work: Path) -> Iterator[Backend]:
    auth = ("vm-user", "vm-pass")
    with victoria_metrics(work, basic_auth=auth, tls=True) as address:

        def record(value: float | None, at: datetime) -> None:
            if value is not None:
                vm_import(
                    address, [f'errors_percent{{app="backend"}} {value} {int(at.timestamp() * 1000)}'], auth
                )

        yield Backend(
            {
                "type": "prometheus",
                "address": address,
                "insecureSkipVerify": True,
                "headers": {"X-Scope-OrgID": ["shop"]},
            },
            'last_over_time(errors_percent{app="{{ target }}"}[{{ interval }}])',
            {"username": auth[0], "password": auth[1]},
            record,
        )


@contextmanager
def graphite_backend(work: Path) -> Iterator[Backend]:
    with graphite(work) as server:

        def record(value: float | None, at: datetime) -> None:
            if value is not None:
                server.send([f"app.backend.errors {value} {int(at.timestamp())}"])
                import time

                time.sleep(0.3)  # carbon takes the line asynchronously

        yield Backend(
            {"type": "graphite", "address": server.url},
            "target=app.{{ target }}.errors&from=-1min",
            {},
            record,
        )


@contextmanager
def influx_backend(work: Path) -> Iterator[Backend]:
    auth = ("admin", "influx-pw")
    with influxdb(work, auth=True) as address:
        influx_query(address, f"CREATE USER {auth[0]} WITH PASSWORD '{auth[1]}' WITH ALL PRIVILEGES")
        influx_query(address, "CREATE DATABASE canary", auth=auth)

        def record(value: float | None, at: datetime) -> None:
            if value is None:
                # InfluxQL windows run on the server's clock, not the analysis one: no traffic is no series.
                influx_query(address, "DROP SERIES FROM errors", auth=auth, db="canary")
            else:
                line = f"errors,app=backend value={value} {int(at.timestamp())}"
                influx_write(address, "canary", [line], auth)

        yield Backend(
            {"type": "influxdb", "address": address},
            'SELECT last("value") FROM "canary"."autogen"."errors" WHERE "app" = \'{{ target }}\'',
            {"username": auth[0], "password": auth[1]},
            record,
        )


@contextmanager
def cloudwatch(work: Path) -> Iterator[Backend]:
    patch = pytest.MonkeyPatch()
    patch.setenv("AWS_ACCESS_KEY_ID", "testing")
    patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("cloudwatch", region_name="eu-west-1", endpoint_url=endpoint)
    query = [
        {
            "Id": "e",
            "MetricStat": {
                "Metric": {
                    "Namespace": "App",
                    "MetricName": "Errors",
                    "Dimensions": [{"Name": "App", "Value": "{{ target }}"}],
                },
                "Period": 60,
                "Stat": "Maximum",
            },
        }
    ]

    def record(value: float | None, at: datetime) -> None:
        if value is not None:
            client.put_metric_data(
                Namespace="App",
                MetricData=[
                    {
                        "MetricName": "Errors",
                        "Dimensions": [{"Name": "App", "Value": "backend"}],
                        "Timestamp": at,
                        "Value": value,
                    }
                ],
            )

    try:
        yield Backend(
            {"type": "cloudwatch", "region": "eu-west-1", "address": endpoint}, json.dumps(query), {}, record
        )
    finally:
        server.stop()
        patch.undo()


@contextmanager
def _serving(server: VendorServer) -> Iterator[VendorServer]:
    running = serve(server)
    yield next(running)
    running.close()


BACKENDS = {
    "datadog": datadog,
    "newrelic": newrelic,
    "dynatrace": dynatrace,
    "splunk": splunk,
    "stackdriver": stackdriver,
    "victoriametrics": victoriametrics,
    "externalmetrics": externalmetrics,
    "graphite": graphite_backend,
    "influxdb": influx_backend,
    "cloudwatch": cloudwatch,
}


def configure(repo: ConfigRepo, backend: Backend) -> None:
    """The example's canary checks one templated metric of `backend`, in short steps."""
    template = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": "error-rate", "namespace": "prod"},
        "spec": {"provider": {**backend.provider, "secretRef": {"name": "metrics"}}, "query": backend.query},
    }
    if not backend.secret:
        del template["spec"]["provider"]["secretRef"]
    (repo.human / "apps/metric-templates/error-rate.yaml").write_text(json.dumps(template, indent=2))

    def analysis(doc: Any) -> None:
        spec = doc["spec"]["analysis"]
        spec.update({"threshold": 1, "stepWeight": 25, "maxWeight": 50})
        spec["metrics"] = [
            {
                "name": "error-rate",
                "templateRef": {"name": "error-rate"},
                "thresholdRange": {"max": 1},
                "interval": "1m",
            }
        ]

    repo.edit("apps/backend/canary.yaml", analysis)
    repo.commit_and_push("one metric from the backend under test")


def run_until(rec: Reconciler, clock: Clock, backend: Backend, value: float | None, phase: str) -> None:
    for _ in range(20):
        backend.record(value, clock.now)
        result = rec.tick()
        assert not result.errors and not any(r.error for r in result.reports.values()), result
        status = result.reports["prod/backend"].status
        clock.advance()
        if status is not None and status.phase.value == phase:
            return
    raise AssertionError(f"prod/backend did not reach {phase}")


PROMOTION = ["start", "advance", "advance", "promote", "finalize", "succeed"]
ROLLBACK = ["start", "advance", "rollback"]  # threshold 1: the first failed check rolls back


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    with ExitStack() as stack:
        yield stack.enter_context(BACKENDS[request.param](tmp_path_factory.mktemp(request.param)))


def test_promote_then_roll_back_then_no_data_never_promotes(backend: Backend, tmp_path: Path) -> None:
    repo = make_config_repo(tmp_path / "repo")
    configure(repo, backend)
    secrets = tmp_path / "secrets"
    (secrets / "prod" / "metrics").mkdir(parents=True)
    for key, value in backend.secret.items():
        (secrets / "prod" / "metrics" / key).write_text(value)
    settings = Settings(
        repo=str(repo.remote),
        workdir=tmp_path / "work",
        prometheus=unavailable_prometheus(),  # no metric of the canary's is on Prometheus
        settle=0,
        secrets_dir=secrets,
        # The backend under test is the operator's: credentials (and cloud identities) may go there.
        credential_endpoints=[backend.provider["address"]] if backend.provider.get("address") else [],
    )
    clock = Clock(START)
    rec = Reconciler(settings, clock=clock, sleep=lambda _: None)

    run_until(rec, clock, backend, GOOD, "Initialized")
    repo.bump("apps/backend", "6.1.1")
    run_until(rec, clock, backend, GOOD, "Succeeded")
    repo.bump("apps/backend", "6.1.2")
    run_until(rec, clock, backend, BAD, "Failed")
    clock.advance(600)  # past the last recorded point: the backends hold nothing newer
    repo.bump("apps/backend", "6.1.3")
    run_until(rec, clock, backend, None, "Failed")

    commits = repo.gitcanary_commits()
    actions = [t["Action"] for _, _, t in commits]
    assert actions == ["initialize", "initialized", *PROMOTION, *ROLLBACK, *ROLLBACK], actions
    rollbacks = [subject for _, subject, t in commits if t["Action"] == "rollback"]
    assert rollbacks[0].endswith("6.1.2 -> 6.1.1: error-rate 7.5 > 1 failed"), rollbacks
    assert "6.1.3 -> 6.1.1: error-rate no data (" in rollbacks[1], rollbacks
    # Git's desired state after the rollbacks is the promoted version.
    repo.pull()
    assert "newTag: 6.1.1" in (repo.human / "apps/backend/kustomization.yaml").read_text()
    check_invariant(repo, tmp_path, commits[-1][0], ("", "Failed", 0, "6.1.1", "6.1.1", 0, True))

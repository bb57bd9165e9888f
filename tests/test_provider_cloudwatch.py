"""CloudWatch templates through the real boto3 client against moto in server mode (a local HTTP
endpoint speaking CloudWatch's API), credentials from the standard AWS chain (here: environment)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto.server import ThreadedMotoServer

from gitcanary.analysis.providers import Limits, problems
from gitcanary.spec.models import MetricTemplate
from tests.prometheus_server import free_port
from tests.provider_checks import check, template
from tests.vendor_server import Reply, VendorServer, serve

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
REGION = "eu-west-1"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    patch = pytest.MonkeyPatch()
    patch.setenv("AWS_ACCESS_KEY_ID", "testing")
    patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    patch.delenv("AWS_PROFILE", raising=False)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    cloudwatch = boto3.client("cloudwatch", region_name=REGION, endpoint_url=endpoint)
    data = []
    for minute in range(1, 10):
        at = NOW - timedelta(minutes=minute)
        data.append(
            {
                "MetricName": "5xxErrorRate",
                "Dimensions": [{"Name": "Service", "Value": "backend"}],
                "Timestamp": at,
                "Value": 1.5,
                "Unit": "Percent",
            }
        )
    cloudwatch.put_metric_data(Namespace="App", MetricData=data)
    try:
        yield endpoint
    finally:
        server.stop()
        patch.undo()


def query(service: str) -> str:
    return json.dumps(
        [
            {
                "Id": "e",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "App",
                        "MetricName": "5xxErrorRate",
                        "Dimensions": [{"Name": "Service", "Value": service}],
                    },
                    "Period": 60,
                    "Stat": "Average",
                },
                "ReturnData": True,
            }
        ]
    )


def cw(endpoint: str, service: str = "{{ target }}", region: str | None = REGION) -> MetricTemplate:
    provider: dict[str, str] = {"type": "cloudwatch", "address": endpoint}
    if region:
        provider["region"] = region
    return template("errors", query(service), **provider)


def test_newest_value_of_the_first_result(moto_endpoint: str) -> None:
    result = check(cw(moto_endpoint), now=NOW, bounds={"max": 1})
    assert result.value == 1.5 and not result.ok, result.line


def test_no_datapoints_is_no_data(moto_endpoint: str) -> None:
    result = check(cw(moto_endpoint, "idle"), now=NOW)
    assert not result.ok and "no data (cloudwatch result has no values)" in result.line


def test_query_that_is_not_json_is_a_failed_check(moto_endpoint: str) -> None:
    subject = template("errors", "avg(5xx)", type="cloudwatch", region=REGION, address=moto_endpoint)
    result = check(subject, now=NOW)
    assert not result.ok and "cloudwatch query is not JSON" in result.line


def test_unreachable_endpoint_is_a_failed_check() -> None:
    result = check(cw(f"http://127.0.0.1:{free_port()}"), now=NOW)
    assert not result.ok and "cloudwatch unreachable" in result.line


def test_region_is_required() -> None:
    result = check(cw("http://127.0.0.1:1", region=None), now=NOW)
    assert not result.ok and "cloudwatch provider has no region" in result.line
    assert problems(template("t", query("x"), type="cloudwatch")) == [
        "spec.provider.region: cloudwatch needs a region"
    ]
    assert problems(template("t", "nope", type="cloudwatch", region=REGION)) == [
        "spec.query: cloudwatch query is not JSON: Expecting value: line 1 column 1 (char 0)"
    ]


def aws_error(code: str, message: str) -> bytes:
    # CloudWatch speaks AWS JSON 1.0 to current botocore (x-amz-target GraniteServiceVersion20100801.*).
    return f'{{"__type": "{code}", "message": "{message}"}}'.encode()


@pytest.fixture
def broken() -> Iterator[VendorServer]:
    yield from serve(VendorServer(lambda r: Reply(200, {})))


JSON10 = "application/x-amz-json-1.0"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (
            Reply(
                403,
                raw=aws_error("InvalidClientTokenId", "The security token is invalid."),
                content_type=JSON10,
            ),
            "cloudwatch InvalidClientTokenId: The security token is invalid.",
        ),
        (
            Reply(503, raw=aws_error("ServiceUnavailable", "Please retry."), content_type=JSON10),
            "cloudwatch ServiceUnavailable: Please retry.",
        ),
        (
            Reply(200, raw=b'{"MetricDataResults": []}' + b" " * 100, drip=1.0, content_type=JSON10),
            "did not answer within 4s",
        ),
    ],
    ids=["401-like", "5xx", "dripping"],
)
def test_refusals_and_timeouts_are_failed_checks(broken: VendorServer, reply: Reply, reason: str) -> None:
    patch = pytest.MonkeyPatch()
    patch.setenv("AWS_ACCESS_KEY_ID", "testing")
    patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    broken.answer = lambda r: reply
    started = datetime.now(UTC)
    try:
        result = check(cw(broken.url), now=NOW, limits=Limits(deadline=4))
    finally:
        patch.undo()
    assert not result.ok and reason in result.line, result.line
    assert datetime.now(UTC) - started < timedelta(seconds=6)

"""InfluxDB templates against Debian's InfluxDB 1.6 with auth on. That version has no Flux, so the
real server covers InfluxQL (`/query`, basic auth from the secretRef's username/password, database
named in the query); Flux (`/api/v2/query`, token and org) is covered by the annotated-CSV parser
test below on InfluxDB's documented answer format."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gitcanary.analysis.providers import NoDataError, ProviderEnv, problems
from gitcanary.analysis.providers.influxdb import _first_flux_value
from gitcanary.errors import AnalysisError
from gitcanary.spec.models import MetricTemplate
from tests.metrics_servers import influx_query, influx_write, influxdb
from tests.provider_checks import check, secrets, template

ADMIN = ("admin", "influx-admin-pw")
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with influxdb(tmp_path_factory.mktemp("influx"), auth=True) as address:
        influx_query(address, f"CREATE USER {ADMIN[0]} WITH PASSWORD '{ADMIN[1]}' WITH ALL PRIVILEGES")
        influx_query(address, "CREATE DATABASE canary", auth=ADMIN)
        lines = []
        for second in range(0, 600, 10):
            at = int((NOW - timedelta(seconds=600 - second)).timestamp())
            lines.append(f"latency,app=backend p99={300 + (second % 30)} {at}")
        influx_write(address, "canary", lines, auth=ADMIN)
        yield address


LATENCY = (
    'SELECT mean("p99") FROM "canary"."autogen"."latency" WHERE "app" = \'{{ target }}\''
    " AND time > now() - {{ interval }}"
)
ENV = ProviderEnv(secrets=secrets({"username": ADMIN[0], "password": ADMIN[1]}))


def influx_template(address: str, query: str = LATENCY) -> MetricTemplate:
    return template("latency", query, type="influxdb", address=address, secretRef={"name": "metrics"})


def test_influxql_mean_over_the_window(influx: str) -> None:
    # InfluxQL's now() is the server's clock: pin the window with explicit times instead.
    start, end = int((NOW - timedelta(minutes=5)).timestamp()), int(NOW.timestamp())
    query = (
        'SELECT mean("p99") FROM "canary"."autogen"."latency" WHERE "app" = \'{{ target }}\''
        f" AND time > {start}s AND time <= {end}s"
    )
    result = check(influx_template(influx, query), env=ENV, bounds={"max": 500})
    assert result.ok and result.value is not None and 300 <= result.value <= 330, result.line


def test_no_points_is_no_data(influx: str) -> None:
    query = 'SELECT mean("p99") FROM "canary"."autogen"."latency" WHERE "app" = \'idle\''
    result = check(influx_template(influx, query), env=ENV)
    assert not result.ok and "no data (influxdb returned no series)" in result.line


def test_wrong_password_is_a_401_check(influx: str) -> None:
    env = ProviderEnv(secrets=secrets({"username": ADMIN[0], "password": "nope-nope"}))
    result = check(influx_template(influx), env=env)
    assert not result.ok and "answered HTTP 401" in result.line and "nope-nope" not in result.line


def test_statement_error_is_a_failed_check_with_its_text(influx: str) -> None:
    result = check(influx_template(influx, "SELECT mean(p99 FROM latency"), env=ENV)
    assert not result.ok and "error parsing query" in result.line, result.line


FLUX_ANSWER = (
    "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,double,string\r\n"
    "#group,false,false,true,true,false,true\r\n"
    "#default,_result,,,,,\r\n"
    ",result,table,_start,_stop,_value,app\r\n"
    ",,0,2026-11-27T11:55:00Z,2026-11-27T12:00:00Z,312.5,backend\r\n"
    ",,1,2026-11-27T11:55:00Z,2026-11-27T12:00:00Z,999,other\r\n\r\n"
)


def test_flux_first_record_value() -> None:
    assert _first_flux_value(FLUX_ANSWER) == 312.5
    with pytest.raises(NoDataError):
        _first_flux_value("")
    with pytest.raises(NoDataError):
        _first_flux_value(FLUX_ANSWER.replace("312.5", ""))
    with pytest.raises(AnalysisError, match="flux error: unknown bucket"):
        _first_flux_value("#datatype,string,string\r\n,error,reference\r\n,unknown bucket,\r\n")


def test_problems() -> None:
    assert problems(template("t", "SELECT 1", type="influxdb")) == [
        "spec.provider.address: influxdb needs an address (Flagger refuses a template without one)"
    ]
    flux = 'from(bucket: "b") |> range(start: -5m)'
    assert problems(template("t", flux, type="influxdb", address="http://i:8086")) == [
        "spec.provider.secretRef: a Flux query needs a secret with token and org"
    ]

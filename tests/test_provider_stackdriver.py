"""Google Cloud Monitoring (`stackdriver`) through the real google-auth library: a service account
key from the secretRef is exchanged for a token at the key's `token_uri` (a local OAuth endpoint
that checks the signed JWT grant), then MQL goes to a stand-in that validates every request and
answer against `projects.timeSeries.query` as Google describes it (tests/data/google-monitoring/)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from gitcanary.analysis.providers import ProviderEnv
from gitcanary.spec.models import MetricTemplate
from tests.provider_checks import check, secrets, template
from tests.vendor_server import Reply, Request, Spec, VendorServer, serve

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
PUBLIC = KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
MQL = (
    "fetch k8s_container | metric 'istio.io/service/server/response_latencies'"
    " | filter resource.container_name == '{{ target }}' | within {{ interval }}"
    " | group_by [], [percentile(value.response_latencies, 99)]"
)


def answer(*values: dict[str, Any]) -> dict[str, Any]:
    return {
        "timeSeriesDescriptor": {
            "pointDescriptors": [{"key": "p99", "valueType": "DOUBLE", "metricKind": "GAUGE"}]
        },
        "timeSeriesData": [
            {
                "labelValues": [],
                "pointData": [
                    {
                        "values": list(values),
                        "timeInterval": {
                            "startTime": "2026-11-27T11:59:00Z",
                            "endTime": "2026-11-27T12:00:00Z",
                        },
                    }
                ],
            }
        ]
        if values
        else [],
    }


@pytest.fixture
def google() -> Iterator[VendorServer]:
    spec = Spec.load(
        "google-monitoring/openapi-timeseries-query.json",
        "/v3/projects/{projectsId}/timeSeries:query",
        "post",
    )
    server = VendorServer(lambda r: Reply(200, answer({"doubleValue": 212.5})), spec)

    def token(request: Request) -> Reply:
        form = dict(parse_qsl(request.body.decode()))
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply(400, {"error": "unsupported_grant_type"})
        try:
            # google-auth signs for Google's token endpoint whatever token_uri says, as Google expects.
            claims = jwt.decode(form["assertion"], certs=PUBLIC.decode(), audience="https://oauth2.googleapis.com/token")
        except ValueError as exc:
            return Reply(400, {"error": "invalid_grant", "error_description": str(exc)})
        if "monitoring.read" not in claims.get("scope", ""):
            return Reply(400, {"error": "invalid_scope"})
        return Reply(200, {"access_token": "ya29.test-token", "expires_in": 3600, "token_type": "Bearer"})

    server.extra["/token"] = token
    yield from serve(server)


def service_account(server: VendorServer) -> str:
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "shop-prod",
            "private_key_id": "k1",
            "private_key": PEM.decode(),
            "client_email": "gitcanary@shop-prod.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"{server.url}/token",
        }
    )


def sd(server: VendorServer) -> MetricTemplate:
    return template("p99", MQL, type="stackdriver", address=server.url, secretRef={"name": "metrics"})


def env(server: VendorServer, **extra: str) -> ProviderEnv:
    return ProviderEnv(
        secrets=secrets({"project": "shop-prod", "serviceAccountKey": service_account(server), **extra})
    )


def test_first_value_of_first_point(google: VendorServer) -> None:
    result = check(sd(google), env=env(google), bounds={"max": 500})
    assert result.ok and result.value == 212.5, result.line
    token, query = google.requests
    assert token.path == "/token"
    assert query.path == "/v3/projects/shop-prod/timeSeries:query"
    assert query.headers["authorization"] == "Bearer ya29.test-token"
    assert json.loads(query.body)["query"].endswith(
        "| within 1m | group_by [], [percentile(value.response_latencies, 99)]"
    )
    assert google.errors == []


def test_int64_values_are_numbers(google: VendorServer) -> None:
    google.answer = lambda r: Reply(200, answer({"int64Value": "42"}))
    result = check(sd(google), env=env(google))
    assert result.value == 42 and google.errors == []


@pytest.mark.parametrize("body", [answer(), {}], ids=["no-series", "empty"])
def test_no_data_never_passes(google: VendorServer, body: dict[str, Any]) -> None:
    google.answer = lambda r: Reply(200, body)
    result = check(sd(google), env=env(google))
    assert not result.ok and "no data (stackdriver returned no time series)" in result.line
    assert google.errors == []


def test_refused_key_is_a_failed_check(google: VendorServer) -> None:
    google.extra["/token"] = lambda r: Reply(
        400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    )
    result = check(sd(google), env=env(google))
    assert (
        not result.ok
        and "stackdriver credentials refused" in result.line
        and "Invalid JWT Signature" in result.line
    )
    assert "PRIVATE KEY" not in result.line


def test_project_is_required_with_a_secret_ref(google: VendorServer) -> None:
    result = check(
        sd(google), env=ProviderEnv(secrets=secrets({"serviceAccountKey": service_account(google)}))
    )
    assert not result.ok and "stackdriver secret metrics has no project" in result.line

"""Amazon CloudWatch, through `GetMetricData` with boto3 and the standard AWS credential chain.

Follows Flagger's `pkg/metrics/providers/cloudwatch.go`: `provider.region` is required, the query is
the JSON list of `MetricDataQueries` (field names as the AWS API spells them), the range is
`[at - 10 x interval, at]` with `MaxDatapoints` 20, and the value is the first value (the newest) of
the first result; no result or no value is no data. Credentials come from the environment, the
shared config files, or the pod's role (IRSA), never from the repository. `provider.address`, which
Flagger ignores here, is ignored too unless the operator allowed that endpoint (`--credential-endpoint`,
a VPC endpoint or a test server): the credential chain signs requests only for AWS's own endpoint (or
the one the operator's AWS configuration names, `AWS_ENDPOINT_URL`), or an endpoint the operator allowed.

Bounds: boto3 signs each request and gitcanary sends it (botocore's `before-send` event), through the
same bounded HTTP as every other provider: an overall deadline, the size cap counted while reading
(inflated in bounded steps when compressed), and no redirect. A worker thread still holds each call,
so botocore's own retries cannot outlast the deadline.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timedelta
from typing import Any

from gitcanary.analysis.providers.base import NoDataError, ProviderEnv, Target, utc
from gitcanary.analysis.providers.endpoints import Binding
from gitcanary.analysis.providers.http import HttpPool, fetch
from gitcanary.errors import AnalysisError
from gitcanary.redaction import register
from gitcanary.spec.models import MetricTemplateProvider

WINDOW_MULTIPLIER = 10
MAX_DATAPOINTS = 20

_SESSIONS: dict[tuple[tuple[str, str], ...], Any] = {}
_SESSIONS_LOCK = threading.Lock()


def _aws_environment() -> tuple[tuple[str, str], ...]:
    """What of the environment the AWS chain reads (keys, session token, profile, role, files)."""
    return tuple(sorted((name, value) for name, value in os.environ.items() if name.startswith("AWS_")))


def _client(**options: Any) -> Any:
    """A CloudWatch client signed with the credentials of the AWS environment as it is now.

    Not boto3's process-wide default session: a botocore session resolves the credential chain
    once and keeps the answer, so whoever made the first client in the process (another library, an
    earlier environment) would choose the identity every later one signs with. One session per AWS
    environment keeps the chain's caching (a role's refreshable credentials, the service model)
    while the identity follows the environment. Sessions are not thread-safe: clients are made
    under a lock (the clients themselves are).
    """
    import boto3

    key = _aws_environment()
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            if len(_SESSIONS) >= 8:  # an environment that keeps changing keeps few sessions
                _SESSIONS.clear()
            session = _SESSIONS[key] = boto3.session.Session()
        return session.client("cloudwatch", **options)


class CloudWatchProvider:
    def __init__(self, target: Target, env: ProviderEnv, pool: HttpPool) -> None:
        from botocore.config import Config

        region = target.spec.region
        if not region:
            raise AnalysisError("cloudwatch provider has no region")
        half = max(env.limits.deadline / 2, 1.0)
        config = Config(
            connect_timeout=half,
            read_timeout=half,
            retries={"max_attempts": 2, "mode": "standard"},
        )
        # Flagger ignores the address; gitcanary follows it only where the operator allows.
        allowed = bool(target.address) and env.endpoints.allows(target.address or "", "cloudwatch")
        self.client: Any = _client(
            region_name=region,
            endpoint_url=target.address if allowed else None,
            config=config,
            verify=not target.spec.insecure_skip_verify,
        )
        # With no address of its own, botocore resolves AWS's endpoint (or the operator's
        # AWS_ENDPOINT_URL); an address from the template is checked again on the final URL.
        self.bound: Binding | None = env.binding(target, "AWS credentials") if allowed else None
        self.limits = env.limits
        self.http = pool.client(insecure=target.spec.insecure_skip_verify)
        self.client.meta.events.register("before-send.cloudwatch", self._send)
        # The chain's secret key and session token are never in a message, even when an endpoint
        # echoes the request back in its error (the key id is named too: it is half of the pair).
        found = self.client._request_signer._credentials
        frozen = found.get_frozen_credentials() if found is not None else None
        if frozen is not None:
            register(frozen.access_key, frozen.secret_key, frozen.token)
        self.deadline = env.limits.deadline
        self.worker = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cloudwatch")

    def query(self, query: str, at: datetime, window: timedelta) -> float:
        from botocore.exceptions import BotoCoreError, ClientError

        queries = parse_query(query)
        end = utc(at)
        call = self.worker.submit(
            self.client.get_metric_data,
            MetricDataQueries=queries,
            StartTime=end - WINDOW_MULTIPLIER * window,
            EndTime=end,
            MaxDatapoints=MAX_DATAPOINTS,
        )
        try:
            answer = call.result(timeout=self.deadline)
        except FutureTimeout as exc:
            raise AnalysisError(f"cloudwatch did not answer within {self.deadline:g}s") from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise AnalysisError(
                f"cloudwatch {error.get('Code', 'error')}: {error.get('Message', '')}"
            ) from exc
        except BotoCoreError as exc:
            raise AnalysisError(f"cloudwatch request failed: {exc}") from exc
        results = answer.get("MetricDataResults")
        if not isinstance(results, list) or not results:
            raise NoDataError("cloudwatch returned no result")
        values = results[0].get("Values") or []
        if not values:
            raise NoDataError("cloudwatch result has no values")
        return float(values[0])

    def _send(self, request: Any, **_: Any) -> Any:
        """Send botocore's signed request through the bounded HTTP (see the module's docstring)."""
        from botocore.awsrequest import AWSResponse

        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        if isinstance(body, str):
            body = body.encode()
        response = fetch(
            self.http,
            request.method,
            request.url,
            headers={k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()},
            content=body or None,
            limits=self.limits,
            what="cloudwatch",
            bound=self.bound,
        )
        return AWSResponse(request.url, response.status_code, dict(response.headers), _Raw(response.content))

    def close(self) -> None:
        self.worker.shutdown(wait=False, cancel_futures=True)
        self.client.close()


class _Raw:
    """What botocore reads an `AWSResponse`'s body from: one chunk, already read within the cap."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    def stream(self, **_: Any) -> Any:
        yield self.content


def parse_query(query: str) -> list[dict[str, Any]]:
    try:
        queries = json.loads(query)
    except ValueError as exc:
        raise AnalysisError(f"cloudwatch query is not JSON: {exc}") from exc
    if not isinstance(queries, list) or not queries or not all(isinstance(q, dict) for q in queries):
        raise AnalysisError("cloudwatch query must be a JSON list of MetricDataQuery objects")
    return queries


def build(target: Target, env: ProviderEnv, pool: HttpPool) -> CloudWatchProvider:
    return CloudWatchProvider(target, env, pool)


def problems(spec: MetricTemplateProvider, query: str) -> list[str]:
    found = [] if spec.region else ["spec.provider.region: cloudwatch needs a region"]
    if "{{" not in query:
        try:
            parse_query(query)
        except AnalysisError as exc:
            found.append(f"spec.query: {exc}")
    return found


def warnings(spec: MetricTemplateProvider, query: str) -> list[str]:
    if spec.address:
        return [
            "spec.provider.address: cloudwatch ignores it (as Flagger does) and queries AWS's endpoint, "
            "unless the operator allows that endpoint with --credential-endpoint"
        ]
    return []

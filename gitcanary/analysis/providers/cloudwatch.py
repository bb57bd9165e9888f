"""Amazon CloudWatch, through `GetMetricData` with boto3 and the standard AWS credential chain.

Follows Flagger's `pkg/metrics/providers/cloudwatch.go`: `provider.region` is required, the query is
the JSON list of `MetricDataQueries` (field names as the AWS API spells them), the range is
`[at - 10 x interval, at]` with `MaxDatapoints` 20, and the value is the first value (the newest) of
the first result; no result or no value is no data. Credentials come from the environment, the
shared config files, or the pod's role (IRSA), never from the repository. `provider.address`, which
Flagger ignores here, is used as the endpoint URL when set (a VPC endpoint, or a test server).

Bounds: boto3's timeouts are per read (a server that drips bytes never trips them), so each call
runs in a worker thread and the check fails when the deadline passes; the abandoned call ends on its
own. boto3 reads the whole answer itself, so the size cap does not apply here; an answer holds at
most 20 datapoints per query.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timedelta
from typing import Any

from gitcanary.analysis.providers.base import NoDataError, ProviderEnv, Target, utc
from gitcanary.analysis.providers.http import HttpPool
from gitcanary.errors import AnalysisError
from gitcanary.spec.models import MetricTemplateProvider

WINDOW_MULTIPLIER = 10
MAX_DATAPOINTS = 20


class CloudWatchProvider:
    def __init__(self, target: Target, env: ProviderEnv) -> None:
        import boto3
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
        self.client: Any = boto3.client(
            "cloudwatch",
            region_name=region,
            endpoint_url=target.address or None,
            config=config,
            verify=not target.spec.insecure_skip_verify,
        )
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

    def close(self) -> None:
        self.worker.shutdown(wait=False, cancel_futures=True)
        self.client.close()


def parse_query(query: str) -> list[dict[str, Any]]:
    try:
        queries = json.loads(query)
    except ValueError as exc:
        raise AnalysisError(f"cloudwatch query is not JSON: {exc}") from exc
    if not isinstance(queries, list) or not queries or not all(isinstance(q, dict) for q in queries):
        raise AnalysisError("cloudwatch query must be a JSON list of MetricDataQuery objects")
    return queries


def build(target: Target, env: ProviderEnv, pool: HttpPool) -> CloudWatchProvider:
    return CloudWatchProvider(target, env)


def problems(spec: MetricTemplateProvider, query: str) -> list[str]:
    found = [] if spec.region else ["spec.provider.region: cloudwatch needs a region"]
    if "{{" not in query:
        try:
            parse_query(query)
        except AnalysisError as exc:
            found.append(f"spec.query: {exc}")
    return found

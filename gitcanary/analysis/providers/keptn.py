"""Keptn: the value of a `KeptnMetric` (metrics.keptn.sh/v1beta1), read through the cluster observer.

Follows Flagger's `pkg/metrics/providers/keptn.go` for `keptnmetric/<namespace>/<name>` queries
(lower-cased, `keptnmetrics` accepted too): the value is `status.value` parsed as a number; a
KeptnMetric without one is no data. Flagger's `analysis/...` queries create a Keptn `Analysis` object
and wait for it; gitcanary never writes to the cluster (its RBAC has no write verbs), so such a query
is a failed check saying so. The read uses the Kubernetes client of `--cluster`; without cluster
access every keptn check fails with that reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from gitcanary.analysis.providers.base import NoDataError, ProviderEnv, Target
from gitcanary.analysis.providers.http import HttpPool, read_urllib3
from gitcanary.errors import AnalysisError
from gitcanary.spec.models import MetricTemplateProvider

GROUP, VERSION, PLURAL = "metrics.keptn.sh", "v1beta1", "keptnmetrics"


def parse_query(query: str) -> tuple[str, str]:
    """(namespace, name) of a `keptnmetric/<namespace>/<name>` query."""
    parts = query.strip().lower().split("/")
    if len(parts) < 3 or not parts[1] or not parts[2]:
        raise AnalysisError("keptn query must be keptnmetric/<namespace>/<name>")
    if parts[0] in ("analysis", "analyses"):
        raise AnalysisError(
            "keptn analysis queries create objects in the cluster; gitcanary only reads "
            "(use keptnmetric/<namespace>/<name>)"
        )
    if parts[0] not in ("keptnmetric", PLURAL):
        raise AnalysisError(f"keptn query kind {parts[0]!r} is not keptnmetric")
    return parts[1], parts[2]


class KeptnProvider:
    def __init__(self, env: ProviderEnv) -> None:
        if env.kube is None:
            raise AnalysisError("keptn needs cluster access (--cluster) to read KeptnMetrics")
        self.api = env.kube  # the cluster observer's ApiClient
        self.deadline = env.limits.deadline
        self.limits = env.limits

    def query(self, query: str, at: datetime, window: timedelta) -> float:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        namespace, name = parse_query(query)
        try:
            # A plain GET of the object, its answer read in bounded steps (the Kubernetes client's
            # typed call would read it whole).
            ns, obj = quote(namespace, safe=""), quote(name, safe="")
            path = f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}/{obj}"
            method, url, headers, body, post = self.api.param_serialize(
                "GET", path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
            )
            response = self.api.call_api(method, url, headers, body, post, _request_timeout=self.deadline)
            response.data = read_urllib3(response.response, self.limits, f"KeptnMetric {namespace}/{name}")
            found: Any = self.api.response_deserialize(response, {"200": "object"}).data
        except ApiException as exc:
            raise AnalysisError(f"KeptnMetric {namespace}/{name}: HTTP {exc.status} {exc.reason}") from exc
        except HTTPError as exc:
            raise AnalysisError(f"KeptnMetric {namespace}/{name}: {exc}") from exc
        status = found.get("status") if isinstance(found, dict) else None
        raw = status.get("value") if isinstance(status, dict) else None
        if raw in (None, ""):
            raise NoDataError(f"KeptnMetric {namespace}/{name} has no status.value")
        try:
            return float(raw)
        except (TypeError, ValueError) as exc:
            raise AnalysisError(f"KeptnMetric {namespace}/{name} value {raw!r:.40} is not a number") from exc

    def close(self) -> None:
        pass


def build(target: Target, env: ProviderEnv, pool: HttpPool) -> KeptnProvider:
    return KeptnProvider(env)


def problems(spec: MetricTemplateProvider, query: str) -> list[str]:
    if "{{" in query:
        return []
    try:
        parse_query(query)
    except AnalysisError as exc:
        return [f"spec.query: {exc}"]
    return []

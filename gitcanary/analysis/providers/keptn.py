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

from gitcanary.analysis.providers.base import NoDataError, ProviderEnv, Target
from gitcanary.analysis.providers.http import HttpPool
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
        from kubernetes import client

        self.api = client.CustomObjectsApi(env.kube)
        self.deadline = env.limits.deadline

    def query(self, query: str, at: datetime, window: timedelta) -> float:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        namespace, name = parse_query(query)
        try:
            found: Any = self.api.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _request_timeout=self.deadline
            )
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

"""Kubernetes external metrics (`external.metrics.k8s.io/v1beta1`), the API KEDA, Datadog's cluster
agent or the Prometheus adapter serve inside a cluster.

Follows Flagger's `pkg/metrics/providers/externalmetrics.go`: the query is
`<namespace>/<metricName>?labelSelector=<url-encoded selector>` (namespace `default` when omitted),
the value is the first item's `value` (a Kubernetes quantity such as `1500m`), and no item is no
data. The request goes through the Kubernetes client of `--cluster`; `provider.address` replaces
its API server, a `secretRef` key `token` its bearer token, and `insecureSkipVerify` its TLS
verification, as in Flagger; but the cluster's own credentials go only to its API server or to an
address the operator allowed (`--credential-endpoint`), and a secretRef's token likewise.
Reading is a GET: gitcanary's RBAC needs `get`/`list` on
`external.metrics.k8s.io` and nothing else.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from gitcanary.analysis.providers.base import Credentials, NoDataError, ProviderEnv, Target
from gitcanary.analysis.providers.http import HttpPool, read_urllib3, redact_url
from gitcanary.errors import AnalysisError
from gitcanary.spec.models import MetricTemplateProvider

GROUP_VERSION = "external.metrics.k8s.io/v1beta1"


def parse_query(query: str) -> tuple[str, str, str]:
    """(namespace, metric name, label selector) of `<namespace>/<metric>?labelSelector=...`."""
    split = urlsplit("dummy:///" + query.strip())
    parts = split.path.lstrip("/").split("/")
    if len(parts) > 2:
        raise AnalysisError("externalmetrics query must be <namespace>/<metricName>?labelSelector=...")
    namespace = parts[0] if len(parts) == 2 and parts[0] else "default"
    name = parts[-1]
    if not name:
        raise AnalysisError("externalmetrics query has no metric name")
    selector = (parse_qs(split.query).get("labelSelector") or [""])[0]
    return namespace, name, selector


class ExternalMetricsProvider:
    def __init__(self, target: Target, env: ProviderEnv) -> None:
        from kubernetes import client

        if env.kube is None and not target.address:
            raise AnalysisError("externalmetrics needs cluster access (--cluster) or provider.address")
        # The cluster's own credentials (service-account token, client certificate) go only to its
        # API server or to an address the operator allowed; a repository-chosen one gets none.
        allowed = not target.address or env.endpoints.allows(target.address, "externalmetrics")
        if env.kube is not None and allowed:
            configuration = copy.copy(env.kube.configuration)
        else:
            configuration = client.Configuration()
        if target.address:
            configuration.host = target.address.rstrip("/")
        if target.spec.insecure_skip_verify:
            configuration.verify_ssl = False
        credentials = Credentials(target, env.secrets)
        token = credentials.get("token") if credentials.present else None
        if token:
            if target.address:
                env.binding(target, "the secretRef's token").check(target.address)
            configuration.api_key = {"authorization": token}
            configuration.api_key_prefix = {"authorization": "Bearer"}
        self.api = client.ApiClient(configuration)
        self.what = f"external metrics API at {redact_url(configuration.host)}"
        self.deadline = env.limits.deadline
        self.limits = env.limits

    def query(self, query: str, at: datetime, window: timedelta) -> float:
        from kubernetes.client.exceptions import ApiException
        from kubernetes.utils import parse_quantity
        from urllib3.exceptions import HTTPError

        namespace, name, selector = parse_query(query)
        path = f"/apis/{GROUP_VERSION}/namespaces/{quote(namespace, safe='')}/{quote(name, safe='')}"
        try:
            method, url, headers, body, post = self.api.param_serialize(
                "GET",
                path,
                query_params=[("labelSelector", selector)] if selector else [],
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            response = self.api.call_api(method, url, headers, body, post, _request_timeout=self.deadline)
            # The answer is read in bounded steps (the Kubernetes client would read it whole).
            response.data = read_urllib3(response.response, self.limits, self.what)  # type: ignore[assignment]
            found: Any = self.api.response_deserialize(response, {"200": "object"}).data
        except ApiException as exc:
            raise AnalysisError(f"{self.what} answered HTTP {exc.status} {exc.reason} for {name}") from exc
        except HTTPError as exc:
            raise AnalysisError(f"{self.what} unreachable: {exc}") from exc
        items = found.get("items") if isinstance(found, dict) else None
        if not isinstance(items, list):
            raise AnalysisError(f"{self.what} answered something that is not an ExternalMetricValueList")
        if not items:
            raise NoDataError(f"no external metric {namespace}/{name} matches")
        raw = items[0].get("value") if isinstance(items[0], dict) else None
        try:
            return float(parse_quantity(raw))
        except (TypeError, ValueError) as exc:
            raise AnalysisError(f"external metric value {raw!r:.40} is not a quantity") from exc

    def close(self) -> None:
        self.api.close()


def build(target: Target, env: ProviderEnv, pool: HttpPool) -> ExternalMetricsProvider:
    return ExternalMetricsProvider(target, env)


def problems(spec: MetricTemplateProvider, query: str) -> list[str]:
    if "{{" in query:
        return []
    try:
        parse_query(query)
    except AnalysisError as exc:
        return [f"spec.query: {exc}"]
    return []

"""Keptn templates read a KeptnMetric's `status.value` through the real kubernetes client against
kmock (objects checked against Keptn's CRD), read-only as every cluster access of gitcanary is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from gitcanary.analysis.providers import ProviderEnv, problems
from tests.kube_emulator import KEPTN_METRICS, Emulator, running_emulator
from tests.provider_checks import check, template


@pytest.fixture(scope="module")
def cluster() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


def keptn_metric(name: str, value: str | None) -> dict[str, Any]:
    metric: dict[str, Any] = {
        "apiVersion": "metrics.keptn.sh/v1beta1",
        "kind": "KeptnMetric",
        "metadata": {"name": name, "namespace": "keptn-metrics"},
        "spec": {"provider": {"name": "prometheus"}, "query": "sum(up)", "fetchIntervalSeconds": 10},
    }
    if value is not None:
        metric["status"] = {"value": value, "rawValue": "", "lastUpdated": "2026-11-27T12:00:00Z"}
    return metric


def env_for(cluster: Emulator) -> ProviderEnv:
    configuration = client.Configuration()
    configuration.host = cluster.url
    return ProviderEnv(kube=client.ApiClient(configuration))


def test_keptn_metric_value(cluster: Emulator) -> None:
    cluster.put(KEPTN_METRICS, keptn_metric("error-rate", "0.75"))
    subject = template("k", "keptnmetric/keptn-metrics/error-rate", type="keptn")
    result = check(subject, env=env_for(cluster), bounds={"max": 1})
    assert result.ok and result.value == 0.75, result.line
    cluster.assert_read_only()


def test_metric_without_value_is_no_data(cluster: Emulator) -> None:
    cluster.put(KEPTN_METRICS, keptn_metric("fresh", None))
    result = check(template("k", "keptnmetric/keptn-metrics/fresh", type="keptn"), env=env_for(cluster))
    assert not result.ok and "no data (KeptnMetric keptn-metrics/fresh has no status.value)" in result.line


def test_missing_metric_is_a_404_check(cluster: Emulator) -> None:
    result = check(template("k", "KeptnMetric/keptn-metrics/absent", type="keptn"), env=env_for(cluster))
    assert not result.ok and "KeptnMetric keptn-metrics/absent: HTTP 404" in result.line


def test_analysis_queries_are_refused_since_they_write(cluster: Emulator) -> None:
    result = check(template("k", "analysis/keptn-metrics/ad/1m", type="keptn"), env=env_for(cluster))
    assert not result.ok and "gitcanary only reads" in result.line
    assert problems(template("k", "analysis/ns/ad", type="keptn")) == [
        "spec.query: keptn analysis queries create objects in the cluster; gitcanary only reads "
        "(use keptnmetric/<namespace>/<name>)"
    ]


def test_without_cluster_access_the_check_says_so() -> None:
    result = check(template("k", "keptnmetric/ns/m", type="keptn"))
    assert not result.ok and "keptn needs cluster access (--cluster)" in result.line


def test_an_answer_over_the_size_cap_is_a_failed_check_read_only_to_the_cap(cluster: Emulator) -> None:
    """The KeptnMetric is read through the Kubernetes client in bounded steps: an object larger
    than the provider's byte cap is a failed check naming the cap, never read whole."""
    from dataclasses import replace

    from gitcanary.analysis.providers.base import Limits

    big = keptn_metric("huge", "0.5")
    big["metadata"]["annotations"] = {"padding": "x" * 200_000}
    cluster.put(KEPTN_METRICS, big)
    subject = template("k", "keptnmetric/keptn-metrics/huge", type="keptn")
    env = replace(env_for(cluster), limits=Limits(max_bytes=50_000))
    result = check(subject, env=env, bounds={"max": 1})
    assert not result.ok and "50000-byte cap" in result.line, result.line
    roomy = replace(env_for(cluster), limits=Limits(max_bytes=1_000_000))
    assert check(subject, env=roomy, bounds={"max": 1}).value == 0.5

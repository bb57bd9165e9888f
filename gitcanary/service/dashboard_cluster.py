"""What the dashboard shows of the cluster: for one canary, the images and pods of its Deployment and of
its primary (`<target>-primary`). Read-only (get/list), like the reconciler's observer.

Each question the API cannot answer becomes a line on the card (`cluster API: HTTP 403 Forbidden`),
never an error page: the cluster is an addition to what Git says, not a condition for the page. Pods
are listed with the Deployment's `matchLabels` as a label selector, then filtered again here, so a
pod the selector does not match is never shown whatever the API server answers.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException, OpenApiException
from urllib3.exceptions import HTTPError

TIMEOUT = 5.0  # seconds per API call: a slow API delays one page, never the reconciler
UNANSWERED = (ApiException, OpenApiException, HTTPError, OSError, ValueError)


@dataclass(frozen=True)
class Pod:
    name: str
    phase: str
    ready: bool
    images: tuple[str, ...]
    restarts: int = 0


@dataclass(frozen=True)
class Workload:
    """One Deployment as the cluster reports it (or why it could not be read)."""

    name: str
    images: tuple[str, ...] = ()
    desired: int = 0
    ready: int = 0
    pods: tuple[Pod, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class Workloads:
    canary: Workload
    primary: Workload


def _short(exc: Exception) -> str:
    if isinstance(exc, ApiException):
        return f"cluster API: HTTP {exc.status} {exc.reason}"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"cluster API unreachable: {text[:200]}"


def _images(containers: list[Any] | None) -> tuple[str, ...]:
    return tuple(str(c.image) for c in containers or [] if getattr(c, "image", None))


def _matches(labels: dict[str, str] | None, selector: dict[str, str]) -> bool:
    return bool(selector) and all((labels or {}).get(k) == v for k, v in selector.items())


class WorkloadReader:
    """Reads canaries' workloads through `api`, each answer kept `ttl` seconds (a page of many
    canaries, reloaded every few seconds, asks the API once per canary per `ttl`)."""

    def __init__(self, api: client.ApiClient, ttl: float = 5.0) -> None:
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[float, Workloads]] = {}

    def read(self, namespace: str, target: str) -> Workloads:
        key = (namespace, target)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.ttl:
                return hit[1]
        found = Workloads(self._workload(namespace, target), self._workload(namespace, f"{target}-primary"))
        with self._lock:
            self._cache[key] = (time.monotonic(), found)
        return found

    def _workload(self, namespace: str, name: str) -> Workload:
        try:
            deployment = self.apps.read_namespaced_deployment(name, namespace, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return Workload(name, error=f"deployment {namespace}/{name} not found")
            return Workload(name, error=_short(exc))
        except UNANSWERED as exc:
            return Workload(name, error=_short(exc))
        spec, status = deployment.spec, deployment.status
        template = spec.template.spec if spec and spec.template else None
        images = _images(template.containers if template else None)
        desired = spec.replicas if spec and spec.replicas is not None else 1
        ready = (status.ready_replicas or 0) if status else 0
        selector = dict((spec.selector.match_labels or {}) if spec and spec.selector else {})
        if not selector:
            return Workload(name, images, desired, ready, error="no matchLabels: pods not listed")
        try:
            listed = self.core.list_namespaced_pod(
                namespace,
                label_selector=",".join(f"{k}={v}" for k, v in sorted(selector.items())),
                _request_timeout=TIMEOUT,
            )
        except UNANSWERED as exc:
            return Workload(name, images, desired, ready, error=f"pods: {_short(exc)}")
        pods = []
        for pod in listed.items or []:
            meta = pod.metadata
            if meta is None or not _matches(meta.labels, selector):
                continue
            statuses = (pod.status.container_statuses if pod.status else None) or []
            pods.append(
                Pod(
                    name=str(meta.name),
                    phase=str((pod.status.phase if pod.status else None) or "Unknown"),
                    ready=bool(statuses) and all(s.ready for s in statuses),
                    images=_images(pod.spec.containers if pod.spec else None),
                    restarts=sum(int(s.restart_count or 0) for s in statuses),
                )
            )
        return Workload(name, images, desired, ready, tuple(sorted(pods, key=lambda p: p.name)))

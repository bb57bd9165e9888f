"""Mounts `/metrics` and `/readyz` of a monitored reconciler on `run`'s HTTP router."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import make_wsgi_app

from gitcanary.service.http import Router

if TYPE_CHECKING:
    from gitcanary.service.reconciler import Reconciler


def mount_telemetry(router: Router, reconciler: Reconciler) -> None:
    from gitcanary.service.instrumented import MonitoredReconciler

    if isinstance(reconciler, MonitoredReconciler):
        router.mount("/metrics", make_wsgi_app(reconciler.metrics.registry))
        router.mount("/readyz", reconciler.readiness.app())

"""kmock's Kubernetes emulator on a loopback port, for the real `kubernetes` client to talk to.

kmock is asyncio (aiohttp); the client gitcanary uses is synchronous. So the emulator runs on an
event loop in a background thread, and the test thread changes what it serves through that loop.
Every object seeded here is checked against its schema first (Flux's and Fleet's CRDs from
tests/data/crds, built-in kinds with kubernetes-validate): the emulator stores whatever it is
given, so the shapes must be proven to be the real ones.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kmock
from oracle import schema_problems

KUSTOMIZATIONS = "kustomize.toolkit.fluxcd.io/v1/kustomizations"
GITREPOS = "fleet.cattle.io/v1alpha1/gitrepos"
BUNDLES = "fleet.cattle.io/v1alpha1/bundles"
DEPLOYMENTS = "apps/v1/deployments"
KEPTN_METRICS = "metrics.keptn.sh/v1beta1/keptnmetrics"
KINDS = {
    KUSTOMIZATIONS: "Kustomization",
    GITREPOS: "GitRepo",
    BUNDLES: "Bundle",
    DEPLOYMENTS: "Deployment",
    KEPTN_METRICS: "KeptnMetric",
}
CONDITION_TIME = "2026-11-21T23:00:00Z"


class Emulator:
    """A running emulator: `url` for a client, `put`/`delete` to change what the cluster reports."""

    def __init__(self, emulator: kmock.KubernetesEmulator, url: str, loop: asyncio.AbstractEventLoop) -> None:
        self.emulator = emulator
        self.url = url
        self.loop = loop

    def _on_loop(self, change: Any) -> None:
        async def run() -> None:
            change()

        asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    def put(self, resource: str, obj: dict[str, Any]) -> None:
        problems = schema_problems(obj)
        assert not problems, problems
        meta = obj["metadata"]
        key = (resource, meta.get("namespace"), meta["name"])
        self._on_loop(lambda: self.emulator.objects.__setitem__(key, obj))

    def requests(self) -> list[tuple[str, str]]:
        """(HTTP method, path) of every request the emulator served so far."""
        return [(str(r.method.value), r.url.path) for r in list(self.emulator)]

    def assert_read_only(self) -> None:
        """gitcanary never writes to the cluster: every request it made was a GET."""
        served = self.requests()
        assert served, "no request reached the emulator"
        writes = [request for request in served if request[0] != "GET"]
        assert not writes, writes

    def clear(self) -> None:
        """Forget every object (one emulator serves a whole test module)."""

        def forget() -> None:
            for key in list(self.emulator.objects.keys()):
                del self.emulator.objects[key]

        self._on_loop(forget)

    def delete(self, resource: str, namespace: str, name: str) -> None:
        self._on_loop(lambda: self.emulator.objects.__delitem__((resource, namespace, name)))

    def kubeconfig(self, directory: Path) -> Path:
        """A kubeconfig pointing at the emulator, as `gitcanary run --kubeconfig` reads one."""
        path = directory / "kubeconfig"
        path.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: emulator\n"
            f"clusters:\n- name: emulator\n  cluster:\n    server: {self.url}\n"
            "users:\n- name: reader\n  user:\n    token: read-only\n"
            "contexts:\n- name: emulator\n  context:\n    cluster: emulator\n    user: reader\n"
        )
        return path


@contextmanager
def running_emulator(kinds: dict[str, str] | None = None) -> Iterator[Emulator]:
    """The emulator serving KINDS, and `kinds` (resource -> kind) too when given."""
    started = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        emulator = kmock.KubernetesEmulator()
        for resource, kind in {**KINDS, **(kinds or {})}.items():
            emulator.resources[resource] = {
                "kind": kind,
                "namespaced": True,
                "verbs": ["get", "list", "watch"],
            }
        async with emulator, kmock.Server(emulator) as server:
            box["stop"] = asyncio.Event()
            box["emulator"] = Emulator(emulator, str(server.url).rstrip("/"), asyncio.get_running_loop())
            started.set()
            await box["stop"].wait()

    def thread_main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # surfaced to the test thread below
            box["error"] = exc
            started.set()

    thread = threading.Thread(target=thread_main, name="kmock", daemon=True)
    thread.start()
    if not started.wait(timeout=20) or "error" in box:
        raise RuntimeError(f"kmock emulator did not start: {box.get('error')}")
    emulator: Emulator = box["emulator"]
    try:
        yield emulator
    finally:
        emulator.loop.call_soon_threadsafe(box["stop"].set)
        thread.join(timeout=10)


# -- objects shaped like the real controllers' (checked against the CRDs on `put`) -------------


def condition(kind: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message or reason,
        "lastTransitionTime": CONDITION_TIME,
    }


def flux_kustomization(
    name: str,
    path: str,
    revision: str | None,
    *,
    namespace: str = "flux-system",
    branch: str = "main",
    generation: int = 1,
    observed: int = 1,
    ready: bool = True,
) -> dict[str, Any]:
    """A kustomize-controller Kustomization after it applied `revision` (None: never applied)."""
    status: dict[str, Any] = {
        "observedGeneration": observed,
        "conditions": [
            condition(
                "Ready", "True", "ReconciliationSucceeded", f"Applied revision: {branch}@sha1:{revision}"
            )
            if ready
            else condition("Ready", "False", "HealthCheckFailed", "health check failed after 2m0s")
        ],
    }
    if revision is not None:
        status["lastAppliedRevision"] = f"{branch}@sha1:{revision}"
        status["lastAttemptedRevision"] = f"{branch}@sha1:{revision}"
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace, "generation": generation},
        "spec": {
            "interval": "10m",
            "path": path,
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
        },
        "status": status,
    }


def fleet_gitrepo(
    name: str, commit: str | None, *, paths: list[str], branch: str = "main", namespace: str = "fleet-local"
) -> dict[str, Any]:
    status: dict[str, Any] = {"observedGeneration": 1}
    if commit is not None:
        status["commit"] = commit
    return {
        "apiVersion": "fleet.cattle.io/v1alpha1",
        "kind": "GitRepo",
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {"repo": "https://git.example.com/config.git", "branch": branch, "paths": paths},
        "status": status,
    }


def fleet_bundle(
    name: str, repo: str, commit: str, *, ready: int, desired: int = 1, namespace: str = "fleet-local"
) -> dict[str, Any]:
    return {
        "apiVersion": "fleet.cattle.io/v1alpha1",
        "kind": "Bundle",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"fleet.cattle.io/repo-name": repo, "fleet.cattle.io/commit": commit},
        },
        "spec": {"resources": [{"name": "deployment.yaml", "content": "kind: Deployment"}]},
        "status": {"summary": {"ready": ready, "desiredReady": desired}},
    }


def deployment(
    name: str,
    *,
    namespace: str = "prod",
    replicas: int = 2,
    updated: int | None = None,
    ready: int | None = None,
    total: int | None = None,
    generation: int = 1,
    observed: int | None = None,
    unavailable_since: str | None = None,
    deadline_exceeded: bool = False,
) -> dict[str, Any]:
    """A Deployment as the deployment controller reports it; by default fully rolled out."""
    updated = replicas if updated is None else updated
    ready = updated if ready is None else ready
    conditions = []
    if unavailable_since is not None:
        available = condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
        available["lastUpdateTime"] = available["lastTransitionTime"] = unavailable_since
        conditions.append(available)
    else:
        conditions.append(
            condition("Available", "True", "MinimumReplicasAvailable") | {"lastUpdateTime": CONDITION_TIME}
        )
    progressing = (
        condition(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{name}-7c9d" has timed out progressing.',
        )
        if deadline_exceeded
        else condition("Progressing", "True", "NewReplicaSetAvailable")
    )
    conditions.append(progressing | {"lastUpdateTime": CONDITION_TIME})
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "generation": generation},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "ghcr.io/stefanprodan/podinfo:6.1.1"}]},
            },
        },
        "status": {
            "observedGeneration": generation if observed is None else observed,
            "replicas": replicas if total is None else total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": conditions,
        },
    }

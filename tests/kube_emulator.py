"""kmock's Kubernetes emulator on a loopback port, for the real `kubernetes` client to talk to.

kmock is asyncio (aiohttp); the client gitcanary uses is synchronous. So the emulator runs on an
event loop in a background thread, and the test thread changes what it serves through that loop.
Every object seeded here is checked against its schema first (Flux's and Fleet's CRDs from
tests/data/crds, built-in kinds with kubernetes-validate): the emulator stores whatever it is
given, so the shapes must be proven to be the real ones.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp.web
import kmock
from oracle import schema_problems

KUSTOMIZATIONS = "kustomize.toolkit.fluxcd.io/v1/kustomizations"
GITREPOS = "fleet.cattle.io/v1alpha1/gitrepos"
BUNDLES = "fleet.cattle.io/v1alpha1/bundles"
DEPLOYMENTS = "apps/v1/deployments"
KEPTN_METRICS = "metrics.keptn.sh/v1beta1/keptnmetrics"
APPLICATIONS = "argoproj.io/v1alpha1/applications"
KINDS = {
    APPLICATIONS: "Application",
    KUSTOMIZATIONS: "Kustomization",
    GITREPOS: "GitRepo",
    BUNDLES: "Bundle",
    DEPLOYMENTS: "Deployment",
    KEPTN_METRICS: "KeptnMetric",
}
CONDITION_TIME = "2026-11-21T23:00:00Z"
LEASES = ("coordination.k8s.io", "v1", "leases")


class LeasingEmulator(kmock.KubernetesEmulator):  # type: ignore[misc]
    """kmock's emulator plus coordination.k8s.io/v1 Leases as the API server keeps them.

    kmock stores objects as merged JSON and knows no resourceVersion, and a PUT is not an action to
    it. The API server's optimistic concurrency is what leader election rests on, so Leases are
    served here: every write gets a new resourceVersion, and a PUT whose metadata.resourceVersion is
    not the stored one is refused with 409 Conflict (as is a POST of a name that exists). `writes`
    keeps every accepted write, in order, for the tests.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.leases: dict[tuple[str, str], dict[str, Any]] = {}
        self.lease_writes: list[tuple[str, str, dict[str, Any]]] = []  # (method, name, object)
        self.lease_version = 0

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        resource = request.resource
        if resource is None or (resource.group, resource.version, resource.plural) != LEASES:
            return await super()._handle(request)
        method = str(request.method.value)
        namespace, name = request.namespace, request.name
        # No await below until the response: the check and the write are one step on the loop.
        if method == "GET" and name is None:
            items = [copy.deepcopy(v) for (ns, _), v in self.leases.items() if namespace in (None, ns)]
            return aiohttp.web.json_response(
                {
                    "kind": "LeaseList",
                    "apiVersion": "coordination.k8s.io/v1",
                    "metadata": {"resourceVersion": str(self.lease_version)},
                    "items": items,
                }
            )
        if method == "GET":
            if (namespace, name) not in self.leases:
                return _status(404, "NotFound", f'leases.coordination.k8s.io "{name}" not found')
            return aiohttp.web.json_response(self.leases[namespace, name])
        body = request.data if isinstance(request.data, dict) else {}
        meta = body.setdefault("metadata", {})
        if method == "POST":
            name = meta.get("name")
            if (namespace, name) in self.leases:
                return _status(409, "AlreadyExists", f'leases.coordination.k8s.io "{name}" already exists')
            meta["creationTimestamp"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif method == "PUT":
            stored = self.leases.get((namespace, name))
            if stored is None:
                return _status(404, "NotFound", f'leases.coordination.k8s.io "{name}" not found')
            if meta.get("resourceVersion") != stored["metadata"]["resourceVersion"]:
                return _status(
                    409,
                    "Conflict",
                    f"Operation cannot be fulfilled on leases.coordination.k8s.io "
                    f'"{name}": the object has been modified; please apply your changes to the '
                    "latest version and try again",
                )
        else:
            return _status(405, "MethodNotAllowed", f"{method} on leases is not served here")
        self.lease_version += 1
        meta.update(name=name, namespace=namespace, resourceVersion=str(self.lease_version))
        body.update(apiVersion="coordination.k8s.io/v1", kind="Lease")
        self.leases[namespace, name] = body
        self.lease_writes.append((method, str(name), copy.deepcopy(body)))
        return aiohttp.web.json_response(body, status=201 if method == "POST" else 200)


def _status(code: int, reason: str, message: str) -> aiohttp.web.StreamResponse:
    return aiohttp.web.json_response(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        },
        status=code,
    )


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

    def leases(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every Lease as stored now, by (namespace, name)."""
        box: dict[str, Any] = {}

        def read() -> None:
            box["leases"] = copy.deepcopy(self.emulator.leases)

        self._on_loop(read)
        return dict(box["leases"])

    def lease_writes(self) -> list[tuple[str, str, dict[str, Any]]]:
        box: dict[str, Any] = {}

        def read() -> None:
            box["writes"] = copy.deepcopy(self.emulator.lease_writes)

        self._on_loop(read)
        return list(box["writes"])

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
        emulator = LeasingEmulator()
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


def argocd_application(
    name: str,
    path: str,
    revision: str | None,
    *,
    sync: str = "Synced",
    health: str = "Healthy",
    repo: str = "https://git.example.com/config.git",
    namespace: str = "argocd",
) -> dict[str, Any]:
    """An Argo CD Application as its controller reports it: the synced revision, sync and health status."""
    status: dict[str, Any] = {"sync": {"status": sync}, "health": {"status": health}}
    if revision is not None:
        status["sync"]["revision"] = revision
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo, "path": path, "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "prod"},
        },
        "status": status,
    }

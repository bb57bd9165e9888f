"""The cluster observer: for one canary and the last commit for it, what the cluster runs.

Read-only (get/list). Each question the API cannot answer (unreachable, forbidden, missing
object) becomes "not applied" or "not ready" with the reason: the rollout waits, it never
advances on missing information.

When a step went live is kept in memory only (keyed by canary and commit). After a restart the
first observation that finds it live counts as the moment it went live: conservative, the
analysis interval starts again rather than measuring a step too early. Git stays the database
for everything that decides a transition.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException, OpenApiException
from urllib3.exceptions import HTTPError

from gitcanary.cluster import argocd, fleet, flux
from gitcanary.cluster.revisions import Ancestry
from gitcanary.cluster.workloads import deployment_state
from gitcanary.core.observations import ClusterObservation, WorkloadState
from gitcanary.core.rollout import ready_threshold
from gitcanary.spec.models import Canary

log = logging.getLogger("gitcanary")

TIMEOUT = 10.0  # seconds per API call; a slow API only delays this tick's decision
# What the client raises when it cannot get an answer: HTTP errors, connection failures, and a
# response that does not parse into its model (pydantic's ValidationError is a ValueError).
UNANSWERED = (ApiException, OpenApiException, HTTPError, OSError, ValueError)

Obj = dict[str, Any]


class Unreachable(Exception):
    pass


@dataclass
class _TickCache:
    """Lists shared by every canary within one tick (one list call per kind, not per canary)."""

    lists: dict[str, list[Obj] | Exception] = field(default_factory=dict)


class ClusterObserver:
    def __init__(
        self, api: client.ApiClient, branch: str, ancestry: Ancestry, repo_url: str | None = None
    ) -> None:
        self.api = api
        self.branch = branch
        self.repo_url = repo_url
        self.ancestry = ancestry
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.live_since: dict[tuple[str, str], datetime] = {}
        self._cache = _TickCache()

    def refresh(self) -> None:
        """Forget the lists of the last tick: the next question asks the API again."""
        self._cache = _TickCache()

    def observe(
        self, canary: Canary, directories: list[str], commit: str, now: datetime
    ) -> ClusterObservation:
        """Is `commit` (the last one for `canary`) applied where `directories` are built, and are the
        canary and its primary ready? Lists are shared with the other canaries until `refresh`."""
        try:
            applied, reason = self._applied(directories, commit)
        except Unreachable as exc:
            return ClusterObservation(False, f"cluster API unreachable: {exc}")
        target = canary.spec.target_ref.name
        canary_state = self._deployment(canary.namespace, target, ready_threshold(canary, "canary"))
        primary_state = self._deployment(
            canary.namespace, f"{target}-primary", ready_threshold(canary, "primary")
        )
        since = None
        key = (canary.key, commit)
        if applied and canary_state.ready and primary_state.ready:
            since = self.live_since.setdefault(key, now)
            for old in [k for k in self.live_since if k[0] == canary.key and k != key]:
                del self.live_since[old]
        return ClusterObservation(applied, reason, canary_state, primary_state, since)

    def _applied(self, directories: list[str], commit: str) -> tuple[bool, str]:
        kustomizations = self._list(flux.GROUP, flux.VERSION, flux.PLURAL)
        gitrepos = self._list(fleet.GROUP, fleet.VERSION, fleet.GITREPOS)
        applications = self._list(argocd.GROUP, argocd.VERSION, argocd.PLURAL)
        listed_all = (kustomizations, gitrepos, applications)
        if all(isinstance(listed, Exception) for listed in listed_all):
            raise Unreachable(str(kustomizations))
        reasons = []
        if not isinstance(kustomizations, Exception):
            answer, why = flux.applied(
                kustomizations, directories, self.branch, commit, self.ancestry, self.ancestry.root
            )
            if answer is not None:
                return answer, why
            reasons.append(why)
        if not isinstance(gitrepos, Exception):
            answer, why = fleet.applied(
                gitrepos, self._bundles, directories, self.branch, commit, self.ancestry, self.repo_url
            )
            if answer is not None:
                return answer, why
            reasons.append(why)
        if not isinstance(applications, Exception):
            answer, why = argocd.applied(applications, directories, commit, self.ancestry, self.repo_url)
            if answer is not None:
                return answer, why
            reasons.append(why)
        # No applier claims these directories (or one of them could not be asked).
        for listed in listed_all:
            if isinstance(listed, Exception):
                reasons.append(f"cluster API: {listed}")
        return False, "; ".join(reasons)

    def _list(self, group: str, version: str, plural: str) -> list[Obj] | Exception:
        key = f"{group}/{version}/{plural}"
        if key not in self._cache.lists:
            try:
                found = self.custom.list_cluster_custom_object(
                    group, version, plural, _request_timeout=TIMEOUT
                )
                self._cache.lists[key] = list(cast(Obj, found).get("items") or [])
            except ApiException as exc:
                # 404: the kind is not installed (no Flux, or no Fleet): an empty answer.
                self._cache.lists[key] = [] if exc.status == 404 else _short(exc, key)
            except UNANSWERED as exc:
                self._cache.lists[key] = _short(exc, key)
        return self._cache.lists[key]

    def _bundles(self, namespace: str, repo_name: str) -> list[Obj]:
        try:
            found = self.custom.list_namespaced_custom_object(
                fleet.GROUP,
                fleet.VERSION,
                namespace,
                fleet.BUNDLES,
                label_selector=f"{fleet.REPO_LABEL}={repo_name}",
                _request_timeout=TIMEOUT,
            )
        except UNANSWERED as exc:
            raise Unreachable(str(_short(exc, f"bundles in {namespace}"))) from exc
        return list(cast(Obj, found).get("items") or [])

    def _deployment(self, namespace: str, name: str, threshold: int) -> WorkloadState:
        try:
            deployment = self.apps.read_namespaced_deployment(name, namespace, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return WorkloadState(name, False, f"deployment {namespace}/{name} not found")
            return WorkloadState(name, False, f"cluster API: {_short(exc, name)}")
        except UNANSWERED as exc:
            return WorkloadState(name, False, f"cluster API unreachable: {_short(exc, name)}")
        return deployment_state(deployment, threshold)


def _short(exc: Exception, what: str) -> Exception:
    """One line for the status table, not a urllib3 traceback."""
    if isinstance(exc, ApiException):
        return RuntimeError(f"{what}: HTTP {exc.status} {exc.reason}")
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return RuntimeError(f"{what}: {text[:200]}")

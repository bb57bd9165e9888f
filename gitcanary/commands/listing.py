"""`gitcanary get canaries`: the repository's canaries as `kubectl get canaries` lists them.

The columns are Flagger's CRD printer columns (STATUS, WEIGHT, LASTTRANSITIONTIME; FAILEDCHECKS,
INTERVAL, MIRROR, STEPWEIGHT, STEPWEIGHTS, MAXWEIGHT with `-o wide`), read from Git like `status`.
`-o json|yaml` prints a kubectl-style `List` of Canary objects whose `status` is gitcanary's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitcanary.commands.operations import CanaryView, status
from gitcanary.manifests import discovery
from gitcanary.routers.providers import apply_default_provider

# Phase colours on a terminal (rich styles); piped output and NO_COLOR get none (rich decides).
PHASE_STYLES = {
    "Succeeded": "green",
    "Failed": "red",
    "Error": "bold red",
    "Progressing": "cyan",
    "Promoting": "cyan",
    "Finalising": "cyan",
    "Waiting": "yellow",
    "WaitingPromotion": "yellow",
    "Initializing": "blue",
    "Initialized": "green",
    "Uninitialized": "dim",
}

COLUMNS = ("NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME")
WIDE = ("FAILEDCHECKS", "INTERVAL", "MIRROR", "STEPWEIGHT", "STEPWEIGHTS", "MAXWEIGHT")


@dataclass
class CanaryRow:
    view: CanaryView
    spec: dict[str, Any]

    @property
    def namespace(self) -> str:
        return self.view.key.partition("/")[0] if "/" in self.view.key else ""

    @property
    def name(self) -> str:
        return self.view.key.partition("/")[2] if "/" in self.view.key else self.view.key

    def cells(self, wide: bool) -> list[str]:
        cells = [self.name, self.view.phase, str(self.view.weight), self.view.last_transition]
        if wide:
            analysis = self.spec.get("analysis", {}) or {}
            weights = analysis.get("stepWeights") or []
            cells += [
                str(self.view.failed_checks),
                str(analysis.get("interval", "")),
                str(analysis.get("mirror", "")).lower() if "mirror" in analysis else "",
                str(analysis.get("stepWeight", "")),
                ",".join(str(w) for w in weights),
                str(analysis.get("maxWeight", "")),
            ]
        return cells

    def to_object(self) -> dict[str, Any]:
        """The Canary as kubectl would print it, with gitcanary's view of its status."""
        status: dict[str, Any] = {
            "phase": self.view.phase,
            "canaryWeight": self.view.weight,
            "failedChecks": self.view.failed_checks,
        }
        if self.view.last_transition:
            status["lastTransitionTime"] = self.view.last_transition
        for key, value in (
            ("primaryRevision", self.view.primary_revision),
            ("canaryRevision", self.view.canary_revision),
            ("message", self.view.message),
            ("error", self.view.error),
        ):
            if value:
                status[key] = value
        return {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": self.spec,
            "status": status,
        }


def canaries(root: Path, namespace: str | None = None, provider: str | None = None) -> list[CanaryRow]:
    """Every canary in the checkout at `root` (or in `namespace`), with its spec as written."""
    views = status(root, provider=provider)
    catalog = discovery.scan(root)
    apply_default_provider(catalog.canaries, provider)
    rows = []
    for view in views:
        loaded = catalog.canaries.get(view.key)
        spec = loaded.canary.spec.model_dump(by_alias=True, exclude_unset=True) if loaded else {}
        row = CanaryRow(view, spec)
        if namespace is None or row.namespace == namespace:
            rows.append(row)
    return rows

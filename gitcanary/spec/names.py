"""Kubernetes names, checked before a name from the repository is used in a path, a message or a command.

A Canary's name and namespace become directory names, file names, branch names, commit trailers and
`kubectl` arguments. The API server would refuse `../x`, `a b` or a newline as a name; so does
gitcanary, with the same rules (Kubernetes' `IsDNS1123Label` and `IsDNS1123Subdomain`).
"""

from __future__ import annotations

import re

from gitcanary.errors import SpecError
from gitcanary.spec.models import Canary

GENERATED_SUFFIX = "-gitcanary"  # gitcanary.manifests.files names generated dirs `<canary>-gitcanary`

LABEL_MAX = 63
SUBDOMAIN_MAX = 253
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# Metric names (Flagger's `analysis.metrics[].name`) go into commit messages and trailers as one token.
_METRIC = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
METRIC_MAX = 63


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:80] + "...")


def check_label(value: object, source: str, field: str, reserve: int = 0) -> str:
    """A DNS-1123 label (namespaces, Service names): at most 63 (minus `reserve`) of a-z, 0-9 and '-'."""
    text = value if isinstance(value, str) else ""
    if len(text) > LABEL_MAX - reserve:
        raise SpecError(source, field, f"{_shown(text)} is longer than {LABEL_MAX - reserve} characters")
    if not _LABEL.fullmatch(text):
        raise SpecError(
            source,
            field,
            f"{_shown(text)} is not a Kubernetes name (lower-case a-z, 0-9 and '-', DNS-1123 label)",
        )
    return text


def check_subdomain(value: object, source: str, field: str, reserve: int = 0) -> str:
    """A DNS-1123 subdomain (object names): at most 253 (minus `reserve` for suffixes gitcanary adds)."""
    text = value if isinstance(value, str) else ""
    limit = SUBDOMAIN_MAX - reserve
    if len(text) > limit:
        raise SpecError(source, field, f"{_shown(text)} is longer than {limit} characters")
    if not _SUBDOMAIN.fullmatch(text):
        raise SpecError(
            source,
            field,
            f"{_shown(text)} is not a Kubernetes name (lower-case a-z, 0-9, '-' and '.', DNS-1123 subdomain)",
        )
    return text


def check_metric(value: object, source: str, field: str) -> str:
    text = value if isinstance(value, str) else ""
    if len(text) > METRIC_MAX or not _METRIC.fullmatch(text):
        raise SpecError(
            source,
            field,
            f"{_shown(text)} is not a metric name gitcanary can record (letters, digits, '.', '_' and '-', "
            f"at most {METRIC_MAX} characters)",
        )
    return text


def check_canary(canary: Canary, source: str) -> None:
    """Every name of a Canary that gitcanary puts in a path, a file name, a message or a command."""
    check_subdomain(canary.metadata.name, source, "metadata.name", reserve=len(GENERATED_SUFFIX))
    check_label(canary.namespace, source, "metadata.namespace")
    spec = canary.spec
    check_subdomain(spec.target_ref.name, source, "spec.targetRef.name", reserve=len("-primary.yaml"))
    if spec.service.name is not None:
        check_label(spec.service.name, source, "spec.service.name", reserve=len("-primary"))
    else:  # the Services are named after the target
        check_label(spec.target_ref.name, source, "spec.targetRef.name", reserve=len("-primary"))
    for field, ref in (("spec.autoscalerRef", spec.autoscaler_ref), ("spec.ingressRef", spec.ingress_ref)):
        if ref is not None:
            check_subdomain(ref.name, source, f"{field}.name", reserve=len("-primary"))
    for index, metric in enumerate(spec.analysis.metrics):
        check_metric(metric.name, source, f"spec.analysis.metrics[{index}].name")

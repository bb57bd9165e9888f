"""`gitcanary validate`: every problem of every file at once, the errors `run` would halt or fail on.

An error is what makes `run` halt a canary, or fail every analysis (so every release would roll back);
a warning is something that works, but not the way a Flagger user may expect (a field gitcanary does not
act on, an analysis with no checks). Every file is read to the end: one problem never hides the next.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from gitcanary.analysis import providers as metric_providers
from gitcanary.analysis.builtin import builtin_metric
from gitcanary.commands.operations import judge_problems
from gitcanary.core import ladder, urlmap
from gitcanary.duration import parse_duration
from gitcanary.errors import GitcanaryError, SpecError
from gitcanary.hooks.alerts import missing_providers
from gitcanary.manifests import appliers, discovery, fleet, kustomize, yamlio
from gitcanary.manifests.config_tracking import is_copy
from gitcanary.manifests.files import yaml_files
from gitcanary.manifests.generate import Layout, read_status
from gitcanary.manifests.target import render_target
from gitcanary.redaction import redact
from gitcanary.routers import router_for
from gitcanary.routers.providers import apply_default_provider
from gitcanary.spec.load import is_flagger, rule_problems, schema_problems
from gitcanary.spec.models import Canary, MetricTemplate
from gitcanary.spec.names import check_metric
from gitcanary.spec.validation import schema_known, validate_manifests

# Kubernetes names (apimachinery validation): a DNS-1123 label for namespaces and Service names, a
# DNS-1123 subdomain for other object names.
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.DOTALL)
_QUERY_FIELDS = ("name", "namespace", "target", "service", "ingress", "interval")
# The longest suffix gitcanary adds to a Service name (`<service>-primary`, `<service>-canary`).
_SERVICE_SUFFIX = "-primary"

# Routing fields of `spec.service` and the routers that write them into what they generate
# (routers/istio.py, routers/gatewayapi.py; the SMI, NGINX and kubernetes routers write none of them).
ROUTING_FIELDS = {
    "hosts": ("istio", "gatewayapi", "appmesh"),
    "gateways": ("istio",),
    "match": ("istio", "gatewayapi", "contour", "appmesh"),
    "rewrite": ("istio", "gatewayapi"),
    "retries": ("istio", "contour", "appmesh"),
    "headers": ("istio", "gatewayapi"),
    "corsPolicy": ("istio",),
    "trafficPolicy": ("istio",),
    "timeout": ("istio", "gatewayapi", "contour", "appmesh"),
    "gatewayRefs": ("gatewayapi",),
}


@dataclass
class Report:
    """Errors and warnings, each line `file: field: message`."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, source: str, where: str, message: str) -> None:
        self._add(self.errors, str(SpecError(source, where, message)))

    def warn(self, source: str, where: str, message: str) -> None:
        self._add(self.warnings, str(SpecError(source, where, message)))

    @staticmethod
    def _add(lines: list[str], line: str) -> None:
        if line not in lines:
            lines.append(line)


def validate(root: Path, provider: str | None = None) -> tuple[list[str], list[str]]:
    """(errors, warnings) for the checkout at `root`: every file's problems, then every canary's."""
    report = Report()
    for source in yaml_files(root):
        _check_file(root, source, report)
    catalog = discovery.scan(root)
    apply_default_provider(catalog.canaries, provider)
    for source, error in sorted(catalog.errors.items()):
        # What loading found that the file pass did not say (a canary defined twice, a namespace...).
        if not any(line.startswith(f"{source}:") or line.startswith(f"{source}#") for line in report.errors):
            report._add(report.errors, str(error))
    healthy = []
    for key in sorted(catalog.canaries):
        loaded = catalog.canaries[key]
        if any(line.startswith(f"{loaded.source}: metadata.name:") for line in report.errors):
            continue  # a name that is no Kubernetes name is never used in a path
        before = len(report.errors)
        try:
            _check_canary(root, catalog, key, report)
        except (OSError, ValueError) as exc:  # one canary's trouble never hides the others'
            report._add(report.errors, f"{loaded.source}: {exc}")
        if len(report.errors) == before:
            healthy.append(key)
    _check_initialization(root, catalog, healthy, report)
    for key in sorted(catalog.templates):
        _check_template(catalog.templates[key], catalog.template_sources[key], report)
    return report.errors, report.warnings


# -- one file ---------------------------------------------------------------------------------------


def _check_file(root: Path, source: str, report: Report) -> None:
    path = root / source
    if path.is_symlink():
        target = os.path.realpath(path)
        inside = _inside(root, Path(target))
        if not inside:
            report.error(
                source, "", f"a symlink to {target}, outside the repository: gitcanary does not read it"
            )
            return
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        report.error(source, "", f"cannot be read: {exc.strerror}")
        return
    # Every YAML file, not only Flagger's: a key given twice in a kustomization.yaml or a target's
    # manifest makes `run` refuse the file (and halt the canary) as surely as in a Canary.
    for line, key in sorted(_duplicate_keys(text)):
        report.error(
            source,
            f"line {line}",
            f"duplicate key {key!r}: YAML allows a key once per mapping; `run` refuses the file",
        )
    if "flagger.app" not in text:
        return
    try:
        docs = list(yamlio.safe_load_all(text))
    except yamlio.YAMLError as exc:
        if "duplicate key" not in str(exc):
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark is not None else "(document)"
            report.error(source, where, f"not valid YAML: {getattr(exc, 'problem', exc)}")
        return
    for index, doc in enumerate(docs):
        label = source if len(docs) == 1 else f"{source}#{index}"
        if is_flagger(doc, "Canary"):
            _check_canary_doc(doc, label, report)
        elif is_flagger(doc, "MetricTemplate") or is_flagger(doc, "AlertProvider"):
            for problem in schema_problems(doc, label):
                report.error(label, problem.field, problem.message)


def _inside(root: Path, target: Path) -> bool:
    resolved = root.resolve()
    try:
        relative = target.resolve().relative_to(resolved)
    except ValueError:
        return False
    return not relative.parts or relative.parts[0] != ".git"


def _duplicate_keys(text: str) -> Iterator[tuple[int, str]]:
    """(line, key) of every key given twice in one mapping, in every document of `text`."""
    try:
        nodes = yamlio.compose_all(text)
    except yamlio.YAMLError:
        return  # reported once, when the file is loaded
    stack: list[Node] = list(nodes)
    walked: set[int] = set()
    while stack:
        node = stack.pop()
        # An alias shares its anchor's node: walk each node once, so an alias bomb costs its size.
        if id(node) in walked:
            continue
        walked.add(id(node))
        if isinstance(node, MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                name = str(key.value)
                if name in seen:
                    yield key.start_mark.line + 1, name
                seen.add(name)
                stack.append(value)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)


def _check_canary_doc(doc: dict[str, Any], source: str, report: Report) -> None:
    """Everything wrong with one Canary document by itself (no other file needed)."""
    problems = schema_problems(doc, source)
    for problem in problems:
        report.error(source, problem.field, problem.message)
    _check_names(doc, source, report)
    _check_generated_dir(doc, source, report)
    _check_values(doc, source, report)
    if problems:
        return
    try:
        canary = Canary.model_validate(doc)
    except ValidationError as exc:
        for error in exc.errors():
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
            report.error(source, where, error["msg"])
        return
    for problem in rule_problems(canary, source):
        report.error(source, problem.field, problem.message)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _check_names(doc: dict[str, Any], source: str, report: Report) -> None:
    spec = _dict(doc.get("spec"))
    meta = _dict(doc.get("metadata"))
    target = _dict(spec.get("targetRef"))
    service = _dict(spec.get("service"))
    _name(report, source, "metadata.name", meta.get("name"), _SUBDOMAIN, 253)
    if meta.get("namespace") is not None:
        _name(report, source, "metadata.namespace", meta.get("namespace"), _LABEL, 63)
    _name(report, source, "spec.targetRef.name", target.get("name"), _SUBDOMAIN, 253 - len("-primary"))
    metrics = _dict(spec.get("analysis")).get("metrics")
    for index, metric in enumerate(metrics if isinstance(metrics, list) else []):
        # A metric's name goes into commit messages and trailers: one token, never a line break.
        if isinstance(metric, dict) and isinstance(metric.get("name"), str):
            try:
                check_metric(metric["name"], source, f"spec.analysis.metrics[{index}].name")
            except SpecError as exc:
                report._add(report.errors, str(exc))
    service_name = service.get("name") or target.get("name")
    where = "spec.service.name" if service.get("name") else "spec.targetRef.name"
    if isinstance(service_name, str) and _LABEL.match(service_name):
        limit = 63 - len(_SERVICE_SUFFIX)
        if len(service_name) > limit:
            report.error(
                source,
                where,
                f"{len(service_name)} characters: the Service {service_name}{_SERVICE_SUFFIX} would exceed "
                f"Kubernetes' 63 (at most {limit} here)",
            )


def _name(report: Report, source: str, where: str, value: Any, form: re.Pattern[str], limit: int) -> None:
    if not isinstance(value, str):
        return
    if len(value) > limit:
        report.error(source, where, f"{len(value)} characters; a Kubernetes name here has at most {limit}")
    elif not form.match(value):
        report.error(
            source, where, f"{value!r} is not a Kubernetes name (lower-case letters, digits, '-', '.')"
        )


def _check_generated_dir(doc: dict[str, Any], source: str, report: Report) -> None:
    meta = _dict(doc.get("metadata"))
    annotations = _dict(meta.get("annotations"))
    value = annotations.get(discovery.GENERATED_DIR_ANNOTATION)
    if not isinstance(value, str):
        return
    where = f'metadata.annotations["{discovery.GENERATED_DIR_ANNOTATION}"]'
    parts = PurePosixPath(value.strip("/")).parts
    if value.startswith("/") or ".." in parts or (parts and parts[0] == ".git") or "\\" in value:
        report.error(
            source, where, f"{value!r} leaves the repository (or enters .git): must be a path inside it"
        )


def _check_values(doc: dict[str, Any], source: str, report: Report) -> None:
    """Values the CRD's types allow but no rollout can use: empty ranges, zero durations, no checks."""
    spec = _dict(doc.get("spec"))
    analysis = _dict(spec.get("analysis"))
    _positive_duration(report, source, "spec.analysis.interval", analysis.get("interval"))
    metrics = analysis.get("metrics")
    for index, metric in enumerate(metrics if isinstance(metrics, list) else []):
        if not isinstance(metric, dict):
            continue
        where = f"spec.analysis.metrics[{index}]"
        _positive_duration(report, source, f"{where}.interval", metric.get("interval"))
        bounds = metric.get("thresholdRange")
        if isinstance(bounds, dict):
            low, high = bounds.get("min"), bounds.get("max")
            if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
                report.error(
                    source,
                    f"{where}.thresholdRange",
                    f"min {low} > max {high}: no value passes, every check fails",
                )
    webhooks = analysis.get("webhooks")
    for index, hook in enumerate(webhooks if isinstance(webhooks, list) else []):
        if isinstance(hook, dict):
            _positive_duration(
                report, source, f"spec.analysis.webhooks[{index}].timeout", hook.get("timeout")
            )
    if not spec.get("skipAnalysis") and isinstance(metrics, list) and not metrics:
        report.warn(
            source,
            "spec.analysis.metrics",
            "is empty: no metric is checked, so every step advances and the release is promoted "
            "whatever it serves (a gate PR says so under its evidence)",
        )


def _positive_duration(report: Report, source: str, where: str, value: Any) -> None:
    if not isinstance(value, str):
        return
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        report.error(source, where, str(exc))
        return
    if seconds <= 0:
        report.error(source, where, f"{value!r} is not a positive duration")


# -- one canary, with the rest of the repository -----------------------------------------------------


def _check_initialization(root: Path, catalog: discovery.Catalog, keys: list[str], report: Report) -> None:
    """For canaries not initialized yet: initialize them in a copy, as `run` would, and check what that
    writes (a parent kustomization it refuses to rewrite, generated objects that break their schemas)."""
    from gitcanary.commands.operations import init

    pending = [key for key in keys if not (root / Layout.of(catalog.canaries[key]).kustomization).is_file()]
    if not pending or not (root / ".git").exists():
        return
    scratch = Path(tempfile.mkdtemp(prefix="gitcanary-validate-"))
    try:
        copy = scratch / "repo"
        shutil.copytree(root, copy, symlinks=True)
        for key in pending:
            loaded = catalog.canaries[key]
            layout = Layout.of(loaded)
            try:
                init(copy, loaded.source.split("#", 1)[0], switch=True, provider=loaded.canary.spec.provider)
                objects = kustomize.build(copy / layout.generated_dir, display=layout.generated_dir)
            except GitcanaryError as exc:
                report._add(report.errors, f"{loaded.source}: initializing: {exc}")
                continue
            for problem in validate_manifests(objects):
                report._add(report.errors, f"{layout.generated_dir} (as initialization writes it): {problem}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _check_canary(root: Path, catalog: discovery.Catalog, key: str, report: Report) -> None:
    loaded = catalog.canaries[key]
    canary, source = loaded.canary, loaded.source
    file = source.split("#", 1)[0]
    for warning in loaded.warnings:
        report._add(report.warnings, warning)
    router_family = canary.provider.split(":", 1)[0]
    service = canary.spec.service.model_dump(by_alias=True)
    for name, routers in ROUTING_FIELDS.items():
        if service.get(name) and router_family not in routers:
            report.warn(
                source, f"spec.service.{name}", f"provider {canary.provider} does not render it (ignored)"
            )
    for problem in missing_providers(canary, source, catalog.providers):
        report._add(report.errors, problem)
    for problem in judge_problems(canary):  # gitcanary.io/judge* annotations
        report._add(report.errors, f"{source}: {problem}" if not problem.startswith(source) else problem)
    _check_metrics(canary, source, catalog.templates, report)
    if canary.spec.metrics_server:
        for where, message, fatal in address_problems(canary.spec.metrics_server):
            (report.error if fatal else report.warn)(source, f"spec.metricsServer{where}", message)
    for where, message in webhook_problems(canary):
        report.warn(source, where, message)
    try:
        router = router_for(canary, source)
    except GitcanaryError as exc:
        report._add(report.errors, str(exc))
        return
    layout = Layout.of(loaded)
    _check_symlinks(root, layout.generated_dir, source, report)
    try:
        rendered = render_target(root, loaded)
        for warning in rendered.warnings:
            report._add(report.warnings, warning)
        # Rendering the routing at rest finds what the router refuses (a match it cannot express).
        router.render(canary, 100, 0, ingress=rendered.ingress)
        if (root / layout.kustomization).is_file():
            objects = kustomize.build(root / layout.generated_dir, display=layout.generated_dir)
            # A -primary copy of the user's ExternalSecret or SealedSecret: a kind gitcanary ships
            # no schema for, as valid as the user's own object.
            objects = [
                o
                for o in objects
                if not is_copy(o) or schema_known(str(o.get("apiVersion")), str(o.get("kind")))
            ]
            for problem in validate_manifests(objects):
                report._add(report.errors, f"{layout.generated_dir}: {problem}")
            status = read_status(root, layout)
            impossible = ladder.problem(canary, status) if status is not None else None
            if impossible is not None:
                # What `run` halts on: a weight or phase gitcanary's state machine never writes.
                report.error(layout.status, impossible[0], f"{impossible[1]}; `run` halts this canary on it")
    except GitcanaryError as exc:
        report._add(report.errors, str(exc))
    _check_appliers(root, layout, file, report)


def _check_metrics(
    canary: Canary, source: str, templates: Mapping[str, MetricTemplate], report: Report
) -> None:
    """Each metric must be something `run` can query: a builtin of the provider, a query, a template."""
    for index, metric in enumerate(canary.spec.analysis.metrics):
        where = f"spec.analysis.metrics[{index}]"
        if metric.template_ref is not None:
            ref = f"{metric.template_ref.namespace or canary.namespace}/{metric.template_ref.name}"
            template = templates.get(ref)
            if template is None:
                report.error(
                    source,
                    f"{where}.templateRef",
                    f"MetricTemplate {ref} is not in the repository: every analysis would fail this check",
                )
                continue
            _check_variables(template.spec.query, metric.template_variables, source, where, ref, report)
        elif metric.query:
            _check_variables(metric.query, metric.template_variables, source, where, "", report)
        elif builtin_metric(canary.provider, metric.name) is None:
            report.error(
                source,
                f"{where}.name",
                f"{metric.name!r} is not a builtin metric of provider {canary.provider} "
                "(request-success-rate, request-duration where the provider has them): set a templateRef",
            )


def _check_variables(
    query: str, variables: Mapping[str, str], source: str, where: str, template: str, report: Report
) -> None:
    of = f" (in MetricTemplate {template})" if template else ""
    for expression in _PLACEHOLDER.findall(query):
        if expression in _QUERY_FIELDS:
            continue
        if expression.startswith("variables."):
            name = expression.removeprefix("variables.")
            if name not in variables:
                report.error(
                    source,
                    f"{where}.templateVariables",
                    f"has no {name!r}, which the query{of} uses: every analysis would fail this check",
                )
            continue
        report.error(
            source,
            where,
            f"the query{of} uses {{{{ {expression} }}}}, which gitcanary does not substitute "
            f"(it knows {', '.join(_QUERY_FIELDS)}, variables.<key>): every analysis would fail this check",
        )


def _check_symlinks(root: Path, directory: str, source: str, report: Report) -> None:
    """gitcanary writes its generated dir: a symlink there would make it write wherever that points."""
    base = root / directory
    if base.is_symlink():
        report.error(source, "", f"{directory} is a symlink: gitcanary refuses to write through it")
        return
    if not base.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(base):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath, name)
            if path.is_symlink():
                rel = path.relative_to(root)
                report.error(
                    str(rel), "", "a symlink in a generated directory: gitcanary refuses to write through it"
                )


def _check_appliers(root: Path, layout: Layout, source: str, report: Report) -> None:
    """The generated dir must reach the cluster by whatever applies the app (Flux or Fleet)."""
    if fleet.bundle_for(root, layout.app_dir) is not None:
        note = fleet.hook_note(root, layout.generated_dir, layout.app_dir)
        if note.startswith("ACTION NEEDED: Fleet GitRepo"):
            report.error(source, "", note.removeprefix("ACTION NEEDED: "))
        return  # no GitRepo in the repository: what deploys the app is not known here
    for gap in appliers.flux_gaps(root, layout.app_dir, layout.generated_dir):
        report.error(
            source, "", gap.note(layout.app_dir, layout.generated_dir).removeprefix("ACTION NEEDED: ")
        )


# -- metric templates --------------------------------------------------------------------------------


def _check_template(template: MetricTemplate, source: str, report: Report) -> None:
    for where, message, fatal in template_provider_problems(template):
        (report.error if fatal else report.warn)(source, where, message)


def template_provider_problems(template: MetricTemplate) -> list[tuple[str, str, bool]]:
    """(field, message, is_error) for a MetricTemplate's provider, as gitcanary's analysis runs it.

    Each backend states its own required fields and secrets (`analysis.providers`); on top, a
    template with no address is an error as in Flagger, and a host that does not resolve here is said.
    """
    provider = template.spec.provider
    found: list[tuple[str, str, bool]] = []
    for line in metric_providers.problems(template):
        where, _, message = line.partition(": ")
        found.append((where, message, True))
    for line in metric_providers.warnings(template):
        where, _, message = line.partition(": ")
        if where == "spec.provider.address" and not provider.address:
            message = "required field is missing: Flagger refuses a template without an address"
            found.append((where, message, True))
        else:
            found.append((where, message, False))
    # Only a Prometheus address falls back to --prometheus when its host does not resolve (analysis/run.py).
    if (
        provider.type == "prometheus"
        and provider.address
        and not any(where.startswith("spec.provider.address") for where, _, _ in found)
    ):
        found += [
            (f"spec.provider.address{where}", message, fatal)
            for where, message, fatal in address_problems(provider.address)
        ]
    return found


def address_problems(address: str) -> list[tuple[str, str, bool]]:
    """(field suffix, message, is_error) for a metrics server address, as --rewrite-url sends it."""
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [("", f"{address!r} is not an http(s) URL", True)]
    unresolved = _unresolved(address)
    if unresolved:
        message = f"{unresolved}; it must where gitcanary runs, or map it with --rewrite-url FROM=TO"
        return [("", message, False)]
    return []


def webhook_problems(canary: Canary) -> list[tuple[str, str]]:
    """(field, message) for each webhook whose URL, as --rewrite-url sends it, does not resolve here.

    Unlike a Prometheus address there is nothing to fall back to: `run` from this machine would fail
    the webhook, and a failing hook halts the step it guards or rolls the release back.
    """
    found = []
    for index, hook in enumerate(canary.spec.analysis.webhooks):
        unresolved = _unresolved(hook.url)
        if unresolved:
            found.append(
                (
                    f"spec.analysis.webhooks[{index}].url",
                    f"webhook {hook.name}: {unresolved}; `run` here would fail it (run gitcanary in the "
                    "cluster, or map the URL with --rewrite-url FROM=TO)",
                )
            )
    return found


def _unresolved(url: str) -> str:
    """Why `url` (after --rewrite-url) cannot be reached by name from this machine, or ""."""
    target = urlmap.rewrite(url)
    host = urlsplit(target).hostname
    if not host:
        return ""  # not a URL at all: the schema or the provider says so
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        shown = f" (rewritten to {redact(target)})" if target != url else ""
        return f"host {host}{shown} does not resolve from this machine"
    return ""


__all__ = ["Report", "address_problems", "template_provider_problems", "validate", "webhook_problems"]

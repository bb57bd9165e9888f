"""Builtin metrics (`request-success-rate`, `request-duration`) per provider, from `policies/providers/`."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from gitcanary.errors import SpecError

BUILTIN_NAMES = ("request-success-rate", "request-duration")


@dataclass(frozen=True)
class BuiltinMetric:
    """One builtin query of one provider.

    `bound` is what Flagger's deprecated `threshold` means for it (`min` for a success rate,
    `max` for a duration); `unit` is printed after values (`ms` values are whole milliseconds).
    """

    provider: str
    name: str
    query: str
    bound: Literal["min", "max"]
    unit: str


class _MetricEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    query: str
    threshold: Literal["min", "max"]
    unit: str = ""


class _ProviderFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    provider: str
    aliases: list[str] = []
    metrics: dict[str, _MetricEntry]
    # Requests per second to `{{ target }}`: the compare judge turns ratios into counts with it.
    requests: str | None = None


def builtin_metric(provider: str, name: str) -> BuiltinMetric | None:
    """The builtin `name` of `provider` (`spec.provider`, e.g. `istio`), or None if there is none."""
    return _load_all().get(provider, {}).get(name)


def builtin_providers() -> tuple[str, ...]:
    """Every provider name (aliases included) that has builtin metrics."""
    return tuple(sorted(_load_all()))


def _policies_dir() -> Traversable:
    # Installed from a wheel, policies/ is packaged as gitcanary/policies; in an editable install
    # it is the repository's top-level policies/ next to the package.
    packaged = resources.files("gitcanary") / "policies"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "policies"


def request_rate_query(provider: str) -> str | None:
    """Requests per second to `{{ target }}` for `provider`, or None if its file names none."""
    return _load_requests().get(provider)


@functools.cache
def _load_requests() -> dict[str, str]:
    found: dict[str, str] = {}
    providers_dir = _policies_dir() / "providers"
    if not providers_dir.is_dir():
        return found
    for entry in sorted(providers_dir.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith((".yaml", ".yml")):
            continue
        spec = _parse(entry, f"policies/providers/{entry.name}")
        if spec.requests is not None:
            for provider in (spec.provider, *spec.aliases):
                found[provider] = spec.requests
    return found


@functools.cache
def _load_all() -> dict[str, dict[str, BuiltinMetric]]:
    providers_dir = _policies_dir() / "providers"
    loaded: dict[str, dict[str, BuiltinMetric]] = {}
    if not providers_dir.is_dir():
        return loaded
    for entry in sorted(providers_dir.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith((".yaml", ".yml")):
            continue
        where = f"policies/providers/{entry.name}"
        spec = _parse(entry, where)
        metrics = {
            name: BuiltinMetric(spec.provider, name, item.query, item.threshold, item.unit)
            for name, item in spec.metrics.items()
        }
        for provider in (spec.provider, *spec.aliases):
            if provider in loaded:
                raise SpecError(where, "provider", f"provider {provider!r} is defined twice")
            loaded[provider] = metrics
    return loaded


def _parse(entry: Traversable, where: str) -> _ProviderFile:
    try:
        data = YAML(typ="safe").load(entry.read_text(encoding="utf-8"))
    except YAMLError as exc:
        raise SpecError(where, "", f"not valid YAML: {exc}") from exc
    try:
        return _ProviderFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise SpecError(where, field, error["msg"]) from exc

"""How a person names a canary on the command line, as kubectl names objects.

Every command that names one canary (get, status, promote, abort, pause, resume, retry, history)
takes the same spellings: `NS/NAME`, `NAME -n NS` (also `NS/NAME -n NS`), and a bare `NAME` when
exactly one namespace of the repository has a canary of that name. `parse` reads what was typed;
`resolve` finds the one canary it means among the repository's keys (`namespace/name`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from gitcanary.errors import GitcanaryError

# Kubernetes names (apimachinery validation): a namespace is a DNS-1123 label, a Canary's name a
# DNS-1123 subdomain.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
SPELLINGS = "NAMESPACE/NAME or NAME -n NAMESPACE"


class CanaryRefError(GitcanaryError):
    """What was typed does not name a canary, or names none (or several) in the repository."""


@dataclass(frozen=True)
class CanaryRef:
    namespace: str | None  # None: not said, the repository must say it
    name: str

    @property
    def key(self) -> str | None:
        return f"{self.namespace}/{self.name}" if self.namespace else None

    def __str__(self) -> str:
        return self.key or self.name


def parse(text: str, namespace: str | None = None) -> CanaryRef:
    """`NS/NAME`, or `NAME` with `namespace` (-n); CanaryRefError saying what is wrong otherwise."""
    if namespace is not None and not _LABEL.fullmatch(namespace):
        raise CanaryRefError(f"-n {namespace!r}: not a namespace name (lowercase letters, digits and '-')")
    if text.count("/") > 1:
        raise CanaryRefError(f"{text!r}: expected {SPELLINGS}")
    own, slash, name = text.rpartition("/")
    if slash:
        if not _LABEL.fullmatch(own):
            raise CanaryRefError(f"{text!r}: {own!r} is not a namespace name; expected {SPELLINGS}")
        if namespace is not None and namespace != own:
            raise CanaryRefError(f"{text!r} is in namespace {own}, but -n says {namespace}")
    if not name or not _SUBDOMAIN.fullmatch(name) or len(name) > 253:
        raise CanaryRefError(f"{text!r}: {name!r} is not a canary name; expected {SPELLINGS}")
    return CanaryRef(own if slash else namespace, name)


def resolve(ref: CanaryRef, keys: Iterable[str]) -> str:
    """The key (`namespace/name`) among `keys` that `ref` names; CanaryRefError when none or several."""
    known = sorted(set(keys))
    listed = f"(canaries: {', '.join(known) or 'none'})"
    if ref.key is not None:
        if ref.key in known:
            return ref.key
        raise CanaryRefError(f"unknown canary {ref.key} in the repository {listed}")
    matches = [key for key in known if key.partition("/")[2] == ref.name]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise CanaryRefError(f"no canary named {ref.name} in the repository {listed}")
    raise CanaryRefError(
        f"canary {ref.name} is in several namespaces ({', '.join(matches)}): say which, as {SPELLINGS}"
    )


__all__ = ["SPELLINGS", "CanaryRef", "CanaryRefError", "parse", "resolve"]

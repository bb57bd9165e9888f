"""`--rewrite-url FROM=TO`: in-cluster URLs mapped to addresses reachable from where gitcanary runs.

A Flagger repository names its webhooks and metrics servers as the cluster sees them
(`http://flagger-loadtester.prod/`, `http://prometheus.istio-system:9090`); outside the cluster those
names do not resolve. A rule `FROM=TO` says where such a URL is reached from here (a port-forward,
an ingress): a URL whose scheme, host and port are FROM's, and whose path starts with FROM's path at
a `/` boundary, is sent to TO instead, the rest of its path, its query, its fragment and its
credentials (userinfo) kept.
Where several rules match, the one with the longest FROM path wins (the most specific).

Rules are parsed once (`parse`) and applied by the pure `UrlMap.rewrite`; the process's map (set by
`configure` from `run`, `plan` and `validate`) is applied where a URL is chosen: a webhook's URL
(`hooks.webhooks.call`) and a metric template's or `metricsServer` address (`analysis.run`).
A URL no rule matches is returned unchanged, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

from gitcanary.errors import GitcanaryError

_DEFAULT_PORTS = {"http": 80, "https": 443}


class UrlMapError(GitcanaryError):
    """A --rewrite-url rule that is not FROM=TO with two http(s) URLs."""


@dataclass(frozen=True)
class Rule:
    """One FROM=TO: the origin and path prefix matched, and where they are sent."""

    scheme: str
    host: str
    port: int
    path: str  # without its trailing slash: "" for the whole host
    to: SplitResult

    @property
    def text(self) -> str:
        port = "" if self.port == _DEFAULT_PORTS[self.scheme] else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}{self.path or '/'}={urlunsplit(self.to)}"


def _origin(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, path) of an http(s) URL, or None when it is not one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme], parts.path


def parse_rule(text: str) -> Rule:
    """`FROM=TO`, both http(s) URLs; UrlMapError saying what is wrong otherwise."""
    source, eq, target = text.partition("=")
    if not eq or not source.strip() or not target.strip():
        raise UrlMapError(
            f"--rewrite-url {text!r}: expected FROM=TO, e.g. http://loadtester.prod/=http://127.0.0.1:8081/"
        )
    origin = _origin(source.strip())
    if origin is None or "@" in urlsplit(source.strip()).netloc:
        raise UrlMapError(f"--rewrite-url {text!r}: FROM must be an http(s) URL without credentials")
    split = urlsplit(source.strip())
    if split.query or split.fragment:
        raise UrlMapError(f"--rewrite-url {text!r}: FROM is a scheme, host, port and path (no ? or #)")
    if _origin(target.strip()) is None:
        raise UrlMapError(f"--rewrite-url {text!r}: TO must be an http(s) URL")
    to = urlsplit(target.strip())
    if to.query or to.fragment:
        raise UrlMapError(f"--rewrite-url {text!r}: TO is a scheme, host, port and path (no ? or #)")
    scheme, host, port, path = origin
    return Rule(scheme, host, port, path.rstrip("/"), to)


@dataclass(frozen=True)
class UrlMap:
    rules: tuple[Rule, ...] = ()

    @classmethod
    def parse(cls, texts: list[str] | tuple[str, ...]) -> UrlMap:
        rules = tuple(parse_rule(text) for text in texts)
        seen: dict[tuple[str, str, int, str], Rule] = {}
        for rule in rules:
            key = (rule.scheme, rule.host, rule.port, rule.path)
            if key in seen and seen[key].to != rule.to:
                raise UrlMapError(f"--rewrite-url: {rule.text} and {seen[key].text} map the same FROM")
            seen[key] = rule
        return cls(rules)

    def match(self, url: str) -> Rule | None:
        """The most specific rule for `url` (longest FROM path), or None."""
        origin = _origin(url)
        if origin is None:
            return None
        scheme, host, port, path = origin
        best: Rule | None = None
        for rule in self.rules:
            if (rule.scheme, rule.host, rule.port) != (scheme, host, port):
                continue
            # A prefix at a segment boundary: /api matches /api and /api/v1, not /apis.
            if path != rule.path and not path.startswith(rule.path + "/"):
                continue
            if best is None or len(rule.path) > len(best.path):
                best = rule
        return best

    def rewrite(self, url: str) -> str:
        """`url` sent where its rule says, or `url` itself when no rule matches."""
        rule = self.match(url)
        if rule is None:
            return url
        parts = urlsplit(url)
        rest = parts.path[len(rule.path) :]
        base = rule.to.path.rstrip("/")
        path = base + rest if rest else rule.to.path
        netloc = rule.to.netloc
        userinfo, at, _ = parts.netloc.rpartition("@")
        if at and "@" not in netloc:  # the URL's own credentials go with it to the same service
            netloc = f"{userinfo}@{netloc}"
        return urlunsplit((rule.to.scheme, netloc, path, parts.query, parts.fragment))


_current = UrlMap()


def configure(texts: list[str] | tuple[str, ...]) -> UrlMap:
    """Set the process's rules (each command that reaches URLs sets them from its options)."""
    global _current
    _current = UrlMap.parse(texts)
    return _current


def destinations() -> list[str]:
    """Every TO of the process's rules: addresses the operator chose."""
    return [urlunsplit(rule.to) for rule in _current.rules]


def rewrite(url: str) -> str:
    """`url` through the process's rules (unchanged when none matches)."""
    return _current.rewrite(url)


def rewritten(url: str) -> str:
    """`url`, followed by where it is sent when a rule rewrites it: for messages."""
    target = rewrite(url)
    return url if target == url else f"{url} (rewritten to {target})"


__all__ = ["Rule", "UrlMap", "UrlMapError", "configure", "parse_rule", "rewrite", "rewritten"]

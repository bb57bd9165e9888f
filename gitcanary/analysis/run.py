"""One analysis run: every metric of a canary queried and judged, one `CheckResult` each.

Semantics follow Flagger's scheduler (`runBuiltinMetricChecks`, `runMetricChecks`): bounds are
inclusive; without `thresholdRange` the deprecated `threshold` is a minimum for the builtin success
rate and a maximum for everything else (Go's zero value 0 when unset). Unlike Flagger, a query
error or an empty result is a failed check with the reason in its line, never a skipped one.
"""

from __future__ import annotations

import contextvars
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from gitcanary.analysis import providers
from gitcanary.analysis.builtin import builtin_metric
from gitcanary.analysis.prometheus import NoDataError, PrometheusClient, QueryClient
from gitcanary.analysis.providers import HttpPool, Provider, ProviderEnv, SecretSource, Target
from gitcanary.analysis.templates import QueryModel, render_query
from gitcanary.core import urlmap
from gitcanary.core.observations import CheckResult
from gitcanary.duration import parse_duration
from gitcanary.errors import AnalysisError
from gitcanary.redaction import redact, spellings
from gitcanary.spec.models import Canary, CanaryMetric, MetricTemplate

DEFAULT_METRIC_INTERVAL = "1m"
# One canary's metrics are queried side by side, this many at a time: a slow backend costs the
# analysis its slowest query, not the sum of them, however many templates the canary lists.
QUERY_WORKERS = 8
# The monotonic instant past which this analysis's answer is no longer read (the service's
# per-canary deadline, `service/analyses.py`): a metric not started by then is not queried. A
# context variable, so every judge's entry point keeps its shape.
ANALYSIS_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "ANALYSIS_DEADLINE", default=None
)

ClientFactory = Callable[[str, Mapping[str, str] | None], QueryClient]


class _QueryClientProvider:
    """A `QueryClient` (builtins and inline queries go to gitcanary's Prometheus) seen as a Provider."""

    def __init__(self, client: QueryClient) -> None:
        self.client = client

    def query(self, query: str, at: datetime, window: timedelta) -> float:
        return self.client.query(query, at)

    def close(self) -> None:
        self.client.close()


class _RangeQueryClientProvider(_QueryClientProvider):
    """The same, for a client with range queries (the compare judge reads both sides as series)."""

    def query_range(
        self, query: str, start: datetime, end: datetime, step: float
    ) -> list[tuple[float, float]]:
        result: list[tuple[float, float]] = self.client.query_range(query, start, end, step)  # type: ignore[attr-defined]
        return result

    def query_range_by(
        self, query: str, start: datetime, end: datetime, step: float, label: str
    ) -> dict[str, list[tuple[float, float]]]:
        by = getattr(self.client, "query_range_by", None)
        if by is None:
            raise AnalysisError("the metrics client has no range queries by label")
        found: dict[str, list[tuple[float, float]]] = by(query, start, end, step, label)
        return found


@dataclass(frozen=True)
class _Plan:
    """How to run one metric: the query template, where to send it, how to judge the value."""

    query: str
    address: str
    target: Target | None = None  # a MetricTemplate's provider; None: gitcanary's own Prometheus
    bound: str = "max"
    unit: str = ""
    whole_units: bool = False
    note: str = ""


class _Failed(Exception):
    """A metric that cannot be planned; its message is the reason in the line."""


def run_analysis(
    canary: Canary,
    templates: Mapping[str, MetricTemplate],
    *,
    default_address: str,
    now: datetime,
    client_factory: ClientFactory | None = None,
    env: ProviderEnv | None = None,
    pool: HttpPool | None = None,
) -> tuple[CheckResult, ...]:
    """Run every `canary.spec.analysis.metrics` entry at time `now`, in order.

    `templates` maps `namespace/name` to MetricTemplate. `default_address` is the Prometheus
    gitcanary can reach; it serves builtins and inline queries (unless the canary sets
    `metricsServer`), and Prometheus templates with no address or one that does not resolve here.
    A template of another `provider.type` goes to its backend (`analysis.providers`), with its
    secretRef read from `env.secrets` and every query bounded by `env.limits`.
    `client_factory(address, headers)` builds clients for gitcanary's own Prometheus (default:
    `PrometheusClient`); `pool` keeps HTTP connections across runs (default: one per run).
    """
    env = env or ProviderEnv()
    own_pool = pool is None
    pool = pool or HttpPool()

    def default_factory(address: str, headers: Mapping[str, str] | None) -> QueryClient:
        return PrometheusClient(address, headers=headers, limits=env.limits, pool=pool)

    run = _Run(canary, templates, default_address, now, client_factory or default_factory, env, pool)
    metrics = canary.spec.analysis.metrics
    deadline = ANALYSIS_DEADLINE.get()

    def check(metric: CanaryMetric) -> CheckResult:
        if deadline is not None and time.monotonic() >= deadline:
            return _failed(metric, "not queried: the analysis deadline passed")
        return run.check(metric)

    try:
        if len(metrics) < 2:
            return tuple(check(metric) for metric in metrics)
        with ThreadPoolExecutor(min(QUERY_WORKERS, len(metrics)), thread_name_prefix="query") as queries:
            return tuple(queries.map(check, metrics))  # in the canary's order, whatever answers first
    finally:
        run.close()
        if own_pool:
            pool.close()


class _Run:
    def __init__(
        self,
        canary: Canary,
        templates: Mapping[str, MetricTemplate],
        default_address: str,
        now: datetime,
        client_factory: ClientFactory,
        env: ProviderEnv,
        pool: HttpPool,
    ) -> None:
        # Every secret value a provider reads is masked in the check lines, whatever a server echoes.
        self.revealed: set[str] = set()
        self.env = replace(env, secrets=_Recording(env.secrets, self.revealed))
        self.pool = pool
        self.canary = canary
        self.templates = templates
        self.default_address = default_address
        self.now = now
        self.client_factory = client_factory
        self.clients: dict[object, Provider] = {}
        self.resolved: dict[str, bool] = {}
        self._lock = threading.Lock()  # the metrics run side by side: one client per backend still

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def check(self, metric: CanaryMetric) -> CheckResult:
        try:
            plan = self._plan(metric)
        except _Failed as exc:
            return _failed(metric, str(exc))
        interval = metric.interval or DEFAULT_METRIC_INTERVAL
        model = QueryModel.for_canary(self.canary, interval, metric.template_variables)
        try:
            query = render_query(plan.query, model)
            window = timedelta(seconds=parse_duration(interval))
            value = self._client(plan).query(query, self.now, window)
        except NoDataError as exc:
            return _failed(metric, self._mask(f"no data ({exc})"), plan.note)
        except AnalysisError as exc:
            return _failed(metric, self._mask(f"query failed ({exc})"), plan.note)
        except (RecursionError, LookupError, ValueError, TypeError, UnicodeError, OverflowError) as exc:
            # A backend's answer is untrusted input too: whatever a provider's parser (or an SDK's)
            # makes of a hostile one is a failed check with its reason, never a halt of the canary.
            reason = f"unreadable answer: {type(exc).__name__}: {str(exc)[:120]}"
            return _failed(metric, self._mask(f"query failed ({reason})"), plan.note)
        stale = self._stale(plan, query)
        if stale is not None:
            return _failed(metric, self._mask(stale), plan.note)
        if plan.whole_units:
            # Flagger reads durations as whole milliseconds (truncated); rounding first drops
            # float noise from rate arithmetic (211.99999999 is 212ms, not 211ms).
            value = float(math.trunc(round(value, 6)))
        return judge(metric, value, bound=plan.bound, unit=plan.unit, note=plan.note)

    def _stale(self, plan: _Plan, query: str) -> str | None:
        """Why a Prometheus value is not current, or None: the newest sample of a series the query
        reads (`max(timestamp(selector))` per selector) is older than this look's window (the
        analysis interval). A range selector keeps returning a series that stopped, until it
        leaves the range: the value is then from before this look. A selector with no series at
        all (no 5xx yet) says nothing either way."""
        if plan.target is not None and plan.target.spec.type == "graphite":
            return self._stale_points(plan, query)
        if plan.target is not None and plan.target.spec.type != "prometheus":
            return None
        window = self.canary.spec.analysis.interval_seconds
        oldest_allowed = self.now.timestamp() - window
        client = self._client(plan)
        for selector in dict.fromkeys(selectors_of(query)):
            try:
                newest = client.query(f"max(timestamp({selector}))", self.now, timedelta(seconds=window))
            except (NoDataError, AnalysisError):
                continue
            if newest < oldest_allowed:
                age = self.now.timestamp() - newest
                return (
                    f"no current data: the newest sample of {selector} is {age:.0f}s old,"
                    f" older than this look's window ({window:g}s)"
                )
        return None

    def _stale_points(self, plan: _Plan, query: str) -> str | None:
        """Why a Graphite value is not current, or None. The render API gives every datapoint's
        timestamp (the start of its bucket) and a null where nothing was written, and the check's
        value is the last non-null datapoint within the query's own `from`: a series that stopped
        keeps answering its last value until it leaves that range. The same query over the last
        four intervals: its newest datapoint's bucket (its timestamp plus the datapoints' spacing)
        must end inside this look's window (the analysis interval); none at all is older still."""
        window = self.canary.spec.analysis.interval_seconds
        ranged = getattr(self._client(plan), "query_range", None)
        if ranged is None:
            return None
        oldest_allowed = self.now.timestamp() - window
        try:
            points = ranged(query, self.now - timedelta(seconds=4 * window), self.now, window)
        except NoDataError:
            points = []
        except AnalysisError:
            return None  # the check's own query answered: a failed second read says nothing
        times = sorted(t for t, _ in points)
        spacing = min((b - a for a, b in zip(times, times[1:], strict=False) if b > a), default=0.0)
        if times and times[-1] + spacing >= oldest_allowed:
            return None
        age = (
            f"is {self.now.timestamp() - times[-1] - spacing:.0f}s old"
            if times
            else f"is older than {4 * window:g}s"
        )
        return f"no current data: the newest datapoint {age}, older than this look's window ({window:g}s)"

    def _mask(self, text: str) -> str:
        # Longest first, so a secret that contains another is masked whole; every spelling of it
        # (base64, percent- or JSON-encoded), and what `redaction` knows (a Basic auth header).
        forms = {form for value in self.revealed.copy() for form in spellings(value)}
        for value in sorted(forms, key=len, reverse=True):
            if len(value) >= 4:
                text = text.replace(value, "***")
        return redact(text)

    def _plan(self, metric: CanaryMetric) -> _Plan:
        # Precedence when a metric has several sources: templateRef, then inline query, then builtin.
        if metric.template_ref is not None:
            return self._template_plan(metric)
        server, note = self._server()
        if metric.query:
            return _Plan(query=metric.query, address=server, note=note)
        builtin = builtin_metric(self.canary.provider, metric.name)
        if builtin is None:
            raise _Failed(
                f"no builtin {metric.name} for provider {self.canary.provider}, and no templateRef or query"
            )
        return _Plan(
            query=builtin.query,
            address=server,
            bound=builtin.bound,
            unit=builtin.unit,
            whole_units=builtin.unit == "ms",
            note=note,
        )

    def _server(self) -> tuple[str, str]:
        """Address for builtins and inline queries: the canary's `metricsServer` or the default."""
        if not self.canary.spec.metrics_server:
            return self.default_address, ""
        return self._reachable(urlmap.rewrite(self.canary.spec.metrics_server))

    def _template_plan(self, metric: CanaryMetric) -> _Plan:
        ref = metric.template_ref
        assert ref is not None
        key = f"{ref.namespace or self.canary.namespace}/{ref.name}"
        template = self.templates.get(key)
        if template is None:
            raise _Failed(f"metric template {key} not found")
        provider = template.spec.provider
        if providers.module(provider.type) is None:
            raise _Failed(f"unknown provider type {provider.type!r}")
        # --rewrite-url maps an in-cluster address to one reachable from here, for every backend.
        address, note = (urlmap.rewrite(provider.address) if provider.address else provider.address), ""
        if provider.type == "prometheus":
            # Without an address the template means "the Prometheus gitcanary uses" (Flagger would refuse it).
            address, note = self._reachable(address) if address else (self.default_address, "")
        target = Target(provider, template.namespace, address)
        return _Plan(query=template.spec.query, address=address or "", target=target, note=note)

    def _reachable(self, address: str) -> tuple[str, str]:
        """`address`, or the default one with a note when its host does not resolve from here."""
        host = urlsplit(address).hostname
        if not host:
            return self.default_address, f"{address} is not a URL; queried {self.default_address}"
        with self._lock:
            if host not in self.resolved:
                self.resolved[host] = _resolves(host)
            resolved = self.resolved[host]
        if resolved:
            return address, ""
        return self.default_address, f"{host} does not resolve here; queried {self.default_address}"

    def _client(self, plan: _Plan) -> Provider:
        with self._lock:
            return self._client_locked(plan)

    def _client_locked(self, plan: _Plan) -> Provider:
        if plan.target is None:
            key: object = plan.address
            if key not in self.clients:
                client = self.client_factory(plan.address, None)
                wrapper = (
                    _RangeQueryClientProvider if hasattr(client, "query_range") else _QueryClientProvider
                )
                self.clients[key] = wrapper(client)
            return self.clients[key]
        spec = plan.target.spec
        key = (spec.model_dump_json(), plan.target.namespace, plan.target.address)
        if key not in self.clients:
            self.clients[key] = providers.build(plan.target, self.env, self.pool)
        return self.clients[key]


class _Recording:
    """A `SecretSource` that remembers every value it hands out."""

    def __init__(self, source: SecretSource, seen: set[str]) -> None:
        self.source = source
        self.seen = seen

    def get(self, namespace: str, secret: str, key: str) -> str | None:
        value = self.source.get(namespace, secret, key)
        if value:
            self.seen.add(value)
        return value

    def where(self, namespace: str, secret: str, key: str) -> str:
        return self.source.where(namespace, secret, key)


# A PromQL vector selector with label matchers: `name{...}` (the metric name, then its matchers;
# label values are quoted strings, which may hold any character but an unescaped quote).
_SELECTOR = re.compile(r"""[a-zA-Z_:][a-zA-Z0-9_:]*\s*\{(?:[^{}"']|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')*\}""")
_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"})


def selectors_of(query: str) -> list[str]:
    """The vector selectors with label matchers in a PromQL query, in order (`by (le)` and other
    keywords are not selectors)."""
    found = []
    for match in _SELECTOR.finditer(query):
        name = match.group(0).split("{", 1)[0].strip()
        if name not in _KEYWORDS:
            found.append(match.group(0))
    return found


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return True


def judge(
    metric: CanaryMetric, value: float, *, bound: str = "max", unit: str = "", note: str = ""
) -> CheckResult:
    """Compare `value` with the metric's bounds (inclusive) and write the commit line.

    `bound` is what the deprecated `threshold` means when `thresholdRange` is absent.
    """
    if metric.threshold_range is not None:
        low, high = metric.threshold_range.min, metric.threshold_range.max
    else:
        threshold = metric.threshold if metric.threshold is not None else 0.0
        low, high = (threshold, None) if bound == "min" else (None, threshold)

    def show(number: float) -> str:
        return f"{format_number(number)}{unit}"

    def show_against(bound_value: float) -> str:
        # 98.999 < 99 must not read "99 < 99": add decimals until value and bound differ.
        shown, digits = show(value), 2
        while shown == show(bound_value) and digits < 6:
            digits += 1
            shown = f"{value:.{digits}f}".rstrip("0").rstrip(".") + unit
        return shown

    shown = show(value)
    if low is not None and value < low:
        ok, text = False, f"{show_against(low)} < {show(low)}"
    elif high is not None and value > high:
        ok, text = False, f"{show_against(high)} > {show(high)}"
    elif low is not None and high is not None:
        ok, text = True, f"{shown} in [{show(low)}, {show(high)}]"
    elif low is not None:
        ok, text = True, f"{shown} >= {show(low)}"
    elif high is not None:
        ok, text = True, f"{shown} <= {show(high)}"
    else:
        ok, text = True, shown
    line = f"{metric.name} {text} {'ok' if ok else 'failed'}"
    return CheckResult(metric.name, value, low, high, ok, _with_note(line, note))


def format_number(number: float) -> str:
    """At most two decimals, no trailing zeros: 99.87, 99.9, 612."""
    text = f"{number:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _failed(metric: CanaryMetric, reason: str, note: str = "") -> CheckResult:
    low = metric.threshold_range.min if metric.threshold_range else None
    high = metric.threshold_range.max if metric.threshold_range else None
    return CheckResult(
        metric.name, None, low, high, False, _with_note(f"{metric.name} {reason}: failed", note)
    )


def _with_note(line: str, note: str) -> str:
    return f"{line} ({note})" if note else line

"""A SIMULATED cluster and a SIMULATED Prometheus for `gitcanary demo`.

This is not Kubernetes and not Prometheus. It stands in for both so the demo runs on a machine
with nothing but gitcanary installed:

- "Applying" a commit means what Flux would do with it, minus the cluster: check out the remote
  branch's head, build the applier's paths with real kustomize, and read the result. The Istio
  VirtualService's weights split a steady stream of requests between the Services it routes to;
  each Service's selector picks the Deployments whose pods serve them, and a Deployment runs
  `spec.replicas` pods (or its HPA's `minReplicas` when it leaves replicas out). Each pod's image
  tag decides how the requests it serves behave (`VersionProfile`: error ratio and p99 latency),
  as set by the demo.
- The HTTP server answers Prometheus' `GET|POST /api/v1/query` in Prometheus' response format,
  for exactly the queries gitcanary sends for the Istio provider (and, through `providers.py`,
  the Gateway API, Linkerd and NGINX ones): the builtin
  `request-success-rate` and `request-duration`, and the example's `error-rate` template. It does
  not evaluate PromQL: it recognizes the shape of the query (which metric, which workload, which
  range) and integrates the simulated traffic over that range. Anything else gets an empty
  result, which gitcanary counts as a failed check, as it would for a real Prometheus.
- For `gitcanary demo --metrics graphite` it also answers Graphite's `GET /render?format=json` for
  the one series `demo.<namespace>.<workload>.errors_percent` (from `-<n>s`, at `now`), from the
  same traffic.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from gitcanary.demo._git import git
from gitcanary.demo.providers import destinations as provider_destinations
from gitcanary.demo.providers import recognize_provider
from gitcanary.duration import parse_duration
from gitcanary.manifests import kustomize

Obj = dict[str, Any]
Kind = Literal["success-rate", "error-rate", "latency-p99"]

LABEL = "SIMULATED"


@dataclass(frozen=True)
class VersionProfile:
    """How requests served by pods of one image tag behave."""

    error_ratio: float  # fraction answered 5xx
    p99_ms: float


HEALTHY = VersionProfile(error_ratio=0.001, p99_ms=120.0)


@dataclass(frozen=True)
class Workload:
    """One Deployment as the simulated cluster runs it."""

    name: str
    version: str  # the first container's image tag (or digest), `+random-error` if its config says so
    pods: int
    share: float  # percent of the entry service's requests its pods serve


@dataclass(frozen=True)
class ClusterState:
    """What runs from one applied commit on, until the next one."""

    commit: str
    since: float
    workloads: tuple[Workload, ...]
    weights: tuple[tuple[str, int], ...]  # routing destinations (host, weight) as committed
    unserved: float = 0.0  # percent routed to a destination with no running pods

    def workload(self, name: str) -> Workload | None:
        return next((w for w in self.workloads if w.name == name), None)


@dataclass
class Totals:
    """Requests served over a window, and what they did."""

    seconds: float = 0.0
    requests: float = 0.0
    errors: float = 0.0
    latency_weight: float = 0.0  # sum of requests x p99

    @property
    def success_rate(self) -> float:
        return 100.0 * (self.requests - self.errors) / self.requests

    @property
    def error_rate(self) -> float:
        return 100.0 * self.errors / self.requests

    @property
    def p99_ms(self) -> float:
        return self.latency_weight / self.requests


# -- routing: built manifests -> who serves what -------------------------------------------------


def _matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


# podinfo's `--random-error` flag, which podinfo also reads from this environment variable: its pods
# then answer some requests with 5xx. The demo's config-only release sets it.
RANDOM_ERROR = "PODINFO_RANDOM_ERROR"


def _environment(container: Obj, objects: Iterable[Obj], namespace: str | None) -> dict[str, str]:
    """The container's environment: `env` values and the ConfigMaps its `envFrom` names, from the build."""
    maps = {
        (o.get("metadata") or {}).get("name"): o.get("data") or {}
        for o in objects
        if o.get("kind") == "ConfigMap" and (o.get("metadata") or {}).get("namespace") in (None, namespace)
    }
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        env.update(
            {str(k): str(v) for k, v in maps.get((source.get("configMapRef") or {}).get("name"), {}).items()}
        )
    for item in container.get("env") or []:
        if "value" in item:
            env[str(item.get("name"))] = str(item["value"])
    return env


def _version(deployment: Obj, objects: Iterable[Obj] = ()) -> str:
    """The first container's image tag (or digest), marked `+random-error` when its config says so."""
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    if not containers:
        return "?"
    image = str(containers[0].get("image", ""))
    if "@" in image:
        tag = image.rsplit("@", 1)[1][:19]
    else:
        name = image.rsplit("/", 1)[-1]
        tag = name.rsplit(":", 1)[1] if ":" in name else "latest"
    namespace = (deployment.get("metadata") or {}).get("namespace")
    if _environment(containers[0], objects, namespace).get(RANDOM_ERROR, "").lower() == "true":
        return f"{tag}+random-error"
    return tag


def route(
    objects: Iterable[Obj], namespace: str, service: str
) -> tuple[list[Workload], list[tuple[str, int]], float]:
    """Split the requests sent to `service` among Deployments, as Istio and Kubernetes would.

    Returns the workloads (every Deployment of `namespace`, with its share in percent), the
    routing destinations with their weights, and the percent that reaches no running pod.
    """
    objects = [o for o in objects if (o.get("metadata") or {}).get("namespace", namespace) == namespace]
    autoscaled = {}
    for obj in objects:
        if obj.get("kind") == "HorizontalPodAutoscaler":
            spec = obj.get("spec") or {}
            autoscaled[(spec.get("scaleTargetRef") or {}).get("name")] = int(spec.get("minReplicas") or 1)
    deployments = []
    for obj in objects:
        if obj.get("kind") != "Deployment":
            continue
        name = obj["metadata"]["name"]
        spec = obj.get("spec") or {}
        # An HPA does not scale a Deployment whose replicas is 0; one that leaves replicas out
        # runs what the HPA asks for (its minimum, with this simulator's steady load).
        replicas = spec.get("replicas")
        pods = int(replicas) if replicas is not None else autoscaled.get(name, 1)
        labels = (spec.get("template", {}).get("metadata") or {}).get("labels") or {}
        deployments.append((name, labels, _version(obj, objects), pods))
    selectors = {
        o["metadata"]["name"]: (o.get("spec") or {}).get("selector") or {}
        for o in objects
        if o.get("kind") == "Service"
    }

    destinations: list[tuple[str, int]] = []
    for obj in objects:
        # Istio's VirtualService (App Mesh has a kind of the same name: its weights are in providers.py).
        app_mesh = str(obj.get("apiVersion")).startswith("appmesh.k8s.aws/")
        if obj.get("kind") != "VirtualService" or app_mesh:
            continue
        spec = obj.get("spec") or {}
        if service not in (spec.get("hosts") or []) and obj["metadata"]["name"] != service:
            continue
        http = (spec.get("http") or [{}])[0]
        dests = http.get("route") or []
        for dest in dests:
            host = str((dest.get("destination") or {}).get("host", "")).split(".", 1)[0]
            weight = dest.get("weight")
            destinations.append(
                (host, int(weight) if weight is not None else (100 if len(dests) == 1 else 0))
            )
        break
    else:
        other = provider_destinations(objects, service)  # HTTPRoute, TrafficSplit, canary Ingress
        if other is not None:
            destinations = other
        elif service in selectors:  # no routing object: the mesh sends to the Service's endpoints
            destinations = [(service, 100)]

    shares = {name: 0.0 for name, *_ in deployments}
    unserved = 0.0
    for host, weight in destinations:
        backends = [
            (name, pods)
            for name, labels, _, pods in deployments
            if pods > 0 and _matches(selectors.get(host, {}), labels)
        ]
        total = sum(pods for _, pods in backends)
        if not total:
            unserved += weight
            continue
        for name, pods in backends:
            shares[name] += weight * pods / total
    workloads = [Workload(name, version, pods, shares[name]) for name, _, version, pods in deployments]
    return workloads, destinations, unserved


# -- queries: PromQL text -> what is asked --------------------------------------------------------

_WORKLOAD = re.compile(r'destination_workload\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_NAMESPACE = re.compile(r'destination_workload_namespace\s*=\s*"((?:[^"\\]|\\.)*)"')
_RANGE = re.compile(r"\[\s*([0-9][0-9a-z.µ]*)\s*\]")
_NOT_5XX = re.compile(r'response_code\s*!~\s*"5\.\*"')


@dataclass(frozen=True)
class Query:
    """What a recognized query asks: a metric of the workloads a label matcher selects, over a range."""

    kind: Kind
    op: str  # "=" or "=~"
    workload: str
    namespace: str | None
    window: float  # seconds

    def selects(self, name: str) -> bool:
        if self.op == "=~":
            try:
                return re.fullmatch(self.workload, name) is not None  # Prometheus anchors regexes
            except re.error:
                return False
        return name == self.workload


def recognize(promql: str) -> Query | None:
    """The question `promql` asks, if it is one of the queries this simulator knows; else None.

    - `istio_request_duration_milliseconds_bucket`: p99 latency in milliseconds (builtin request-duration);
    - `istio_requests_total` with `response_code!~"5.*"` and `100 -` in front: percent of 5xx
      responses (the example's error-rate MetricTemplate);
    - `istio_requests_total` with `response_code!~"5.*"`: percent of non-5xx responses (builtin
      request-success-rate).
    """
    text = " ".join(promql.split())
    other = recognize_provider(text)  # Linkerd's and ingress-nginx's builtins
    if other is not None:
        return Query(*other)  # type: ignore[arg-type]
    workload = _WORKLOAD.search(text)
    window = _RANGE.search(text)
    if workload is None or window is None or workload.group(1) not in ("=", "=~"):
        return None
    try:
        seconds = parse_duration(window.group(1))
    except ValueError:
        return None
    kind: Kind
    if "istio_request_duration_milliseconds_bucket" in text and "histogram_quantile" in text:
        kind = "latency-p99"
    elif "istio_requests_total" in text and _NOT_5XX.search(text):
        kind = "error-rate" if re.match(r"\(*\s*100\s*-", text) else "success-rate"
    else:
        return None
    namespace = _NAMESPACE.search(text)
    return Query(
        kind,
        workload.group(1),
        workload.group(2).replace('\\"', '"'),
        namespace.group(1) if namespace else None,
        seconds,
    )


# `gitcanary demo --metrics graphite`: the one series the SIMULATED Graphite knows, and its `from`.
_GRAPHITE_TARGET = re.compile(r"demo\.([a-z0-9-]+)\.([a-z0-9-]+)\.errors_percent")
_GRAPHITE_FROM = re.compile(r"-(\d+(?:\.\d+)?)(s|sec|seconds|min|minutes)")


# -- the simulated cluster -------------------------------------------------------------------------


@dataclass
class SimulatedCluster:
    """Applies the remote branch's head as Flux would (kustomize build), and serves its traffic's metrics.

    `paths` are the directories the applier builds (the Flux Kustomizations' `spec.path`);
    `service` is the host clients call, `rps` their steady request rate.
    """

    remote: str
    checkout: Path
    branch: str = "main"
    paths: tuple[str, ...] = ("apps",)
    namespace: str = "prod"
    service: str = "backend"
    rps: float = 100.0
    profiles: Mapping[str, VersionProfile] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    timeline: list[ClusterState] = field(default_factory=list)
    queries: list[tuple[str, str, float | None]] = field(default_factory=list)  # (kind, workload, value)
    # Queries it does not recognize (`gitcanary demo --repo`: the user's own templates): (promql, at)
    # -> a value or None. Without one they have no data.
    fallback: Callable[[str, float], float | None] | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def profile(self, version: str) -> VersionProfile:
        return self.profiles.get(version, HEALTHY)

    # -- applying ---------------------------------------------------------------------------

    def apply(self) -> ClusterState | None:
        """Fetch the branch and, if its head moved, build and run it; the new state, or None."""
        if not (self.checkout / ".git").exists():
            self.checkout.parent.mkdir(parents=True, exist_ok=True)
            git("clone", "-q", "--branch", self.branch, self.remote, str(self.checkout))
        else:
            git(
                "fetch",
                "-q",
                "origin",
                f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}",
                cwd=self.checkout,
            )
            git("reset", "-q", "--hard", f"origin/{self.branch}", cwd=self.checkout)
        head = git("rev-parse", "HEAD", cwd=self.checkout).strip()
        if self.timeline and self.timeline[-1].commit == head:
            return None
        objects: list[Obj] = []
        for path in self.paths:
            objects += kustomize.build(self.checkout / path, display=path)
        workloads, weights, unserved = route(objects, self.namespace, self.service)
        state = ClusterState(head, self.clock(), tuple(workloads), tuple(weights), unserved)
        with self._lock:
            self.timeline.append(state)
        return state

    @property
    def current(self) -> ClusterState | None:
        return self.timeline[-1] if self.timeline else None

    # -- traffic ----------------------------------------------------------------------------

    def totals(self, selects: Callable[[Workload], bool], start: float, end: float) -> Totals:
        """Requests served in [start, end] by the workloads `selects` picks."""
        totals = Totals(seconds=max(end - start, 0.0))
        with self._lock:
            timeline = list(self.timeline)
        for index, state in enumerate(timeline):
            until = timeline[index + 1].since if index + 1 < len(timeline) else float("inf")
            seconds = min(until, end) - max(state.since, start)
            if seconds <= 0:
                continue
            for workload in state.workloads:
                if not workload.share or not selects(workload):
                    continue
                profile = self.profile(workload.version)
                requests = self.rps * workload.share / 100.0 * seconds
                totals.requests += requests
                totals.errors += requests * profile.error_ratio
                totals.latency_weight += requests * profile.p99_ms
        return totals

    def observed(self, seconds: float) -> dict[str, Totals]:
        """Per version (image tag), what the simulated pods served over the last `seconds`."""
        end = self.clock()
        with self._lock:
            versions = dict.fromkeys(w.version for state in self.timeline for w in state.workloads)
        out = {}
        for version in versions:
            totals = self.totals(_of_version(version), end - seconds, end)
            if totals.requests:
                out[version] = totals
        return out

    def evaluate(self, query: Query, at: float) -> float | None:
        """The value a Prometheus fed by this traffic would return; None for no data."""
        if query.namespace is not None and query.namespace != self.namespace:
            return None
        totals = self.totals(lambda w: query.selects(w.name), at - query.window, at)
        if totals.requests <= 0:
            return None
        if query.kind == "success-rate":
            return totals.success_rate
        if query.kind == "error-rate":
            return totals.error_rate
        return totals.p99_ms

    def render(self, target: str, window: float, at: float | None) -> list[Obj]:
        """A Graphite `/render?format=json` body for `demo.<namespace>.<workload>.errors_percent`
        over the last `window` seconds before `at` (now when None): one datapoint, or none."""
        at = self.clock() if at is None else at
        match = _GRAPHITE_TARGET.fullmatch(target)
        value = None
        if match and match.group(1) == self.namespace:
            query = Query("error-rate", "=", match.group(2), match.group(1), window)
            value = self.evaluate(query, at)
        with self._lock:
            self.queries.append(("graphite error-rate", match.group(2) if match else "", value))
        points = [] if value is None else [[float(value), int(at)]]
        return [{"target": target, "tags": {"name": target}, "datapoints": points}] if match else []

    def answer(self, promql: str, at: float | None) -> Obj:
        """A Prometheus `/api/v1/query` response body for `promql` at `at` (now when None)."""
        at = self.clock() if at is None else at
        query = recognize(promql)
        value = self.evaluate(query, at) if query is not None else None
        if query is None and self.fallback is not None:
            value = self.fallback(promql, at)
        with self._lock:
            self.queries.append((query.kind if query else "unknown", query.workload if query else "", value))
        result = [] if value is None else [{"metric": {}, "value": [round(at, 3), repr(float(value))]}]
        return {"status": "success", "data": {"resultType": "vector", "result": result}}

    # -- serving ----------------------------------------------------------------------------

    def serve(self) -> str:
        """Start the Prometheus-compatible HTTP API on a free loopback port; its base URL."""
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
            self._server.daemon_threads = True
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="simulated-prometheus", daemon=True
            )
            self._thread.start()
        return f"http://127.0.0.1:{self._server.server_port}"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SimulatedCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _of_version(version: str) -> Callable[[Workload], bool]:
    return lambda workload: workload.version == version


def _handler(cluster: SimulatedCluster) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "gitcanary-demo-simulated-prometheus"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._handle(parse_qs(urlsplit(self.path).query))

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
            self._handle({**parse_qs(urlsplit(self.path).query), **form})

        def _handle(self, params: dict[str, list[str]]) -> None:
            if urlsplit(self.path).path.rstrip("/") == "/render":
                self._render(params)
                return
            if urlsplit(self.path).path.rstrip("/") != "/api/v1/query":
                self._send(
                    404,
                    {
                        "status": "error",
                        "errorType": "not_found",
                        "error": f"{LABEL} Prometheus serves only /api/v1/query",
                    },
                )
                return
            query = (params.get("query") or [""])[0]
            if not query.strip():
                self._send(400, {"status": "error", "errorType": "bad_data", "error": "no query given"})
                return
            at: float | None = None
            if params.get("time"):
                try:
                    at = float(params["time"][0])
                except ValueError:
                    self._send(
                        400,
                        {
                            "status": "error",
                            "errorType": "bad_data",
                            "error": f"cannot parse {params['time'][0]!r} to a valid timestamp",
                        },
                    )
                    return
            self._send(200, cluster.answer(query, at))

        def _render(self, params: dict[str, list[str]]) -> None:
            """Graphite's render API, as much of it as `--metrics graphite` uses."""
            window = _GRAPHITE_FROM.fullmatch((params.get("from") or ["-60s"])[0])
            if window is None:
                self._send(400, {"error": f"{LABEL} Graphite takes from=-<n>s or -<n>min"})
                return
            seconds = float(window.group(1)) * (60 if window.group(2).startswith("min") else 1)
            try:
                at = float(params["now"][0]) if params.get("now") else None
            except ValueError:
                self._send(400, {"error": "now is not a timestamp"})
                return
            body = [series for t in params.get("target", []) for series in cluster.render(t, seconds, at)]
            self._send(200, body)

        def _send(self, code: int, body: Obj | list[Obj]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            pass  # the demo prints what matters itself

    return Handler

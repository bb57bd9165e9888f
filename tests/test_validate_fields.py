"""Every field of Flagger's Canary and MetricTemplate CRDs, set one at a time: if `validate` accepts the
configuration, a real analysis against a real Prometheus (holding the canary's traffic) gets a value for
every metric (or finds no series for the provider's builtin queries: this Prometheus holds Istio traffic),
so no release would roll back for a reason `validate` could have named.

The field list comes from Flagger's CRD (tests/data/crds/flagger.json), not from gitcanary's models.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, git
from prometheus_server import QUERY_AT, PrometheusServer, Traffic

from gitcanary.analysis import run_analysis
from gitcanary.analysis.providers import Endpoints, ProviderEnv
from gitcanary.commands.operations import init
from gitcanary.commands.validate import validate
from gitcanary.hooks.alerts import Secrets, env_name
from gitcanary.manifests import discovery, yamlio

CRDS = json.loads((Path(__file__).parent / "data" / "crds" / "flagger.json").read_text())

# Values a field needs to mean something here (the rest get a value of their schema's type).
MEANINGFUL: dict[str, Any] = {
    "spec.analysis.metrics[].name": "request-duration",
    "spec.analysis.metrics[].interval": "1m",
    "spec.analysis.metrics[].query": (
        'sum(rate(istio_requests_total{destination_workload="{{ target }}"}[1m]))'
    ),
    "spec.analysis.metrics[].templateRef.name": "missing-template",
    "spec.analysis.metrics[].templateRef.namespace": "elsewhere",
    "spec.analysis.metrics[].templateVariables": {"unused": "x"},
    "spec.analysis.metrics[].threshold": 5,
    "spec.analysis.metrics[].thresholdRange.max": 10,
    "spec.analysis.metrics[].thresholdRange.min": 1,
    "spec.analysis.interval": "0s",
    "spec.metricsServer": "PROMETHEUS",  # the test's real Prometheus (an address that answers)
    "spec.provider": "linkerd",
    "spec.provider.type": "datadog",
    "spec.provider.address": "http://prometheus.invalid:9090",
    "spec.query": 'sum(rate(istio_requests_total{destination_workload="{{ variables.app }}"}[1m]))',
    "spec.targetRef.name": "backend",
    "spec.service.port": 80,
}


def leaf_paths(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    props = schema.get("properties")
    if props:
        return [
            leaf for key, sub in props.items() for leaf in leaf_paths(sub, f"{path}.{key}" if path else key)
        ]
    items = schema.get("items")
    if schema.get("type") == "array" and isinstance(items, dict) and items.get("properties"):
        return leaf_paths(items, path + "[]")
    return [(path, schema)]


def crd_schema(kind: str) -> dict[str, Any]:
    for crd in CRDS:
        if crd["spec"]["names"]["kind"] == kind:
            return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    raise KeyError(kind)


def sample(path: str, schema: dict[str, Any]) -> Any:
    if path in MEANINGFUL:
        return MEANINGFUL[path]
    if schema.get("enum"):
        return schema["enum"][-1]
    kind = schema.get("type")
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        return [sample(path + "[]", schema.get("items") or {"type": "string"})]
    if kind == "object":
        return {"x": "y"} if schema.get("additionalProperties") else {}
    return "x"


def put(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set `path` (spec.a.b[].c: the first element of each list, created if needed)."""
    node: Any = doc
    parts = path.split(".")
    for part in parts[:-1]:
        is_list = part.endswith("[]")
        key = part.removesuffix("[]")
        if is_list:
            if not isinstance(node.get(key), list) or not node[key]:
                node[key] = [{}]
            node = node[key][0]
        else:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
    last = parts[-1]
    if last.endswith("[]"):
        node[last.removesuffix("[]")] = [value]
    else:
        node[last] = value


CANARY_FIELDS = [path for path, _ in leaf_paths(crd_schema("Canary")) if path.startswith("spec.")]
TEMPLATE_FIELDS = [path for path, _ in leaf_paths(crd_schema("MetricTemplate")) if path.startswith("spec.")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from prometheus_server import running_prometheus

    with running_prometheus([Traffic("backend", "prod")], workdir=tmp_path_factory.mktemp("prom")) as srv:
        yield srv


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, server: PrometheusServer) -> Path:
    root = tmp_path_factory.mktemp("repo") / "repo"
    shutil.copytree(EXAMPLES / "istio", root)
    template = root / "apps/metric-templates/error-rate.yaml"
    template.write_text(template.read_text().replace("http://prometheus.istio-system:9090", server.url))
    git("init", "-q", "-b", "main", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "seed", cwd=root)
    # Initialized, as a repository gitcanary already runs on (validate then checks the generated
    # objects in place instead of initializing a copy for each row).
    init(root, "apps/backend", switch=True)
    return root


def accepted_then_analysis_works(
    root: Path, server: PrometheusServer, file: str, doc: dict[str, Any]
) -> tuple[str, list[str]]:
    """('rejected', the errors), or ('accepted', []) after checking that every metric gets a value from
    the real Prometheus."""
    original = (root / file).read_text()
    try:
        (root / file).write_text(yamlio.dump(doc))
        errors, _ = validate(root)
        if errors:
            return "rejected", errors
        catalog = discovery.scan(root)
        # Secrets live outside the repository: give each secretRef a token, as a deployment would.
        deployed = {
            env_name(t.namespace, t.spec.provider.secret_ref.name, "token"): "t"
            for t in catalog.templates.values()
            if t.spec.provider.secret_ref is not None
        }
        # --prometheus is the operator's: run lets its credentials go there (and only there).
        env = ProviderEnv(secrets=Secrets(environ=deployed), endpoints=Endpoints.of([server.url]))
        for loaded in catalog.canaries.values():
            checks = run_analysis(
                loaded.canary, catalog.templates, default_address=server.url, now=QUERY_AT, env=env
            )
            # "no data" is the traffic's doing (this Prometheus holds Istio series only), not the config's.
            failed = [check.line for check in checks if check.value is None and " no data " not in check.line]
            assert not failed, f"validate accepted {file} but every analysis would fail: {failed}"
        return "accepted", []
    finally:
        (root / file).write_text(original)


def missing_required(schema: dict[str, Any], doc: dict[str, Any], path: str) -> list[tuple[str, ...]]:
    """For each object on the way to `path` in `doc` that lacks a field Flagger's CRD requires: the
    messages, one of which validate must give (`<where>.<field>: required field is missing`; it names
    the first missing field of an object). Computed from the CRD, not from gitcanary."""
    expected = []
    node: Any = doc
    where = ""
    for part in path.split("."):
        missing = [f for f in schema.get("required") or [] if isinstance(node, dict) and f not in node]
        if missing and where.startswith("spec"):
            expected.append(tuple(f"{where}.{f}: required field is missing" for f in missing))
        key = part.removesuffix("[]")
        schema = (schema.get("properties") or {}).get(key, {})
        node = node.get(key) if isinstance(node, dict) else None
        where = f"{where}.{key}" if where else key
        if part.endswith("[]"):
            schema = schema.get("items") or {}
            node = node[0] if isinstance(node, list) and node else None
            where += "[0]"
    return expected


# Why validate must reject a field's sample beyond the CRD's required fields: the message each
# rejection must carry (a substring of one error line). Every field not here (and missing no required
# sibling) must be accepted, and then every analysis must get its values.
INTEGER = "Input should be a valid integer"  # Flagger's Go types are int: 1.5 cannot be decoded
NOT_AN_OBJECT = "'y' is not of type 'object'"  # a match condition is an object (exact/prefix/regex)
LOAD_BALANCER = "spec.service.trafficPolicy.loadBalancer: "  # Istio's oneOf: simple, consistentHash...
EXPECTED_REJECTIONS: dict[str, list[str]] = {
    "spec.analysis.interval": ["spec.analysis.interval: '0s' is not a positive duration"],
    # The example sets stepWeight; Flagger's CRD allows one of iterations, stepWeight, stepWeights.
    "spec.analysis.iterations": ["sets iterations and stepWeight; Flagger's CRD allows only one of them"],
    "spec.analysis.stepWeights": ["sets stepWeight and stepWeights; Flagger's CRD allows only one of them"],
    "spec.analysis.maxWeight": [f"spec.analysis.maxWeight: {INTEGER}"],
    "spec.analysis.mirrorWeight": [f"spec.analysis.mirrorWeight: {INTEGER}"],
    "spec.analysis.stepWeight": [f"spec.analysis.stepWeight: {INTEGER}"],
    "spec.analysis.stepWeightPromotion": [f"spec.analysis.stepWeightPromotion: {INTEGER}"],
    "spec.analysis.threshold": [f"spec.analysis.threshold: {INTEGER}"],
    "spec.progressDeadlineSeconds": [f"spec.progressDeadlineSeconds: {INTEGER}"],
    "spec.analysis.match[].headers": ["spec.analysis.match[0].headers.x: " + NOT_AN_OBJECT],
    "spec.analysis.match[].queryParams": ["spec.analysis.match[0].queryParams.x: " + NOT_AN_OBJECT],
    "spec.service.match[].headers": ["spec.service.match[0].headers.x: " + NOT_AN_OBJECT],
    "spec.service.match[].queryParams": ["spec.service.match[0].queryParams.x: " + NOT_AN_OBJECT],
    "spec.service.match[].withoutHeaders": ["spec.service.match[0].withoutHeaders.x: " + NOT_AN_OBJECT],
    "spec.analysis.metrics[].templateRef.name": [
        "MetricTemplate prod/missing-template is not in the repository: every analysis would fail"
    ],
    # The example's first metric has thresholdRange.min 99: a max of 10 lets no value pass.
    "spec.analysis.metrics[].thresholdRange.max": ["min 99 > max 10: no value passes, every check fails"],
    "spec.analysis.webhooks[].timeout": ["spec.analysis.webhooks[0].timeout: 'x' is not a duration"],
    # apps/backend builds a HorizontalPodAutoscaler named backend and no other autoscaler.
    "spec.autoscalerRef.kind": ["spec.autoscalerRef: ScaledObject backend is not in what apps/backend"],
    "spec.autoscalerRef.name": ["HorizontalPodAutoscaler x is not in what apps/backend builds"],
    "spec.targetRef.kind": ["spec.targetRef.kind: Service targets are not supported yet (Deployment only)"],
    # Each of these sets one field of an option of Istio's loadBalancer oneOf without the rest.
    **{
        f"spec.service.trafficPolicy.loadBalancer.{field}": [LOAD_BALANCER]
        for field in (
            "consistentHash.minimumRingSize",
            "localityLbSetting.distribute[].from",
            "localityLbSetting.distribute[].to",
            "localityLbSetting.enabled",
            "localityLbSetting.failover[].from",
            "localityLbSetting.failover[].to",
            "warmupDurationSecs",
        )
    },
    # MetricTemplate fields.
    "spec.provider.headers": ["spec.provider.headers.x: 'y' is not of type 'array'"],
    "spec.provider.type": ["spec.provider.secretRef: datadog needs a secret with datadog_api_key"],
    "spec.query": ["has no 'app', which the query (in MetricTemplate prod/error-rate) uses"],
}


def expected_errors(kind: str, doc: dict[str, Any], path: str) -> list[tuple[str, ...]]:
    return missing_required(crd_schema(kind), doc, path) + [(m,) for m in EXPECTED_REJECTIONS.get(path, [])]


def check_outcome(verdict: str, errors: list[str], expected: list[tuple[str, ...]]) -> None:
    """Accepted when nothing is expected; otherwise rejected, and for each expectation one of its
    messages is (part of) an error line."""
    if not expected:
        assert (verdict, errors) == ("accepted", []), f"validate rejected a meaningful value: {errors}"
        return
    assert verdict == "rejected", f"validate accepted what it must reject with {expected}"
    for messages in expected:
        assert any(m in line for m in messages for line in errors), f"no error says {messages}: {errors}"


def test_every_field_is_covered_by_the_table() -> None:
    assert len(CANARY_FIELDS) > 150 and len(TEMPLATE_FIELDS) == 7


@pytest.mark.parametrize("path", CANARY_FIELDS)
def test_canary_field(repo: Path, server: PrometheusServer, path: str) -> None:
    file = "apps/backend/canary.yaml"
    doc = copy.deepcopy(yamlio.safe_load_all((repo / file).read_text()).__next__())
    schema = dict(leaf_paths(crd_schema("Canary")))[path]
    value = sample(path, schema)
    put(doc, path, server.url if value == "PROMETHEUS" else value)
    outcome = accepted_then_analysis_works(repo, server, file, doc)
    check_outcome(*outcome, expected_errors("Canary", doc, path))


@pytest.mark.parametrize("path", TEMPLATE_FIELDS)
def test_template_field(repo: Path, server: PrometheusServer, path: str) -> None:
    file = "apps/metric-templates/error-rate.yaml"
    doc = copy.deepcopy(yamlio.safe_load_all((repo / file).read_text()).__next__())
    schema = dict(leaf_paths(crd_schema("MetricTemplate")))[path]
    value = sample(path, schema)
    put(doc, path, server.url if value == "PROMETHEUS" else value)
    check_outcome(
        *accepted_then_analysis_works(repo, server, file, doc), expected_errors("MetricTemplate", doc, path)
    )


def test_every_expected_rejection_names_a_field() -> None:
    """A misspelt path in the table would expect nothing of a field and pass for any outcome."""
    assert set(EXPECTED_REJECTIONS) <= set(CANARY_FIELDS) | set(TEMPLATE_FIELDS)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("spec.analysis.metrics[].templateRef.name", "missing-template", "prod/missing-template is not in"),
        ("spec.analysis.metrics[].name", "no-such-builtin", "no-such-builtin"),
        ("spec.analysis.interval", "0s", "'0s' is not a positive duration"),
    ],
)
def test_what_fails_every_analysis_is_rejected(
    repo: Path, server: PrometheusServer, path: str, value: Any, message: str
) -> None:
    """The table's teeth: these would fail every analysis, so validate must say no."""
    file = "apps/backend/canary.yaml"
    doc = copy.deepcopy(yamlio.safe_load_all((repo / file).read_text()).__next__())
    put(doc, path, value)
    check_outcome(*accepted_then_analysis_works(repo, server, file, doc), [(message,)])


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("spec.provider.type", "datadog", "datadog needs a secret with datadog_api_key"),
        ("spec.provider.address", None, "spec.provider.address: required field is missing"),
        ("spec.query", 'sum(up{job="{{ variables.job }}"})', "templateVariables: has no 'job'"),
        ("spec.query", 'sum(up{job="{{ job }}"})', "uses {{ job }}, which gitcanary does not substitute"),
    ],
)
def test_template_problems_are_rejected(
    repo: Path, server: PrometheusServer, path: str, value: Any, message: str
) -> None:
    file = "apps/metric-templates/error-rate.yaml"
    doc = copy.deepcopy(yamlio.safe_load_all((repo / file).read_text()).__next__())
    if value is None:
        del doc["spec"]["provider"]["address"]
    else:
        put(doc, path, value)
    check_outcome(*accepted_then_analysis_works(repo, server, file, doc), [(message,)])

"""Loading Flagger manifests: errors name the file and the field; unsupported fields are reported."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from gitcanary.errors import SpecError
from gitcanary.manifests import discovery, yamlio
from gitcanary.spec.load import load_canary, load_metric_template

DATA = Path(__file__).parent / "data" / "fixtures" / "flagger" / "artifacts" / "examples"
EXAMPLE = Path(__file__).parent.parent / "examples" / "istio" / "apps" / "backend" / "canary.yaml"


def example() -> dict:
    return yamlio.safe_load_all(EXAMPLE.read_text()).__next__()


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.yaml")))
def test_flaggers_own_examples_load(name: str) -> None:
    doc = next(yamlio.safe_load_all((DATA / name).read_text()))
    if doc["spec"].get("provider") not in (None, "istio"):
        loaded = load_canary(doc, name)  # parses; the router refuses the provider later
        assert loaded.canary.provider == doc["spec"]["provider"]
        return
    loaded = load_canary(doc, name)
    assert loaded.canary.key == "test/podinfo"
    # istio-canary.yaml has pre-rollout and rollout webhooks: gitcanary calls them, no warning.
    assert not any("spec.analysis.webhooks" in w for w in loaded.warnings)
    if name == "istio-canary.yaml":
        hooks = [(h.name, h.type, h.timeout) for h in loaded.canary.spec.analysis.webhooks]
        assert hooks == [("conformance-test", "pre-rollout", "15s"), ("load-test", "rollout", "5s")]


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (
            lambda d: d["spec"]["analysis"].__setitem__("stepWieght", 5),
            "spec.analysis.stepWieght",
            "unknown field",
        ),
        (
            lambda d: d["spec"]["analysis"].__setitem__("threshold", "two"),
            "spec.analysis.threshold",
            "not of type",
        ),
        (lambda d: d["spec"].__setitem__("provider", "nope"), "spec.provider", "is not one of"),
        (
            lambda d: d["spec"]["analysis"].__setitem__("interval", "soon"),
            "spec.analysis.interval",
            "does not match",
        ),
        (
            lambda d: d["spec"]["analysis"].pop("stepWeight"),
            "spec.analysis",
            "needs one of iterations, stepWeight, stepWeights",
        ),
        (
            lambda d: d["spec"]["analysis"].__setitem__("stepWeights", [10, 20]),
            "spec.analysis",
            "sets stepWeight and stepWeights",
        ),
        (lambda d: d["spec"]["analysis"].pop("threshold"), "spec.analysis.threshold", "required"),
        (
            lambda d: (
                d["spec"]["analysis"].pop("stepWeight"),
                d["spec"]["analysis"].__setitem__("stepWeights", [10, 5]),
            ),
            "spec.analysis.stepWeights",
            "increase",
        ),
        (
            lambda d: d["spec"]["analysis"]["metrics"][2].pop("templateRef"),
            "spec.analysis.metrics[2].templateRef",
            "no templateRef",
        ),
        (lambda d: d["spec"].pop("targetRef"), "spec.targetRef", "required"),
    ],
)
def test_errors_name_file_and_field(mutate, field: str, words: str) -> None:
    doc = copy.deepcopy(example())
    mutate(doc)
    with pytest.raises(SpecError) as err:
        load_canary(doc, "apps/backend/canary.yaml")
    assert err.value.path == "apps/backend/canary.yaml"
    assert err.value.field == field
    assert words in err.value.message
    assert str(err.value).startswith(f"apps/backend/canary.yaml: {field}: ")


def test_metric_template_loads() -> None:
    text = (EXAMPLE.parent.parent / "metric-templates" / "error-rate.yaml").read_text()
    template = load_metric_template(next(yamlio.safe_load_all(text)), "error-rate.yaml")
    assert template.key == "prod/error-rate"
    assert "{{ target }}" in template.spec.query


def test_broken_canary_halts_only_itself(tmp_path: Path) -> None:
    good = tmp_path / "apps" / "a"
    bad = tmp_path / "apps" / "b"
    for directory in (good, bad):
        directory.mkdir(parents=True)
    (good / "canary.yaml").write_text(EXAMPLE.read_text())
    (bad / "canary.yaml").write_text(
        EXAMPLE.read_text()
        .replace("name: backend\n  namespace: prod", "name: other\n  namespace: prod")
        .replace("threshold: 2", "threshold: [2]")
    )
    (tmp_path / "apps" / "c.yaml").write_text("apiVersion: flagger.app/v1beta1\nkind: Canary\n  bad: [\n")
    catalog = discovery.scan(tmp_path)
    assert list(catalog.canaries) == ["prod/backend"]
    assert catalog.errors["apps/b/canary.yaml"].field == "spec.analysis.threshold"
    assert "not valid YAML" in str(catalog.errors["apps/c.yaml"])


def test_namespace_comes_from_the_kustomization(tmp_path: Path) -> None:
    app = tmp_path / "podinfo"
    app.mkdir()
    (app / "kustomization.yaml").write_text("namespace: test\nresources: [canary.yaml]\n")
    doc = example()
    del doc["metadata"]["namespace"]
    (app / "canary.yaml").write_text(yamlio.dump(doc))
    catalog = discovery.scan(tmp_path)
    assert list(catalog.canaries) == ["test/backend"]

"""`validate` knows each metric provider's required fields and secrets: a MetricTemplate that
`run` would fail on for every analysis is an error before any rollout, naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitcanary.analysis import providers
from gitcanary.commands.validate import validate
from tests.provider_checks import template

TEMPLATE = """\
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: {name}
  namespace: prod
spec:
  provider:
{provider}
  query: {query!r}
"""

CASES = {
    # type: (provider lines that are incomplete, expected error, provider lines that are complete)
    "datadog": (
        "type: datadog",
        "datadog needs a secret with datadog_api_key, datadog_application_key",
        "type: datadog\nsecretRef: {name: dd}",
    ),
    "newrelic": (
        "type: newrelic",
        "newrelic needs a secret with newrelic_account_id, newrelic_query_key",
        "type: newrelic\nsecretRef: {name: nr}",
    ),
    "dynatrace": (
        "type: dynatrace\nsecretRef: {name: dt}",
        "dynatrace needs an address",
        "type: dynatrace\naddress: https://x.live.dynatrace.com\nsecretRef: {name: dt}",
    ),
    "splunk": (
        "type: splunk\naddress: https://api.us1.signalfx.com",
        "splunk needs a secret with sf_token_key",
        "type: splunk\naddress: https://api.us1.signalfx.com\nsecretRef: {name: sf}",
    ),
    "cloudwatch": ("type: cloudwatch", "cloudwatch needs a region", "type: cloudwatch\nregion: eu-west-1"),
    "graphite": ("type: graphite", "graphite needs an address", "type: graphite\naddress: http://graphite"),
    "influxdb": (
        "type: influxdb",
        "influxdb needs an address",
        "type: influxdb\naddress: http://influx:8086",
    ),
    "prometheus": (
        "type: prometheus\naddress: prometheus:9090",
        "'prometheus:9090' is not an http(s) URL",
        "type: prometheus\naddress: http://prometheus:9090",
    ),
    # Flagger's CRD already refuses an unknown type when the file is read.
    "appdynamics": ("type: appdynamics", "'appdynamics' is not one of", "type: prometheus\naddress: http://127.0.0.1:9090"),
}
QUERIES = {
    "cloudwatch": '[{"Id": "e", "Expression": "SUM(x)"}]',
    "graphite": "target=a.b",
    "keptn": "keptnmetric/ns/m",
}


def write(root: Path, name: str, provider: str) -> str:
    indented = "\n".join("    " + line for line in provider.splitlines())
    path = root / "metrics" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(TEMPLATE.format(name=name, provider=indented, query=QUERIES.get(name, "q")))
    return f"metrics/{name}.yaml"


def test_every_incomplete_template_is_an_error_naming_file_and_field(tmp_path: Path) -> None:
    sources = {kind: write(tmp_path, kind, lines) for kind, (lines, _, _) in CASES.items()}
    errors, _ = validate(tmp_path)
    for kind, (_, expected, _) in CASES.items():
        mine = [e for e in errors if e.startswith(sources[kind] + ": spec.")]
        assert any(expected in e for e in mine), (kind, errors)


def test_complete_templates_pass(tmp_path: Path) -> None:
    for kind, (_, _, lines) in CASES.items():
        write(tmp_path, kind, lines)
    errors, warnings = validate(tmp_path)
    assert errors == []
    # A Prometheus host that does not resolve here is said (run then queries --prometheus); nothing else.
    assert [w for w in warnings if "does not resolve from this machine" not in w] == []


def test_a_template_without_address_is_refused_as_flagger_does(tmp_path: Path) -> None:
    source = write(tmp_path, "bare", "type: prometheus")
    errors, _ = validate(tmp_path)
    assert any(e.startswith(source + ": spec.provider.address: required field is missing") for e in errors)


@pytest.mark.parametrize("kind", sorted(providers.MODULES))
def test_every_flagger_type_has_a_module_with_build_and_problems(kind: str) -> None:
    module = providers.module(kind)
    assert module is not None and callable(module.build) and callable(module.problems)
    assert isinstance(providers.problems(template("t", QUERIES.get(kind, "q"), type=kind)), list)

"""Tests for six features a hand-made bug once broke without any test noticing (issue 29).

Each test was seen red with its bug put back by hand:
- a ConfigMap's `binaryData` left out of its tracked content (config_tracking.content);
- a quarantine `!= TAG` added to one `||` alternative of a Flux semver range, not to each;
- a Fleet app's inputs (fleet.yaml above the app dir) left out of the render cache key;
- the in-process commit path ignoring a `.gitattributes` (it must fall back to `git add`);
- Datadog's value taken from the last series instead of the first;
- the dashboard's HTML escaping of repository content dropped.
Oracles are independent of gitcanary: Flux's own semver library (tests/fluxpolicy), `git hash-object`
(which applies attributes as `git add` does), Python's html.parser, plain dict arithmetic.
"""

from __future__ import annotations

import base64
import html.parser
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import git
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from image_automation import build_fluxpolicy, flux_latest

from gitcanary.manifests import config_tracking as ct
from gitcanary.manifests import image_policies, image_quarantine, render_cache, yamlio
from gitcanary.spec.status import Phase

# -- config tracking: binaryData is content -----------------------------------------------------

KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_.0123456789", min_size=1, max_size=12)
WORKLOAD = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "backend"},
    "spec": {"template": {"spec": {"volumes": [{"name": "c", "configMap": {"name": "settings"}}]}}},
}


def _config_map(data: dict[str, str], binary: dict[str, bytes]) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}
    if data:
        obj["data"] = data
    if binary:
        obj["binaryData"] = {k: base64.b64encode(v).decode() for k, v in binary.items()}
    return obj


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    data=st.dictionaries(KEYS, st.text(max_size=20), max_size=3),
    binary=st.dictionaries(KEYS, st.binary(max_size=20), min_size=1, max_size=3),
    pick=st.integers(min_value=0),
    new=st.binary(max_size=20),
)
def test_any_binary_data_change_is_a_new_revision_naming_the_key(
    data: dict[str, str], binary: dict[str, bytes], pick: int, new: bytes
) -> None:
    key = sorted(binary)[pick % len(binary)]
    if binary[key] == new:
        new += b"\0"
    before = ct.track([_config_map(data, binary)], WORKLOAD, "prod")
    after = ct.track([_config_map(data, {**binary, key: new})], WORKLOAD, "prod")
    assert ct.revision_hash("t", before) != ct.revision_hash("t", after)
    assert ct.changed_keys(_config_map(data, binary), _config_map(data, {**binary, key: new})) == [key]
    # Metadata is no content: a label alone is the same revision.
    labelled = _config_map(data, binary)
    labelled["metadata"]["labels"] = {"team": "a"}
    assert ct.revision_hash("t", ct.track([labelled], WORKLOAD, "prod")) == ct.revision_hash("t", before)


# -- Flux semver quarantine: every || alternative refuses the tag ---------------------------------

IMAGE = "ghcr.io/acme/app"
TAGS = ["1.0.0", "1.1.0", "1.2.0", "1.2.0-rc.1", "2.0.0", "2.1.0", "3.0.0"]
ALTERNATIVES = ["^1.0.0", "^2.0.0", ">=2.1.0", "~1.2.0", ">=1.1.0 <2.0.0", "3.0.0", "^2.0.0-0"]


@pytest.fixture(scope="module")
def fluxpolicy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fluxpolicy(tmp_path_factory.mktemp("fluxpolicy"))


def _policy_repo(root: Path, range_: str) -> None:
    (root / "apps/app").mkdir(parents=True)
    (root / "apps/app/kustomization.yaml").write_text(
        f'images:\n  - name: {IMAGE}\n    newTag: 1.1.0 # {{"$imagepolicy": "flux-system:app:tag"}}\n'
    )
    (root / "flux").mkdir()
    (root / "flux/policy.yaml").write_text(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\n"
        "metadata:\n  name: app\n  namespace: flux-system\n"
        f"spec:\n  imageRepositoryRef:\n    name: app\n  policy:\n    semver:\n      range: '{range_}'\n"
    )


@settings(
    max_examples=12, derandomize=True, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(alternatives=st.lists(st.sampled_from(ALTERNATIVES), min_size=2, max_size=3, unique=True))
def test_a_quarantined_tag_is_refused_by_every_alternative_of_a_range(
    tmp_path_factory: pytest.TempPathFactory, fluxpolicy: Path, alternatives: list[str]
) -> None:
    """Flux then picks what it would pick had the tag never been pushed (asked of Flux's library)."""
    root = tmp_path_factory.mktemp("repo")
    range_ = " || ".join(alternatives)
    _policy_repo(root, range_)
    original = next(yamlio.safe_load_all((root / "flux/policy.yaml").read_text()))
    selected = flux_latest(fluxpolicy, original, None, TAGS)
    assert selected in TAGS
    [selector] = image_policies.find(root, "apps/app", IMAGE)
    assert image_quarantine.quarantine(root, selector, selected) is not None
    policy = next(yamlio.safe_load_all((root / "flux/policy.yaml").read_text()))
    never_pushed = flux_latest(fluxpolicy, original, None, [t for t in TAGS if t != selected])
    assert flux_latest(fluxpolicy, policy, None, TAGS) == never_pushed != selected


# -- the render cache key covers a Fleet app's inputs ---------------------------------------------

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: backend
spec:
  selector:
    matchLabels: {app: backend}
  template:
    metadata:
      labels: {app: backend}
    spec:
      containers:
        - name: backend
          image: ghcr.io/stefanprodan/podinfo:6.0.0
"""


def test_the_fleet_yaml_above_an_app_dir_is_part_of_its_render_key(tmp_path: Path) -> None:
    """Fleet deploys the plain manifests of apps/backend with the namespace of apps/fleet.yaml."""
    (tmp_path / "apps/backend").mkdir(parents=True)
    (tmp_path / "apps/backend/deployment.yaml").write_text(DEPLOYMENT)
    (tmp_path / "apps/fleet.yaml").write_text("defaultNamespace: prod\n")
    (tmp_path / "README.md").write_text("not read by the build\n")

    def key() -> str:
        return render_cache.digest(tmp_path, render_cache.build_inputs(tmp_path, "apps/backend"), ())

    first = key()
    (tmp_path / "README.md").write_text("still not read\n")
    assert key() == first
    (tmp_path / "apps/fleet.yaml").write_text("defaultNamespace: staging\n")
    assert key() != first


# -- the in-process commit falls back to `git add` where attributes apply --------------------------


@pytest.mark.parametrize(
    "attributes",
    [".gitattributes", "apps/.gitattributes", "apps/web-gitcanary/.gitattributes", ".git/info/attributes"],
)
def test_a_commit_stores_what_git_add_would_where_gitattributes_apply(
    tmp_path: Path, attributes: str
) -> None:
    from gitcanary.git.workspace import Identity, Workspace

    seed = tmp_path / "seed"
    (seed / "apps/web").mkdir(parents=True)
    (seed / "apps/web/kustomization.yaml").write_text("resources: []\n")
    if not attributes.startswith(".git/"):
        (seed / attributes).parent.mkdir(parents=True, exist_ok=True)
        (seed / attributes).write_text("*.yaml text\n")  # stored with LF whatever the working file has
    git("init", "-q", "-b", "main", cwd=seed)
    git("add", "-A", cwd=seed)
    git("commit", "-q", "-m", "seed", cwd=seed)
    git("clone", "-q", "--bare", str(seed), str(tmp_path / "remote.git"), cwd=tmp_path)
    ws = Workspace(str(tmp_path / "remote.git"), "main", tmp_path / "work", Identity("g", "g@example.com"))
    ws.sync()
    root = ws.root
    if attributes.startswith(".git/"):
        (root / attributes).parent.mkdir(parents=True, exist_ok=True)
        (root / attributes).write_text("*.yaml text\n")
    (root / "apps/web-gitcanary").mkdir(exist_ok=True)
    written = root / "apps/web-gitcanary/routing.yaml"
    written.write_bytes(b"weight: 20\r\nmirror: false\r\n")
    sha = ws.commit("step", ["apps/web-gitcanary/routing.yaml"])
    ws.flush()
    expected = subprocess.run(
        ["git", "hash-object", "--path", "apps/web-gitcanary/routing.yaml", str(written)],
        cwd=root, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert git("rev-parse", f"{sha}:apps/web-gitcanary/routing.yaml", cwd=root).strip() == expected
    assert git("cat-file", "blob", expected, cwd=root) == "weight: 20\nmirror: false\n"


# -- Datadog: the first series -----------------------------------------------------------------


def test_datadog_reads_the_first_series_of_several() -> None:
    from datetime import timedelta

    from provider_checks import NOW, check, secrets, template
    from vendor_server import Reply, Spec, VendorServer, serve

    from gitcanary.analysis.providers import HttpPool, ProviderEnv, Target, build

    def body(request: object) -> Reply:
        first = {"metric": "e", "scope": "service:backend", "pointlist": [[1_000_000, 3.0], [1_010_000, 4.0]]}
        other = {"metric": "e", "scope": "service:other", "pointlist": [[1_000_000, 90.0], [1_010_000, 95.0]]}
        return Reply(200, {"status": "ok", "res_type": "time_series", "series": [first, other]})

    env = ProviderEnv(secrets=secrets({"datadog_api_key": "a", "datadog_application_key": "b"}))
    for server in serve(VendorServer(body, Spec.load("datadog/openapi-v1-query.json", "/api/v1/query"))):
        subject = template("errors", "sum:errors{*} by {service}", type="datadog", address=server.url,
                           secretRef={"name": "metrics"})
        result = check(subject, env=env, bounds={"max": 5})
        assert result.ok and result.value == 3.0
        # The stand-in's address is the operator's here (provider_checks.check allows it the same way).
        allowed = replace(env, endpoints=env.endpoints.plus(server.url))
        provider = build(Target(subject.spec.provider, "prod", server.url), allowed, HttpPool())
        points = provider.query_range("sum:errors{*}", NOW - timedelta(minutes=5), NOW, 10)  # type: ignore[attr-defined]
        assert points == [(1000.0, 3.0), (1010.0, 4.0)]
        assert server.errors == []


# -- the dashboard escapes what the repository says ------------------------------------------------


class _Page(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [value or "" for _, value in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parsed(markup: str) -> _Page:
    page = _Page()
    page.feed(markup)
    page.close()
    return page


UNTRUSTED = st.text(alphabet="<>&'\"=/ ab!-", min_size=1, max_size=24)


@settings(max_examples=80, derandomize=True, deadline=None)
@given(
    key=UNTRUSTED, phase=st.sampled_from(list(Phase)), message=UNTRUSTED, revisions=UNTRUSTED,
    metric=UNTRUSTED,
)
def test_repository_text_reaches_the_dashboard_as_text(
    key: str, phase: Phase, message: str, revisions: str, metric: str
) -> None:
    """Whatever a status file or Canary says, the card's elements are the card's own; the text reads
    back exactly (through a real HTML parser)."""
    from gitcanary.service.dashboard import Card, Dashboard, _card_html

    board = Dashboard(lambda: Path("."), "repo")

    def card(k: str, p: str, m: str, r: str, name: str) -> str:
        return _card_html(
            Card(key=k, source="apps/x/canary.yaml", phase=p, weight=10, revisions=r,
                 last_transition="2026-01-01T00:00:00Z", message=m, thresholds={name: (None, 5.0)}),
            board,
        )

    plain = _parsed(card("k", phase.value, "m", "r", "n"))
    page = _parsed(card(key, phase.value, message, revisions, metric))
    assert page.tags == plain.tags  # no element injected, none cut short
    text = "".join(page.text)
    for value in (key, message, revisions, metric):
        assert value in text
    assert key in page.attributes  # the card's id attribute holds the key, quotes and all

"""Session affinity (`analysis.sessionAffinity`) on Istio and Gateway API, for every generated Canary.

Flagger's routers (pkg/router/istio.go, gateway_api.go) put sticky routes ahead of the weighted one
while the canary takes traffic and expire the last run's cookie once it is back to weight 0. The
oracle (tests/oracle.py `session_affinity_problems`) restates that from the Canary alone; the cookie's
value is gitcanary's own (routers/affinity.py) and must be stable across restarts and new per revision.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import git
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import session_affinity_problems
from router_properties import NAMES, WEIGHTS, canaries, check_render

from gitcanary.manifests import yamlio
from gitcanary.manifests.generate import FileWriter, Layout
from gitcanary.manifests.target import render_target
from gitcanary.routers import router_for
from gitcanary.routers.affinity import cookie_value, session_cookies
from gitcanary.spec.load import load_canary
from gitcanary.spec.status import CanaryStatus, Phase

PROVIDERS = st.sampled_from(["istio", "gatewayapi:v1", "gatewayapi:v1beta1"])
PHASES = st.sampled_from(list(Phase))


@st.composite
def affinities(draw: st.DrawFn) -> dict:
    settings_: dict = {"cookieName": draw(NAMES)}
    if draw(st.booleans()):
        settings_["primaryCookieName"] = f"{settings_['cookieName']}-p{draw(NAMES)}"
    if draw(st.booleans()):
        settings_["maxAge"] = draw(st.integers(1, 10**6))
    for key in ("httpOnly", "partitioned", "secure"):
        if draw(st.booleans()):
            settings_[key] = True
    if draw(st.booleans()):
        settings_["domain"] = f"{draw(NAMES)}.example"
    if draw(st.booleans()):
        settings_["path"] = "/" + draw(NAMES)
    if draw(st.booleans()):
        settings_["sameSite"] = draw(st.sampled_from(["Strict", "Lax", "None"]))
    return settings_


def status(phase: Phase, weights: tuple[int, int], revision: str) -> CanaryStatus:
    return CanaryStatus(
        phase=phase,
        canaryWeight=weights[1],
        lastAppliedSpec=revision,
        lastPromotedSpec="before",
        lastTransitionTime=datetime(2026, 1, 1, tzinfo=UTC),
    )


@st.composite
def sticky_canaries(draw: st.DrawFn) -> dict:
    provider = draw(PROVIDERS)
    doc = draw(canaries(provider, header_kinds=("exact", "regex") if provider != "istio" else ("exact",)))
    if provider.startswith("gatewayapi"):
        doc["spec"]["service"]["gatewayRefs"] = [{"name": "public", "namespace": "gateways"}]
    doc["spec"]["analysis"]["sessionAffinity"] = draw(affinities())
    doc["spec"]["analysis"]["interval"] = draw(st.sampled_from(["15s", "1m", "90s"]))
    return doc


@settings(derandomize=True, max_examples=50, deadline=None)
@given(doc=sticky_canaries(), weights=WEIGHTS, phase=PHASES, revision=NAMES)
def test_every_canary_with_session_affinity_renders_flaggers_sticky_routes(
    doc: dict, weights: tuple[int, int], phase: Phase, revision: str
) -> None:
    canary = load_canary(doc, "canary.yaml").canary
    session = session_cookies(canary, status(phase, weights, revision))
    check_render(doc, weights, session=session)  # the oracle's session_affinity_problems among the rest


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    doc=sticky_canaries(),
    weight=st.integers(1, 100),
    revisions=st.lists(NAMES, min_size=2, max_size=2, unique=True),
)
def test_the_cookie_is_the_same_after_a_restart_and_new_for_each_revision(
    doc: dict, weight: int, revisions: list[str]
) -> None:
    canary = load_canary(doc, "canary.yaml").canary
    first, again, other = (
        session_cookies(canary, status(Phase.PROGRESSING, (100 - weight, weight), r))
        for r in (revisions[0], revisions[0], revisions[1])
    )
    assert first is not None and again is not None and other is not None
    assert first == again
    assert first.canary != other.canary
    assert first.canary.startswith(f"{doc['spec']['analysis']['sessionAffinity']['cookieName']}=")
    # after the run (promoted or rolled back), the cookie that run handed out is the one expired
    after = session_cookies(canary, status(Phase.SUCCEEDED, (100, 0), revisions[0]))
    assert after is not None and after.previous == first.canary and after.canary == ""


def test_a_step_commits_the_sticky_routes_with_the_cookie_of_the_revision_under_analysis(
    tmp_path: Path,
) -> None:
    """Through the file writer (the step the reconciler commits): the cookie is the revision's."""
    root = tmp_path / "repo"
    shutil.copytree(Path(__file__).parent.parent / "examples/istio", root)
    canary_file = root / "apps/backend/canary.yaml"
    doc = yamlio.load(canary_file.read_text())
    doc["spec"]["analysis"]["sessionAffinity"] = {"cookieName": "sticky", "maxAge": 600}
    canary_file.write_text(yamlio.dump(doc))
    git.Repo.init(root, initial_branch="main")
    loaded = load_canary(yamlio.load(canary_file.read_text()), "apps/backend/canary.yaml")
    rendered = render_target(root, loaded)
    at_ten = status(Phase.PROGRESSING, (90, 10), rendered.spec_hash)
    FileWriter(root, loaded, router_for(loaded.canary, loaded.source)).apply(at_ten, rendered, True)
    layout = Layout.of(loaded)
    routing = [d for d in yamlio.load_all((root / layout.routing).read_text()) if d]
    (vs,) = [o for o in routing if o["kind"] == "VirtualService"]
    cookie = f"sticky={cookie_value(loaded.canary.key, rendered.spec_hash, 'canary')}"
    assert vs["spec"]["http"][0]["match"][0]["headers"]["Cookie"]["regex"] == f".*sticky.*{cookie[7:]}.*"
    assert session_affinity_problems(routing, doc, "istio", loaded.canary.namespace, (90, 10)) == []

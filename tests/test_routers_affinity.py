"""Session affinity (`analysis.sessionAffinity`) on Istio and Gateway API, for every generated Canary.

Flagger's routers (pkg/router/istio.go, gateway_api.go) put sticky routes ahead of the weighted one
while the canary takes traffic and expire the last run's cookie once it is back to weight 0. The
oracle (tests/oracle.py `session_affinity_problems`) restates that from the Canary alone; the cookie's
value is gitcanary's own (routers/affinity.py) and must be stable across restarts and new per revision.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from router_properties import NAMES, WEIGHTS, canaries, check_render

from gitcanary.routers.affinity import session_cookies
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

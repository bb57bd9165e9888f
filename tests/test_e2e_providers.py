"""End to end for every provider and strategy: the reconciler drives a promotion and a rollback on a
real Git repository, with analysis against a real Prometheus that holds each provider's own metrics.

After every commit the tree is built with real kustomize and checked by the independent oracle:
weights read from the provider's routing object (VirtualService, HTTPRoute, TrafficSplit,
`<ingress>-canary` Ingress, or none for `kubernetes`), mirroring, images, replicas, selectors, and
every object against its CRD schema or kubernetes-validate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ConfigRepo, git, make_config_repo
from oracle import assert_invariant, kustomize_build
from prometheus_server import PrometheusServer, Traffic
from provider_traffic import running_all_providers
from test_e2e_rollout import (
    BAD_FROM,
    BAD_TO,
    GOOD_FROM,
    GOOD_TO,
    IMAGE,
    Clock,
    reconciler,
    tick_until,
    tree_at,
)

AB_MATCH = [{"headers": {"x-canary": {"exact": "insider"}}}]

# (action, weight, mirrored) of each commit after initialization, per strategy: promotion, rollback.
# Short on purpose (one step or iteration, threshold 1): the state machine's details are table-tested.
CANARY = (
    [("start", 0, False), ("advance", 50, False), ("promote", 50, False), ("finalize", 0, False),
     ("succeed", 0, False)],
    [("start", 0, False), ("advance", 50, False), ("rollback", 0, False)],
)  # fmt: skip
CANARY_MIRROR = (
    [("start", 0, False), ("advance", 0, True), ("advance", 50, False), ("promote", 50, False),
     ("finalize", 0, False), ("succeed", 0, False)],
    [("start", 0, False), ("advance", 0, True), ("rollback", 0, False)],
)  # fmt: skip
AB_TESTING = (
    [("start", 0, False), ("advance", 100, False), ("promote", 100, False), ("finalize", 0, False),
     ("succeed", 0, False)],
    [("start", 0, False), ("advance", 100, False), ("rollback", 0, False)],
)  # fmt: skip
BLUE_GREEN = (
    [("start", 0, False), ("advance", 0, False), ("advance", 100, False), ("promote", 100, False),
     ("finalize", 0, False), ("succeed", 0, False)],
    [("start", 0, False), ("advance", 0, False), ("rollback", 0, False)],
)  # fmt: skip
BLUE_GREEN_MIRROR = (
    [("start", 0, False), ("advance", 0, True), ("advance", 100, False), ("promote", 100, False),
     ("finalize", 0, False), ("succeed", 0, False)],
    [("start", 0, False), ("advance", 0, True), ("rollback", 0, False)],
)  # fmt: skip
# No router: the blue/green switch changes nothing; promotion is the switch.
BLUE_GREEN_NO_ROUTER = (
    [("start", 0, False), ("advance", 0, False), ("advance", 0, False), ("promote", 0, False),
     ("finalize", 0, False), ("succeed", 0, False)],
    BLUE_GREEN[1],
)  # fmt: skip

STRATEGIES = {
    "canary": CANARY,
    "canary-mirror": CANARY_MIRROR,
    "ab": AB_TESTING,
    "blue-green": BLUE_GREEN,
    "blue-green-mirror": BLUE_GREEN_MIRROR,
}


@dataclass(frozen=True)
class Case:
    example: str
    provider: str
    strategy: str

    @property
    def id(self) -> str:
        return f"{self.provider}-{self.strategy}"


CASES = [
    Case("istio", "istio", "canary-mirror"),
    Case("istio", "istio", "blue-green-mirror"),
    Case("gateway-api", "gatewayapi:v1", "canary"),
    Case("gateway-api", "gatewayapi:v1", "ab"),
    Case("gateway-api", "gatewayapi:v1beta1", "blue-green-mirror"),
    Case("linkerd", "linkerd", "canary"),
    Case("linkerd", "smi:v1alpha3", "blue-green"),
    Case("nginx", "nginx", "canary"),
    Case("nginx", "nginx", "ab"),
    Case("linkerd", "kubernetes", "blue-green"),
]


@pytest.fixture(scope="module")
def prometheus_providers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """`backend` in `prod`, in every provider's metrics: healthy half an hour, then 10% errors."""
    traffic = [
        Traffic("backend", "prod", rps=20, error_ratio=0.001, p99_ms=120, start=GOOD_FROM, end=GOOD_TO),
        Traffic("backend", "prod", rps=20, error_ratio=0.10, p99_ms=140, start=BAD_FROM, end=BAD_TO),
    ]
    with running_all_providers(traffic, tmp_path_factory.mktemp("prom-providers")) as server:
        yield server


def configure(case: Case) -> Callable[[Any], None]:
    """Turn the example's canary into `case`'s provider and strategy, with short steps."""

    def change(doc: Any) -> None:
        spec = doc["spec"]
        spec["provider"] = case.provider
        analysis = spec["analysis"]
        strategy = case.strategy
        if strategy.startswith("canary"):
            analysis["stepWeight"] = 50
            analysis["maxWeight"] = 50
        else:
            del analysis["stepWeight"]
            del analysis["maxWeight"]
            analysis["iterations"] = 1
        analysis["threshold"] = 1
        if strategy.endswith("mirror"):
            analysis["mirror"] = True
            analysis["mirrorWeight"] = 50
        if strategy == "ab":
            analysis["match"] = AB_MATCH
        # Flagger's own examples use these builtin metrics only; drop the Istio template elsewhere.
        analysis["metrics"] = [
            m for m in analysis["metrics"] if "templateRef" not in m or case.example == "istio"
        ]

    return change


PHASE_OF = {
    "initialize": "Initializing",
    "initialized": "Initialized",
    "start": "Progressing",
    "advance": "Progressing",
    "halt": "Progressing",
    "promote": "Promoting",
    "finalize": "Finalising",
    "succeed": "Succeeded",
    "rollback": "Failed",
}


def check(repo: ConfigRepo, tmp_path: Path, case: Case, commits: list, expected: list) -> None:
    """Each commit's tree, built by kustomize, holds the invariant for its expected step."""
    ingress = "backend" if case.provider == "nginx" else None
    # Phase and tags from this test's story (bump 6.1.1, promoted; bump 6.1.2, rolled back), never
    # from gitcanary's trailers.
    primary_tag, new, starts = "6.1.0", "6.1.0", iter(["6.1.1", "6.1.2"])
    for (sha, _subject, trailers), (action, weight, mirrored) in zip(commits, expected, strict=True):
        phase = PHASE_OF[action]
        if action == "start":
            new = next(starts)
        if phase in ("Promoting", "Finalising", "Succeeded"):
            primary_tag = new
        canary_tag = primary_tag if phase in ("Failed", "Initializing", "Initialized") else new
        if phase == "Initializing":
            replicas = None
        elif phase in ("Progressing", "Promoting", "Finalising"):
            replicas = 2  # the HPA's minReplicas
        else:
            replicas = 0
        objects = kustomize_build(tree_at(repo, sha, tmp_path / "trees" / sha) / "apps")
        assert_invariant(
            objects,
            namespace="prod",
            target="backend",
            service="backend",
            primary_images={"backend": f"{IMAGE}:{primary_tag}"},
            canary_images={"backend": f"{IMAGE}:{canary_tag}"},
            canary_replicas=replicas,
            weights=None if phase == "Initializing" else (100 - weight, weight),
            ab_match=AB_MATCH if case.strategy == "ab" else None,
            provider=case.provider,
            ingress=ingress,
            mirrored=mirrored
            if case.provider in ("istio",) or case.provider.startswith("gatewayapi")
            else None,
        )
        assert (trailers["Action"], trailers["Phase"], int(trailers["Weight"])) == (action, phase, weight), (
            sha,
            trailers,
        )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_provider_strategy_promotes_then_rolls_back(
    case: Case, tmp_path: Path, prometheus_providers: PrometheusServer
) -> None:
    repo = make_config_repo(tmp_path, case.example)
    repo.edit("apps/backend/canary.yaml", configure(case))
    repo.commit_and_push(f"canary: {case.provider}, {case.strategy}")
    clock = Clock(GOOD_FROM + timedelta(minutes=2))
    rec = reconciler(repo, tmp_path, prometheus_providers, clock)

    tick_until(rec, clock, "Initialized")
    repo.bump("apps/backend", "6.1.1")
    tick_until(rec, clock, "Succeeded")
    repo.bump("apps/backend", "6.1.2")
    clock.now = BAD_FROM + timedelta(minutes=2)
    tick_until(rec, clock, "Failed")

    promotion, rollback = BLUE_GREEN_NO_ROUTER if case.provider == "kubernetes" else STRATEGIES[case.strategy]
    init = [("initialize", 0, False), ("initialized", 0, False)]
    commits = repo.gitcanary_commits()
    assert [(t["Action"], int(t["Weight"])) for _, _, t in commits] == [
        (a, w) for a, w, _ in init + promotion + rollback
    ]
    check(repo, tmp_path, case, commits, init + promotion + rollback)
    if case.provider == "nginx":  # docs/providers.md: "Your own Ingress (nginx) is never changed"
        touched = git("log", "--format=%H", "--", "apps/backend/ingress.yaml", cwd=repo.remote).split()
        assert touched and not set(touched) & {sha for sha, _, _ in commits}, touched
    # The rollback wrote the promoted tag back where the person bumps it.
    repo.pull()
    assert "newTag: 6.1.1" in (repo.human / "apps/backend/kustomization.yaml").read_text()

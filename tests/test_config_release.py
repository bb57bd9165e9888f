"""End to end: a config-only change is a release (examples/istio's configMapGenerator), as in Flagger.

A person edits a literal of the app's `configMapGenerator` and nothing else. gitcanary must analyse
it like an image bump: the primary keeps running its `-primary` copy of the old config until the
promotion commit; a failed analysis rolls back, and the same commit that routes everything to the
primary writes the old literal back into the person's kustomization.yaml. After every commit the
tree is built with real kustomize and checked by the oracle (every referenced ConfigMap exists) and
against this test's own table of which message each Deployment's pods read.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from conftest import ConfigRepo, git
from oracle import assert_invariant, kustomize_build
from prometheus_server import PrometheusServer
from test_e2e_rollout import (
    BAD_FROM,
    GOOD_FROM,
    IMAGE,
    Clock,
    prometheus_istio,  # noqa: F401 (the module's Prometheus, healthy then failing)
    reconciler,
    tick_until,
    tree_at,
)

KEY = "PODINFO_UI_MESSAGE"
FIRST = "hello from backend"  # examples/istio/apps/backend/kustomization.yaml


def set_message(repo: ConfigRepo, message: str) -> None:
    git("pull", "-q", "--rebase", cwd=repo.human)

    def change(doc: object) -> None:
        doc["configMapGenerator"][0]["literals"][0] = f"{KEY}={message}"  # type: ignore[index]

    repo.edit("apps/backend/kustomization.yaml", change)
    repo.commit_and_push(f"backend: {KEY}={message}")


def message_of(objects: list[dict], deployment: str) -> str:
    """The value `deployment`'s pods read from the ConfigMap its envFrom names, found in the build."""
    found = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == deployment]
    assert len(found) == 1, deployment
    container = found[0]["spec"]["template"]["spec"]["containers"][0]
    name = container["envFrom"][0]["configMapRef"]["name"]
    maps = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name]
    assert len(maps) == 1, f"{deployment} reads ConfigMap {name}, which the build holds {len(maps)} times"
    return str(maps[0]["data"][KEY])


# action, phase, weight, primary's message, canary's message, target replicas, routed
INIT = [
    ("initialize", "Initializing", 0, FIRST, FIRST, None, False),
    ("initialized", "Initialized", 0, FIRST, FIRST, 0, True),
]
PROMOTION = [
    ("start", "Progressing", 0, FIRST, "v2", 2, True),
    *[("advance", "Progressing", w, FIRST, "v2", 2, True) for w in (10, 20, 30, 40, 50)],
    ("promote", "Promoting", 50, "v2", "v2", 2, True),
    ("finalize", "Finalising", 0, "v2", "v2", 2, True),
    ("succeed", "Succeeded", 0, "v2", "v2", 0, True),
]
ROLLBACK = [
    ("start", "Progressing", 0, "v2", "v3", 2, True),
    ("advance", "Progressing", 10, "v2", "v3", 2, True),
    ("halt", "Progressing", 10, "v2", "v3", 2, True),
    # The old value is back in the person's kustomization in the commit that restores traffic.
    ("rollback", "Failed", 0, "v2", "v2", 0, True),
]


def test_config_only_release_promotes_then_rolls_back_with_the_old_value_written_back(
    config_repo: ConfigRepo,
    tmp_path: Path,
    prometheus_istio: PrometheusServer,  # noqa: F811
) -> None:
    clock = Clock(GOOD_FROM + timedelta(minutes=2))
    rec = reconciler(config_repo, tmp_path, prometheus_istio, clock)
    tick_until(rec, clock, "Initialized")
    set_message(config_repo, "v2")
    tick_until(rec, clock, "Succeeded")
    set_message(config_repo, "v3")
    clock.now = BAD_FROM + timedelta(minutes=2)
    tick_until(rec, clock, "Failed")

    commits = config_repo.gitcanary_commits()
    table = INIT + PROMOTION + ROLLBACK
    assert [(t["Action"], t["Phase"], int(t["Weight"])) for _, _, t in commits] == [r[:3] for r in table]
    for (sha, _subject, _trailers), row in zip(commits, table, strict=True):
        _action, _phase, weight, primary_message, canary_message, replicas, routed = row
        objects = kustomize_build(tree_at(config_repo, sha, tmp_path / "trees" / sha) / "apps")
        assert_invariant(
            objects,
            namespace="prod",
            target="backend",
            service="backend",
            primary_images={"backend": f"{IMAGE}:6.1.0"},
            canary_images={"backend": f"{IMAGE}:6.1.0"},
            canary_replicas=replicas,
            weights=(100 - weight, weight) if routed else None,
        )
        assert (message_of(objects, "backend-primary"), message_of(objects, "backend")) == (
            primary_message,
            canary_message,
        ), row

    starts = [sha for sha, _, t in commits if t["Action"] == "start"]
    for sha in starts:  # each start names the change by key, the generator's new hash aside
        body = git("log", "-1", "--format=%B", sha, cwd=config_repo.remote)
        assert re.search(rf"config ConfigMap backend-config-\w+: keys changed: {KEY}\n", body), body
    rollback_sha = commits[-1][0]
    changed = git("show", "--name-only", "--format=", rollback_sha, cwd=config_repo.remote).split()
    assert "apps/backend/kustomization.yaml" in changed
    body = git("log", "-1", "--format=%B", rollback_sha, cwd=config_repo.remote)
    assert "config ConfigMap backend-config" in body and KEY in body
    assert "v3" not in body.replace("6.1.0", "")  # keys are named, values are not
    config_repo.pull()
    text = (config_repo.human / "apps/backend/kustomization.yaml").read_text()
    assert f"{KEY}=v2" in text and "v3" not in text

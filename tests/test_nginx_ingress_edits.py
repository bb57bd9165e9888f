"""The generated `<ingress>-canary` follows edits to the user's Ingress, between rollouts too."""

from __future__ import annotations

from pathlib import Path

from conftest import make_config_repo
from oracle import assert_commit
from test_e2e_rollout import GOOD_FROM, Clock

from gitcanary.manifests import yamlio
from gitcanary.service.reconciler import Reconciler
from gitcanary.service.settings import Settings

CANARY_INGRESS = "apps/backend-gitcanary/routing.yaml"


def test_an_edited_ingress_is_copied_to_the_canary_ingress_in_one_update_commit(tmp_path: Path) -> None:
    repo = make_config_repo(tmp_path, "nginx")
    clock = Clock(GOOD_FROM)
    settings = Settings(repo=str(repo.remote), workdir=tmp_path / "work", settle=0)
    rec = Reconciler(settings, clock=clock, sleep=lambda _: None)
    for _ in range(3):
        rec.tick()
        clock.advance()
    assert [t["Action"] for _, _, t in repo.gitcanary_commits()] == ["initialize", "initialized"]

    def new_host(doc) -> None:  # noqa: ANN001 - ruamel map
        doc["spec"]["rules"][0]["host"] = "api.example.com"

    repo.edit("apps/backend/ingress.yaml", new_host)
    repo.commit_and_push("backend: serve on api.example.com")
    rec.tick()
    commits = repo.gitcanary_commits()
    assert [t["Action"] for _, _, t in commits] == ["initialize", "initialized", "update"]
    repo.pull()
    (canary_ingress,) = [
        doc
        for doc in yamlio.safe_load_all((repo.human / CANARY_INGRESS).read_text())
        if doc["kind"] == "Ingress"
    ]
    assert canary_ingress["metadata"]["name"] == "backend-canary"
    assert [rule["host"] for rule in canary_ingress["spec"]["rules"]] == ["api.example.com"]
    # Nothing else to follow: the next tick commits nothing.
    assert rec.tick().commits == []
    # The oracle after every commit; (action, weights, target replicas) from this test's own story.
    image = {"backend": "ghcr.io/stefanprodan/podinfo:6.1.0"}
    rows = [("initialize", None, None), ("initialized", (100, 0), 0), ("update", (100, 0), 0)]
    for (sha, _, trailers), (action, weights, replicas) in zip(commits, rows, strict=True):
        assert trailers["Action"] == action
        assert_commit(
            repo.remote,
            sha,
            tmp_path / "trees",
            namespace="prod",
            target="backend",
            service="backend",
            primary_images=image,
            canary_images=image,
            canary_replicas=replicas,
            weights=weights,
            provider="nginx",
            ingress="backend",
        )

"""Canaries named as kubectl names objects, by every command that names one; `status --watch`.

The property: every accepted spelling (`NS/NAME`, `NAME -n NS`, `NS/NAME -n NS`, and a bare `NAME`
that only one namespace has) resolves to the same canary among any set of canaries, and every
malformed name is refused with a message naming what was typed. Then the same spellings through
real `gitcanary` processes against a real remote, and `status NAME --watch` following a real rollout
to its end: exit 1 when it is rolled back, 0 when it is promoted, 1 on --timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ConfigRepo, git
from hypothesis import given, settings
from hypothesis import strategies as st

from gitcanary.commands.operations import CanaryView
from gitcanary.commands.watch import Watch
from gitcanary.spec.canary_ref import CanaryRefError, parse, resolve

ROOT = Path(__file__).resolve().parent.parent
PAT = "Pat Doe <pat@example.com>"

_label = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)
_name = st.lists(_label, min_size=1, max_size=3).map(".".join)


def spellings(namespace: str, name: str, unique: bool) -> list[tuple[str, str | None]]:
    """Every way a person may name `namespace/name` (as argument, -n)."""
    found = [(f"{namespace}/{name}", None), (name, namespace), (f"{namespace}/{name}", namespace)]
    return found + ([(name, None)] if unique else [])


@settings(max_examples=300, derandomize=True)
@given(_label, _name, st.sets(st.tuples(_label, _name), max_size=6))
def test_every_spelling_resolves_to_the_same_canary(namespace: str, name: str, others: set) -> None:
    keys = {f"{ns}/{n}" for ns, n in others} | {f"{namespace}/{name}"}
    unique = sum(key.partition("/")[2] == name for key in keys) == 1
    for text, flag in spellings(namespace, name, unique):
        assert resolve(parse(text, flag), keys) == f"{namespace}/{name}", (text, flag)
    if not unique:  # a bare name two namespaces have is refused, naming both
        with pytest.raises(CanaryRefError, match="several namespaces"):
            resolve(parse(name), keys)


_bad_char = st.sampled_from(list("ABCXYZ_ :@!*?\\") + ["é"])


@settings(max_examples=300, derandomize=True)
@given(_label, _name, _bad_char, st.integers(0, 3), st.sampled_from(["name", "namespace", "slashes", "n"]))
def test_malformed_names_are_refused_with_what_was_typed(
    namespace: str, name: str, bad: str, at: int, where: str
) -> None:
    flag: str | None = None
    if where == "name":
        text = f"{namespace}/{name[:at]}{bad}{name[at:]}"
    elif where == "namespace":
        text = f"{namespace[:at]}{bad}{namespace[at:]}/{name}"
    elif where == "slashes":
        text = f"{namespace}/{name}/{name}"
    else:  # -n that contradicts the NS/ of the argument
        text, flag = f"{namespace}/{name}", namespace + "x"
    with pytest.raises(CanaryRefError) as raised:
        parse(text, flag)
    assert repr(text) in str(raised.value) or text in str(raised.value)


def test_empty_and_unknown_names_say_so() -> None:
    for text in ("", "/", "prod/", "/backend"):
        with pytest.raises(CanaryRefError, match="expected NAMESPACE/NAME or NAME -n NAMESPACE"):
            parse(text)
    with pytest.raises(CanaryRefError, match="not a namespace name"):
        parse("backend", "Prod")
    with pytest.raises(
        CanaryRefError, match=r"unknown canary prod/x in the repository \(canaries: prod/backend\)"
    ):
        resolve(parse("prod/x"), {"prod/backend"})
    with pytest.raises(CanaryRefError, match="no canary named x"):
        resolve(parse("x"), {"prod/backend"})


# --- real processes, a real remote ----------------------------------------------------------------


def gitcanary(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "gitcanary", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture
def pushed(config_repo: ConfigRepo) -> ConfigRepo:
    assert gitcanary("init", "apps/backend", "--switch", cwd=config_repo.human).returncode == 0
    git("push", "-q", cwd=config_repo.human)
    return config_repo


def test_every_command_takes_every_spelling(pushed: ConfigRepo) -> None:
    human = pushed.human
    for index, (text, flag) in enumerate(spellings("prod", "backend", unique=True)):
        args = [text, *(["-n", flag] if flag else [])]
        for get in ("canary", "canaries"):
            listing = json.loads(gitcanary("get", get, *args, "-o", "json", cwd=human).stdout)
            assert [i["metadata"] for i in listing["items"]] == [{"name": "backend", "namespace": "prod"}]
        views = json.loads(gitcanary("status", *args, "-o", "json", cwd=human).stdout)
        assert [v["key"] for v in views] == ["prod/backend"]
        history = gitcanary("history", *args, "-o", "json", cwd=human)
        assert history.returncode == 0 and json.loads(history.stdout)["canary"] == "prod/backend", (
            history.stderr
        )
        # pause and resume in turn, one each spelling: each commit names the same canary
        action = "pause" if index % 2 == 0 else "resume"
        acted = gitcanary(action, *args, "--actor", PAT, cwd=human)
        assert acted.returncode == 0, acted.stderr
        trailers = git("log", "-1", "--format=%(trailers:key=Gitcanary-Canary,valueonly)", cwd=pushed.remote)
        assert trailers.strip() == "prod/backend"
    for command, bad in (
        (["status"], "Prod/backend"),
        (["get", "canary"], "prod/backend/x"),
        (["promote", "--actor", PAT], "prod/Backend"),
        (["history"], "prod/backend/x"),
    ):
        refused = gitcanary(*command, bad, cwd=human)
        assert refused.returncode == 1 and bad in refused.stderr, (command, refused.stderr)
    contradicted = gitcanary("abort", "prod/backend", "-n", "staging", "--actor", PAT, cwd=human)
    assert contradicted.returncode == 1 and "-n says staging" in contradicted.stderr
    for namespace, keys in (("prod", ["prod/backend"]), ("staging", [])):  # -n alone filters, as kubectl's
        views = json.loads(gitcanary("status", "-n", namespace, "-o", "json", cwd=human).stdout)
        assert [v["key"] for v in views] == keys
    unknown = gitcanary("abort", "frontend", "--actor", PAT, cwd=human)
    assert unknown.returncode == 1 and "no canary named frontend" in unknown.stderr


def _phase(repo: ConfigRepo) -> str:
    text = git("show", "main:apps/backend-gitcanary/gitcanary-status.yaml", cwd=repo.remote)
    return next(
        line.split(":", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("phase:")
    )


def test_status_watch_exits_as_kubectl_rollout_status(pushed: ConfigRepo, tmp_path: Path) -> None:
    human = pushed.human
    run = ["run", "--once", "--repo", str(pushed.remote), "--workdir", str(tmp_path / "w"), "--settle", "0"]
    at_rest = gitcanary("status", "backend", "--watch", cwd=human)
    assert at_rest.returncode == 0 and "canary prod/backend successfully rolled out 6.1.0" in at_rest.stdout

    pushed.bump("apps/backend", "6.1.1")
    assert "start prod/backend rollout" in gitcanary(*run, cwd=tmp_path).stdout
    timed_out = gitcanary("status", "prod/backend", "-w", "--timeout", "1s", cwd=human)
    assert timed_out.returncode == 1 and "timed out waiting for canary prod/backend" in timed_out.stderr
    assert "Waiting for canary prod/backend rollout to finish: Progressing" in timed_out.stdout

    # A watch that outlives the rollout: it ends when the rollback lands on the remote, exit 1.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    watching = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gitcanary",
            "status",
            "backend",
            "-n",
            "prod",
            "--watch",
            "--timeout",
            "120s",
        ],
        cwd=human,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert gitcanary("abort", "prod/backend", "--actor", PAT, cwd=human).returncode == 0
    assert "roll back prod/backend" in gitcanary(*run, cwd=tmp_path).stdout
    out, errors = watching.communicate(timeout=120)
    assert watching.returncode == 1 and "canary prod/backend rollout failed (Failed)" in errors, out + errors


def _view(phase: str, primary: str, target: str, canary: str = "", weight: int = 0) -> CanaryView:
    return CanaryView(
        "prod/backend",
        "apps/backend/canary.yaml",
        phase=phase,
        weight=weight,
        primary_revision=primary,
        canary_revision=canary,
        target_revision=target,
        message="why",
    )


@pytest.mark.parametrize(
    ("sequence", "code", "last"),
    [
        # a bump not yet started, then the rollout, then the promotion of the bumped revision
        (
            [
                ("Succeeded", "1", "2", ""),
                ("Progressing", "1", "2", "2"),
                ("Promoting", "1", "2", "2"),
                ("Succeeded", "2", "2", ""),
            ],
            0,
            "canary prod/backend successfully rolled out 2",
        ),
        # rolled back: the old revision written back, phase Failed
        ([("Progressing", "1", "2", "2"), ("Failed", "1", "1", "")], 1, "rollout failed (Failed): why"),
        ([("Quarantined", "1", "1", "")], 1, "rollout failed (Quarantined)"),
        ([("Initializing", "1", "1", "")] * 50, 1, "timed out waiting for canary prod/backend"),
    ],
)
def test_watch_ends_on_the_outcome_of_the_rollout(sequence: list, code: int, last: str) -> None:
    views = iter([_view(*item) for item in sequence])
    said: list[str] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    watch = Watch(lambda: next(views), said.append, timeout=10, interval=2, sleep=sleep, clock=lambda: now[0])
    assert watch.run() == code
    assert last in said[-1]
    # each change said once, never the same line twice in a row
    assert all(a != b for a, b in zip(said, said[1:], strict=False))

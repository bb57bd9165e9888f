"""Bounded parsing and isolation: a YAML bomb costs milliseconds, and one broken canary (of any kind)
halts that canary alone while another rolls back in the same tick."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from conftest import git, make_config_repo
from security_cli import Setup, cli, fast_canary, status_of

from gitcanary.manifests import yamlio

MAX_SECONDS = 2.0
MAX_MEGABYTES = 200


def _bomb_canary() -> str:
    """Flagger's own Canary shape with a billion-laughs webhook metadata (9^9 leaves once expanded)."""
    lines = [
        "apiVersion: flagger.app/v1beta1", "kind: Canary", "metadata:", "  name: backend",
        "  namespace: prod", "spec:", "  targetRef:", "    apiVersion: apps/v1", "    kind: Deployment",
        "    name: backend", "  service:", "    port: 80", "  analysis:", "    interval: 1m",
        "    threshold: 1", "    stepWeight: 10", "    maxWeight: 50", "    webhooks:", "      - name: bomb",
        "        url: http://127.0.0.1:9/",
        "        metadata:", '          a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]  # fmt: skip
    lines += [f"          a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


# Runs one CLI process and reports what it cost, measured by the kernel for that child alone
# (the test process's own RUSAGE_CHILDREN would include every git and kustomize it ever ran).
_MEASURE = """
import resource, subprocess, sys, time
start = time.monotonic()
proc = subprocess.run([sys.executable, "-m", "gitcanary", *sys.argv[1:]], capture_output=True, text=True)
wall = time.monotonic() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stdout.write(proc.stdout + proc.stderr)
sys.stderr.write(f"{wall} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}")
"""


@dataclass
class Cost:
    seconds: float  # wall clock
    cpu: float  # user + system seconds
    megabytes: float  # peak resident memory
    output: str


def _measured(*args: str, cwd: Path) -> Cost:
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    wall, cpu, kilobytes = proc.stderr.split()
    return Cost(float(wall), float(cpu), int(kilobytes) / 1024, proc.stdout)


def _cheapest(*args: str, cwd: Path, runs: int = 2) -> Cost:
    """The cheapest of `runs` runs: on a shared machine, the others waited for a CPU."""
    costs = [_measured(*args, cwd=cwd) for _ in range(runs)]
    return min(costs, key=lambda cost: cost.seconds)


def test_an_alias_bomb_is_refused_fast_and_small(tmp_path: Path) -> None:
    repo = make_config_repo(tmp_path)
    (repo.human / "apps/backend/canary.yaml").write_text(_bomb_canary())
    repo.commit_and_push("an alias bomb in a webhook's metadata")
    # The same CLI on a tiny valid repository: what starting it costs, on this machine, right now.
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    (tiny / "config.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: {}\n")
    baseline = _cheapest("validate", ".", cwd=tiny)
    assert "ok" in baseline.output, baseline.output
    bomb = _cheapest("validate", ".", cwd=repo.human)
    print(
        f"validate on the alias bomb: {bomb.seconds:.2f}s wall, {bomb.cpu:.2f}s CPU, "
        f"{bomb.megabytes:.0f} MB; "
        f"on a tiny valid repository: {baseline.seconds:.2f}s, {baseline.cpu:.2f}s CPU, "
        f"{baseline.megabytes:.0f} MB; the bomb's own cost: {bomb.seconds - baseline.seconds:.2f}s, "
        f"{bomb.cpu - baseline.cpu:.2f}s CPU"
    )
    assert "apps/backend/canary.yaml" in bomb.output and "alias bomb" in bomb.output, bomb.output
    assert bomb.megabytes < MAX_MEGABYTES
    assert bomb.seconds - baseline.seconds < MAX_SECONDS, (bomb, baseline)
    assert bomb.cpu - baseline.cpu < MAX_SECONDS, (bomb, baseline)
    for command in (
        ("status",),
        (
            "run",
            "--once",
            "--repo",
            str(repo.remote),
            "--workdir",
            str(tmp_path / "work"),
            "--cluster",
            "off",
        ),
    ):
        cost = _measured(*command, cwd=repo.human)
        assert "alias bomb" in cost.output, cost.output
        assert cost.megabytes < MAX_MEGABYTES and cost.seconds < 60, (command, cost)


def test_parsing_limits_are_clear_errors() -> None:
    deep = "a: " + "[" * 500 + "]" * 500
    for text, words in (
        (deep, "depth"),
        ("a: 1\na: 2\n", "duplicate key"),
        ("x: &a [*a]\n", "recursive alias"),
    ):
        try:
            yamlio.load(text)
        except yamlio.YAMLError as exc:
            assert words in str(exc), str(exc)
        else:
            raise AssertionError(f"{text[:20]!r} was parsed")
    yamlio.configure(max_bytes=1000)
    try:
        try:
            list(yamlio.safe_load_all("a: " + "x" * 2000, "big.yaml"))
        except yamlio.YAMLLimitError as exc:
            assert "big.yaml: 2003 bytes is over the 1000-byte limit" in str(exc)
        else:
            raise AssertionError("an oversized file was parsed")
    finally:
        yamlio.configure(max_bytes=yamlio.MAX_BYTES)
    # An ordinary anchor (shared labels, say) is fine.
    assert yamlio.load("base: &b {x: 1}\nother: *b\n")["other"] == {"x": 1}


def test_max_yaml_bytes_is_configurable_from_the_cli(tmp_path: Path) -> None:
    repo = make_config_repo(tmp_path)
    ran = cli("--max-yaml-bytes", "200", "validate", ".", cwd=repo.human)
    assert ran.returncode != 0 and "over the 200-byte limit" in ran.output, ran.output


def _add_broken_app(human: Path) -> None:
    """apps/api: a copy of backend whose Deployment's `metadata.labels` is a string, not a map.

    kustomize builds it (it checks the fields it transforms, not labels), so it reaches the code
    that copies the target into `api-primary`, which expects a map: an exception gitcanary does not
    anticipate, in one canary's handling, from repository content.
    """
    shutil.copytree(human / "apps/backend", human / "apps/api")
    for file in (human / "apps/api").iterdir():
        file.write_text(file.read_text().replace("backend", "api"))
    deployment = human / "apps/api/deployment.yaml"
    doc = yamlio.load(deployment.read_text())
    doc["metadata"]["labels"] = "app=api"
    deployment.write_text(yamlio.dump(doc))
    parent = human / "apps/kustomization.yaml"
    parent.write_text(parent.read_text() + "  - api\n")


def _log_records(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_one_broken_canary_never_delays_another_ones_rollback(tmp_path: Path) -> None:
    repo = make_config_repo(tmp_path)
    human = repo.human
    _add_broken_app(human)
    repo.edit("apps/backend/canary.yaml", fast_canary)  # type: ignore[arg-type]
    git("add", "-A", cwd=human)
    git("commit", "-qm", "two apps", cwd=human)
    ran = cli("init", "apps/backend", cwd=human)
    assert ran.returncode == 0, ran.output
    git("push", "-q", "origin", "HEAD:main", cwd=human)
    setup = Setup(repo, tmp_path / "work", tmp_path)
    setup.run_once()
    repo.pull()
    repo.bump("apps/backend", "6.1.1")
    outputs = []
    for _ in range(4):
        outputs.append(setup.run_once().output)
        if status_of(setup)["phase"] == "Failed":
            break
        time.sleep(1.1)  # the 1s analysis interval
    assert status_of(setup)["phase"] == "Failed", outputs  # backend rolled back...
    rollback = git(
        "log", "-1", "--format=%H%n%s", "--grep=Gitcanary-Action: rollback", "main", cwd=repo.remote
    )
    sha, subject = rollback.split("\n", 1)
    assert subject.startswith("gitcanary: roll back prod/backend 6.1.1 -> 6.1.0"), outputs
    assert "newTag: 6.1.0" in git("show", "main:apps/backend/kustomization.yaml", cwd=repo.remote)
    # ...in the very tick in which api failed: its tick report names api's halt and the rollback.
    tick = outputs[-1]
    reason = "unexpected TypeError: 'str' object is not a mapping"
    records = _log_records(tick)
    # The tick's report (JSON here, as stderr is no terminal): api halted with its reason...
    assert {"level": "error", "canary": "prod/api", "message": f"halted: {reason}"}.items() <= next(
        r for r in records if r["message"].startswith("halted:")
    ).items(), records
    # ...and the log of the failure itself, with its traceback for whoever debugs it.
    failure = next(r for r in records if r["message"] == f"prod/api: {reason}")
    assert failure["level"] == "error" and "primary_deployment" in failure["exception"], failure
    assert f"{sha[:8]} gitcanary: roll back prod/backend" in tick, tick
    # api alone is halted: nothing was committed for it, and `status` gives the same reason.
    assert "apps/api-gitcanary" not in git("log", "--stat", "--format=", "main", cwd=repo.remote)
    shown = cli("status", "--repo", str(repo.remote), "-o", "json", cwd=tmp_path)
    views = {view["key"]: view for view in json.loads(shown.stdout)}
    assert views["prod/backend"]["phase"] == "Failed", shown.output
    assert views["prod/api"]["phase"] == "Error", shown.output
    assert "unexpected TypeError: 'str' object is not a mapping" in views["prod/api"]["error"]

"""Generated files are rewritten only when their content changes, without a round trip when the file
holds exactly what gitcanary last wrote; a person's edit is still merged, comments kept.

The ruamel round trips are counted by wrapping `yamlio.load_all` (gitcanary's own reader, not a
client); what the file holds is read back with PyYAML, independently of gitcanary's writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gitcanary.manifests import generate, yamlio
from gitcanary.manifests.generate import write_documents

PATH = "apps/web-gitcanary/routing.yaml"


def route(weight: int) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "web", "namespace": "prod"},
        "spec": {
            "hosts": ["web"],
            "http": [
                {
                    "route": [
                        {"destination": {"host": "web-primary"}, "weight": 100 - weight},
                        {"destination": {"host": "web-canary"}, "weight": weight},
                    ]
                }
            ],
        },
    }


def counted_parses(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """The source of every call to yamlio's parser `name` from now on (it still parses)."""
    seen: list[str] = []
    real = getattr(yamlio, name)

    def counted(text: str, source: str = "") -> Any:
        seen.append(source)
        return real(text, source)

    monkeypatch.setattr(yamlio, name, counted)
    return seen


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(generate, "_WRITTEN", {})
    return counted_parses(monkeypatch, "load_all")


def on_disk(root: Path) -> Any:
    return yaml.safe_load((root / PATH).read_text())


def test_same_data_is_not_rewritten_nor_parsed(tmp_path: Path, parses: list[str]) -> None:
    (tmp_path / PATH).parent.mkdir(parents=True)
    assert write_documents(tmp_path, PATH, [route(10)])
    assert not write_documents(tmp_path, PATH, [route(10)])
    assert write_documents(tmp_path, PATH, [route(20)])
    assert on_disk(tmp_path) == route(20)
    assert parses == []  # every write after the first is gitcanary's own file: no round trip


def test_a_plain_dump_gives_what_the_merge_gives(tmp_path: Path, parses: list[str]) -> None:
    """The fast path must not churn: the text equals a round-trip merge into the same file."""
    (tmp_path / PATH).parent.mkdir(parents=True)
    write_documents(tmp_path, PATH, [route(10)])
    before = (tmp_path / PATH).read_text()
    write_documents(tmp_path, PATH, [route(30)])
    fast = (tmp_path / PATH).read_text()
    (tmp_path / PATH).write_text(before)
    generate._WRITTEN.clear()  # as after a restart: the merge path
    write_documents(tmp_path, PATH, [route(30)])
    assert (tmp_path / PATH).read_text() == fast
    assert parses == [PATH]


def test_a_persons_edit_is_merged_not_overlooked(tmp_path: Path, parses: list[str]) -> None:
    """The cache is keyed by the file's text too: an edit to the same data is seen and merged."""
    (tmp_path / PATH).parent.mkdir(parents=True)
    write_documents(tmp_path, PATH, [route(10)])
    text = (tmp_path / PATH).read_text()
    (tmp_path / PATH).write_text(text.replace("weight: 90", "weight: 95 # pat tried this"))
    assert write_documents(tmp_path, PATH, [route(10)])  # same data as before, but the file differs
    after = (tmp_path / PATH).read_text()
    assert on_disk(tmp_path) == route(10)
    assert "# pat tried this" in after  # the comment survives the round trip
    assert write_documents(tmp_path, PATH, [route(20)])
    assert "# pat tried this" in (tmp_path / PATH).read_text()  # and every later step
    assert parses == [PATH, PATH]


APP = {
    "apps/web/kustomization.yaml": (
        "namespace: prod\nresources:\n  - deployment.yaml\n  - canary.yaml\n"
        "images:\n  - name: ghcr.io/stefanprodan/podinfo\n    newTag: 6.1.0 # bumped by people\n"
    ),
    "apps/web/canary.yaml": (
        "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata:\n  name: web\n  namespace: prod\n"
        "spec:\n  provider: istio\n  targetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n"
        "    name: web\n  service:\n    port: 80\n  analysis:\n    interval: 30s\n    threshold: 2\n"
        "    maxWeight: 50\n    stepWeight: 10\n"
    ),
}


def scale(root: Path, replicas: int) -> list[str]:
    from gitcanary.manifests import discovery
    from gitcanary.manifests.generate import FileWriter
    from gitcanary.routers import router_for

    loaded = discovery.scan(root).canaries["prod/web"]
    writer = FileWriter(root, loaded, router_for(loaded.canary, loaded.source))
    writer.scale_target(replicas)
    return writer.changed


def replicas_on_disk(root: Path) -> list[Any]:
    return yaml.safe_load((root / "apps/web/kustomization.yaml").read_text())["replicas"]


def test_the_targets_replicas_are_read_only_when_the_file_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path, text in APP.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    monkeypatch.setattr(generate, "_SCALED", {})
    loads = counted_parses(monkeypatch, "load")
    assert scale(tmp_path, 1) == ["apps/web/kustomization.yaml"]
    assert replicas_on_disk(tmp_path) == [{"name": "web", "count": 1}]
    before = len(loads)
    assert scale(tmp_path, 1) == []  # a weight step: same count, same file
    assert len(loads) == before
    assert scale(tmp_path, 0) == ["apps/web/kustomization.yaml"]  # another count is written
    assert replicas_on_disk(tmp_path) == [{"name": "web", "count": 0}]
    file = tmp_path / "apps/web/kustomization.yaml"
    file.write_text(file.read_text().replace("count: 0", "count: 3"))  # a person's edit
    assert scale(tmp_path, 0) == ["apps/web/kustomization.yaml"]
    assert replicas_on_disk(tmp_path) == [{"name": "web", "count": 0}]
    assert "# bumped by people" in file.read_text()


def mirrored_route(weight: int, host: str = "web-canary", mirror: bool = False) -> dict[str, Any]:
    doc = route(weight)
    doc["spec"]["http"][0]["route"][1]["destination"]["host"] = host
    doc["spec"]["http"][0]["retries"] = {"attempts": -3 + weight % 7, "perTryTimeout": "2s"}
    doc["spec"]["http"][0]["mirror"] = mirror
    doc["spec"]["ports"] = [80, weight * 1000, 2**40]
    return doc


@pytest.mark.parametrize("like", ["a:\n  b: 1\n", "a:\n    - b: 1\n", "a:\n- b: 1\n"])
def test_numbers_filled_in_are_the_dump_of_the_numbers(like: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The oracle is ruamel's own dump of the same documents, with this file's indentation."""
    monkeypatch.setattr(generate, "_NUMBERS_APART", {})
    dumps: list[Any] = []
    real = generate._dump

    def counted(docs: list[Any], like: str | None) -> str:
        dumps.append(docs)
        return real(docs, like)

    for weight in (0, 10, 55, 100, 7, 10):
        docs = [mirrored_route(weight), {"kind": "DestinationRule", "spec": {"port": weight}}]
        monkeypatch.setattr(generate, "_dump", counted)
        filled = generate._dump_numbers_apart(PATH, docs, like)
        monkeypatch.setattr(generate, "_dump", real)
        assert filled == real(docs, like)
    assert len(dumps) == 1  # one dump, the numbers filled in after it

    # Anything but a number changed (a host, a flag, the indentation): dumped again, and seen.
    for docs, style in (
        ([mirrored_route(20, host="web-canary-2")], like),
        ([mirrored_route(20, mirror=True)], like),
        ([mirrored_route(20)], "a:\n   b: 1\n"),
    ):
        assert generate._dump_numbers_apart(PATH, docs, style) == real(docs, style)


def test_a_string_that_looks_like_a_token_is_dumped_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generate, "_NUMBERS_APART", {})
    docs = [{"a": generate._TOKEN.format(0), "b": 5, "c": "x" + generate._TOKEN.format(1)}]
    assert generate._dump_numbers_apart(PATH, docs, "") == generate._dump(docs, "")


PRIMARY = (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-primary\n  namespace: prod\n"
    "spec:\n  replicas: {}\n"
)


def test_the_primarys_replicas_follow_its_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsed once per content: the same text is not parsed again, an edit (same size) is seen."""
    from gitcanary.manifests.generate import Layout, Rendered, primary_replicas

    monkeypatch.setattr(generate, "_PRIMARY_REPLICAS", {})
    loads = counted_parses(monkeypatch, "safe_load_all")
    layout = Layout("apps/web", "apps/web-gitcanary", "web")
    rendered = Rendered({"kind": "Deployment"}, None, "h", "r")
    file = tmp_path / layout.primary
    file.parent.mkdir(parents=True)
    assert primary_replicas(tmp_path, layout, rendered) == 1  # no primary yet
    file.write_text(PRIMARY.format(3))
    assert primary_replicas(tmp_path, layout, rendered) == 3
    parsed = len(loads)
    assert primary_replicas(tmp_path, layout, rendered) == 3
    assert len(loads) == parsed
    file.write_text(PRIMARY.format(4))
    assert primary_replicas(tmp_path, layout, rendered) == 4

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


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = yamlio.load_all

    def counted(text: str, source: str = "") -> list[Any]:
        seen.append(source)
        return real(text, source)

    monkeypatch.setattr(yamlio, "load_all", counted)
    monkeypatch.setattr(generate, "_WRITTEN", {})
    return seen


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

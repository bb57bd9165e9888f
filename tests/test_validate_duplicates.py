"""A key given twice in any YAML file of the repository is a `validate` error, not only in Flagger's.

A duplicate in a kustomization.yaml or a target's manifest made `run` refuse the file and halt
the canary while `validate` passed. Generated: any file of the example, any scalar entry of any
mapping written twice. The oracle is ruamel.yaml's own strict loader (not gitcanary's check):
validate names the file and the key exactly when that loader refuses the text.
"""

from __future__ import annotations

import re
import shutil

import pytest
from conftest import EXAMPLES
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError

from gitcanary.commands.validate import validate
from gitcanary.manifests.files import yaml_files

ENTRY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][\w.-]*): +\S")
FILES = sorted(yaml_files(EXAMPLES / "istio"))


def refused(text: str) -> str | None:
    """The duplicated key ruamel.yaml's strict safe loader refuses `text` for, or None."""
    try:
        list(YAML(typ="safe", pure=True).load_all(text))
    except DuplicateKeyError as exc:
        found = re.search(r'found duplicate key "([^"]+)"', str(exc))
        return found[1] if found else "?"
    return None


@settings(max_examples=10, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(FILES), st.integers(0, 10_000))
@example("apps/backend/kustomization.yaml", 0)
@example("apps/backend/deployment.yaml", 3)
def test_a_key_given_twice_in_any_yaml_file_is_an_error(
    tmp_path_factory: pytest.TempPathFactory, source: str, pick: int
) -> None:
    root = tmp_path_factory.mktemp("dup") / "repo"
    shutil.copytree(EXAMPLES / "istio", root)
    lines = (root / source).read_text().splitlines()
    entries = [i for i, line in enumerate(lines) if ENTRY.match(line)]
    if not entries:
        return
    at = entries[pick % len(entries)]
    key = ENTRY.match(lines[at])["key"]  # type: ignore[index]
    lines.insert(at + 1, lines[at])
    text = "\n".join(lines) + "\n"
    (root / source).write_text(text)
    errors, _ = validate(root)
    ours = [e for e in errors if e.startswith(f"{source}: ") and "duplicate key" in e]
    expected = refused(text)
    if expected is None:
        assert ours == [], ours
    else:
        assert any(f"duplicate key {expected!r}" in e and "`run` refuses the file" in e for e in ours), errors
        assert expected == key

"""Round-trip YAML: comments, key order, quoting and indentation survive an edit.

Every file gitcanary edits goes through here, so a step commit's diff touches only the
lines that must change. The indentation of a file is detected and kept.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError


def _yaml(text: str | None = None) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long strings (PromQL, commands)
    mapping, sequence, offset = _indentation(text or "")
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _indentation(text: str) -> tuple[int, int, int]:
    """Guess (mapping, sequence, offset) from the file so a re-dump keeps its style."""
    mapping = 2
    for match in re.finditer(r"^( +)\S", text, re.M):
        mapping = len(match.group(1))
        break
    # "key:\n  - item" (indented sequences) versus "key:\n- item" (Kubernetes' own style).
    for found in re.finditer(r"^( *)(- )?([^\s#-][^\n]*):[ \t]*\n( *)- ", text, re.M):
        key_column = len(found.group(1)) + (2 if found.group(2) else 0)
        offset = len(found.group(4)) - key_column
        if offset >= 0:
            return mapping, offset + 2, offset
    return mapping, 2, 0


def load_all(text: str) -> list[Any]:
    """Every document of a YAML stream, round-trip types; empty documents dropped."""
    return [doc for doc in _yaml(text).load_all(text) if doc is not None]


def load(text: str) -> Any:
    return _yaml(text).load(text)


def dump(doc: Any, like: str | None = None) -> str:
    stream = io.StringIO()
    _yaml(like).dump(doc, stream)
    return stream.getvalue()


def dump_all(docs: Iterable[Any], like: str | None = None) -> str:
    stream = io.StringIO()
    _yaml(like).dump_all(list(docs), stream)
    return stream.getvalue()


def safe_load_all(text: str) -> Iterator[Any]:
    """Plain Python types (dicts, lists) for reading rendered output; no round-trip overhead."""
    yaml = YAML(typ="safe", pure=True)
    for doc in yaml.load_all(text):
        if doc is not None:
            yield doc


__all__ = ["YAMLError", "dump", "dump_all", "load", "load_all", "safe_load_all"]

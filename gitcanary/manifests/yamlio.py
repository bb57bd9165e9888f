"""Round-trip YAML: comments, key order, quoting and indentation survive an edit.

Every file gitcanary edits goes through here, so a step commit's diff touches only the
lines that must change. The indentation of a file is detected and kept.

Every document comes from the repository, which anyone with push rights can edit, so every parse
is bounded: a size cap per file (5 MB by default, `--max-yaml-bytes`), a nesting depth, and a
budget of nodes that aliases may add (a "billion laughs" file is refused in milliseconds instead
of costing gigabytes once something walks it). Duplicate keys are errors, as in ruamel's default.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

MAX_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 100
# Nodes aliases may add beyond the document's own: generous for YAML anchors people use to share a
# block, far below what makes a walk of the parsed document take seconds.
ALIAS_BUDGET = 100_000


class YAMLLimitError(YAMLError):
    """A document over one of the parsing limits (size, depth, alias expansion)."""


class _Limits:
    max_bytes = MAX_BYTES


def configure(max_bytes: int | None = None) -> None:
    """Set the per-file size cap (`gitcanary --max-yaml-bytes`)."""
    if max_bytes is not None:
        if max_bytes <= 0:
            raise ValueError("the YAML size cap must be a positive number of bytes")
        _Limits.max_bytes = max_bytes


def _expanded(root: Node) -> tuple[int, int]:
    """(distinct nodes, nodes after expanding every alias); raises on a recursive alias."""
    sizes: dict[int, int] = {}
    busy: set[int] = set()
    distinct = 0

    def size(node: Node) -> int:
        nonlocal distinct
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in busy:
            raise YAMLLimitError("a YAML alias refers to a node that contains it (recursive alias)")
        busy.add(key)
        distinct += 1
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        busy.discard(key)
        sizes[key] = total
        return total

    return distinct, size(root)


class _BoundedComposer(Composer):
    """ruamel's composer, refusing a document whose aliases expand beyond ALIAS_BUDGET nodes.

    Aliases are shared nodes while composing (cheap); the cost comes when the document is walked
    (schema checks, models, dumps), so the expansion is counted here, before anything walks it.
    """

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None and self.anchors:
            distinct, expanded = _expanded(node)
            if expanded - distinct > ALIAS_BUDGET:
                raise YAMLLimitError(
                    f"YAML aliases expand this document to more than {distinct + ALIAS_BUDGET} nodes "
                    f"({expanded}); refused as an alias bomb"
                )
        return node


def _bounded(yaml: YAML) -> YAML:
    yaml.Composer = _BoundedComposer
    yaml.max_depth = MAX_DEPTH
    return yaml


def compose_all(text: str, source: str = "") -> list[Node]:
    """The node trees of every document, under the same limits as loading (size, depth, aliases)."""
    check_size(text, source)
    return [node for node in _bounded(YAML(typ="safe", pure=True)).compose_all(text) if node is not None]


def check_size(text: str, source: str = "") -> None:
    limit = _Limits.max_bytes
    # A character is 1 to 4 bytes in UTF-8: encode only when the characters alone do not decide.
    if len(text) > limit or (4 * len(text) > limit and len(text.encode()) > limit):
        where = f"{source}: " if source else ""
        raise YAMLLimitError(
            f"{where}{len(text.encode())} bytes is over the {limit}-byte limit for a YAML file "
            "(--max-yaml-bytes)"
        )


def _yaml(text: str | None = None) -> YAML:
    yaml = _bounded(YAML(typ="rt"))
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long strings (PromQL, commands)
    mapping, sequence, offset = indentation(text or "")
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def indentation(text: str) -> tuple[int, int, int]:
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


def load_all(text: str, source: str = "") -> list[Any]:
    """Every document of a YAML stream, round-trip types; empty documents dropped."""
    check_size(text, source)
    return [doc for doc in _yaml(text).load_all(text) if doc is not None]


def load(text: str, source: str = "") -> Any:
    check_size(text, source)
    return _yaml(text).load(text)


def dump(doc: Any, like: str | None = None) -> str:
    stream = io.StringIO()
    _yaml(like).dump(doc, stream)
    return stream.getvalue()


def dump_all(docs: Iterable[Any], like: str | None = None) -> str:
    stream = io.StringIO()
    _yaml(like).dump_all(list(docs), stream)
    return stream.getvalue()


def safe_load_all(text: str, source: str = "") -> Iterator[Any]:
    """Plain Python types (dicts, lists) for reading rendered output; no round-trip overhead."""
    check_size(text, source)
    yaml = _bounded(YAML(typ="safe", pure=True))
    for doc in yaml.load_all(text):
        if doc is not None:
            yield doc


__all__ = [
    "YAMLError",
    "YAMLLimitError",
    "check_size",
    "configure",
    "dump",
    "dump_all",
    "load",
    "load_all",
    "safe_load_all",
]

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
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import git
from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

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


def dump(doc: Any, like: str | None = None, *, keep_layout: bool = True) -> str:
    """`doc` as YAML; with `like` (the file's text before the edit), only the lines that changed.

    ruamel keeps comments, quotes and key order, but one indentation per file: a file that mixes
    "key:\n- item" and "key:\n  - item" would be re-indented where its style is not the one
    guessed. `keep_layout` lays the edit onto the file's own text instead (see `_onto`)."""
    new = _plain_dump([doc], like, single=True)
    if like is None or not keep_layout:
        return new
    return _onto(like, new, lambda text: _plain_dump([load(text)], like, single=True))


def dump_all(docs: Iterable[Any], like: str | None = None, *, keep_layout: bool = True) -> str:
    """Every document as one YAML stream; `like` and `keep_layout` as for `dump`."""
    new = _plain_dump(list(docs), like, single=False)
    if like is None or not keep_layout:
        return new
    return _onto(like, new, lambda text: _plain_dump(load_all(text), like, single=False))


def _plain_dump(docs: list[Any], like: str | None, *, single: bool) -> str:
    stream = io.StringIO()
    if single:
        _yaml(like).dump(docs[0], stream)
    else:
        _yaml(like).dump_all(docs, stream)
    return stream.getvalue()


def _onto(original: str, new: str, unedited: Callable[[str], str]) -> str:
    """`new`'s data in the original's own bytes, so what the edit does not touch keeps the
    author's layout byte for byte.

    First every scalar that changed (a tag, a weight, a replica count) is spliced in place, in the
    quoting style it had (`_splice`). If that was the whole edit, done. Otherwise (a key added or
    removed, a list grown) the rest goes from `unedited(text)` (the spliced text re-dumped,
    unchanged) to `new`, laid onto the spliced text by Git's three-way merge. `new` itself when
    the rest and a layout difference touch the same lines (a merge conflict), or when the result
    does not load to exactly `new`'s data: a layout is never kept at the cost of meaning."""
    if new == original:
        return new
    try:
        after = list(safe_load_all(new))
        text, whole = _splice(original, after)
    except YAMLError:
        return new
    if whole:
        return text
    try:
        base = unedited(text)
    except YAMLError:
        return new
    if base == new:
        return text
    if base != text:
        text = _merged(text, base, new)
    try:
        return text if list(safe_load_all(text)) == after else new
    except YAMLError:
        return new


def _merged(ours: str, base: str, theirs: str) -> str:
    """`git merge-file`: the change from base to theirs, applied to ours ("" on a conflict)."""
    with tempfile.TemporaryDirectory(prefix="gitcanary-yaml-") as scratch:
        files = []
        for name, text in (("ours", ours), ("base", base), ("theirs", theirs)):
            file = Path(scratch, name)
            file.write_text(text, encoding="utf-8")
            files.append(str(file))
        try:
            return str(git.Git().merge_file("-p", "-q", *files, strip_newline_and_stdout=False))
        except git.GitCommandError:  # its exit status counts conflicts (or reports an error)
            return ""


def _splice(original: str, after: list[Any]) -> tuple[str, bool]:
    """(the original with each changed scalar's text replaced, whether that made it `after`).

    A scalar is replaced where the original and `after` both hold a scalar at the same place;
    what is added, removed or reshaped is left for the merge."""
    nodes = compose_all(original)
    before = list(safe_load_all(original))
    if len(nodes) != len(before) or len(before) != len(after):
        return original, False
    edits: list[tuple[int, int, str]] = []
    for node, old, value in zip(nodes, before, after, strict=True):
        _edits(original, node, old, value, edits)
    text = original
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    try:
        if list(safe_load_all(text)) == after:
            return text, True
    except YAMLError:
        return original, False
    return text, False


def _edits(text: str, node: Node, old: Any, value: Any, edits: list[tuple[int, int, str]]) -> bool:
    """Collect (start, end, replacement) text edits that turn `node` (loaded as `old`) into
    `value`: each changed scalar in place; in a block mapping, a removed key's lines dropped and
    added keys' lines put after its last key. True when those edits are all that differs."""
    if node.anchor is not None:
        return bool(old == value)  # a shared node: one text edit would change every alias
    if isinstance(node, MappingNode):
        if not isinstance(old, dict) or not isinstance(value, dict):
            return False
        if len(node.value) != len(old) or any(key.tag.endswith(":merge") for key, _ in node.value):
            return bool(old == value)  # merge keys (<<): the nodes do not line up with the data
        whole = True
        for (_, child), key in zip(node.value, old, strict=True):
            if key in value:
                whole = _edits(text, child, old[key], value[key], edits) and whole
        return _keys_edits(text, node, old, value, edits) and whole
    if isinstance(node, SequenceNode):
        if not isinstance(old, list) or not isinstance(value, list) or len(node.value) != len(old):
            return False
        whole = len(old) == len(value)
        for child, was, now in zip(node.value, old, value, strict=False):
            whole = _edits(text, child, was, now, edits) and whole
        return whole
    if isinstance(value, dict | list) or not isinstance(node, ScalarNode):
        return False
    if type(old) is type(value) and old == value:
        return True
    replacement = _scalar_text(value, node.style)
    if replacement is None:
        return False
    edits.append((node.start_mark.index, node.end_mark.index, replacement))
    return True


def _keys_edits(
    text: str,
    node: MappingNode,
    old: dict[Any, Any],
    value: dict[Any, Any],
    edits: list[tuple[int, int, str]],
) -> bool:
    """Line edits for the keys a block mapping loses or gains (gained keys go after its last key,
    in `value`'s order); False when the keys cannot be edited as whole lines."""
    kept = [key for key in old if key in value]
    added = [key for key in value if key not in old]
    if len(kept) == len(old) and not added:
        return True
    if list(value)[: len(kept)] != kept or not kept or node.flow_style:
        return False
    column = node.value[0][0].start_mark.column
    spans: dict[Any, tuple[int, int]] = {}
    for (key_node, child), key in zip(node.value, old, strict=True):
        start = key_node.start_mark.index - key_node.start_mark.column
        if text[start : key_node.start_mark.index].strip(" ") or key_node.start_mark.column != column:
            return False  # the key shares its line with a "- " or is not where its siblings are
        spans[key] = (_comments_above(text, start, column), _line_after(text, child.end_mark.index))
    for key in old:
        if key not in value:
            edits.append((*spans[key], ""))
    if added:
        at = spans[kept[-1]][1]
        block = _plain_dump([{key: value[key] for key in added}], text, single=True)
        lines = [(" " * column + line) if line else line for line in block.splitlines(keepends=True)]
        edits.append((at, at, ("" if at == 0 or text[at - 1] == "\n" else "\n") + "".join(lines)))
    return True


def _comments_above(text: str, start: int, column: int) -> int:
    """The start of the comment lines just above the line at `start` that sit at its column: they
    are about that key, and go with it."""
    while start > 0:
        above = text.rfind("\n", 0, start - 1) + 1
        line = text[above:start]
        if not (line.startswith(" " * column + "#")):
            break
        start = above
    return start


def _line_after(text: str, index: int) -> int:
    """The start of the line after the one `index` is on (`index` itself at a line's start), less
    the blank and comment lines just before it: a block's end mark is where the next key starts,
    and the comments above that key are the next key's."""
    if index == 0 or text[index - 1] == "\n":
        end = index
    else:
        found = text.find("\n", index)
        end = len(text) if found < 0 else found + 1
    while end > 0:
        start = text.rfind("\n", 0, end - 1) + 1
        if text[start:end].strip() and not text[start:end].lstrip().startswith("#"):
            break
        end = start
    return end


def _scalar_text(value: Any, style: str | None) -> str | None:
    """`value` as one scalar in the given quoting style, by ruamel; None if it needs several lines."""
    scalar: Any = value
    if isinstance(value, str) and style == "'":
        scalar = SingleQuotedScalarString(value)
    elif isinstance(value, str) and style == '"':
        scalar = DoubleQuotedScalarString(value)
    stream = io.StringIO()
    yaml = YAML(typ="rt")
    yaml.width = 4096
    yaml.dump({"k": scalar}, stream)
    dumped = stream.getvalue()
    if not dumped.startswith("k: ") or dumped.count("\n") != 1:
        return None
    return dumped[3:-1]


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

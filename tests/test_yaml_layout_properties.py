"""An edit of a user's YAML file changes only what the edit changes, byte for byte.

The files are generated with every layout people write by hand, mixed within one file: sequences
indented or not ("key:\\n- item" and "key:\\n  - item"), mappings indented by 2 or 4, comments at the
end of lines and on their own lines, quoted and plain scalars, extra spaces after a colon. The
oracle builds the expected text from the generated lines alone: the changed value's characters
replaced, a removed key's lines dropped, an added key's lines after the rest.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitcanary.manifests import yamlio

SETTINGS = settings(
    max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@dataclass
class Leaf:
    path: tuple[Any, ...]
    line: int
    start: int  # the value's first character on its line
    token: str
    kind: str  # "int", "plain", "single" or "double"


@dataclass
class Rendered:
    lines: list[str] = field(default_factory=list)
    leaves: list[Leaf] = field(default_factory=list)
    top: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> its lines [start, end)

    @property
    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


KEYS = st.text("abcdefgh", min_size=1, max_size=6).map(lambda s: "k" + s)
SCALARS = st.one_of(
    st.integers(0, 10**6).map(lambda n: ("int", str(n))),
    st.text("abcxyz0123456789.-", min_size=0, max_size=8).map(lambda s: ("plain", "v" + s)),
    st.text("ab c:#xyz", min_size=0, max_size=8).map(lambda s: ("single", "'" + s + "'")),
    st.text("ab c:#xyz", min_size=0, max_size=8).map(lambda s: ("double", '"' + s + '"')),
)


def first(pair: tuple[str, Any]) -> str:
    return pair[0]


@functools.cache
def nodes(depth: int) -> st.SearchStrategy[Any]:
    scalar = st.tuples(st.just("scalar"), SCALARS, st.booleans(), st.sampled_from([" ", "   "]))
    if depth == 0:
        return scalar
    child = nodes(depth - 1)
    mapping = st.tuples(
        st.just("map"), st.lists(st.tuples(KEYS, child), min_size=1, max_size=3, unique_by=lambda kv: kv[0]),
        st.sampled_from([2, 4]), st.booleans(),
    )  # fmt: skip
    inner = st.lists(st.tuples(KEYS, nodes(max(depth - 2, 0))), min_size=1, max_size=3, unique_by=first)
    items = st.one_of(scalar, st.tuples(st.just("map"), inner, st.just(2), st.just(False)))
    sequence = st.tuples(st.just("seq"), st.lists(items, min_size=1, max_size=3), st.sampled_from([0, 2]))
    return st.one_of(scalar, mapping, sequence)


def render_map(out: Rendered, entries: list[tuple[str, Any]], column: int, path: tuple[Any, ...],
               dash: str | None = None, top: bool = False) -> None:  # fmt: skip
    for index, (key, node) in enumerate(entries):
        first = out.lines.__len__()
        lead = dash if (dash is not None and index == 0) else " " * column
        if node[0] == "scalar":
            (kind, token), comment, gap = node[1], node[2], node[3]
            line = f"{lead}{key}:{gap}"
            out.leaves.append(Leaf((*path, key), len(out.lines), len(line), token, kind))
            out.lines.append(line + token + (f"  # c{len(out.lines)}" if comment else ""))
        elif node[0] == "map":
            if node[3]:
                out.lines.append(" " * column + f"# about {key}" if dash is None or index else "")
                if not out.lines[-1]:
                    out.lines.pop()
            out.lines.append(f"{lead}{key}:")
            render_map(out, node[1], column + node[2], (*path, key))
        else:
            out.lines.append(f"{lead}{key}:")
            render_seq(out, node[1], column + node[2], (*path, key))
        if top:
            out.top[key] = (first, len(out.lines))


def render_seq(out: Rendered, items: list[Any], column: int, path: tuple[Any, ...]) -> None:
    for index, node in enumerate(items):
        if node[0] == "scalar":
            kind, token = node[1]
            line = " " * column + "- "
            out.leaves.append(Leaf((*path, index), len(out.lines), len(line), token, kind))
            out.lines.append(line + token)
        else:
            render_map(out, node[1], column + 2, (*path, index), dash=" " * column + "- ")


@st.composite
def documents(draw: st.DrawFn) -> Rendered:
    entries = draw(st.lists(st.tuples(KEYS, nodes(3)), min_size=1, max_size=5, unique_by=lambda kv: kv[0]))
    out = Rendered()
    render_map(out, entries, 0, (), top=True)
    return out


def value_of(leaf: Leaf, token: str) -> Any:
    if leaf.kind == "int":
        return int(token)
    if leaf.kind == "plain":
        return token
    return token[1:-1]


def set_in(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        doc = doc[step]
    doc[path[-1]] = value


NEW_TOKENS = {
    "int": st.integers(0, 10**6).map(str),
    "plain": st.text("abcxyz0123456789", min_size=0, max_size=6).map(lambda s: "w" + s),
    "single": st.text("ab c:#", min_size=0, max_size=6).map(lambda s: "'" + s + "'"),
    "double": st.text("ab c:#", min_size=0, max_size=6).map(lambda s: '"' + s + '"'),
}


@SETTINGS
@given(documents(), st.data())
def test_changing_scalars_changes_only_their_characters(rendered: Rendered, data: st.DataObject) -> None:
    text = rendered.text
    doc = yamlio.load(text)
    chosen = data.draw(st.lists(st.sampled_from(rendered.leaves), min_size=1, max_size=3, unique_by=id))
    expected = list(rendered.lines)
    for leaf in chosen:
        token = data.draw(NEW_TOKENS[leaf.kind])
        line = expected[leaf.line]
        expected[leaf.line] = line[: leaf.start] + token + line[leaf.start + len(leaf.token) :]
        leaf.token = token
        set_in(doc, leaf.path, value_of(leaf, token))
    assert yamlio.dump(doc, like=text) == "".join(line + "\n" for line in expected)


@SETTINGS
@given(documents(), st.data())
def test_removing_and_adding_keys_keeps_every_other_line(rendered: Rendered, data: st.DataObject) -> None:
    text = rendered.text
    doc = yamlio.load(text)
    keys = list(rendered.top)
    removed = data.draw(st.lists(st.sampled_from(keys), max_size=len(keys) - 1, unique=True))
    values = st.integers(0, 9) | st.lists(st.integers(0, 9), min_size=1, max_size=2)
    added = data.draw(
        st.dictionaries(KEYS.map(lambda k: "new" + k), values, min_size=0 if removed else 1, max_size=2)
    )
    for key in removed:
        del doc[key]
    doc.update(added)
    result = yamlio.dump(doc, like=text)
    kept = "".join(
        line + "\n"
        for index, line in enumerate(rendered.lines)
        if not any(rendered.top[key][0] <= index < rendered.top[key][1] for key in removed)
    )
    assert result.startswith(kept), difflib.unified_diff(kept.splitlines(), result.splitlines())
    assert yamlio.safe_load_all(result).__next__() == yamlio.safe_load_all(yamlio.dump(doc)).__next__()


# One line of a YAML block: its indentation and key (or "- "), its value, its comment.
LINE = re.compile(
    r"^(?P<head>\s*(?:- )?(?:[^\s#'\"][^#]*?:(?=\s|$))?\s*)"
    r"(?P<value>'(?:[^']|'')*'|\"(?:[^\"\\]|\\.)*\"|.*?)(?P<comment>\s+#.*)?$"
)


def skeleton(line: str) -> str:
    """A line with its value left out: its indentation, key or dash, and comment."""
    found = LINE.match(line)
    return f"{found['head']}\0{found['comment'] or ''}" if found else line


def changed_lines_are_only_values(old: str, new: str) -> list[str]:
    """How `new` differs from `old` beyond values (an independent oracle): the two files' lines
    with their values left out, compared by a line diff, may differ only by whole lines added or
    removed; a line that is there in both has the same indentation, key and comment."""
    a, b = [skeleton(line) for line in old.splitlines()], [skeleton(line) for line in new.splitlines()]
    return [
        f"{tag} lines {i1 + 1}-{i2}: {old.splitlines()[i1:i2]} -> {new.splitlines()[j1:j2]}"
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
        if tag == "replace"
    ]


@SETTINGS
@given(documents(), st.data())
def test_any_edit_keeps_the_data_and_changes_no_line_it_need_not(
    rendered: Rendered, data: st.DataObject
) -> None:
    text = rendered.text
    doc = yamlio.load(text)
    for leaf in data.draw(st.lists(st.sampled_from(rendered.leaves), max_size=2, unique_by=id)):
        set_in(doc, leaf.path, value_of(leaf, data.draw(NEW_TOKENS[leaf.kind])))
    if data.draw(st.booleans()):
        doc["addedkey"] = {"count": data.draw(st.integers(0, 5))}
    result = yamlio.dump(doc, like=text)
    assert list(yamlio.safe_load_all(result)) == list(yamlio.safe_load_all(yamlio.dump(doc)))
    assert not changed_lines_are_only_values(text, result)


def test_a_kustomization_that_mixes_sequence_styles_keeps_them() -> None:
    text = (
        "images:\n"
        "  - name: ghcr.io/acme/cart\n"
        '    newTag: 1.0.0 # {"$imagepolicy": "flux-system:cart:tag"}\n'
        "patchesJson6902:\n"
        "- path: deployment.patch.yaml\n"
        "  target:\n"
        "      kind: Deployment\n"
    )
    doc = yamlio.load(text)
    doc["images"][0]["newTag"] = "1.1.0"
    doc["replicas"] = [{"name": "cart", "count": 0}]
    assert yamlio.dump(doc, like=text) == text.replace("1.0.0", "1.1.0") + (
        "replicas:\n  - name: cart\n    count: 0\n"
    )

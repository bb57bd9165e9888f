"""SECURITY.md's parsing rule, over generated documents: "Every YAML file from the repository is
parsed with a size cap (5 MB by default, `--max-yaml-bytes`), a nesting depth of 100 and a budget of
100 000 nodes that aliases may add; a "billion laughs" file is refused in milliseconds."

The oracles are arithmetic on the generated shape: the bytes of the text, the levels of nesting
written, and the nodes an alias chain expands to, counted here without parsing.
"""

from __future__ import annotations

import time

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gitcanary.manifests import yamlio


@settings(derandomize=True, max_examples=120, deadline=None)
@given(st.integers(1, 140), st.integers(0, 2**140 - 1), st.booleans())
@example(yamlio.MAX_DEPTH - 1, 0, False).via("the limit")
@example(yamlio.MAX_DEPTH - 1, 1, True).via("one over")
def test_nesting_deeper_than_100_is_refused_and_no_deeper_is_read(
    written: int, kinds: int, block_root: bool
) -> None:
    """`written` collections nested in each other, each a list or a flow map as `kinds`' bits say."""
    levels = ["seq" if kinds >> i & 1 else "map" for i in range(written)]
    opening = "".join("[" if kind == "seq" else "{k: " for kind in levels)
    closing = "".join("]" if kind == "seq" else "}" for kind in reversed(levels))
    text = ("root: " if block_root else "") + opening + "x" + closing
    depth = len(levels) + block_root + 1  # nodes on the way down: each collection, then the scalar
    try:
        value = yamlio.load(text)
    except yamlio.YAMLError as exc:
        assert depth > yamlio.MAX_DEPTH and "depth" in str(exc), (depth, str(exc))
        return
    assert depth <= yamlio.MAX_DEPTH
    for kind in ([] if not block_root else ["root"]) + levels:  # the value is the nesting written
        value = value["root"] if kind == "root" else value[0] if kind == "seq" else value["k"]
    assert value == "x"


@settings(derandomize=True, max_examples=80, deadline=None)
@given(st.integers(1, 9), st.integers(1, 12))
def test_aliases_adding_more_than_the_budget_are_refused_fast(levels: int, fanout: int) -> None:
    """`a0` is a list of `fanout` scalars; each `a<k>` lists `fanout` aliases of `a<k-1>`."""
    lines = [f"a0: &a0 [{', '.join(['x'] * fanout)}]"]
    lines += [f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * fanout)}]" for k in range(1, levels)]
    text = "\n".join(lines) + "\n"
    # Nodes when every alias is expanded: a<k> holds 1 + fanout * (nodes of a<k-1>).
    sizes = [1 + fanout]
    for _ in range(1, levels):
        sizes.append(1 + fanout * sizes[-1])
    expanded = 1 + sum(1 + size for size in sizes)  # the mapping, each key, each value
    distinct = 1 + levels + (1 + fanout) + (levels - 1)  # the mapping, keys, a0 and its scalars, a<k>
    started = time.monotonic()
    try:
        value = yamlio.load(text)
    except yamlio.YAMLLimitError as exc:
        assert expanded - distinct > yamlio.ALIAS_BUDGET, (levels, fanout, expanded)
        assert "alias bomb" in str(exc)
    else:
        assert expanded - distinct <= yamlio.ALIAS_BUDGET, (levels, fanout, expanded)

        def count(node: object) -> int:
            return 1 + sum(count(child) for child in node) if isinstance(node, list) else 1

        assert 1 + sum(1 + count(v) for v in value.values()) == expanded
    assert time.monotonic() - started < 2  # milliseconds on an idle machine; 2 s on a loaded one


@settings(derandomize=True, max_examples=80, deadline=None)
@given(st.text(alphabet=["x", "é", "€", "😀", " "], max_size=150), st.integers(1, 400))
def test_a_file_over_the_byte_cap_is_refused_and_none_under_it(body: str, cap: int) -> None:
    text = f"a: '{body}'\n"
    yamlio.configure(max_bytes=cap)
    try:
        try:
            docs = list(yamlio.safe_load_all(text, "f.yaml"))
        except yamlio.YAMLLimitError as exc:
            assert len(text.encode()) > cap, (len(text.encode()), cap)
            assert f"over the {cap}-byte limit" in str(exc)
        else:
            assert len(text.encode()) <= cap
            assert docs == [{"a": body}]
    finally:
        yamlio.configure(max_bytes=yamlio.MAX_BYTES)

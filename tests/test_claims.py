"""Every "never", "always", "every" or "cannot" in README.md, SECURITY.md and docs/ has a row in
docs/claims.md naming the test that checks it (issue 26 item 6), and every such row still points at
a sentence that exists and a test that exists.

Pure text parsing: the Markdown is cut into blocks (paragraphs, list items, table rows, headings;
fenced code blocks dropped), each block is joined across its line breaks and cut into sentences, and
a sentence is a claim when it holds one of the words as a whole word, in any case. A row of
docs/claims.md names its file by the `## <file>` heading above its table, the sentence by an excerpt
(verbatim, whitespace collapsed to one space, found in exactly one claim sentence of that file) and
its tests as `tests/test_x.py::test_name` or `tests/test_x.py::Class::method`, which must be
defined in that file (read with ast, nothing is imported).

Run `python tests/test_claims.py` to print ready-to-paste rows for the sentences that have none.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
CLAIMS = "docs/claims.md"
WORD = re.compile(r"\b(never|always|every|cannot)\b", re.I)
TEST_REF = re.compile(r"tests/[\w/]+\.py::[\w:]+")
KINDS = {"property", "example", "not a claim"}
FENCE = re.compile(r"^\s*(```|~~~)")
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
# a sentence ends at . ! ? (or the colon before a list), closing quotes/brackets/markup kept
SENTENCE_END = re.compile(r"(?<=[.!?])[*_`)\"']*\s+(?=[*_`(\"'\[]*[A-Z0-9])")


def documents(root: Path = ROOT) -> list[str]:
    """The files whose sentences must be backed, as paths relative to the root."""
    paths = [root / "README.md", root / "SECURITY.md", *sorted((root / "docs").rglob("*.md"))]
    names = [p.relative_to(root).as_posix() for p in paths if p.is_file()]
    return [name for name in names if name != CLAIMS]


def blocks(markdown: str) -> list[str]:
    """Paragraphs, list items, table rows and headings, each as one line; code blocks dropped."""
    out: list[str] = []
    current: list[str] = []
    fenced = indented = in_list = False
    blank_before = True

    def flush() -> None:
        if current:
            out.append(" ".join(current))
            current.clear()

    for line in markdown.splitlines():
        if FENCE.match(line):
            flush()
            fenced = not fenced
            continue
        if fenced:
            continue
        stripped = line.strip()
        # an indented code block: 4 spaces after a blank line, not a list item's continuation
        if stripped and line.startswith("    ") and (indented or (blank_before and not in_list)):
            flush()
            indented = True
            continue
        if stripped:
            indented = False
            if not line[0].isspace():
                in_list = bool(LIST_ITEM.match(line))
        blank_before = not stripped
        if not stripped:
            flush()
        elif stripped.startswith(("#", "|")) or stripped.startswith("<"):
            flush()
            out.append(stripped)
        elif LIST_ITEM.match(line):
            flush()
            current.append(LIST_ITEM.sub("", line, count=1).strip())
        else:
            current.append(stripped)
    flush()
    return out


def sentences(markdown: str) -> list[str]:
    """Every sentence of the prose, whitespace collapsed; table rows are cut at their cells too."""
    found: list[str] = []
    for block in blocks(markdown):
        parts = [c.strip() for c in re.split(r"(?<!\\)\|", block)] if block.startswith("|") else [block]
        for part in parts:
            for sentence in SENTENCE_END.split(part):
                sentence = " ".join(sentence.split())
                if sentence:
                    found.append(sentence)
    return found


def claims(markdown: str) -> list[str]:
    return [s for s in sentences(markdown) if WORD.search(s)]


@dataclass(frozen=True)
class Row:
    file: str
    excerpt: str
    tests: tuple[str, ...]
    kind: str
    line: int


def _cells(line: str) -> list[str]:
    cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
    return cells


def _unquote(cell: str) -> str:
    """An excerpt may be written as `code` (or ``code`` when it holds a backtick) so Markdown in it
    shows as typed."""
    ticks = re.match(r"^(`+)(.*)\1$", cell, re.S)
    if not ticks:
        return cell
    inner = ticks[2]
    return inner[1:-1] if len(inner) >= 2 and inner.startswith(" ") and inner.endswith(" ") else inner


def cell(excerpt: str) -> str:
    """An excerpt as a table cell that `rows` reads back as it was."""
    if "`" in excerpt:
        return f"`` {excerpt} ``".replace("|", "\\|")
    if re.search(r"[*_<>\[\]|\\]", excerpt):
        return f"`{excerpt}`".replace("|", "\\|")
    return excerpt


def rows(markdown: str) -> list[Row]:
    """The rows of docs/claims.md: | excerpt | tests | kind | note |, under a `## file` heading."""
    out: list[Row] = []
    file = ""
    for number, line in enumerate(markdown.splitlines(), 1):
        heading = re.match(r"^##\s+`?([^`\s]+)`?\s*$", line)
        if heading:
            file = heading[1]
            continue
        if not file or not line.startswith("|"):
            continue
        cells = _cells(line)
        if len(cells) < 3 or set(cells[0]) <= set("-: ") or cells[0].lower() == "excerpt":
            continue
        excerpt = " ".join(_unquote(cells[0]).split())
        out.append(Row(file, excerpt, tuple(TEST_REF.findall(cells[1])), cells[2].strip().lower(), number))
    return out


@cache
def _definitions(path: Path) -> frozenset[str]:
    """`name` for each top-level function and `Class::method` for each method of a test file."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            names.update(
                f"{node.name}::{item.name}" for item in node.body
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
            )
    return frozenset(names)


def is_defined(reference: str, root: Path = ROOT) -> bool:
    file, _, name = reference.partition("::")
    path = root / file
    return path.is_file() and name in _definitions(path)




def excerpt_for(sentence: str, others: list[str]) -> str:
    """The shortest run of at least five words around the claim word that no other sentence holds,
    without Markdown in it where one exists."""
    words = sentence.split(" ")
    hit = next(i for i, w in enumerate(words) if WORD.search(w))
    for plain in (True, False):
        for width in range(min(5, len(words)), len(words) + 1):
            for start in range(max(0, hit - width + 1), min(hit, len(words) - width) + 1):
                excerpt = " ".join(words[start:start + width])
                if plain and re.search(r"[`*_|<>\[\]\\]", excerpt):
                    continue
                if not any(excerpt in o for o in others):
                    return excerpt
    return sentence


def problems(root: Path = ROOT) -> tuple[list[str], list[str]]:
    """(problems as messages, ready-to-paste row stubs for the sentences with no row)."""
    table = rows((root / CLAIMS).read_text())
    messages: list[str] = []
    stubs: list[str] = []
    by_file: dict[str, list[str]] = {f: claims((root / f).read_text()) for f in documents(root)}
    matched: dict[tuple[str, str], Row] = {}
    for row in table:
        where = f"{CLAIMS}:{row.line}"
        if row.file not in by_file:
            messages.append(f"{where}: no such document {row.file!r}")
            continue
        # A repeated sentence is one; an excerpt that is a whole sentence is that sentence, also when
        # longer sentences hold it (a table cell `never promoted` has no other excerpt).
        exact = {s for s in by_file[row.file] if row.excerpt == s}
        hits = sorted(exact or {s for s in by_file[row.file] if row.excerpt in s})
        if len(hits) != 1:
            what = "matches no claim sentence" if not hits else f"matches {len(hits)} claim sentences"
            messages.append(f"{where}: excerpt {row.excerpt!r} {what} of {row.file}")
            continue
        if (row.file, hits[0]) in matched:
            first = matched[row.file, hits[0]].line
            messages.append(f"{where}: a second row for the sentence of row {first}")
        matched[row.file, hits[0]] = row
        if row.kind not in KINDS:
            messages.append(f"{where}: kind {row.kind!r} is none of {sorted(KINDS)}")
        if row.kind != "not a claim" and not row.tests:
            messages.append(f"{where}: names no test (tests/test_x.py::test_name)")
        messages.extend(f"{where}: {t} does not exist" for t in row.tests if not is_defined(t, root))
    for file, found in by_file.items():
        missing = list(dict.fromkeys(s for s in found if (file, s) not in matched))
        if missing:
            stubs.append(f"## {file}")
        for sentence in missing:
            messages.append(f"{file}: no row for: {sentence}")
            others = [s for s in sentences((root / file).read_text()) if s != sentence]
            excerpt = excerpt_for(sentence, others)
            stubs.append(f"| {cell(excerpt)} | tests/test_FILE.py::test_NAME | property | |")
    return messages, stubs


def test_every_claim_has_a_row_naming_a_test_that_exists() -> None:
    messages, stubs = problems()
    if messages:
        paste = f"Rows to paste into {CLAIMS}, under the heading of their file (then name the test and kind):"
        pytest.fail("\n".join([*messages, "", paste, *stubs]), pytrace=False)
    assert messages == []  # a passing run checks an outcome too (tests/assertion_count.py)


# The extractor itself, on generated Markdown.

filler = st.lists(st.sampled_from(["the", "canary", "gate", "commit", "rolls", "back", "when", "a"]),
                  min_size=1, max_size=6).map(" ".join)
claim_word = st.sampled_from(["never", "Always", "EVERY", "cannot"])


@st.composite
def claim_sentence(draw: st.DrawFn) -> tuple[str, str]:
    """(a sentence holding a claim word, possibly in bold, with a unique marker, the marker)."""
    marker = f"m{draw(st.integers(0, 10**6))}x"
    word = draw(claim_word)
    word = f"**{word}**" if draw(st.booleans()) else word
    return f"{marker.capitalize()} {draw(filler)} {word} {draw(filler)}.", marker


@settings(derandomize=True, max_examples=150, deadline=None)
@given(claim_sentence(), st.sampled_from(["paragraph", "wrapped", "list", "numbered", "table"]),
       st.integers(1, 4))
def test_a_claim_is_found_wherever_the_prose_puts_it(sentence: tuple[str, str], shape: str, cut: int) -> None:
    text, marker = sentence
    words = text.split(" ")
    wrapped = " ".join(words[:cut]) + "\n" + " ".join(words[cut:])
    before = "Some prose before it. It has two sentences."
    markdown = {
        "paragraph": f"# Title\n\n{before} {text} After it.\n",
        "wrapped": f"{before}\n{wrapped}\nAfter it.\n",
        "list": f"Intro:\n\n- first item\n- {wrapped.replace(chr(10), chr(10) + '  ')}\n- last item\n",
        "numbered": f"1. one\n2. {text}\n3. three\n",
        "table": f"| Option | Meaning |\n|---|---|\n| `--x` | {text} |\n",
    }[shape]
    found = claims(markdown)
    assert [s for s in found if marker.capitalize() in s] == [" ".join(text.split())]
    assert len(found) == 1


@settings(derandomize=True, max_examples=60, deadline=None)
@given(claim_sentence(), st.sampled_from(["```", "```yaml", "~~~"]))
def test_a_claim_word_in_a_code_block_is_not_a_claim(sentence: tuple[str, str], fence: str) -> None:
    text, _ = sentence
    close = "~~~" if fence == "~~~" else "```"
    markdown = f"Prose with no claim.\n\n{fence}\n# {text}\nrun --{text.split()[0]}\n{close}\n\nMore prose.\n"
    assert claims(markdown) == []
    assert claims(markdown + f"\n{text}\n") == [text]
    indented = f"Prose with no claim:\n\n    {text}\n    more {text}\n\nAfter.\n"
    assert claims(indented) == []
    in_a_list = f"- An item that goes on:\n\n    {text}\n"
    assert claims(in_a_list) == [text]


def test_words_inside_other_words_are_not_claims() -> None:
    assert claims("Everything is fine. Nevertheless it works. Everyone agrees; forever.") == []


def test_a_row_names_its_file_excerpt_tests_and_kind() -> None:
    table = (
        "# Claims\n\n## README.md\n\n| Excerpt | Tests | Kind | Note |\n|---|---|---|---|\n"
        "| `a \\| b` | tests/test_claims.py::test_words_inside_other_words_are_not_claims | example | |\n"
        "\n## docs/x.md\n\n| Excerpt | Tests | Kind | Note |\n|---|---|---|---|\n"
        "| never again | tests/test_a.py::T::test_b, tests/test_c.py::test_d | Property | why |\n"
    )
    assert rows(table) == [
        Row("README.md", "a | b", ("tests/test_claims.py::test_words_inside_other_words_are_not_claims",),
            "example", 7),
        Row("docs/x.md", "never again", ("tests/test_a.py::T::test_b", "tests/test_c.py::test_d"),
            "property", 13),
    ]
    assert is_defined("tests/test_claims.py::test_words_inside_other_words_are_not_claims")
    assert not is_defined("tests/test_claims.py::test_no_such_test")


@settings(derandomize=True, max_examples=100, deadline=None)
@given(st.text(alphabet="ab `*_|<>[]\\", min_size=1, max_size=12).map(lambda t: "x" + t.strip() + "y"))
def test_an_excerpt_written_as_a_cell_reads_back_as_it_was(excerpt: str) -> None:
    excerpt = " ".join(excerpt.split())
    table = f"## README.md\n\n| {cell(excerpt)} | tests/test_x.py::test_y | example | |\n"
    assert [r.excerpt for r in rows(table)] == [excerpt]


def test_the_checker_names_what_is_missing_stale_or_wrong(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test_y():\n    pass\n")
    (tmp_path / "README.md").write_text("It never fails.\nIt always\nworks. It can fail.\n")
    (tmp_path / "SECURITY.md").write_text("Nothing here.\n")
    (tmp_path / "docs" / "a.md").write_text("- Every step is a commit.\n")
    head = "| Excerpt | Tests | Kind | Note |\n|---|---|---|---|\n"
    (tmp_path / CLAIMS).write_text(
        f"## README.md\n\n{head}| It never fails | tests/test_x.py::test_y | property | |\n"
        f"| It always works | tests/test_x.py::test_z | example | |\n"
        f"| It is gone | tests/test_x.py::test_y | example | |\n"
    )
    messages, stubs = problems(tmp_path)
    assert messages == [
        f"{CLAIMS}:6: tests/test_x.py::test_z does not exist",
        f"{CLAIMS}:7: excerpt 'It is gone' matches no claim sentence of README.md",
        "docs/a.md: no row for: Every step is a commit.",
    ]
    stub = "| Every step is a commit. | tests/test_FILE.py::test_NAME | property | |"
    assert stubs == ["## docs/a.md", stub]


if __name__ == "__main__":
    found, paste = problems()
    print("\n".join(found), file=sys.stderr)
    print("\n".join(paste))
    sys.exit(1 if found else 0)

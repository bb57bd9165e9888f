"""Someone else's text in a PR body or comment, made inert: it shows as the words it is, on every forge.

Author names, image tags, file paths, release text, a reviewer's reason and a provider's
diagnostic are repository (or forge user) content. Put raw into Markdown they could mention
people (`@org/team` notifies a whole team), reference issues (`#1`, `!1`, `GH-1`, `~label`,
`%milestone`, `&epic`), link or embed images (`[x](u)`, `![i](u)`, `<u>`, bare `www.`/`http://`/
`a@b.c` autolinks), add raw HTML, run GitLab quick actions (`/merge` at a line start), or reorder
what a reviewer reads (bidi controls). Every builder of a body or comment (forge/gate.py) passes
such text through one of these functions:

- `text`: inline words. Credentials masked (`redaction.redact`), control and format characters
  (bidi included) dropped, whitespace made one line, every mark that starts something inline
  backslash-escaped (and a line-start mark at its start), and a zero-width space put after each
  reference sigil and inside each autolink start, so no forge's reference or autolink filter
  (they run on the rendered text, after the escapes are gone) sees one.
- `code`: an inline code span: nothing in it is parsed, so only the backtick that would end it,
  the pipe that would end a table cell and control characters are taken out.
- `html`: text inside an HTML block (`<summary>`): entities escaped, sigils broken as in `text`.
"""

from __future__ import annotations

import re
import unicodedata

from gitcanary.redaction import redact

ZWSP = "\u200b"
# Punctuation that starts something inline (emphasis, code, links, images, HTML, entities, math,
# strikethrough, table cells), backslash-escaped wherever it is; the rest of CommonMark's
# escapable marks matter only at a line's start (`-`, `+`, `=`, `1.`, `1)`, GitLab's `/merge`)
# and are escaped there, so ordinary words stay readable in the raw text.
_ESCAPED = re.compile(r"([\\`*_{}\[\]#+!|<>~&@$])")
_LEADING = re.compile(r"^(\d*)([-+=./:)%^])")
# A reference or mention a forge links in rendered text: `@user`, `#1`, `!1` (GitLab, Gitea),
# `~label`, `%milestone`, `$snippet`, `&epic` (GitLab), `GH-1` (GitHub).
_SIGIL = re.compile(r"([@#!~%$&^])(?=\S)|\b(GH)(?=-)", re.I)
# Autolink starts GitHub's extended autolinks and GitLab's and Gitea's linkers recognise.
_AUTOLINK = re.compile(r"(:)(?=//)|\b(www)(?=\.)", re.I)


def clean(value: str) -> str:
    """One line of printable text: control, format (bidi, zero-width) and separator characters
    become spaces, runs of whitespace one space; credentials masked first (the breaks `text` puts
    into a URL would hide its userinfo from the body's own redaction)."""
    out = []
    for char in redact(value):
        category = unicodedata.category(char)
        out.append(" " if category in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") else char)
    return " ".join("".join(out).split())


def _break(value: str) -> str:
    value = _SIGIL.sub(lambda m: (m[1] or m[2]) + ZWSP, value)
    return _AUTOLINK.sub(lambda m: (m[1] or m[2]) + ZWSP, value)


def text(value: str) -> str:
    """`value` as inline Markdown that renders as exactly its words (see the module's docstring)."""
    return _LEADING.sub(r"\1\\\2", _ESCAPED.sub(r"\\\1", _break(clean(value))))


def code(value: str) -> str:
    """`value` as an inline code span; `–` when nothing printable is left."""
    inner = clean(value).replace("`", "'").replace("|", "¦")
    return f"`{inner}`" if inner else "–"


def html(value: str) -> str:
    """`value` as text inside an HTML element of the body."""
    broken = _break(clean(value))
    return broken.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")

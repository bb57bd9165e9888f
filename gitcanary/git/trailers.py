"""Commit messages: a line for humans, a body with the evidence, `Gitcanary-*` trailers for machines.

Trailers follow git's trailer format, so `git interpret-trailers --parse` and
`git log --format=%(trailers)` read them. Values come from the repository (canary and metric names,
tags, webhook answers), so every value is cleaned before it is written: no line breaks or control
characters (a newline in a metric name must not add a `Gitcanary-Phase:` line), a bounded length,
and no body line that reads as a trailer. The trailers are one block, the message's last paragraph,
read back the way git reads it; a singular trailer given twice makes the message malformed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

from gitcanary.redaction import redact

PREFIX = "Gitcanary-"
# Trailers that may repeat (one per metric check); every other Gitcanary trailer is singular.
REPEATABLE = frozenset({"Check"})
SUBJECT_MAX = 200
LINE_MAX = 1000
VALUE_MAX = 300
# git's trailer token: letters, digits and '-', then ':' (git also allows spaces before the colon).
_TOKEN_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*)\s*:\s?(.*)$")
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
# A body line that git or gitcanary's history could read as a Gitcanary trailer (also bulleted).
_LOOKS_LIKE_TRAILER = re.compile(r"^[\s*>-]*gitcanary-[a-z0-9-]*\s*:", re.IGNORECASE)
# `git interpret-trailers` stops reading a message at a line of `---` and a space (a patch follows):
# such a body line would hide the trailer block from it.
_DIVIDER = re.compile(r"^---(\s|$)")


class MalformedTrailers(ValueError):
    """A message whose trailer block cannot be trusted (a singular trailer given twice)."""


def clean(value: object, limit: int = VALUE_MAX) -> str:
    """`value` as one line: control characters (CR, LF, NEL, U+2028...) become spaces, length bounded."""
    text = str(value)
    if not text.isprintable():
        text = "".join(
            " " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn") else ch
            for ch in text
        )
    text = redact(" ".join(text.split()))  # a commit is pushed and kept forever: no credentials in it
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _body_line(line: str) -> str:
    text = clean(line, LINE_MAX)
    # Quoted, so neither git nor `gitcanary history` can take it for one of the bot's trailers, and
    # git does not take it for the end of the message.
    return f"> {text}" if _LOOKS_LIKE_TRAILER.match(text) or _DIVIDER.match(text) else text


def format_message(
    subject: str,
    body: Iterable[str],
    trailers: Mapping[str, object],
    repeated: Iterable[tuple[str, object]] = (),
) -> str:
    """subject, blank line, body lines, blank line, ONE trailer block (`repeated` adds repeatable keys)."""
    head = clean(subject, SUBJECT_MAX)
    lines = ["> " + head if _LOOKS_LIKE_TRAILER.match(head) or _DIVIDER.match(head) else head, ""]
    # A line that cleans to nothing is dropped: two blank lines in a row would end the body early.
    cleaned = (_body_line(line) for text in body for line in str(text).splitlines())
    body_lines = [line for line in cleaned if line]
    if body_lines:
        lines += [*body_lines, ""]
    for key, value in [*trailers.items(), *repeated]:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a trailer name: {key!r}")
        lines.append(f"{PREFIX}{key}: {clean(value)}")
    return "\n".join(lines) + "\n"


def trailer_block(message: str) -> list[tuple[str, str]]:
    """(token, value) of the message's trailer block, as `git interpret-trailers --parse` finds it:
    the last paragraph, when every line of it is `Token: value` (or a continuation line)."""
    text = message.strip("\n")
    if "\n\n" not in text.replace("\r\n", "\n"):
        return []  # a subject alone has no trailers
    last = re.split(r"\n(?:[ \t]*\n)+", text)[-1]  # after the last run of blank lines, as git reads it
    found: list[tuple[str, str]] = []
    for line in last.split("\n"):
        if line[:1] in (" ", "\t") and found:  # a folded value continues
            token, value = found[-1]
            found[-1] = (token, f"{value} {line.strip()}")
            continue
        match = _TOKEN_LINE.match(line)
        if not match:
            return []
        found.append((match[1], match[2].strip()))
    return found


def gitcanary_trailers(message: str) -> list[tuple[str, str]]:
    """The `Gitcanary-*` trailers of the block, in order, keyed without the prefix."""
    return [
        (token[len(PREFIX) :], value)
        for token, value in trailer_block(message)
        if token.lower().startswith(PREFIX.lower())
    ]


def parse_trailers(message: str) -> dict[str, str]:
    """The singular `Gitcanary-*` trailers of the block; MalformedTrailers if one is given twice."""
    found: dict[str, str] = {}
    for key, value in gitcanary_trailers(message):
        if key in REPEATABLE:
            continue
        if key in found:
            raise MalformedTrailers(f"{PREFIX}{key} is given twice")
        found[key] = value
    return found

"""Commit messages: a line for humans, a body with the evidence, `Gitcanary-*` trailers for machines.

Trailers follow git's trailer format, so `git interpret-trailers --parse` and
`git log --format=%(trailers)` read them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

PREFIX = "Gitcanary-"
_TRAILER = re.compile(r"^(Gitcanary-[A-Za-z-]+):\s*(.*)$")


def format_message(subject: str, body: Iterable[str], trailers: Mapping[str, object]) -> str:
    lines = [subject.strip(), ""]
    body_lines = [line.rstrip() for line in body if line.strip()]
    if body_lines:
        lines += [*body_lines, ""]
    for key, value in trailers.items():
        text = str(value).replace("\n", " ").strip()
        lines.append(f"{PREFIX}{key}: {text}")
    return "\n".join(lines) + "\n"


def parse_trailers(message: str) -> dict[str, str]:
    """The `Gitcanary-*` trailers of a message, keyed without the prefix (last wins)."""
    found: dict[str, str] = {}
    # Trailers sit in the last paragraph; squash merges may concatenate several, so scan all.
    for line in message.splitlines():
        match = _TRAILER.match(line.strip())
        if match:
            found[match.group(1)[len(PREFIX) :]] = match.group(2).strip()
    return found

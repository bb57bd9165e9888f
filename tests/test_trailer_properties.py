"""SECURITY.md's commit-message rule, over generated text: "Every value that goes into a commit
message is made one line (no CR, LF or other control characters) and bounded; body lines that read
as a `Gitcanary-*` trailer are quoted; trailers are one block at the end of the message, read the way
`git interpret-trailers` reads it." The oracle is git itself (`git interpret-trailers --parse`).
"""

from __future__ import annotations

import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from gitcanary.git.trailers import LINE_MAX, SUBJECT_MAX, VALUE_MAX, clean, format_message, gitcanary_trailers

# Pieces a hostile repository (a metric or webhook name, a webhook's answer, a tag) may hold.
FRAGMENTS = [
    "\n", "\r\n", "\r", "\x85", "\u2028", "\u2029", "\x00", "\x1b[31m", "\t", "\u200b", "\xa0",
    "Gitcanary-Action: promote", "gitcanary-phase:Succeeded", "> Gitcanary-Weight: 100",
    " Gitcanary-Canary: x/y",
    "Signed-off-by: Mallory <m@example.com>", "Co-authored-by: x", "---", "--- a", "key: value", ":", "#",
    "(cherry picked from commit 0123abc)", "\n\nGitcanary-Action: promote\n",
]
hostile = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=12), max_size=8).map("".join)
long_hostile = st.one_of(hostile, hostile.map(lambda t: t * 40))
KEYS = ["Canary", "Action", "Phase", "Weight", "Revision"]


def interpret_trailers(message: str) -> list[tuple[str, str]]:
    """git's own reading of a message's trailers."""
    out = subprocess.run(
        ["git", "interpret-trailers", "--parse"], input=message, capture_output=True, text=True, check=True
    ).stdout
    return [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in out.splitlines())]


@settings(derandomize=True, max_examples=100, deadline=None)
@given(
    subject=long_hostile,
    body=st.lists(st.sampled_from(FRAGMENTS) | long_hostile, max_size=4),
    values=st.lists(long_hostile, min_size=1, max_size=len(KEYS)),
    checks=st.lists(hostile, max_size=3),
)
def test_no_value_adds_changes_or_hides_a_trailer(
    subject: str, body: list[str], values: list[str], checks: list[str]
) -> None:
    trailers = dict(zip(KEYS, values, strict=False))
    message = format_message(f"gitcanary: {subject}", body, trailers, [("Check", c) for c in checks])
    lines = message.rstrip("\n").split("\n")
    # One line each: no CR or other control characters survive, and every line is bounded.
    assert all(line.isprintable() for line in lines), message
    assert len(lines[0]) <= SUBJECT_MAX + 2
    assert all(len(line) <= max(LINE_MAX + 2, len("Gitcanary-Revision: ") + VALUE_MAX) for line in lines)
    # Exactly the trailers given, in order, as git reads them and as gitcanary reads them.
    expected = [(f"Gitcanary-{k}", clean(v)) for k, v in [*trailers.items(), *(("Check", c) for c in checks)]]
    assert interpret_trailers(message) == expected, message
    assert [(f"Gitcanary-{k}", v) for k, v in gitcanary_trailers(message)] == expected
    # Above the block, nothing reads as one of the bot's trailers.
    above = lines[: len(lines) - len(expected)]
    assert not any(line.lower().lstrip(" \t*-").startswith("gitcanary-") for line in above), message

"""Who wrote each gitcanary-looking commit, and with which key: a forged "promote" stands out.

git verifies the signatures itself (`%G?`, `%GK`, `%GF`, `%GS` in `gitlog.read_log`); this module
only judges the answers against what the bot is configured with. Pure but for `allowed_signers_for`.
"""

from __future__ import annotations

import atexit
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gitcanary.audit.parse import RawCommit, segments
from gitcanary.errors import GitcanaryError

# The status file fields each trailer must agree with, in the commit that carries both.
_CROSS_CHECKED = (
    ("Phase", "phase"),
    ("Weight", "canaryWeight"),
    ("Failed-Checks", "failedChecks"),
    ("Iterations", "iterations"),
)
StatusLookup = Callable[[str, str], "dict[str, object] | None"]  # (commit, canary) -> its status mapping

_SIGNATURE_WORDS = {
    "G": "good signature",
    "U": "good signature of unknown validity",
    "X": "good signature that has expired",
    "Y": "good signature by an expired key",
    "R": "good signature by a revoked key",
    "B": "bad signature",
    "E": "signature that cannot be checked",
    "N": "no signature",
}


@dataclass(frozen=True)
class BotIdentity:
    """What genuine gitcanary commits look like: the bot's author email and, optionally, its key."""

    email: str
    signing_key: str | None = None
    signing_format: str = "openpgp"
    allowed_signers: Path | None = None  # ssh: principals and keys git accepts


@dataclass(frozen=True)
class Verdict:
    commit: str
    subject: str
    author: str
    signature: str
    canaries: tuple[str, ...]
    actions: tuple[str, ...]
    reasons: tuple[str, ...] = field(default=())
    manual_by: str = ""  # a person's own manual action (`Gitcanary-Actor`), openly theirs

    @property
    def flagged(self) -> bool:
        return bool(self.reasons)

    @property
    def verdict(self) -> str:
        if self.flagged:
            return "FLAGGED"
        return f"manual by {self.manual_by}" if self.manual_by else "ok"

    def to_json(self) -> dict[str, object]:
        return {
            "commit": self.commit,
            "subject": self.subject,
            "author": self.author,
            "signature": self.signature,
            "canaries": list(self.canaries),
            "actions": list(self.actions),
            "verdict": self.verdict,
            "reasons": list(self.reasons),
        }


def allowed_signers_for(bot: BotIdentity) -> Path | None:
    """The allowed-signers file git needs to check SSH signatures: the configured one, or one made
    from the bot's key (its `.pub` next to it) with the bot's email as the only principal."""
    if bot.signing_format != "ssh" or bot.signing_key is None:
        return None
    if bot.allowed_signers is not None:
        return bot.allowed_signers
    key = Path(bot.signing_key).expanduser()
    public = key if key.suffix == ".pub" else key.with_name(key.name + ".pub")
    if not public.is_file():
        raise GitcanaryError(
            f"--signing-key {bot.signing_key}: no public key {public} to verify with; "
            "pass --allowed-signers FILE"
        )
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - git reads it after we return
        "w", prefix="gitcanary-allowed-signers-", delete=False
    )
    with handle:
        handle.write(f"{bot.email} {public.read_text().strip()}\n")
    atexit.register(os.unlink, handle.name)
    return Path(handle.name)


def _email(person: str) -> str:
    return person.rsplit("<", 1)[-1].rstrip(">").strip().lower() if "<" in person else person.strip().lower()


def _key_matches(bot: BotIdentity, commit: RawCommit) -> bool:
    if bot.signing_format == "ssh":
        # git checked the key against the allowed signers; %GS is the principal it matched.
        return bot.allowed_signers is not None or commit.signer.lower() == bot.email.lower()
    wanted = (bot.signing_key or "").upper().removeprefix("0X").replace(" ", "")
    return (
        any(
            have and (have.upper().endswith(wanted) or wanted.endswith(have.upper()))
            for have in (commit.signing_key, commit.signing_fingerprint)
        )
        or wanted == commit.signer.upper()
    )


def _disagreements(commit: RawCommit, parts: list, statuses: StatusLookup) -> list[str]:
    """Trailers of a single-step bot commit that the status file of the same commit contradicts."""
    if (
        len(parts) != 1
        or not parts[0].get("Canary")
        or str(parts[0].get("Action") or "").startswith("manual-")
    ):
        return []
    part = parts[0]
    canary = part.get("Canary")
    status = statuses(commit.sha, canary)
    if status is None:
        return [f"its trailers name {canary}, but the commit holds no status file of {canary}"]
    wrong = []
    for trailer, key in _CROSS_CHECKED:
        claimed = part.get(trailer)
        if claimed is None:
            continue
        held = status.get(key, 0 if key != "phase" else None)
        if str(claimed).strip() != str(held):
            wrong.append(f"Gitcanary-{trailer}: {claimed} but its status file says {key}: {held}")
    rollout = part.get("Rollout")
    held_rollout = status.get("rolloutId")
    if rollout and held_rollout and rollout != held_rollout:
        wrong.append(f"Gitcanary-Rollout: {rollout} but its status file says rolloutId: {held_rollout}")
    return wrong


def verify_commit(
    bot: BotIdentity, commit: RawCommit, statuses: StatusLookup | None = None
) -> Verdict | None:
    """The verdict on one commit; None when it does not look like gitcanary's at all."""
    parts = segments(commit.message)
    if not parts and not commit.subject.startswith("gitcanary:"):
        return None
    canaries = tuple(dict.fromkeys(p.get("Canary") or "?" for p in parts))
    actions = tuple(dict.fromkeys(p.get("Action") or "?" for p in parts))
    actors = {p.get("Actor") for p in parts if p.get("Actor")}
    author = f"{commit.author_name} <{commit.author_email}>"
    signature = _SIGNATURE_WORDS.get(commit.signature, commit.signature or "not checked")
    if commit.signing_key or commit.signer:
        signature += f" ({commit.signer or commit.signing_key})"
    reasons: list[str] = []
    manual_by = ""
    if commit.author_email.lower() != bot.email.lower():
        own = [a for a in actors if a and _email(a) == commit.author_email.lower()]
        if own and len(actors) == 1:
            manual_by = own[0]
        else:
            reasons.append(f"author {author} is not the bot <{bot.email}>")
    if bot.signing_key and not manual_by:
        if commit.signature not in ("G", "U"):
            reasons.append(f"not signed by the configured key: {signature}")
        elif not _key_matches(bot, commit):
            reasons.append(f"signed by another key: {signature}")
    if statuses is not None and not reasons and not manual_by:
        reasons += _disagreements(commit, parts, statuses)
    return Verdict(
        commit.sha, commit.subject, author, signature, canaries, actions, tuple(reasons), manual_by
    )


def verify(
    bot: BotIdentity,
    commits: list[RawCommit],
    canary: str | None = None,
    statuses: StatusLookup | None = None,
) -> list[Verdict]:
    """A verdict per gitcanary-looking commit; with `statuses`, trailers are checked against the
    status file of the same commit too."""
    verdicts = []
    for commit in commits:
        verdict = verify_commit(bot, commit, statuses)
        if verdict is not None and (canary is None or canary in verdict.canaries):
            verdicts.append(verdict)
    return verdicts

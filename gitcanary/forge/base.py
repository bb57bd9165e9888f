"""The forge interface: what gitcanary asks of GitHub (and later GitLab, Gitea) about pull requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gitcanary.errors import GitcanaryError


class ForgeError(GitcanaryError):
    """The forge refused or failed a request; the text never holds a credential."""


@dataclass(frozen=True)
class Review:
    """A reviewer's latest review: which commit it was of, and whether the forge lets them merge."""

    login: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED
    commit: str  # the head the review was given on; "" when the forge cannot say
    # Whether the reviewer may write to the repository, from the forge's permission API (asked
    # once per tick): GitHub `write` or `admin`; GitLab Developer access or more; Gitea `write`,
    # `admin` or `owner`, and the review `official` (counted by the branch protection).
    can_write: bool
    body: str = ""


@dataclass(frozen=True)
class Release:
    """A release of an image's source repository, as its forge shows it (untrusted text)."""

    repo: str  # owner/name on the same forge
    tag: str
    name: str
    body: str
    url: str  # the release's page


@dataclass(frozen=True)
class Comment:
    login: str
    body: str


@dataclass(frozen=True)
class PullRequest:
    number: int
    head: str  # branch name in the same repository
    base: str
    title: str
    body: str
    state: str  # "open" or "closed"
    merged: bool
    url: str  # the page a person opens
    head_sha: str = ""
    # None while the forge is still computing it; False on a conflict.
    mergeable: bool | None = None
    # GitHub's mergeable_state: clean, blocked (reviews or checks required), dirty, behind, unstable, unknown
    mergeable_state: str = "unknown"
    # Logins of the reviewers whose latest review approves (read for open PRs fetched in full).
    approvers: tuple[str, ...] = ()
    reviews: tuple[Review, ...] = ()  # each reviewer's latest review, oldest first
    labels: tuple[str, ...] = ()
    draft: bool = False
    # What the forge says about a merged PR: the commit its merge made, who opened and who merged it
    # (how a restarted gitcanary tells its own squash commits from a person's; read for PRs fetched in full).
    merge_sha: str = ""
    author: str = ""
    merged_by: str = ""
    # Who closed it unmerged, as the forge records it: GitHub's latest issue `closed` event,
    # GitLab's `closed_by`, Gitea's latest timeline `close` event (read for PRs fetched in full).
    closed_by: str = ""

    @property
    def approvals(self) -> int:
        return len(self.approvers)

    def counted(self, bot: str = "") -> tuple[Review, ...]:
        """The approvals that mean something: of the current head, by someone who may write."""
        return tuple(
            r
            for r in self.reviews
            if r.state == "APPROVED" and r.commit == self.head_sha and r.can_write and r.login != bot
        )

    def objections(self, bot: str = "") -> tuple[Review, ...]:
        """Standing change requests: each writer's latest vote, when it requests changes. It stands
        whatever the head (a push does not lift it); only that writer's later approval, or a
        dismissal on the forge (state DISMISSED), does. A comment is no vote and lifts nothing."""
        return tuple(
            r for r in self.reviews if r.state == "CHANGES_REQUESTED" and r.can_write and r.login != bot
        )

    @property
    def open(self) -> bool:
        return self.state == "open"

    @property
    def closed_unmerged(self) -> bool:
        return self.state == "closed" and not self.merged


@runtime_checkable
class KnowsItself(Protocol):
    """A forge that can say which account its token acts as (GitHub's `GET /user`)."""

    def login(self) -> str: ...


class Forge(Protocol):
    """One repository on a forge. Branches are pushed with git; the forge opens, merges and closes PRs."""

    @property
    def web_url(self) -> str:
        """The repository's page, for links to commits in PR bodies."""
        ...

    def find(self, head: str, state: str = "open") -> PullRequest | None:
        """The newest PR from branch `head` in `state` (open, closed or all)."""
        ...

    def list_open(self, prefix: str) -> list[PullRequest]:
        """Open PRs whose head branch starts with `prefix`."""
        ...

    def get(self, number: int) -> PullRequest: ...

    def open(self, head: str, base: str, title: str, body: str, draft: bool = False) -> PullRequest: ...

    def update_body(self, number: int, body: str) -> None: ...

    def set_draft(self, number: int, draft: bool) -> None:
        """Draft while nothing is there to approve; ready for review once the promotion commit is."""
        ...

    def request_reviewers(self, number: int, logins: list[str], teams: list[str]) -> None: ...

    def set_state_label(self, number: int, label: str, prefix: str) -> None:
        """Replace the PR's labels starting with `prefix` by `label`."""
        ...

    def comment(self, number: int, body: str) -> None: ...

    def comments(self, number: int) -> list[Comment]:
        """The PR's conversation comments, oldest first."""
        ...

    def merge(
        self, number: int, method: str, sha: str | None = None, message: str | None = None
    ) -> str | None:
        """Merge through the API; the merge commit, or None when the forge refuses (not mergeable yet).

        `message` replaces the forge's default message body: for `merge` the merge commit's body
        under its "Merge pull request #N" subject, for `squash` everything under the subject (the
        default list of the PR's commit messages). A `rebase` merge makes no commit of its own,
        so it has nowhere to put it and ignores it.
        """
        ...

    def update_branch(self, number: int, head_sha: str) -> bool:
        """Bring the PR's head up to date with its base on the forge (GitHub's update-branch: the
        base merged into the head); True when the forge took it. False when the forge refused
        (the head is no longer `head_sha`, or the merge conflicts) or cannot do it."""
        ...

    def close(self, number: int) -> None: ...

    def delete_branch(self, branch: str) -> None: ...

    def begin_tick(self) -> None:
        """Forget what is cached for one tick (who may write)."""
        ...

    def release(self, repo: str, tag: str) -> Release | None:
        """The release of `tag` in `repo` (owner/name on this forge); None when it has none."""
        ...

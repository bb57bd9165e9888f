"""What the three forge classes share: the sleep and clock they wait with, redaction, the
rate-limit back-off, the repository's web page, and who may write (asked once per tick).

Each forge keeps its own transport (PyGithub, python-gitlab, httpx) and its own reading of the
rate-limit headers; only the parts that were the same in all three live here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from gitcanary.forge.base import ForgeError
from gitcanary.forge.secrets import Redactor, read_secret

log = logging.getLogger("gitcanary.forge")


class ForgeClient:
    """The common state of one forge repository's client; `name` is the forge as messages say it."""

    name = "forge"

    def __init__(
        self,
        repo: str,
        web_url: str,
        *,
        max_rate_wait: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        shape: str = "repository {repo!r}: expected OWNER/NAME",
    ) -> None:
        if "/" not in repo:
            raise ForgeError(f"{self.name} " + shape.format(repo=repo))
        self.sleep, self.clock = sleep, clock
        self.redact = Redactor()
        self.max_rate_wait = max_rate_wait
        self._web_url = web_url
        self._slept_until = 0.0  # the injected sleep does not move the clock: remember how far it went
        self._writers: dict[str, bool] = {}

    @property
    def web_url(self) -> str:
        return self._web_url

    def update_branch(self, number: int, head_sha: str) -> bool:
        """No update-branch through this client: a step PR behind its base is closed and the step
        decided again from the current branch (see Publisher._drive_step)."""
        return False

    def commit_url(self, sha: str) -> str:
        """A commit's page on this forge (GitHub and Gitea: REPO/commit/SHA)."""
        return f"{self._web_url}/commit/{sha}"

    def token(self, value: str | None, file: Path | None) -> str:
        """The access token from the value or its file, registered for redaction; missing is an error."""
        token = read_secret(value, file, f"{self.name} token")
        if not token:
            raise ForgeError(f"{self.name} token missing: set GITCANARY_FORGE_TOKEN or --forge-token-file")
        self.redact.add(token)
        return token

    def _back_off(self, seconds: float, why: str) -> None:
        if seconds > self.max_rate_wait:
            raise ForgeError(
                f"{self.name} {why}; the window resets in {seconds:.0f}s: retrying on a later tick"
            )
        log.warning("%s %s: waiting %.0fs before the next request", self.name, why, seconds)
        self.sleep(seconds)
        self._slept_until = self.clock() + seconds

    def begin_tick(self) -> None:
        """Forget who may write: a permission granted or revoked shows from the next tick on."""
        self._writers.clear()

    def may_write(self, login: str, ask: Callable[[], bool]) -> bool:
        """Whether `login` may write to the repository, asked of the forge once per tick."""
        if login not in self._writers:
            self._writers[login] = ask()
        return self._writers[login]

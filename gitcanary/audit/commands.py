"""The `gitcanary history` and `gitcanary audit` commands (registered in `gitcanary.commands.cli`)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from gitcanary.errors import GitcanaryError

if TYPE_CHECKING:
    # Imported where the commands run: every other command of the CLI starts without them.
    from gitcanary.audit.gitlog import StatusReader
    from gitcanary.audit.model import Rollout
    from gitcanary.audit.parse import Problem, RawCommit
    from gitcanary.audit.verify import BotIdentity, Verdict

FORMATS = ("table", "json", "markdown", "html")  # what audit.report renders (its FORMATS)

console = Console(width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 240)

RepoOpt = Annotated[
    str,
    typer.Option(
        "--repo", help="Path (work tree or bare) or URL of the config repository.", envvar="GITCANARY_REPO"
    ),
]
BranchOpt = Annotated[
    str | None,
    typer.Option("--branch", help="Branch to read (by default HEAD of a path, the default branch of a URL)."),
]
OutputOpt = Annotated[
    str, typer.Option("-o", "--output", "--format", help="table, json, markdown or html (self-contained).")
]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="Only rollouts started in this window: 30d, 12h, 2w or a date.")
]
VerifyOpt = Annotated[
    bool,
    typer.Option(
        "--verify",
        help="Flag gitcanary-looking commits not by the bot or not signed by its key; exit 1 if any.",
    ),
]
BotEmailOpt = Annotated[
    str,
    typer.Option(
        "--bot-email", help="Author email of genuine gitcanary commits.", envvar="GITCANARY_AUTHOR_EMAIL"
    ),
]
KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--signing-key",
        help="The key gitcanary signs with: a GPG key id, or an SSH key file (its .pub is used).",
        envvar="GITCANARY_SIGNING_KEY",
    ),
]
FormatOpt = Annotated[
    str, typer.Option("--signing-format", help="openpgp, ssh or x509.", envvar="GITCANARY_SIGNING_FORMAT")
]
SignersOpt = Annotated[
    Path | None,
    typer.Option(
        "--allowed-signers", help="SSH allowed-signers file to verify with (instead of --signing-key's .pub)."
    ),
]


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(1)


def _load(
    repo: str,
    branch: str | None,
    check: bool,
    bot: BotIdentity,
    canary: str | None = None,
    since: datetime | None = None,
) -> tuple[list[RawCommit], list[Rollout], list[Problem], StatusReader]:
    from gitcanary.audit.gitlog import StatusReader, open_repo, read_log
    from gitcanary.audit.model import rollouts
    from gitcanary.audit.parse import parse_commits
    from gitcanary.audit.verify import allowed_signers_for

    # Progress on a terminal only (rich draws nothing when stderr is piped): a long history or a
    # clone of a URL takes seconds, and a silent command looks hung.
    with err.status(f"reading {repo}...", spinner="dots") as progress:
        handle, rev = open_repo(repo, branch)
        signers = allowed_signers_for(bot) if check else None
        signed = check and bot.signing_key is not None
        progress.update(f"reading the commits of {repo}...")
        if since is not None and canary is None and not check:
            from gitcanary.audit.window import read_window

            # Git walks the window and back to the start of the rollouts it keeps, not all history
            # (`--verify` still checks every commit: a forged one may sit anywhere).
            commits = read_window(handle, rev, since)
        else:
            commits = read_log(handle, rev, signatures=signed, allowed_signers=signers, canary=canary)
        progress.update(f"reading {len(commits)} gitcanary commits...")
        steps, problems = parse_commits(commits)
        return commits, rollouts(steps), problems, StatusReader(handle)


def _warn(problems: list[Problem]) -> None:
    for problem in problems:
        err.print(f"[yellow]skipped[/yellow] {problem}", highlight=False)


def _check_output(output: str) -> None:
    if output not in FORMATS:
        _fail(f"-o {output}: expected one of {', '.join(FORMATS)}")


def history(
    canary: Annotated[
        str | None,
        typer.Argument(
            help="The canary: NAMESPACE/NAME, NAME -n NAMESPACE, or a NAME only one namespace has (all "
            "canaries if left out)."
        ),
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("-n", "--namespace", help="The canary's namespace (as kubectl -n).")
    ] = None,
    repo: RepoOpt = ".",
    branch: BranchOpt = None,
    output: OutputOpt = "table",
    since: SinceOpt = None,
    check: VerifyOpt = False,
    bot_email: BotEmailOpt = "gitcanary@users.noreply.local",
    signing_key: KeyOpt = None,
    signing_format: FormatOpt = "openpgp",
    allowed_signers: SignersOpt = None,
) -> None:
    """Every rollout of a canary, newest first, from Git alone: revisions, times, outcome, weight, failed
    checks, who asked and approved, and the commits. Squash-merged and rebased steps count once."""
    from gitcanary.audit import report
    from gitcanary.audit.model import parse_since
    from gitcanary.audit.verify import BotIdentity, verify

    _check_output(output)
    from gitcanary.spec import canary_ref

    ref = None
    if canary is not None:
        try:
            ref = canary_ref.parse(canary, namespace)
        except canary_ref.CanaryRefError as exc:
            _fail(str(exc))
            return
    if canary is None and not check:
        _fail("name a canary (NAMESPACE/NAME), or pass --verify to check every gitcanary commit")
    bot = BotIdentity(bot_email, signing_key, signing_format, allowed_signers)
    try:
        start = parse_since(since, datetime.now(UTC)) if since else None
        commits, found, problems, statuses = _load(repo, branch, check, bot, ref.key if ref else None)
        if ref is not None:
            # A bare NAME: the one namespace whose canary of that name has gitcanary commits.
            from gitcanary.git.trailers import parse_trailers

            named = {parse_trailers(c.message).get("Canary", "") for c in commits} | {r.canary for r in found}
            canary = ref.key or canary_ref.resolve(ref, {key for key in named if "/" in key})
    except (GitcanaryError, ValueError) as exc:
        _fail(str(exc))
        return
    chosen = [
        r for r in found if (canary is None or r.canary == canary) and (start is None or r.started >= start)
    ]
    chosen.reverse()
    verdicts: list[Verdict] | None = verify(bot, commits, canary, statuses) if check else None
    if output == "json":
        print(report.history_json(canary, chosen, problems, verdicts))
    elif output == "markdown":
        print(report.history_markdown(canary, chosen, problems, verdicts), end="")
    elif output == "html":
        print(report.history_html(canary, chosen, problems, verdicts), end="")
    else:
        if canary is not None and not chosen:
            err.print(f"no rollouts of {canary} in {repo}", highlight=False)
        console.print(report.history_table(chosen, [], verdicts, console.width))
    if output != "table" or problems:
        _warn(problems)
    if verdicts and any(v.flagged for v in verdicts):
        flagged = sum(v.flagged for v in verdicts)
        err.print(f"[red]{flagged} gitcanary-looking commit(s) failed verification[/red]", highlight=False)
        raise typer.Exit(1)


def audit_command(
    repo: RepoOpt = ".",
    branch: BranchOpt = None,
    since: SinceOpt = None,
    output: OutputOpt = "table",
    check: VerifyOpt = False,
    bot_email: BotEmailOpt = "gitcanary@users.noreply.local",
    signing_key: KeyOpt = None,
    signing_format: FormatOpt = "openpgp",
    allowed_signers: SignersOpt = None,
) -> None:
    """Rollouts across all canaries: success rate, median time to promote, rollbacks and their reasons,
    rollouts still open. `-o html` writes a self-contained page with a chart of each rollout."""
    from gitcanary.audit import report
    from gitcanary.audit.model import audit, parse_since
    from gitcanary.audit.verify import BotIdentity, verify

    _check_output(output)
    bot = BotIdentity(bot_email, signing_key, signing_format, allowed_signers)
    try:
        start = parse_since(since, datetime.now(UTC)) if since else None
        commits, found, problems, statuses = _load(repo, branch, check, bot, since=start)
    except (GitcanaryError, ValueError) as exc:
        _fail(str(exc))
        return
    result = audit(found, problems, start)
    verdicts = verify(bot, commits, statuses=statuses) if check else None
    if output == "json":
        body = report.audit_json(result)
        if verdicts is not None:
            import json

            data = json.loads(body)
            data["verification"] = [v.to_json() for v in verdicts]
            body = json.dumps(data, indent=2)
        print(body)
    elif output == "markdown":
        print(report.audit_markdown(result), end="")
    elif output == "html":
        print(report.audit_html(result, verdicts), end="")
    else:
        console.print(report.audit_table(result))
        if verdicts is not None:
            console.print(report.verdict_table(verdicts))
    if output != "table":
        _warn(problems)
    if verdicts and any(v.flagged for v in verdicts):
        err.print("[red]some gitcanary-looking commits failed verification[/red]", highlight=False)
        raise typer.Exit(1)

"""The CLI commands of manual actions: `gitcanary promote|abort|pause|resume|retry NS/NAME` (or -n)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console

from gitcanary.errors import GitcanaryError
from gitcanary.spec.request import ManualAction

_HELP = {
    ManualAction.PROMOTE: "Skip the remaining analysis and promote the canary under analysis (next tick).",
    ManualAction.ABORT: "Roll the canary under analysis back now (next tick): traffic to the primary, "
    "old images written back.",
    ManualAction.PAUSE: "Suspend the canary (Flagger's spec.suspend: true): no step is taken until resume.",
    ManualAction.RESUME: "Resume a paused canary (removes spec.suspend).",
    ManualAction.RETRY: "Analyse the current revision again without a new bump, e.g. after a Failed rollout.",
}
_DETAIL = (
    "\n\nOne commit authored by you (git's user.name/user.email, or --actor) with a Gitcanary-Actor "
    "trailer, pushed to the config repository (fetch, retry, never forced). promote, abort and retry "
    "are requests in the canary's status file that `gitcanary run` honours on its next tick; pause and "
    "resume edit the Canary's spec.suspend."
)


def _command(action: ManualAction) -> Callable[..., None]:
    def command(
        canary: Annotated[
            str,
            typer.Argument(
                help="The canary: NAMESPACE/NAME (prod/backend), NAME -n NAMESPACE, or a NAME only one "
                "namespace has."
            ),
        ],
        namespace: Annotated[
            str | None, typer.Option("-n", "--namespace", help="The canary's namespace (as kubectl -n).")
        ] = None,
        repo: Annotated[
            str,
            typer.Option(
                "--repo",
                help="URL or path of the config repository; a local checkout means its origin remote.",
                envvar="GITCANARY_REPO",
            ),
        ] = ".",
        branch: Annotated[
            str, typer.Option("--branch", help="Branch the applier tracks.", envvar="GITCANARY_BRANCH")
        ] = "main",
        actor: Annotated[
            str | None,
            typer.Option(
                "--actor", help="Who acts, as 'Name <email>' (default: your git user.name and user.email)."
            ),
        ] = None,
    ) -> None:
        from gitcanary.commands.manual import perform
        from gitcanary.service.logs import redact

        out = Console(width=None if sys.stdout.isatty() else 240)
        try:
            result = perform(action, canary, repo, branch=branch, actor=actor, namespace=namespace)
        except GitcanaryError as exc:
            Console(stderr=True, width=None if sys.stderr.isatty() else 240).print(
                f"[red]error:[/red] {exc}", highlight=False
            )
            raise typer.Exit(1) from None
        out.print(f"{result.commit[:8]} {result.subject}", highlight=False)
        for note in result.notes:
            out.print(f"  {note}", highlight=False)
        if action.requested:
            out.print(
                f"pushed to {redact(result.url)}; gitcanary run does it on its next tick", highlight=False
            )
        else:
            out.print(f"pushed to {redact(result.url)}", highlight=False)

    command.__doc__ = _HELP[action] + _DETAIL
    return command


def register(app: typer.Typer) -> None:
    for action in ManualAction:
        app.command(name=action.value)(_command(action))

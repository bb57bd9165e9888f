"""`gitcanary` command line: run the reconciler, initialize canaries, show status, validate a repo."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from gitcanary import __version__
from gitcanary.commands.manual_cli import register as register_manual_commands
from gitcanary.errors import GitcanaryError
from gitcanary.git.trailers import parse_trailers
from gitcanary.service.http import HttpServer, Router, plain
from gitcanary.service.telemetry import mount_telemetry

if TYPE_CHECKING:
    from gitcanary.cluster import ClusterObserver
    from gitcanary.service.reconciler import Reconciler

app = typer.Typer(
    help="Progressive delivery for GitOps where Git is the only writer: canary releases driven by commits.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output (scripts, CI, tests) must not be cut at 80 columns the way a narrow terminal is.
console = Console(width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 240)

RepoOpt = Annotated[
    str, typer.Option("--repo", help="URL or path of the config repository.", envvar="GITCANARY_REPO")
]
ProviderOpt = Annotated[
    str | None,
    typer.Option(
        help="spec.provider for canaries that set none: istio, linkerd, smi:v1alpha2, gatewayapi:v1, "
        "nginx, kubernetes... (default: istio, as in Flagger). Give init, status and validate the same "
        "value as run.",
        envvar="GITCANARY_PROVIDER",
    ),
]


class JudgeName(StrEnum):
    THRESHOLD = "threshold"
    COMPARE = "compare"


BranchOpt = Annotated[
    str, typer.Option("--branch", help="Branch the applier (Flux, Fleet) tracks.", envvar="GITCANARY_BRANCH")
]
ClusterOpt = Annotated[
    str,
    typer.Option(
        "--cluster",
        help="Read the cluster (read-only) to know a commit is applied and its workloads ready: auto "
        "(in-cluster service account, else a kubeconfig if there is one), on (must), off (the --settle "
        "delay stands in: a guess).",
        envvar="GITCANARY_CLUSTER",
    ),
]
KubeconfigOpt = Annotated[
    str | None,
    typer.Option(
        "--kubeconfig",
        help="Kubeconfig file for --cluster (default: $KUBECONFIG, then ~/.kube/config).",
        envvar="GITCANARY_KUBECONFIG",
    ),
]


def _fail(exc: Exception) -> None:
    err.print(f"[red]error:[/red] {exc}", highlight=False)
    raise typer.Exit(1)


def _version(value: bool) -> None:
    if value:
        console.print(f"gitcanary {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """gitcanary reads Flagger Canary manifests in a Git repo and commits each step of their rollout."""


@app.command()
def run(
    repo: RepoOpt,
    branch: BranchOpt = "main",
    prometheus: Annotated[
        str,
        typer.Option(
            help="Prometheus for builtin metrics, and for templates whose "
            "address does not resolve from here.",
            envvar="GITCANARY_PROMETHEUS",
        ),
    ] = "http://127.0.0.1:9090",
    interval: Annotated[
        float, typer.Option(help="Seconds between polls of the repository.", envvar="GITCANARY_POLL_INTERVAL")
    ] = 10.0,
    settle: Annotated[
        float,
        typer.Option(
            help="Seconds a commit is given to be applied before the next "
            "step is measured, when there is no cluster access (see --cluster).",
            envvar="GITCANARY_SETTLE",
        ),
    ] = 10.0,
    workdir: Annotated[
        Path | None,
        typer.Option(
            help="Where gitcanary keeps its own clone [default: ~/.cache/gitcanary/<hash>].",
            envvar="GITCANARY_WORKDIR",
        ),
    ] = None,
    author_name: Annotated[str, typer.Option(envvar="GITCANARY_AUTHOR_NAME")] = "gitcanary",
    author_email: Annotated[
        str, typer.Option(envvar="GITCANARY_AUTHOR_EMAIL")
    ] = "gitcanary@users.noreply.local",
    signing_key: Annotated[
        str | None,
        typer.Option(
            help="Sign commits with this key: a GPG key id, or an SSH key file with --signing-format ssh.",
            envvar="GITCANARY_SIGNING_KEY",
        ),
    ] = None,
    signing_format: Annotated[
        str, typer.Option(help="openpgp, ssh or x509 (git's gpg.format).", envvar="GITCANARY_SIGNING_FORMAT")
    ] = "openpgp",
    listen: Annotated[
        str,
        typer.Option(
            help="HOST:PORT for the HTTP endpoints (health, metrics, push webhooks); port 0 picks a free "
            "one, an empty value serves nothing. Not served with --once.",
            envvar="GITCANARY_LISTEN",
        ),
    ] = "0.0.0.0:8080",
    once: Annotated[bool, typer.Option("--once", help="Do one tick and exit (scripts, tests, CI).")] = False,
    cluster: ClusterOpt = "auto",
    kubeconfig: KubeconfigOpt = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
    commit_url: Annotated[
        str | None,
        typer.Option(
            help="Link to a commit in notifications, {sha} replaced: "
            "https://github.com/acme/fleet/commit/{sha}.",
            envvar="GITCANARY_COMMIT_URL",
        ),
    ] = None,
    secrets_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where AlertProvider secretRefs are read: <dir>/<namespace>/<secret>/address "
            "(env GITCANARY_SECRET_<NAMESPACE>_<SECRET>_ADDRESS wins); default /etc/gitcanary/secrets.",
            envvar="GITCANARY_SECRETS_DIR",
        ),
    ] = None,
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format",
            help="json: one JSON object per line on stderr (time, level, message, canary, commit...); "
            "text: lines for people. With json, --once still prints its commits on stdout.",
            envvar="GITCANARY_LOG_FORMAT",
        ),
    ] = "json",
    write_mode: Annotated[
        str,
        typer.Option(
            help="direct (push to BRANCH) or pull-request (each step a PR gitcanary merges when mergeable); "
            "a canary's gitcanary.io/write-mode annotation wins.",
            envvar="GITCANARY_WRITE_MODE",
        ),
    ] = "direct",
    promotion_gate: Annotated[
        bool,
        typer.Option(
            help="One PR per rollout carrying the promotion: approving it promotes, closing it rolls back; "
            "a canary's gitcanary.io/promotion-gate annotation wins.",
            envvar="GITCANARY_PROMOTION_GATE",
        ),
    ] = False,
    merge_method: Annotated[
        str,
        typer.Option(
            help="How gitcanary merges its PRs: merge, squash or rebase.", envvar="GITCANARY_MERGE_METHOD"
        ),
    ] = "merge",
    github_repo: Annotated[
        str | None,
        typer.Option(
            help="OWNER/NAME of REPO on GitHub, for PRs and the gate.", envvar="GITCANARY_GITHUB_REPO"
        ),
    ] = None,
    github_api_url: Annotated[
        str,
        typer.Option(help="GitHub Enterprise: https://HOST/api/v3.", envvar="GITCANARY_GITHUB_API_URL"),
    ] = "https://api.github.com",
    github_token_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the GitHub token (or set GITCANARY_GITHUB_TOKEN; never a flag).",
            envvar="GITCANARY_GITHUB_TOKEN_FILE",
        ),
    ] = None,
    github_app_id: Annotated[str | None, typer.Option(envvar="GITCANARY_GITHUB_APP_ID")] = None,
    github_app_key_file: Annotated[
        Path | None,
        typer.Option(
            help="GitHub App private key (PEM), with --github-app-id and --github-installation-id.",
            envvar="GITCANARY_GITHUB_APP_KEY_FILE",
        ),
    ] = None,
    github_installation_id: Annotated[
        int | None, typer.Option(envvar="GITCANARY_GITHUB_INSTALLATION_ID")
    ] = None,
    webhook_secret_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the GitHub webhook secret (or set GITCANARY_WEBHOOK_SECRET); with one, "
            "POST /webhooks/github on --listen triggers a tick.",
            envvar="GITCANARY_WEBHOOK_SECRET_FILE",
        ),
    ] = None,
    provider: ProviderOpt = None,
    judge: Annotated[
        JudgeName,
        typer.Option(
            help="Judge of canaries without a gitcanary.io/judge annotation: threshold (each metric against "
            "its thresholdRange, as Flagger) or compare (canary against primary; see docs/judge.md).",
            envvar="GITCANARY_JUDGE",
        ),
    ] = JudgeName.THRESHOLD,
) -> None:
    """Watch REPO; on an image bump, drive the canary by commits: weights, halts, promotion or rollback."""
    from gitcanary.service import logs
    from gitcanary.service.instrumented import MonitoredReconciler
    from gitcanary.service.reconciler import TickResult
    from gitcanary.service.settings import Settings

    try:
        logs.configure(log_format, verbose)
    except ValueError as exc:
        _fail(exc)
    as_json = log_format == "json"
    log = logging.getLogger("gitcanary")
    settings = Settings(
        repo=repo,
        branch=branch,
        prometheus=prometheus,
        poll_interval=interval,
        settle=settle,
        workdir=workdir,
        author_name=author_name,
        author_email=author_email,
        signing_key=signing_key,
        signing_format=signing_format,
        cluster=cluster,
        kubeconfig=kubeconfig,
        commit_url=commit_url,
        secrets_dir=secrets_dir,
        write_mode=write_mode,
        promotion_gate=promotion_gate,
        merge_method=merge_method,
        github_repo=github_repo,
        github_api_url=github_api_url,
        github_token_file=github_token_file,
        github_app_id=github_app_id,
        github_app_key_file=github_app_key_file,
        github_installation_id=github_installation_id,
        webhook_secret_file=webhook_secret_file,
        provider=provider,
        judge=judge.value,
    )
    try:
        reconciler = MonitoredReconciler(settings)
    except GitcanaryError as exc:
        _fail(exc)
        return
    if reconciler.observer is None:
        log.warning("no cluster access: a commit counts as applied %gs after it (a guess)", settle)
    warned: set[str] = set()

    def show(result: TickResult) -> None:
        if as_json:
            log_result(result)
            if not once:
                return
            for sha in result.commits:  # a script's result: the commits, on stdout
                console.print(f"{sha[:8]} {_subject(reconciler, sha)}", highlight=False)
            return
        for report in result.reports.values():
            for warning in report.warnings:
                if warning not in warned:  # once per process, not every tick
                    warned.add(warning)
                    err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
        for source, message in result.errors.items():
            err.print(f"[red]halted[/red] {source}: {message}", highlight=False)
        for report in result.reports.values():
            if report.error:
                err.print(f"[red]halted[/red] {report.key}: {report.error}", highlight=False)
        for sha in result.commits:
            summary = reconciler.workspace.repo.commit(sha).summary
            subject = summary.decode() if isinstance(summary, bytes) else summary
            console.print(f"{sha[:8]} {subject}", highlight=False)

    def log_result(result: TickResult) -> None:
        """The tick's news as JSON log records, with the canary and commit as fields."""
        for report in result.reports.values():
            for warning in report.warnings:
                if warning not in warned:
                    warned.add(warning)
                    log.warning(warning, extra={"canary": report.key})
            if report.error:
                log.error("halted: %s", report.error, extra={"canary": report.key})
        for source, problem in result.errors.items():
            log.error("halted: %s", problem, extra={"file": source})
        for sha in result.commits:
            body = reconciler.workspace.repo.commit(sha).message
            text = body.decode() if isinstance(body, bytes) else body
            trailers = parse_trailers(text)
            fields = {
                "commit": sha,
                "canary": trailers.get("Canary", ""),
                "action": trailers.get("Action", ""),
            }
            log.info("pushed %s", text.splitlines()[0], extra=fields)

    try:
        from gitcanary.service.forge_setup import publisher_for

        reconciler.publisher = publisher_for(settings, reconciler.workspace)
        if once:
            result = reconciler.tick()
            show(result)
            if result.errors or any(r.error for r in result.reports.values()):
                raise typer.Exit(2)
            return
        server = _serve(listen, reconciler, as_json) if listen else None
        try:
            reconciler.run_forever(on_tick=show)
        finally:
            if server is not None:
                server.stop()
    except GitcanaryError as exc:
        _fail(exc)


def _subject(reconciler: Reconciler, sha: str) -> str:
    summary = reconciler.workspace.repo.commit(sha).summary
    return summary.decode() if isinstance(summary, bytes) else summary


def _serve(listen: str, reconciler: Reconciler, as_json: bool = False) -> HttpServer:
    """Start the HTTP endpoints of `run` (each concern mounts its path on the router)."""
    router = Router()
    router.mount("/healthz", plain("200 OK", "ok\n"))
    mount_telemetry(router, reconciler)
    from gitcanary.service import push_webhook
    from gitcanary.service.forge_setup import webhook_secret

    secret = webhook_secret(reconciler.settings)
    if secret:
        receiver = push_webhook.WebhookReceiver(secret, reconciler.wake, reconciler.settings.branch)
        router.mount(push_webhook.PATH, receiver)
    try:
        server = HttpServer(router, listen).start()
    except (OSError, ValueError) as exc:
        _fail(GitcanaryError(f"--listen {listen}: {exc}"))
        raise
    served = f"serving /healthz on {server.url} (and {', '.join(sorted(set(router.routes) - {'/healthz'}))})"
    if as_json:
        logging.getLogger("gitcanary").info(served, extra={"url": server.url})
    else:
        err.print(served, highlight=False)
    return server


@app.command()
def init(
    path: Annotated[str, typer.Argument(help="App directory (or canary file) inside the repository.")],
    repo: Annotated[Path, typer.Option("--repo", help="Local checkout to commit in.")] = Path("."),
    switch: Annotated[
        bool,
        typer.Option(
            "--switch",
            help="Also commit the routing switch and the target's scale-down now (an app that serves no "
            "traffic yet: nothing to wait for).",
        ),
    ] = False,
    provider: ProviderOpt = None,
) -> None:
    """Commit the generated primary and services for the canaries under PATH (then push it yourself).

    Routing switches to the primary, and the target scales to zero, in a second commit that
    `gitcanary run` makes once the primary has had time to become ready (or at once with --switch).
    An app dir with a fleet.yaml is a Fleet bundle: the generated dir gets its own fleet.yaml, and
    init says whether a GitRepo's spec.paths in the repository covers it.
    """
    from gitcanary.commands.operations import init as do_init

    try:
        results = do_init(repo, path, switch=switch, provider=provider)
    except GitcanaryError as exc:
        _fail(exc)
        return
    for result in results:
        if result.already:
            console.print(f"{result.key}: already initialized; nothing to do")
            continue
        console.print(f"{result.key}: committed {result.commit[:8] if result.commit else '-'}")
        for changed in result.changed:
            console.print(f"  wrote {changed}")
        if result.hook:
            console.print(f"  {result.hook}")
    if any(result.switched for result in results):
        console.print(
            "Push these commits: the primary, the services and the routing to it (100/0) are ready."
        )
    elif any(not result.already for result in results):
        console.print("Push this commit; `gitcanary run` routes traffic to the primary once it is applied.")


def _checkout(repo: str, branch: str) -> Path:
    """A local path to read: REPO itself when it is a work tree, else a fresh clone (URL or bare repo)."""
    candidate = Path(repo)
    bare = (candidate / "HEAD").is_file() and (candidate / "objects").is_dir()
    if candidate.is_dir() and not bare:
        return candidate
    from gitcanary.git.workspace import Workspace

    workspace = Workspace(repo, branch, Path(tempfile.mkdtemp(prefix="gitcanary-status-")) / "repo")
    workspace.sync()
    return workspace.root


def _observer(
    mode: str, kubeconfig: str | None, root: Path, repo: str, branch: str
) -> ClusterObserver | None:
    from git import Repo

    from gitcanary.cluster import ClusterObserver, api_client
    from gitcanary.cluster.revisions import Ancestry

    api = api_client(mode, kubeconfig)
    return ClusterObserver(api, branch, Ancestry(Repo(root)), repo) if api is not None else None


@app.command()
def status(
    repo: Annotated[
        str, typer.Option("--repo", help="URL or path of the config repository.", envvar="GITCANARY_REPO")
    ] = ".",
    branch: BranchOpt = "main",
    output: Annotated[str, typer.Option("-o", "--output", help="table or json")] = "table",
    settle: Annotated[float, typer.Option(envvar="GITCANARY_SETTLE")] = 10.0,
    cluster: ClusterOpt = "auto",
    kubeconfig: KubeconfigOpt = None,
    github_repo: Annotated[
        str | None,
        typer.Option(
            help="OWNER/NAME on GitHub: also show the PRs canaries wait on.", envvar="GITCANARY_GITHUB_REPO"
        ),
    ] = None,
    github_api_url: Annotated[
        str, typer.Option(envvar="GITCANARY_GITHUB_API_URL")
    ] = "https://api.github.com",
    github_token_file: Annotated[Path | None, typer.Option(envvar="GITCANARY_GITHUB_TOKEN_FILE")] = None,
    provider: ProviderOpt = None,
) -> None:
    """Every canary: phase, weight, failed checks, current -> new revision, and what it waits for
    (from the cluster with --cluster, else a guess from the settle delay, and it says so)."""
    from gitcanary.commands.operations import status as do_status

    try:
        root = _checkout(repo, branch)
        views = do_status(
            root,
            settle=settle,
            observer=_observer(cluster, kubeconfig, root, repo, branch),
            provider=provider,
        )
        if github_repo:
            from gitcanary.commands.pr_status import annotate
            from gitcanary.forge.github import GitHubConfig, GitHubForge

            token = os.environ.get("GITCANARY_GITHUB_TOKEN")
            config = GitHubConfig(github_repo, github_api_url, token=token, token_file=github_token_file)
            annotate(views, GitHubForge(config))
    except GitcanaryError as exc:
        _fail(exc)
        return
    if output == "json":
        print(json.dumps([v.to_json() for v in views], indent=2))
        return
    table = Table(box=None, header_style="bold")
    for column in (
        "NAMESPACE",
        "NAME",
        "STATUS",
        "WEIGHT",
        "FAILEDCHECKS",
        "REVISION",
        "LASTTRANSITIONTIME",
        "WAITING",
    ):
        table.add_column(column)
    for view in views:
        namespace, _, name = view.key.partition("/") if "/" in view.key else ("", "", view.key)
        revision = (
            f"{view.primary_revision} -> {view.canary_revision}"
            if view.canary_revision and view.canary_revision != view.primary_revision
            else view.primary_revision or view.target_revision
        )
        table.add_row(
            namespace,
            name,
            view.phase,
            str(view.weight),
            str(view.failed_checks),
            revision,
            view.last_transition,
            view.error or view.waiting,
        )
    console.print(table)


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="Checkout of the config repository.")] = Path("."),
    provider: ProviderOpt = None,
) -> None:
    """Check every Canary, MetricTemplate, target build and generated object; non-zero exit on errors."""
    from gitcanary.commands.operations import validate as do_validate

    if not path.is_dir():
        _fail(FileNotFoundError(f"{path}: no such directory"))
    errors, warnings = do_validate(path, provider=provider)
    for warning in warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    for problem in errors:
        err.print(f"[red]error:[/red] {problem}", highlight=False)
    if errors:
        raise typer.Exit(1)
    console.print("ok: every canary and generated object is valid")


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Where to leave the demo's config repo [default: a new temporary directory]."
        ),
    ] = None,
    speed: Annotated[float, typer.Option(help="Seconds per analysis interval in the demo.")] = 2.0,
    provider: Annotated[
        str,
        typer.Option(
            help="Which example to run: istio, gateway-api (HTTPRoute), linkerd (TrafficSplit) or nginx "
            "(canary Ingress)."
        ),
    ] = "istio",
) -> None:
    """A full rollout and a rollback on a local Git repo, against a SIMULATED cluster (about a minute)."""
    from gitcanary.demo import run_demo

    try:
        code = run_demo(directory, interval=speed, console=console, provider=provider)
    except GitcanaryError as exc:
        _fail(exc)
        return
    raise typer.Exit(code)


register_manual_commands(app)  # promote, abort, pause, resume, retry (gitcanary/commands/manual_cli.py)

# Rollout history and audits from Git alone; the bodies live in gitcanary.audit.commands.
from gitcanary.audit.commands import audit_command, history  # noqa: E402

app.command("history")(history)
app.command("audit")(audit_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

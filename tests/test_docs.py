"""The docs site builds without a warning, its reference pages say what the code says, and the
README stays short with every link resolving."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from gitcanary.commands.cli import app

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def test_reference_pages_match_the_code() -> None:
    result = _run(sys.executable, "scripts/gen_reference.py", "--check")
    assert result.returncode == 0, result.stderr


def test_a_stale_reference_page_is_caught(tmp_path: Path) -> None:
    """Copy the tree's docs and code, add an option to the copy's CLI: --check must fail."""
    shutil.copytree(ROOT / "gitcanary", tmp_path / "gitcanary")
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    cli = tmp_path / "gitcanary" / "commands" / "cli.py"
    text = cli.read_text().replace(
        '    provider: ProviderOpt = None,\n) -> None:\n    """Report every problem',
        '    provider: ProviderOpt = None,\n    extra: Annotated[bool, typer.Option(help="New.")] = False,\n'
        ') -> None:\n    """Report every problem',
    )
    assert "New." in text
    cli.write_text(text)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "scripts/gen_reference.py", "--check"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1 and "cli.md" in result.stderr


def test_every_annotation_and_trailer_in_the_code_is_in_the_reference() -> None:
    """Independent of the generator: grep the source for what it must have found."""
    source = "\n".join(p.read_text() for p in (ROOT / "gitcanary").rglob("*.py"))
    annotations = set(re.findall(r'"(gitcanary\.io/[a-z][a-z-]+)"', source))
    page = (ROOT / "docs" / "reference" / "annotations.md").read_text()
    assert annotations and all(f"`{name}`" in page for name in annotations)
    trailers = set(re.findall(r'"(?:Gitcanary-)?([A-Z][a-z]+(?:-[A-Z][a-z]+)?)": ', source))
    page = (ROOT / "docs" / "reference" / "trailers.md").read_text()
    written = {"Canary", "Action", "Rollout", "Phase", "Weight", "Failed-Checks", "Revision", "Time"}
    assert written <= trailers
    assert all(f"`Gitcanary-{name}`" in page for name in written | {"Check", "Actor", "Request", "Bumped-By"})


def test_every_option_of_every_command_is_described() -> None:
    root = typer.main.get_command(app)
    missing = []

    def walk(command: object, path: str) -> None:
        if hasattr(command, "list_commands"):
            ctx = command.context_class(command)  # type: ignore[attr-defined]
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), f"{path} {name}")  # type: ignore[attr-defined]
            return
        assert command.help, path  # type: ignore[attr-defined]
        for param in command.params:  # type: ignore[attr-defined]
            if not getattr(param, "help", None) and param.name != "help":
                missing.append(f"{path} {param.opts}")

    walk(root, "gitcanary")
    assert not missing


def test_help_has_no_placeholders_or_boxes() -> None:
    commands = ("run", "init", "status", "validate", "demo", "get", "get canaries", "dashboard", "history",
                "audit", "promote", "abort", "pause", "resume", "retry")
    for command in commands:
        result = _run(sys.executable, "-m", "gitcanary", *command.split(), "--help")
        assert result.returncode == 0, result.stderr
        assert not re.search(r"<(?:str|int|float|bool|path)>", result.stdout), result.stdout
        assert "╭" not in result.stdout, result.stdout
        assert "default:" in result.stdout or command in ("get", "audit"), result.stdout


@pytest.mark.timeout(300)
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    result = _run(sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").is_file()


def test_a_broken_docs_link_fails_the_build(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    (tmp_path / "docs" / "security.md").write_text("# Security\n\nSee [nowhere](nowhere.md).\n")
    result = _run(sys.executable, "-m", "mkdocs", "build", "--strict", cwd=tmp_path)
    assert result.returncode != 0 and "nowhere.md" in result.stderr


def test_readme_is_short_and_its_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) < 12 * 1024
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target
    # the two commands come first, and the test command is the script CI runs
    first = readme.index("```sh")
    assert "gitcanary demo" in readme[first : first + 200]
    assert "scripts/test.sh" in readme[: readme.index("## Support matrix")]


def _options(command_name: str) -> dict[str, object]:
    root = typer.main.get_command(app)
    ctx = root.context_class(root)  # type: ignore[attr-defined]
    command = root.get_command(ctx, command_name)  # type: ignore[attr-defined]
    return {opt: p for p in command.params for opt in p.opts}


def test_each_flag_of_the_run_table_is_set_by_the_variable_next_to_it() -> None:
    """docs/getting-started.md's table of `gitcanary run` flags: each flag can also be set through
    the environment variable in its row (`*` standing for the rest of the flag's name)."""
    options = _options("run")
    page = (ROOT / "docs" / "getting-started.md").read_text()
    rows = re.findall(r"^\| (`--[^|]+) \| `([A-Z_*]+)` \|", page, re.M)
    assert len(rows) >= 10
    for flags, variable in rows:
        for flag in re.findall(r"`(--[a-z-]+)`", flags):
            envvar = getattr(options[flag], "envvar", None)
            names = [envvar] if isinstance(envvar, str) else list(envvar or [])
            pattern = variable.replace("*", "[A-Z_]+")
            assert any(re.fullmatch(pattern, n) for n in names), (flag, variable, names)


def test_a_token_is_never_a_flag() -> None:
    """docs/reference/cli.md: the forge tokens come from a file or the environment, "never a flag":
    no option of any command takes a token itself (options naming a token file are the way)."""
    root = typer.main.get_command(app)
    found = []

    def walk(command: object, path: str) -> None:
        if hasattr(command, "list_commands"):
            ctx = command.context_class(command)  # type: ignore[attr-defined]
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), f"{path} {name}")  # type: ignore[attr-defined]
            return
        for param in command.params:  # type: ignore[attr-defined]
            found.extend(f"{path} {o}" for o in param.opts if "token" in o and not o.endswith("-file"))

    walk(root, "gitcanary")
    assert found == []
    help_text = "\n".join(str(getattr(p, "help", "")) for p in _options("run").values())
    assert "GITCANARY_GITHUB_TOKEN; never a flag" in help_text
    assert "GITCANARY_FORGE_TOKEN; never a flag" in help_text

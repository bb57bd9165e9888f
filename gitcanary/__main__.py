"""`python -m gitcanary`: the same CLI as the `gitcanary` command."""

from gitcanary.commands.cli import main

main()

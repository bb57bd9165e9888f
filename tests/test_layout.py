"""The package's shape: one folder per concern, layered, no import cycles, and a pure core.

Imports are read from the source with `ast` (runtime imports, function-level ones included;
`if TYPE_CHECKING:` blocks are left out because they never run). Each test also runs its check on
a small planted tree so that a checker that finds nothing cannot pass silently.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gitcanary"

# Lower layers first. A package may import its own layer's foundations and anything below it;
# packages in one layer do not import each other.
LAYERS: list[set[str]] = [
    {"errors", "duration", "redaction", "<root>"},
    {"spec"},
    {"core", "routers"},
    {"manifests", "git"},
    {"analysis", "hooks", "cluster", "audit"},
    {"forge"},
    {"service"},
    {"demo"},
    {"commands"},
    {"__main__"},
]

# What the pure core must never reach, directly or through another gitcanary module.
IO_MODULES = {"git", "httpx", "kubernetes", "github", "subprocess", "socket", "urllib3", "requests", "gitlab"}


def _modules(root: Path) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, known: Iterable[str]) -> tuple[set[str], set[str]]:
    """(gitcanary modules, external top-level modules) that `name` imports at run time."""
    known = set(known)
    inner: set[str] = set()
    outer: set[str] = set()
    is_package = path.name == "__init__.py"

    def resolve(module: str) -> str | None:
        while module and module not in known:
            module = module.rpartition(".")[0]
        return module or None

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
            ):
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            for alias in node.names:
                self._add(alias.name, [])

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            self._add(module, [alias.name for alias in node.names])

        def _add(self, module: str, names: list[str]) -> None:
            if module.split(".")[0] != PACKAGE.name:
                outer.add(module.split(".")[0])
                return
            # `from pkg import submodule` depends on the submodule, not on the package's own code.
            subs = [f"{module}.{n}" for n in names if f"{module}.{n}" in known]
            if len(subs) < len(names) or not names:
                target = resolve(module)
                if target and target != name:
                    inner.add(target)
            inner.update(s for s in subs if s != name)

    Visitor().visit(ast.parse(path.read_text()))
    return inner, outer


def _graph(root: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    modules = _modules(root)
    inner, outer = {}, {}
    for name, path in modules.items():
        inner[name], outer[name] = _imports(name, path, modules)
    return inner, outer


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def _layer_violations(graph: dict[str, set[str]]) -> list[str]:
    layer_of = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}
    wrong = []
    for module, deps in graph.items():
        mine = _package_of(module)
        for dep in deps:
            theirs = _package_of(dep)
            if theirs == mine:
                continue
            if mine not in layer_of or theirs not in layer_of:
                wrong.append(f"{module} -> {dep}: package not placed in a layer")
            elif layer_of[theirs] > layer_of[mine] or (
                layer_of[theirs] == layer_of[mine] and layer_of[mine] > 0
            ):
                wrong.append(f"{module} -> {dep}: {mine} may not import {theirs}")
    return sorted(wrong)


def _reach_io(inner: dict[str, set[str]], outer: dict[str, set[str]], prefix: str) -> list[str]:
    """Chains from a module under `prefix` to an I/O library, through gitcanary modules."""
    bad = []
    for start in sorted(m for m in inner if m == prefix or m.startswith(prefix + ".")):
        seen = {start}
        todo = [(start, [start])]
        while todo:
            module, chain = todo.pop()
            hit = outer.get(module, set()) & IO_MODULES
            if hit:
                bad.append(" -> ".join(chain) + f" -> {sorted(hit)}")
            for dep in inner.get(module, ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append((dep, [*chain, dep]))
    return bad


def test_no_import_cycles() -> None:
    inner, _ = _graph(PACKAGE)
    assert len(inner) > 80, "the walk found too few modules to mean anything"
    assert _cycles(inner) == []


def test_packages_import_only_lower_layers() -> None:
    inner, _ = _graph(PACKAGE)
    assert _layer_violations(inner) == []


def test_core_reaches_no_io_library() -> None:
    inner, outer = _graph(PACKAGE)
    assert "gitcanary.core.rollout" in inner
    assert _reach_io(inner, outer, "gitcanary.core") == []


def test_every_package_says_what_it_holds() -> None:
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"{init.parent.name}/__init__.py has no docstring"
    placed = {pkg for layer in LAYERS for pkg in layer}
    on_disk = {p.parent.name for p in PACKAGE.glob("*/__init__.py")} | {p.stem for p in PACKAGE.glob("*.py")}
    on_disk -= {"__init__", "__main__"}
    assert on_disk <= placed, f"not placed in a layer: {sorted(on_disk - placed)}"
    # Few modules at the top: foundations only, every concern in its own folder.
    foundations = {"__init__", "__main__", "errors", "duration", "redaction"}
    assert {p.stem for p in PACKAGE.glob("*.py")} <= foundations


def _plant(tmp: Path, files: dict[str, str]) -> Path:
    root = tmp / "gitcanary"
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for folder in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        (folder / "__init__.py").touch(exist_ok=True)
    return root


@pytest.fixture()
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _plant(
        tmp_path,
        {
            "core/rollout.py": "from gitcanary.core import helper\n",
            "core/helper.py": "def f():\n    from gitcanary.manifests import files\n",
            "manifests/files.py": "import subprocess\nfrom gitcanary.core import rollout\n",
            "spec/models.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import httpx\n",
        },
    )


def test_checks_catch_planted_faults(planted: Path) -> None:
    inner, outer = _graph(planted)
    # A cycle through a function-level import is found.
    assert ["gitcanary.core.helper", "gitcanary.core.rollout", "gitcanary.manifests.files"] in _cycles(inner)
    # The core reaching subprocess through manifests is found; a TYPE_CHECKING import is not an edge.
    chains = _reach_io(inner, outer, "gitcanary.core")
    assert any("subprocess" in c and "gitcanary.manifests.files" in c for c in chains)
    assert "httpx" not in outer["gitcanary.spec.models"]
    # core (layer 2) importing manifests (layer 3) is a layering fault.
    assert any("core may not import manifests" in v for v in _layer_violations(inner))

"""Imports flow one way: no import cycle among the project's modules, and no module reaches
into another's private (_underscored) names. Read from the source (ast), so a lazy import
inside a function counts as much as one at the top; nothing is imported to check."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bnviz", "dashboard", "views")


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name → file of every module of PACKAGES, and app.py."""
    mods = {"app": root / "app.py"}
    for pkg in PACKAGES:
        for p in sorted((root / pkg).rglob("*.py")):
            parts = p.relative_to(root).with_suffix("").parts
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return mods


def imported(name: str, path: Path, tree: ast.AST, mods: dict[str, Path]) -> list[tuple[str, str]]:
    """(module, name) for every import in the tree; name "" for `import module`. A relative
    import is resolved against the module's package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, "") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            out += [(base, a.name) for a in node.names]
    return out


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the project modules it imports (`from pkg import mod` names the module)."""
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps = set()
        for module, item in imported(name, path, ast.parse(path.read_text()), mods):
            if f"{module}.{item}" in mods:
                deps.add(f"{module}.{item}")
            elif module in mods:
                deps.add(module)
        graph[name] = deps - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle [a, b, …, a], or None (depth-first search, colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(u: str) -> list[str] | None:
        state[u] = 1
        path.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                return [*path[path.index(v) :], v]
            if v not in state and (cycle := visit(v)):
                return cycle
        path.pop()
        state[u] = 2
        return None

    for u in sorted(graph):
        if u not in state and (cycle := visit(u)):
            return cycle
    return None


def private_reaches(mods: dict[str, Path]) -> list[str]:
    """`from other import _name` and `other._name` for another project module `other`."""
    found = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        aliases = {}  # local name → project module, for attribute access
        for module, item in imported(name, path, tree, mods):
            target = f"{module}.{item}" if f"{module}.{item}" in mods else module
            if target not in mods or target == name:
                continue
            if item.startswith("_") and not item.startswith("__") and target == module:
                found.append(f"{name}: from {module} import {item}")
            aliases[item or module.rpartition(".")[2]] = target
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(f"{name}: {node.value.id}.{node.attr}")
    return found


def test_the_project_has_no_import_cycle() -> None:
    mods = project_modules()
    assert {"bnviz.train", "bnviz.stack", "dashboard.nav", "app"} <= set(mods)
    graph = import_graph(mods)
    assert "bnviz.stack" in graph["bnviz.train"]  # the graph sees relative imports
    assert "dashboard.nav" in graph["app"]  # and `from package import module`
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph) or [])


def test_no_module_reaches_into_another_modules_private_names() -> None:
    assert private_reaches(project_modules()) == []


def test_the_checks_find_a_cycle_and_a_private_reach(tmp_path: Path) -> None:
    """The control arm: a two-module cycle through a lazy import, and both kinds of reach."""
    pkg = tmp_path / "bnviz"
    pkg.mkdir()
    (tmp_path / "app.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import _hidden\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n    return a._x\n")
    mods = project_modules(tmp_path)
    assert find_cycle(import_graph(mods)) in (
        ["bnviz.a", "bnviz.b", "bnviz.a"],
        ["bnviz.b", "bnviz.a", "bnviz.b"],
    )
    assert sorted(private_reaches(mods)) == [
        "bnviz.a: from bnviz.b import _hidden",
        "bnviz.b: a._x",
    ]

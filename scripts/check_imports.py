#!/usr/bin/env python
"""The house's import rules, checked statically (run by .ci/run and the suite; exits 1 and lists what breaks them).

1. ``speech/`` is the bottom layer: it imports nothing of the platform but itself, and no Django.
2. ``training/ml/`` is plain PyTorch: of the platform it imports only ``speech/`` and itself, and no Django.
3. Arrows point down the house (demo -> apps -> core -> speech): ``core`` imports no app, no app imports
   ``demo``, and releases never import the leaderboard (a ready release says so with a signal), at any level.
4. No cycle among the platform's module-level imports. An import inside a function (a service enqueueing its
   task, a task calling back into its service) is how the code breaks a cycle on purpose, and is not counted.

    python scripts/check_imports.py [ROOT]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGES = ("config", "core", "contributors", "benchmark", "training", "frontend", "speech", "demo")
FRAMEWORKS = ("django", "rest_framework", "celery", "kombu")
# Who may import what of the platform (a module's dotted name prefix: the platform's prefixes it may import).
LAYERS = {
    "speech": ("speech",),
    "training.ml": ("speech", "training.ml"),
}

# Imports that point up the house, refused at module and function level alike (module prefix: refused prefixes).
UPWARD = {
    "core": ("contributors", "benchmark", "training", "frontend", "demo"),
    "contributors": ("demo",),
    "benchmark": ("demo",),
    "training": ("demo",),
    "frontend": ("demo",),
    "benchmark.releases": ("benchmark.leaderboard", "demo"),
}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, name: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import of ``path``; relative imports resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # ``from a import b``: module a.b when b is one, else a name in a (resolved by _owner).
                found.extend((f"{base}.{alias.name}", child.lineno, top) for alias in child.names)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                continue  # annotations only
            else:
                visit(child, top)

    visit(tree, True)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def check(root: Path) -> list[str]:
    modules = {
        module_name(root, path): path
        for package in PACKAGES
        for path in sorted((root / package).rglob("*.py"))
        if "migrations" not in path.parts
    }
    problems: list[str] = []
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        layer = next((prefix for prefix in sorted(LAYERS, key=len, reverse=True) if _within(name, prefix)), None)
        for target, line, top in imports(path, name):
            where = f"{path.relative_to(root)}:{line}"
            ours = target.split(".")[0] in PACKAGES
            if layer and target.split(".")[0] in FRAMEWORKS:
                problems.append(f"{where}: {layer} imports {target}")
            elif layer and ours and not any(_within(target, allowed) for allowed in LAYERS[layer]):
                problems.append(f"{where}: {layer} imports {target} (it may import {', '.join(LAYERS[layer])})")
            upward = next((prefix for prefix in sorted(UPWARD, key=len, reverse=True) if _within(name, prefix)), None)
            if upward and ours and any(_within(target, refused) for refused in UPWARD[upward]):
                problems.append(f"{where}: {upward} imports {target} (an arrow pointing up the house)")
            if ours and top:
                owner = _owner(target, modules)
                if owner and owner != name:
                    graph[name].add(owner)
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in _cycles(graph)]
    return problems


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _owner(target: str, modules: dict[str, Path]) -> str | None:
    """The module an import names (``a.b.c`` may be the name ``c`` in module ``a.b``)."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else Path(__file__).resolve().parents[1])
    problems = check(root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} import rule(s) broken (scripts/check_imports.py says which rules)", file=sys.stderr)
        return 1
    print("imports: speech/ and training/ml/ keep to their layers; no module-level import cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

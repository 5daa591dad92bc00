"""The layout's rules, read from the source: no two modules of the harness or the methods import each
other (directly or around a longer loop), and the harness imports no method's module (the registry
names its built-ins as strings and imports them only when asked)."""

import ast
import pathlib

from conftest import REPO

PACKAGES = ("benchmark", "methods")


def modules() -> dict[str, pathlib.Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: pathlib.Path, known: dict[str, pathlib.Path]) -> set[str]:
    """Every module of ours that `name` imports anywhere (top level, in functions, under TYPE_CHECKING)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            # `from pkg import module` imports the module; `from module import name` the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found |= {target for target in targets if target in known and target != name}
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_the_walk_sees_the_imports_it_checks():
    edges = graph()
    assert "benchmark.interface" in edges["benchmark"] and "benchmark.registry" in edges["benchmark.interface"]
    assert "benchmark.plan" in edges["benchmark.execution.executors"]


def test_no_two_modules_import_each_other():
    edges = graph()
    cycles = []
    for start in edges:  # depth-first search for a path back to `start`
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for target in edges[node]:
                if target == start:
                    cycles.append(" -> ".join([*path, start]))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, [*path, target]))
    assert not cycles, "\n".join(sorted(cycles))


def test_the_harness_imports_no_method():
    upward = [f"{name} -> {target}" for name, targets in graph().items() if name.startswith("benchmark")
              for target in targets if target.startswith("methods")]
    assert not upward, upward

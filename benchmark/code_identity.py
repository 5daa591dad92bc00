"""Which code a method runs, as one hash: the source file that defines it and every file it imports,
transitively, from the same tree (its plugin's folder, or the folder holding its package), read from
the import statements themselves. The harness (`benchmark/`, recorded by its git commit and dirty
state) and installed packages (recorded by their versions) are left out.

A finished cell records it; a later run whose method hashes differently does not take the old
result as finished (`runner`, `cli`)."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import pathlib
from typing import Any

HARNESS = pathlib.Path(__file__).resolve().parent


def method_code(cls: type) -> dict[str, Any]:
    """{"sha256": one hash of them all, "files": each file's path under the tree's root -> its sha256}."""
    start = pathlib.Path(inspect.getsourcefile(cls)).resolve()
    root = _root(cls.__module__, start)
    files: dict[pathlib.Path, str] = {}
    todo = [(cls.__module__, start)]
    while todo:
        module, path = todo.pop()
        if path in files:
            continue
        files[path] = module
        for imported in _imported_modules(module, path):
            origin = _origin(imported)
            if origin is not None and _inside(origin, root):
                todo.append((imported, origin))
    hashes = {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest() for path in files}
    hashes = dict(sorted(hashes.items()))
    return {"sha256": hashlib.sha256(repr(sorted(hashes.items())).encode()).hexdigest(), "files": hashes}


def changed_files(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The files edited, added or removed between two `method_code`s."""
    before, now = recorded["files"], current["files"]
    return sorted(name for name in {*before, *now} if before.get(name) != now.get(name))


def _root(module: str, path: pathlib.Path) -> pathlib.Path:
    """The folder imports are resolved against: the one holding the module's top-level package, or a
    plugin file's own folder."""
    return path.parents[module.count(".") + (1 if path.name == "__init__.py" else 0)]


def _imported_modules(module: str, path: pathlib.Path) -> list[str]:
    """Absolute names of what the file imports (relative imports resolved; `from a import b` gives a
    and a.b, since b may be a module); parents of dotted names too, whose __init__ runs first."""
    tree = ast.parse(path.read_bytes(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts):
                    continue
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            if base:
                names.append(base)
            names += [f"{base}.{alias.name}" if base else alias.name for alias in node.names if alias.name != "*"]
    found = []
    for name in names:
        parts = name.split(".")
        found += [".".join(parts[:k]) for k in range(1, len(parts) + 1)]
    return list(dict.fromkeys(found))


def _origin(module: str) -> pathlib.Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError, AttributeError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return pathlib.Path(spec.origin).resolve()


def _inside(path: pathlib.Path, root: pathlib.Path) -> bool:
    return (path.is_relative_to(root) and not path.is_relative_to(HARNESS)
            and not {"site-packages", "dist-packages"} & set(path.parts))

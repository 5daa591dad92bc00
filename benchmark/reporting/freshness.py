"""Whether a run folder's tables and plots are still those of what they are drawn from, so that running a
finished folder again does not redraw them: a fingerprint of the cells' results, the showcase images,
the plan, the table files, the plugins and the code of the harness and the methods."""

from __future__ import annotations

import hashlib
import json
import pathlib
from importlib import metadata
from typing import Any

from benchmark import suites
from benchmark.store import REPOSITORY, RunStore, atomic_write_json, now, read_json

#: Where the fingerprint of the last report is kept, with what it wrote.
STAMP = "report.json"
#: Packages whose versions change how tables and plots look.
DRAWING_PACKAGES = ("pandas", "matplotlib", "numpy")


def fingerprint(store: RunStore) -> str:
    digest = hashlib.sha256()

    def add(label: str, path: pathlib.Path, content: bool = True) -> None:
        digest.update(label.encode() + b"\0")
        try:
            if content:
                digest.update(hashlib.sha256(path.read_bytes()).digest())
            else:  # images: their size and time suffice, reading them all would cost what drawing does
                status = path.stat()
                digest.update(f"{status.st_size}:{status.st_mtime_ns}".encode())
        except OSError:
            digest.update(b"missing")

    for path in sorted(store.cells_dir.glob("*.json")):
        add(f"cell {path.name}", path)
    showcase = store.root / "showcase"
    for path in sorted(showcase.rglob("*")) if showcase.is_dir() else []:
        if path.is_file():
            add(f"showcase {path.relative_to(showcase)}", path, content=False)
    plan = store.read_plan() or {}  # what reports read of it: every run appends its time, which is not
    tables = {str(path) for path in suites.builtin().values()}
    plugins = set()
    for run in plan.get("runs", []):
        tables.update(run.get("tables", []))
        plugins.update(run.get("plugins", []))
    digest.update(json.dumps(sorted(cell["id"] for cell in plan.get("cells", []))).encode())
    for path in sorted(tables | plugins):
        add(f"file {path}", pathlib.Path(path))
    for folder in ("benchmark", "methods"):
        for path in sorted((REPOSITORY / folder).rglob("*.py")):
            add(f"code {path.relative_to(REPOSITORY)}", path)
    for package in DRAWING_PACKAGES:
        try:
            digest.update(f"{package} {metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            pass
    return digest.hexdigest()


def unchanged(store: RunStore, inputs: str) -> dict[str, Any] | None:
    """The stamp of the last report when it was drawn from these inputs and its files are all there."""
    path = store.root / STAMP
    try:
        stamp = read_json(path)
    except (OSError, ValueError):
        return None
    if stamp.get("inputs") != inputs:
        return None
    files = [store.root / name for name in stamp.get("files", [])]
    return stamp if all(file.is_file() for file in files) else None


def record(store: RunStore, inputs: str, headline: list[str], files: list[pathlib.Path]) -> None:
    atomic_write_json(store.root / STAMP, {
        "inputs": inputs, "time": now(), "headline": headline,
        "files": sorted(str(pathlib.Path(f).relative_to(store.root)) for f in files)})

"""Results on disk. Everything a run produces lives under its output folder:

    DIR/plan.json                 every cell run into DIR, and each run's command
    DIR/cells/<cell-id>.json      one result per cell (written atomically: temp file + rename)
    DIR/partial/<cell-id>/*.json  per-video state of an unfinished cell (resume, shards)
    DIR/partial/<cell-id>/shards/<k>-of-<n>.json   what each finished shard of a sharded cell reported
    DIR/showcase/<cell-id>/       a few frames of the first video: frame, ground truth, prediction (plots)
    DIR/jobs/                     logs of cells run as separate processes (local and slurm executors)
    DIR/jobs/tasks/<task>.json    the SLURM job ids of each submitted task (status, reattaching)
    DIR/tables/                   tables built by `report`
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import pathlib
import platform
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from importlib import metadata
from typing import Any

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
VERSIONED_PACKAGES = ("ovvss-benchmark", "torch", "torchvision", "numpy", "open_clip_torch", "timm",
                      "segment-anything", "pandas", "pillow")


class StoreError(OSError):
    """A file of the results that could not be written: the message names it and says what to do."""


def write_failure(error: OSError, path: pathlib.Path) -> StoreError:
    """`error` met writing `path`, as a StoreError whose message names the file and the fix."""
    reason = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = (f"the disk holding {path.parent} is full ({reason}): free space (or choose another --output) and "
               "run the same command again; finished cells are kept")
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = f"{reason}: make {path.parent} writable for you (or choose another --output)"
    elif error.errno == errno.ENOENT:
        fix = f"{reason}: its folder {path.parent} was removed while the run was writing to it"
    else:
        fix = reason
    return StoreError(error.errno, f"cannot write {path}: {fix}")


@contextlib.contextmanager
def writing(path: pathlib.Path) -> Iterator[None]:
    """Any OSError met inside names `path` and says what to do (a full disk, no permission)."""
    try:
        yield
    except StoreError:
        raise
    except OSError as error:
        raise write_failure(error, pathlib.Path(path)) from error


def atomic_write_json(path: pathlib.Path, data: Any) -> None:
    """Write `data` to `path` whole or not at all, readable as the umask allows (as a plain `open` would
    make it), so colleagues on a shared file system can read results."""
    def staged() -> tuple[int, str]:
        path.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)

    temporary = None
    with writing(path):
        try:
            try:
                descriptor, temporary = staged()
            except FileNotFoundError:  # an emptied parent (partial/) was removed meanwhile: make it again
                descriptor, temporary = staged()
            os.fchmod(descriptor, 0o666 & ~umask())  # mkstemp makes 0600 whatever the umask
            with os.fdopen(descriptor, "w") as handle:
                json.dump(data, handle, indent=1, allow_nan=False)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            if temporary is not None:
                pathlib.Path(temporary).unlink(missing_ok=True)
            raise


def umask() -> int:
    """This process's umask, read without changing it (os.umask would, for a moment, in every thread)."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def read_json(path: pathlib.Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); delete it to recompute what it held") from error


class RunStore:
    def __init__(self, root: pathlib.Path | str):
        self.root = pathlib.Path(root)
        self.cells_dir = self.root / "cells"
        self.jobs_dir = self.root / "jobs"
        self.tables_dir = self.root / "tables"
        self.plots_dir = self.root / "plots"

    def result_path(self, cell_id: str) -> pathlib.Path:
        return self.cells_dir / f"{cell_id}.json"

    def read_result(self, cell_id: str) -> dict[str, Any] | None:
        path = self.result_path(cell_id)
        return read_json(path) if path.is_file() else None

    def write_result(self, result: dict[str, Any]) -> pathlib.Path:
        """Write a cell's result; a failed or unfinished one never replaces a finished one (a second
        driver, or a job that died after another finished the cell, must not undo it)."""
        path = self.result_path(result["cell"]["id"])
        if result.get("status") != "done" and (self.read_result(result["cell"]["id"]) or {}).get("status") == "done":
            return path
        atomic_write_json(path, result)
        return path

    def results(self) -> list[dict[str, Any]]:
        return [read_json(p) for p in sorted(self.cells_dir.glob("*.json"))]

    def partial_dir(self, cell_id: str) -> pathlib.Path:
        return self.root / "partial" / cell_id

    def save_video_state(self, cell_id: str, video: str, state: dict[str, Any]) -> None:
        atomic_write_json(self.partial_dir(cell_id) / f"{video}.json", state)

    def saved_videos(self, cell_id: str) -> set[str]:
        """The videos whose state is saved (names only: nothing is read)."""
        folder = self.partial_dir(cell_id)
        return {p.stem for p in folder.glob("*.json")} if folder.is_dir() else set()

    def load_video_states(self, cell_id: str) -> dict[str, dict[str, Any]]:
        folder = self.partial_dir(cell_id)
        return {p.stem: read_json(p) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}

    def shard_path(self, cell_id: str, shard: int, shards: int) -> pathlib.Path:
        return self.partial_dir(cell_id) / "shards" / f"{shard}-of-{shards}.json"

    def save_shard(self, cell_id: str, shard: int, shards: int, summary: dict[str, Any]) -> None:
        atomic_write_json(self.shard_path(cell_id, shard, shards), summary)

    def read_shard(self, cell_id: str, shard: int, shards: int) -> dict[str, Any] | None:
        try:
            return read_json(self.shard_path(cell_id, shard, shards))
        except FileNotFoundError:  # not finished, or merged and cleared meanwhile
            return None

    def clear_shard(self, cell_id: str, shard: int, shards: int) -> None:
        self.shard_path(cell_id, shard, shards).unlink(missing_ok=True)

    def load_shards(self, cell_id: str, shards: int) -> list[dict[str, Any]]:
        """The saved summaries of the cell's `shards` shards, in shard order (missing ones left out)."""
        found = [self.read_shard(cell_id, k, shards) for k in range(shards)]
        return [summary for summary in found if summary is not None]

    def showcase_dir(self, cell_id: str) -> pathlib.Path:
        return self.root / "showcase" / cell_id

    def clear_partial(self, cell_id: str) -> None:
        """Remove a cell's saved videos, and `partial/` itself once no cell has any left there."""
        shutil.rmtree(self.partial_dir(cell_id), ignore_errors=True)
        try:
            self.partial_dir(cell_id).parent.rmdir()
        except OSError:  # another cell's videos are there, or it is gone already
            pass

    def add_to_plan(self, cells: list[dict[str, Any]], context: dict[str, Any]) -> None:
        """Record the cells of a run; earlier runs into the same folder keep theirs."""
        plan = self.read_plan() or {"cells": [], "runs": []}
        known = {cell["id"] for cell in plan["cells"]}
        plan["cells"] += [cell for cell in cells if cell["id"] not in known]
        plan["runs"].append({**context, "time": now(), "cells": [cell["id"] for cell in cells]})
        atomic_write_json(self.root / "plan.json", plan)

    def read_plan(self) -> dict[str, Any] | None:
        path = self.root / "plan.json"
        return read_json(path) if path.is_file() else None


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def git_state() -> dict[str, Any]:
    """The harness checkout's commit and whether it has uncommitted changes (None outside git)."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(REPOSITORY), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def slurm_job_id() -> str | None:
    """This process's SLURM job as squeue and sacct name it: ARRAYID_INDEX for an array task."""
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID')}"
    return os.environ.get("SLURM_JOB_ID")


def provenance(seed: int) -> dict[str, Any]:
    """Where and with what a result was computed; `end_time` is filled in when it finishes."""
    versions = {}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        **git_state(),
        "packages": versions,
        "python": platform.python_version(),
        "seed": seed,
        "host": socket.gethostname(),
        "slurm_job_id": slurm_job_id(),
        "slurm_array_task_id": os.environ.get("SLURM_ARRAY_TASK_ID"),
        "code": str(REPOSITORY),  # in a SLURM job: the snapshot made when the job was queued
        "start_time": now(),
        "end_time": None,
    }

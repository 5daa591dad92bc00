"""What was sent to SLURM, and what SLURM says about it.

A task is one unit of work sent as one job: a cell, one shard of a cell, or a training run. Each
task's record (`DIR/jobs/tasks/<task>.json`) lists every job that ran it, with its log paths, so
`status` and a later `run` find the jobs again without the driver that submitted them.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmark.store import atomic_write_json, now, read_json

#: States of a job that has not ended; anything else is final.
LIVE = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "COMPLETING", "RESIZING",
        "SUSPENDED", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"}
#: ENDED: gone from the queue of a cluster without accounting, so how it ended is unknown.
#: Final states that say nothing about the cell itself (the cluster took the job away): worth resubmitting.
RETRYABLE = {"CANCELLED", "NODE_FAIL", "PREEMPTED", "TIMEOUT", "BOOT_FAIL", "DEADLINE"}


@dataclass
class Task:
    id: str
    kind: str                       # "cell" or "train"
    payload: dict[str, Any]         # Cell.to_dict() or Training.to_dict()
    shard: int = 0
    shards: int = 1
    after: list[str] = field(default_factory=list)   # ids of tasks that must succeed first
    jobs: list[dict[str, Any]] = field(default_factory=list)   # every submission: job id, time, logs
    error: str | None = None        # why the task ended without its output, when it did

    @property
    def job_id(self) -> str | None:
        return self.jobs[-1]["job_id"] if self.jobs else None

    @property
    def cell_id(self) -> str | None:
        return self.payload["id"] if self.kind == "cell" else None

    def record(self, job_id: str, stdout: pathlib.Path, stderr: pathlib.Path) -> None:
        self.jobs.append({"job_id": job_id, "submitted": now(), "stdout": str(stdout), "stderr": str(stderr)})
        self.error = None


class TaskRecords:
    def __init__(self, jobs_dir: pathlib.Path):
        self.folder = pathlib.Path(jobs_dir) / "tasks"

    def path(self, task_id: str) -> pathlib.Path:
        return self.folder / f"{task_id}.json"

    def save(self, task: Task) -> None:
        atomic_write_json(self.path(task.id), asdict(task))

    def load(self, task_id: str) -> Task | None:
        path = self.path(task_id)
        return Task(**read_json(path)) if path.is_file() else None

    def all(self) -> list[Task]:
        return [Task(**read_json(p)) for p in sorted(self.folder.glob("*.json"))] if self.folder.is_dir() else []


def controllers() -> tuple[pathlib.Path, list[tuple[str, int]]]:
    """The SLURM controllers' addresses (SlurmctldHost, SlurmctldPort) from the slurm.conf that the
    commands read ($SLURM_CONF, else /etc/slurm/slurm.conf); none where there is no such file."""
    path = pathlib.Path(os.environ.get("SLURM_CONF") or "/etc/slurm/slurm.conf")
    hosts, port = [], 6817
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return path, []
    for line in lines:
        key, _, value = line.split("#")[0].strip().partition("=")
        key, value = key.strip().lower(), value.strip()
        if key in ("slurmctldhost", "controlmachine", "controladdr") and value:
            name, _, address = value.partition("(")
            hosts.append(address.rstrip(")") or name)
        elif key == "slurmctldport" and value:
            port = int(value.split("-")[0])
    return path, [(host, port) for host in hosts]


def unreachable(timeout_s: float = 1.0) -> str | None:
    """Why no SLURM controller can be reached from here, found at once (a refused or unanswered
    connection); None when one answers, or when this machine's slurm.conf does not say where they are."""
    path, addresses = controllers()
    for host, port in addresses:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return None
        except OSError:
            continue
    if not addresses:
        return None
    return f"no controller answers at {', '.join(f'{h}:{p}' for h, p in addresses)}, as {path} names them"


def job_states(job_ids: list[str]) -> dict[str, str]:
    """The state of each job (array tasks as ARRAYID_INDEX): from the queue while it is there, else from
    accounting. On a cluster without accounting, a job gone from the queue is reported as ENDED; with
    accounting, one that neither knows yet (just submitted) is left out."""
    ids = sorted({str(j) for j in job_ids if j})
    if not ids:
        return {}
    arrays = sorted({j.split("_")[0] for j in ids})
    states = _squeue(arrays)
    if any(j not in states for j in ids):
        accounted = _sacct(arrays)
        for j in ids:
            if j not in states:
                state = "ENDED" if accounted is None else accounted.get(j)
                if state:
                    states[j] = state
    return {j: states[j] for j in ids if j in states}


def _sacct(arrays: list[str]) -> dict[str, str] | None:
    if not shutil.which("sacct"):
        return None
    done = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", ",".join(arrays)],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:  # no accounting on this cluster
        return None
    return _parse(line.split("|") for line in done.stdout.splitlines() if "|" in line)


def _squeue(arrays: list[str]) -> dict[str, str]:
    # All of one's own jobs, filtered here: `squeue -j` fails outright when any id has left the queue.
    done = subprocess.run(["squeue", "-h", "-r", "--me", "-o", "%i|%T"], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"squeue failed ({done.stderr.strip()}); is SLURM reachable from this machine?")
    rows = (line.split("|") for line in done.stdout.splitlines() if line.split("_")[0].split("|")[0] in arrays)
    return _parse(rows)


def _parse(rows) -> dict[str, str]:
    """sacct/squeue rows -> {job id: STATE}; "123_[4-6%2]" (pending array tasks) expands to 123_4..123_6."""
    states = {}
    for job, state, *_ in rows:
        state = state.split()[0].rstrip("+")  # "CANCELLED by 0" -> CANCELLED
        base, _, index = job.partition("_")
        if index.startswith("["):
            for part in index.strip("[]").split("%")[0].split(","):
                first, _, last = part.partition("-")
                for i in range(int(first), int(last or first) + 1):
                    states[f"{base}_{i}"] = state
        else:
            states[job] = state
    return states


def log_tail(path: str | pathlib.Path | None, lines: int = 15) -> list[str]:
    if not path or not pathlib.Path(path).is_file():
        return []
    return pathlib.Path(path).read_text(errors="replace").splitlines()[-lines:]


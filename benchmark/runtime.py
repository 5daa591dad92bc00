"""Where a cell or a training run computes and how its random streams start: shared by both, so
neither imports the other."""

from __future__ import annotations

import math
import os
import pathlib
import random

import numpy as np


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("this machine has no CUDA device; use --device cpu or auto")
    return device


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def usable_cpus() -> tuple[int, str]:
    """How many CPUs this process may use, and what says so: the least of its CPU affinity, its cgroup's
    CPU quota (a container's --cpus) and SLURM's --cpus-per-task."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limits = [(affinity, "CPU affinity")]
    quota = _cgroup_cpus()
    if quota is not None:
        limits.append((quota, "cgroup CPU quota"))
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        limits.append((int(slurm), "SLURM_CPUS_PER_TASK"))
    return min(limits)


def _cgroup_cpus() -> int | None:
    """The cgroup's CPU quota in whole CPUs (rounded up), None without one (v2 cpu.max, else v1)."""
    try:
        quota, period = pathlib.Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota == "max":
            return None
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:
        quota = int(pathlib.Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(pathlib.Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return max(1, math.ceil(quota / period)) if quota > 0 else None
    except (OSError, ValueError):
        return None


def choose_wait_policy() -> str | None:
    """OpenMP's threads spin while they wait for work, which costs little on an idle machine and a great
    deal when another process holds a CPU they spin against (a sam-clip cell, one busy process beside it
    on 2 CPUs: 42 s spinning, 23 s passive; idle: 13 s and 18 s). So they wait passively when the load
    average says others are busy, unless the user chose (OMP_WAIT_POLICY, GOMP_SPINCOUNT). It must be set
    before torch is imported, and it changes speed only, never a number. Returns the policy set."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return None
    if _others_running() >= 0.5:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        return "PASSIVE"
    return None


def _others_running(samples: int = 25, interval: float = 0.008) -> float:
    """Other processes running now, on average over a few samples of the kernel's count of runnable
    tasks (/proc/loadavg; this one counts itself). Unlike the load average, a run that just ended adds
    nothing. 0 where the count cannot be read."""
    import time

    counts = []
    for _ in range(samples):
        try:
            running = pathlib.Path("/proc/loadavg").read_text().split()[3].partition("/")[0]
        except (OSError, IndexError):
            return 0.0
        counts.append(int(running) - 1)
        time.sleep(interval)
    return sum(counts) / len(counts)


def set_threads(sharing: int = 1) -> dict[str, object]:
    """torch's intra-op threads: OMP_NUM_THREADS when it is set, else the CPUs this process may use
    (torch's own default counts the machine's cores, however few of them the process may run on),
    divided among the `sharing` processes that run at once on them (`--executor local --workers W`).
    Returns the choice and its reason, for provenance."""
    import torch

    given = os.environ.get("OMP_NUM_THREADS", "")
    if given.isdigit() and int(given) > 0:
        threads, reason = int(given), "OMP_NUM_THREADS"
    else:
        cpus, reason = usable_cpus()
        threads = max(1, cpus // max(1, sharing))
        if sharing > 1:
            reason = f"{reason} ({cpus}) shared by {sharing} workers"
    torch.set_num_threads(threads)
    return {"threads": threads, "from": reason, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}

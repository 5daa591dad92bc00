"""Threads that fit the machine: torch's intra-op threads follow the CPUs this process may use, what the
user set, and how many workers share them; the choice is in every result's provenance."""

import json
import os

import pytest
import torch
from conftest import run_cli

from benchmark import runtime


@pytest.fixture(autouse=True)
def keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_slurm_cpus_per_task_limits_the_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime, "_cgroup_cpus", lambda: None)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    assert runtime.usable_cpus() == (64, "CPU affinity")
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "6")
    assert runtime.usable_cpus() == (6, "SLURM_CPUS_PER_TASK")
    monkeypatch.setattr(runtime, "_cgroup_cpus", lambda: 3)
    assert runtime.usable_cpus() == (3, "cgroup CPU quota")
    assert runtime.set_threads() == {"threads": 3, "from": "cgroup CPU quota",
                                     "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    assert torch.get_num_threads() == 3


def test_omp_num_threads_wins_and_workers_share_the_cpus(monkeypatch):
    monkeypatch.setattr(runtime, "usable_cpus", lambda: (8, "CPU affinity"))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert runtime.set_threads(sharing=3)["threads"] == 2 and torch.get_num_threads() == 2
    assert runtime.set_threads(sharing=3)["from"] == "CPU affinity (8) shared by 3 workers"
    assert runtime.set_threads(sharing=16)["threads"] == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert runtime.set_threads(sharing=3) == {"threads": 5, "from": "OMP_NUM_THREADS",
                                              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}


def test_a_cell_records_its_threads_and_local_workers_split_the_cpus(tmp_path):
    cpus, _ = runtime.usable_cpus()
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    run_cli("run", "--methods", "chance", "--datasets", "synthetic:unseen,synthetic:seen", "--executor", "local",
            "--workers", "2", "--output", tmp_path / "run", "--no-tracking", check=0, env=env)
    cells = [json.loads(p.read_text()) for p in (tmp_path / "run" / "cells").glob("*.json")]
    assert len(cells) == 2
    for cell in cells:
        threads = cell["provenance"]["threads"]
        assert threads["threads"] == max(1, cpus // 2), threads
        assert threads["from"].endswith("shared by 2 workers")

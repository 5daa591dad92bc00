"""Where cells run: `debug` (in this process, one after another), `local` (each cell in its own
process through submitit's local executor, a few at a time) or `slurm` (SLURM jobs, see
`benchmark.execution.slurm`). Cells pass nothing back but their result files, so the executors are
interchangeable. Training runs the cells need (`run --train`) go first.
"""

from __future__ import annotations

import logging
import pathlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmark.execution.lock import driver_lock
from benchmark.execution.profiles import ClusterProfile
from benchmark.execution.training import run_training
from benchmark.plan import Cell
from benchmark.progress import log_to_stderr
from benchmark.runner import RunContext, run_cell
from benchmark.store import RunStore, now

log = logging.getLogger(__name__)

EXECUTORS = ("debug", "local", "slurm")
POLL_SECONDS = 1.0


@dataclass
class SlurmOptions:
    profile: ClusterProfile
    shards: int = 1           # jobs per cell, splitting its videos
    wait: bool = True         # False: submit and return (results are collected by a later run)


def execute(cells: list[Cell], context: RunContext, executor: str = "debug", workers: int = 1,
            on_result: Callable[[dict[str, Any]], None] | None = None, trainings: list | None = None,
            slurm: SlurmOptions | None = None) -> list[dict[str, Any]] | None:
    """Run the trainings, then the cells; return the cells' results in order (None when the slurm
    executor was told not to wait)."""
    trainings = trainings or []
    if executor == "slurm":
        from benchmark.execution.slurm import execute_slurm

        slurm = slurm or SlurmOptions(ClusterProfile())
        return execute_slurm(cells, context, slurm.profile, trainings, slurm.shards, slurm.wait, on_result)
    for planned in trainings:  # here, one after another: each finishes before the cells that load it
        if not planned.finished:
            _train_here(planned, executor, RunStore(context.output))
    if executor == "debug":
        results = []
        for cell in cells:
            results.append(run_cell(cell.to_dict(), context))
            if on_result:
                on_result(results[-1])
        return results
    if executor == "local":
        return _execute_local(cells, context, workers, on_result)
    raise ValueError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")


def _execute_local(cells: list[Cell], context: RunContext, workers: int,
                   on_result: Callable[[dict[str, Any]], None] | None) -> list[dict[str, Any]]:
    store = RunStore(context.output)
    executor = _local_executor(store)
    waiting, running, results = list(cells), {}, {}
    try:
        while waiting or running:
            while waiting and len(running) < max(1, workers):
                cell = waiting.pop(0)
                running[cell.id] = (cell, executor.submit(_local_cell, cell.to_dict(), context))
                log.info("cell %s: started as local job %s", cell.id, running[cell.id][1].job_id)
            for cell_id, (cell, job) in list(running.items()):
                if job.done():
                    del running[cell_id]
                    results[cell_id] = _collect(job, cell, store)
                    if on_result:
                        on_result(results[cell_id])
            time.sleep(POLL_SECONDS if running else 0)
    finally:
        for cell, job in running.values():  # interrupted: leave no orphan processes
            job.cancel(check=False)
    return [results[cell.id] for cell in cells]


def _local_executor(store: RunStore):
    import submitit

    executor = submitit.AutoExecutor(folder=store.jobs_dir, cluster="local")
    # submitit's local executor kills jobs after 5 minutes unless told otherwise.
    executor.update_parameters(timeout_min=7 * 24 * 60)
    return executor


def _local_cell(cell_data: dict[str, Any], context: RunContext) -> dict[str, Any]:
    log_to_stderr()
    return run_cell(cell_data, context)


def _local_training(*args: Any) -> str:
    log_to_stderr()
    return run_training(*args)


def _train_here(planned, executor: str, store: RunStore) -> None:
    args = (planned.training.to_dict(), planned.context)
    # A `train` (or another run) training the same configuration into its folder goes first; then this
    # one finds its weights there.
    with driver_lock(pathlib.Path(planned.context.folder), wait=True, flag="training folder"):
        if executor == "debug":
            run_training(*args)
            return
        job = _local_executor(store).submit(_local_training, *args)
        log.info("training %s: started as local job %s", planned.training.id, job.job_id)
        job.result()


def _collect(job, cell: Cell, store: RunStore) -> dict[str, Any]:
    """The cell's result; a job that died before writing one gets a failed result naming its log."""
    try:
        return job.result()
    except Exception as error:
        stderr = job.paths.stderr
        tail = stderr.read_text(errors="replace").splitlines()[-15:] if stderr.is_file() else []
        result = store.read_result(cell.id) or {"cell": cell.to_dict()}
        result.update(status="failed", error={
            "message": f"job {job.job_id} died before finishing the cell ({type(error).__name__}: the process "
                       f"crashed, was killed or ran out of memory); its log: {stderr}",
            "log": str(stderr), "log_tail": tail})
        result.setdefault("provenance", {})["end_time"] = now()
        store.write_result(result)
        return result

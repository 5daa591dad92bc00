"""Where cells run: `debug` (in this process, one after another) or `local` (each cell in its own
process through submitit's local executor, a few at a time). Cells pass nothing back but their
result files, so the executors are interchangeable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from benchmark.plan import Cell
from benchmark.runner import RunContext, run_cell
from benchmark.store import RunStore, now

log = logging.getLogger(__name__)

EXECUTORS = ("debug", "local")
POLL_SECONDS = 1.0


def execute(cells: list[Cell], context: RunContext, executor: str = "debug", workers: int = 1,
            on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run the cells; return their results in the cells' order."""
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
    import submitit

    store = RunStore(context.output)
    executor = submitit.AutoExecutor(folder=store.jobs_dir, cluster="local")
    # submitit's local executor kills jobs after 5 minutes unless told otherwise.
    executor.update_parameters(timeout_min=7 * 24 * 60)
    waiting, running, results = list(cells), {}, {}
    try:
        while waiting or running:
            while waiting and len(running) < max(1, workers):
                cell = waiting.pop(0)
                running[cell.id] = (cell, executor.submit(run_cell, cell.to_dict(), context))
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

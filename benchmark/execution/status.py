"""`status DIR`: the state of every cell (and training run) of a run folder, from its files and, for
cells sent to SLURM, from the cluster: done, failed, running, pending, with the job id, and for a
failure its error, its log's path and the log's last lines."""

from __future__ import annotations

import pathlib
import subprocess
from dataclasses import dataclass, field

from benchmark.execution import jobs
from benchmark.execution.jobs import Task, TaskRecords
from benchmark.execution.training import TRAINED
from benchmark.store import RunStore


@dataclass
class Row:
    name: str
    state: str                        # done, failed, running, pending, started
    job: str = ""                     # the SLURM job(s) behind it, with their states
    detail: list[str] = field(default_factory=list)   # error, log path, log tail


def survey(folder: pathlib.Path) -> tuple[list[Row], str | None]:
    """Every training's and cell's row, and a note when the cluster could not be asked (the files still
    tell most)."""
    store = RunStore(folder)
    plan = store.read_plan()
    if plan is None:
        raise FileNotFoundError(f"{folder} has no plan.json; pass the --output folder of a run")
    tasks = TaskRecords(store.jobs_dir).all()
    states, note = {}, None
    if any(t.job_id for t in tasks):
        note = jobs.unreachable()
        try:
            states = {} if note else jobs.job_states([t.job_id for t in tasks])
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as error:
            note = str(error)
    if note:
        note = f"SLURM could not be asked ({note}): job states below come from the run folder's files only"
    found = [_training_row(t, states) for t in tasks if t.kind == "train"]
    by_cell: dict[str, list[Task]] = {}
    for task in tasks:
        if task.kind == "cell":
            by_cell.setdefault(task.cell_id, []).append(task)
    for cell in plan["cells"]:
        found.append(_cell_row(cell["id"], store, by_cell.get(cell["id"], []), states))
    return found, note


def _jobs_text(tasks: list[Task], states: dict[str, str]) -> str:
    return ", ".join(f"{t.job_id} {states.get(t.job_id, '?')}" for t in tasks if t.job_id)


def _live_state(tasks: list[Task], states: dict[str, str]) -> str | None:
    seen = {states.get(t.job_id) for t in tasks}
    if "RUNNING" in seen or "COMPLETING" in seen:
        return "running"
    if seen & jobs.LIVE:
        return "pending"
    return None


def _cell_row(cell_id: str, store: RunStore, tasks: list[Task], states: dict[str, str]) -> Row:
    result = store.read_result(cell_id)
    jobs_text = _jobs_text(tasks, states)
    if result is not None and result["status"] == "done":
        return Row(cell_id, "done", jobs_text)
    live = _live_state(tasks, states)
    if result is not None and result["status"] == "failed" and live is None:
        error = result.get("error", {})
        log = error.get("log") or next((t.jobs[-1]["stderr"] for t in tasks if t.jobs), None)
        return Row(cell_id, "failed", jobs_text, _failure_detail(error.get("message", ""), log))
    if live:
        saved = len(store.saved_videos(cell_id))
        return Row(cell_id, f"{live}" + (f" ({saved} videos saved)" if saved else ""), jobs_text)
    ended = [t for t in tasks if t.job_id and states.get(t.job_id) and states[t.job_id] not in jobs.LIVE]
    if ended and any(t.error for t in ended):
        task = next(t for t in ended if t.error)
        return Row(cell_id, "failed", jobs_text, _failure_detail(task.error, task.jobs[-1]["stderr"]))
    saved = len(store.saved_videos(cell_id))
    if ended:  # its job ended without a result and no driver has looked since
        task = ended[-1]
        message = (f"job {task.job_id} ended {states[task.job_id]} without a result; run the same `run` command "
                   f"again to resubmit it ({saved} videos saved are kept)")
        return Row(cell_id, "failed", jobs_text, _failure_detail(message, task.jobs[-1]["stderr"]))
    return Row(cell_id, f"started ({saved} videos saved)" if saved else "pending", jobs_text)


def _training_row(task: Task, states: dict[str, str]) -> Row:
    folder = pathlib.Path(task.payload["context"]["folder"])
    name = f"training {task.payload['training']['method']} -> {folder}"
    if (folder / TRAINED).is_file():
        return Row(name, "done", _jobs_text([task], states))
    live = _live_state([task], states)
    if live:
        return Row(name, live, _jobs_text([task], states))
    if task.error:
        return Row(name, "failed", _jobs_text([task], states), _failure_detail(task.error, task.jobs[-1]["stderr"]))
    return Row(name, "pending", _jobs_text([task], states))


def _failure_detail(message: str, log: str | None) -> list[str]:
    detail = [f"error: {message}"]
    if log:
        detail.append(f"log: {log}")
        detail += [f"| {line}" for line in jobs.log_tail(log, 10)]
    return detail


def format_rows(found: list[Row]) -> str:
    width = max([len(r.state) for r in found] + [5])
    lines = []
    for row in found:
        lines.append(f"{row.state:{width}s}  {row.name}" + (f"  [job {row.job}]" if row.job else ""))
        lines += [f"{'':{width}s}    {line}" for line in row.detail]
    counts: dict[str, int] = {}
    for row in found:
        key = row.state.split(" ")[0]
        counts[key] = counts.get(key, 0) + 1
    lines.append(", ".join(f"{n} {state}" for state, n in counts.items()))
    return "\n".join(lines)

"""The slurm executor: cells (and training runs) as SLURM jobs through submitit.

- Cells go out as job arrays, chunked to the profile's `max_array_size`; a cell split into shards
  is one task per shard, and the shard that finishes last merges the cell's result.
- Training runs go first; the cells that load their weights wait with `afterok` dependencies.
- A job that is preempted or runs out of time is requeued by submitit (`Checkpointable`) and resumes
  from what it saved; a job the cluster took away (cancelled, node failure) is resubmitted by the
  driver, up to `max_retries` times; a job that crashed is reported with its log's last lines.
- Every job's id and logs are recorded per task (`benchmark.execution.jobs`), so `--no-wait` can return at once
  and a later `run` or `status` picks the jobs up again.
- Jobs run a copy of the repository made at submission, so editing the checkout does not change them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import submitit

from benchmark.execution import jobs
from benchmark.execution.jobs import Task, TaskRecords
from benchmark.execution.profiles import ClusterProfile
from benchmark.execution.training import PlannedTraining, TrainContext, run_training
from benchmark.plan import Cell
from benchmark.progress import log_to_stderr
from benchmark.runner import RunContext, merge_shards, open_evaluation, run_cell
from benchmark.store import REPOSITORY, RunStore, now

log = logging.getLogger(__name__)


class CellJob(submitit.helpers.Checkpointable):
    """A cell, or one shard of it, in a job. On preemption or time-out submitit requeues this same call,
    and the runner resumes after the last video it saved."""

    def __call__(self, cell_data: dict[str, Any], context: RunContext, shard: int, shards: int) -> str:
        log_to_stderr()
        return run_cell(cell_data, context, shard, shards)["status"]


class TrainJob(submitit.helpers.Checkpointable):
    """A training run in a job; requeued, it resumes from the last checkpoint in its folder."""

    def __call__(self, training_data: dict[str, Any], context: TrainContext) -> str:
        log_to_stderr()
        return run_training(training_data, context)


class SlurmExecution:
    """One `run` with the slurm executor: plans tasks, submits them, and (optionally) sees them through."""

    def __init__(self, context: RunContext, profile: ClusterProfile):
        self.context = context
        self.profile = profile
        self.store = RunStore(context.output)
        self.records = TaskRecords(self.store.jobs_dir)
        self.cells: dict[str, Cell] = {}
        self.tasks: dict[str, Task] = {}
        self.cell_tasks: dict[str, list[Task]] = {}
        self.trainings: dict[str, PlannedTraining] = {}
        self._code: pathlib.Path | None = None      # the snapshot this driver submits from
        self._job_context: RunContext | None = None

    # planning ---------------------------------------------------------------------------------
    def plan(self, cells: list[Cell], trainings: list[PlannedTraining], shards: int) -> None:
        """The tasks that still have work: unfinished trainings, and unfinished cells (or shards)."""
        by_folder = {}
        for planned in trainings:
            self.trainings[planned.task_id] = planned
            by_folder[planned.context.folder] = planned.task_id
            if not planned.finished:
                self._add(Task(planned.task_id, "train", {"training": planned.training.to_dict(),
                                                          "context": dataclasses.asdict(planned.context)}))
        for cell in cells:
            self.cells[cell.id] = cell
            if self._cell_done(cell.id):
                continue
            after = [by_folder[cell.training]] if cell.training and by_folder[cell.training] in self.tasks else []
            count = min(shards, self._video_count(cell)) if shards > 1 else 1
            for shard in range(count):
                task_id = cell.id if count == 1 else f"{cell.id}__shard{shard}of{count}"
                summary = self.store.read_shard(cell.id, shard, count) if count > 1 else None
                if summary is None or summary["status"] != "done":
                    task = self._add(Task(task_id, "cell", cell.to_dict(), shard, count, after))
                    self.cell_tasks.setdefault(cell.id, []).append(task)

    def _add(self, task: Task) -> Task:
        recorded = self.records.load(task.id)
        if recorded is not None:  # keep the job history; the plan's dependencies are today's
            task.jobs, task.error = recorded.jobs, recorded.error
        self.tasks[task.id] = task
        return task

    def _video_count(self, cell: Cell) -> int:
        return len(open_evaluation(cell, self.context, {}).videos)

    def _cell_done(self, cell_id: str) -> bool:
        return (self.store.read_result(cell_id) or {}).get("status") == "done"

    # submission -------------------------------------------------------------------------------
    def submit_pending(self) -> tuple[list[Task], list[Task]]:
        """Submit every task without a live job; return (submitted, reattached)."""
        states = jobs.job_states([t.job_id for t in self.tasks.values()])
        reattached = [t for t in self.tasks.values() if states.get(t.job_id) in jobs.LIVE]
        todo = [t for t in self.tasks.values() if t not in reattached]
        self.submit(todo)
        return todo, reattached

    def submit(self, tasks: list[Task]) -> None:
        """Trainings first, then cells grouped by the training jobs they wait for; arrays of at most
        `max_array_size` tasks."""
        if not tasks:
            return
        for task in tasks:
            if task.kind == "train":
                task.error = None  # tried again: the cells that wait for it wait for the new job
        groups: dict[tuple[str, tuple[str, ...]], list[Task]] = {}
        for task in tasks:
            needs = tuple(sorted(t for t in task.after if not self.trainings[t].finished))
            blame = self._failed_dependency(task)
            if blame:  # its training failed for good in an earlier run: nothing to wait for
                self._fail(task, "NOT_SUBMITTED", blame)
                continue
            if task.kind == "cell":
                self._clear_stale(task)
            groups.setdefault((task.kind, needs), []).append(task)
        executor = submitit.AutoExecutor(folder=self.store.jobs_dir / "slurm", cluster="slurm",
                                         slurm_python=self.profile.python,
                                         slurm_max_num_timeout=self.profile.max_requeues)
        with submitit.helpers.clean_env(), self._inside_code():
            # trainings first, so the cells that wait for them can name their fresh job ids
            for (kind, needs), members in sorted(groups.items(), key=lambda item: item[0][0] != "train"):
                waits = [self.tasks[t].job_id for t in needs]
                sbatch = dict(self.profile.sbatch)
                if waits:
                    sbatch.update(dependency="afterok:" + ":".join(waits), **{"kill-on-invalid-dep": "yes"})
                executor.update_parameters(**self.profile.submitit_parameters(), name=f"ovvss-{kind}",
                                           slurm_additional_parameters=sbatch)
                for start in range(0, len(members), self.profile.max_array_size):
                    chunk = members[start:start + self.profile.max_array_size]
                    try:
                        with executor.batch():
                            submitted = [self._submit_one(executor, task) for task in chunk]
                    except submitit.core.utils.FailedJobError as error:  # sbatch said no
                        raise ValueError(
                            f"sbatch refused the {kind} jobs under cluster profile {self.profile.name!r}: "
                            f"{str(error).strip().splitlines()[-1]}; fix the profile or change a key with "
                            f"--slurm KEY=VALUE (the local cluster of slurm/local/ needs --cluster-profile local)"
                        ) from error
                    for task, job in zip(chunk, submitted):
                        task.record(job.job_id, job.paths.stdout, job.paths.stderr)
                        self.records.save(task)
                    log.info("submitted %d %s task(s) as job %s%s", len(chunk), kind,
                             submitted[0].job_id.split("_")[0], f" after {','.join(waits)}" if waits else "")

    def _submit_one(self, executor, task: Task):
        if task.kind == "train":
            context = TrainContext(**{**task.payload["context"], "plugins": self._job_context.plugins})
            return executor.submit(TrainJob(), task.payload["training"], context)
        return executor.submit(CellJob(), task.payload, self._job_context, task.shard, task.shards)

    def _clear_stale(self, task: Task) -> None:
        """A failed result or shard summary from an earlier attempt is replaced by this one's."""
        result = self.store.read_result(task.cell_id)
        if result is not None and result.get("status") == "failed":
            self.store.result_path(task.cell_id).unlink(missing_ok=True)
        if task.shards > 1:
            self.store.clear_shard(task.cell_id, task.shard, task.shards)

    @contextlib.contextmanager
    def _inside_code(self):
        """Submit from the snapshot (made once per driver), so jobs import the code as it was now."""
        if self._job_context is None:
            self._job_context = dataclasses.replace(self.context)
        if not self.profile.snapshot:
            yield
            return
        if self._code is None:
            self._code = self._snapshot()
        with contextlib.chdir(self._code):
            yield

    def _snapshot(self) -> pathlib.Path:
        code = self.store.jobs_dir / "code" / now().replace(":", "-")
        if not (REPOSITORY / ".git").exists():
            raise ValueError(f"the harness in {REPOSITORY} is not a git checkout, so jobs cannot run a snapshot of "
                             f"it; pass --slurm snapshot=false to run the installed code as it is when each job starts")
        # Files git does not track yet (a new module a method imports) are code too; submitit copies only
        # tracked ones, and the jobs would fail to import what the driver just ran.
        untracked = subprocess.run(["git", "ls-files", "--others", "--exclude-standard"], cwd=REPOSITORY,
                                   capture_output=True, text=True, check=True).stdout.splitlines()
        try:
            with submitit.helpers.RsyncSnapshot(code, root_dir=REPOSITORY, include=untracked):
                pass  # entering makes the copy; jobs are submitted from it later, in _inside_code
        except RuntimeError as error:  # rsync missing
            raise ValueError(f"{error} Install it (apt-get install rsync) or pass --slurm snapshot=false") from error
        plugins = []
        for plugin in self.context.plugins:  # plugin files are code too: freeze them beside the snapshot
            path = pathlib.Path(plugin)
            if path.is_file():
                copy = code / "_plugins" / str(len(plugins)) / path.name  # its own name: its code's identity
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, copy)
                plugin = str(copy)
            plugins.append(plugin)
        self._job_context = dataclasses.replace(self._job_context, plugins=plugins)
        log.info("jobs run the code as of now, copied to %s%s", code,
                 f" ({len(untracked)} files git does not track included)" if untracked else "")
        return code

    # waiting ----------------------------------------------------------------------------------
    def wait(self, on_result: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Follow the jobs until every task has ended: resubmit the ones the cluster took away, report
        the ones that died, and hand each cell's result to `on_result` as soon as it is complete."""
        active = {task_id for task_id, task in self.tasks.items() if not self._produced(task)}
        announced: set[str] = set()
        shown = None
        while True:
            self._announce(active, announced, on_result)
            if not active:
                return
            states = jobs.job_states([self.tasks[t].job_id for t in active])
            again = []
            for task_id in sorted(active, key=lambda t: self.tasks[t].kind != "train"):
                task = self.tasks[task_id]
                state = states.get(task.job_id)
                if self._produced(task):
                    active.discard(task_id)
                elif state is not None and state not in jobs.LIVE:
                    blame = self._failed_dependency(task)
                    if blame is None and state in jobs.RETRYABLE and len(task.jobs) <= self.profile.max_retries:
                        log.warning("task %s: job %s ended %s; resubmitting (retry %d of %d)", task_id, task.job_id,
                                    state, len(task.jobs), self.profile.max_retries)
                        again.append(task)
                    else:
                        self._fail(task, state, blame)
                        active.discard(task_id)
            self.submit(again)
            counts = summarize(states, [self.tasks[t] for t in active], len(self.tasks))
            if counts != shown:
                print(f"slurm: {counts}", flush=True)
                shown = counts
            time.sleep(self.profile.poll_s)

    def _produced(self, task: Task) -> bool:
        """Whether the task's output is on disk (what counts, whatever SLURM says)."""
        if task.kind == "train":
            return self.trainings[task.id].finished
        result = self.store.read_result(task.cell_id)
        if task.shards == 1:
            return result is not None and result.get("status") in ("done", "failed")
        return (result or {}).get("status") == "done" or self.store.read_shard(task.cell_id, task.shard,
                                                                                task.shards) is not None

    def _failed_dependency(self, task: Task) -> str | None:
        for name in task.after:
            needed = self.tasks[name]
            if needed.error and not self.trainings[name].finished:
                return f"the training it needs failed: {needed.error}"
        return None

    def _fail(self, task: Task, state: str, blame: str | None) -> None:
        job = task.jobs[-1] if task.jobs else {"job_id": None, "stderr": None}
        hint = {"TIMEOUT": " (raise timeout_min in the cluster profile)",
                "OUT_OF_MEMORY": " (raise mem_gb in the cluster profile)"}.get(state, "")
        message = blame or (f"job {job['job_id']} ended {state}{hint} before finishing "
                            f"{'training' if task.kind == 'train' else 'the cell'}"
                            f"{f' after {len(task.jobs)} attempts' if state in jobs.RETRYABLE else ''}; "
                            f"its log: {job['stderr']}")
        task.error = message
        self.records.save(task)
        log.error("task %s failed: %s", task.id, message)
        if task.kind == "cell":
            result = self.store.read_result(task.cell_id) or {"cell": task.payload, "provenance": {}}
            result.update(status="failed", error={"message": message, "job_id": job["job_id"], "state": state,
                                                  "log": job["stderr"], "log_tail": jobs.log_tail(job["stderr"])})
            result["provenance"].update(slurm_job_id=job["job_id"], end_time=now())
            self.store.write_result(result)

    def _announce(self, active: set[str], announced: set[str], on_result) -> None:
        """Report each cell whose tasks have all ended (merging shards the last one did not merge)."""
        for cell_id, cell in self.cells.items():
            own = self.cell_tasks.get(cell_id, [])
            if cell_id in announced or any(t.id in active for t in own):
                continue
            announced.add(cell_id)
            result = self.store.read_result(cell_id)
            shards = max([t.shards for t in own], default=1)
            if (result is None or result["status"] != "done") and shards > 1:
                result = merge_shards(cell.to_dict(), self.context, shards) or result
            if result is not None and on_result:
                on_result(result)


def summarize(states: dict[str, str], active: list[Task], total: int) -> str:
    running = sum(states.get(t.job_id) in ("RUNNING", "COMPLETING") for t in active)
    return f"{total - len(active)} of {total} tasks ended, {running} running, {len(active) - running} waiting"


def execute_slurm(cells: list[Cell], context: RunContext, profile: ClusterProfile, trainings: list[PlannedTraining],
                  shards: int = 1, wait: bool = True,
                  on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]] | None:
    """Submit what is unfinished (reattaching to live jobs); with `wait`, return every cell's result."""
    if shutil.which("sbatch") is None:
        raise ValueError("--executor slurm: no `sbatch` on this machine's PATH; run on a SLURM login node "
                         "(or start the one-node cluster of slurm/local/)")
    if os.environ.get("SLURM_JOB_ID"):
        log.info("submitting from inside SLURM job %s (its SLURM_* variables are hidden from the new jobs)",
                 os.environ["SLURM_JOB_ID"])
    execution = SlurmExecution(context, profile)
    execution.plan(cells, trainings, shards)
    submitted, reattached = execution.submit_pending()
    for task in reattached:
        print(f"reattached to job {task.job_id} ({task.id})", flush=True)
    if not wait:
        print(f"{len(submitted)} task(s) submitted, {len(reattached)} still queued or running; follow them with "
              f"`python -m benchmark status {context.output}` or run the same command again to wait for them",
              flush=True)
        return None
    try:
        execution.wait(on_result)
    except KeyboardInterrupt:
        print(f"the jobs go on running on the cluster; `python -m benchmark status {context.output}` shows them, "
              f"and the same command again waits for them", file=sys.stderr)
        raise
    return [execution.store.read_result(cell.id) for cell in cells]

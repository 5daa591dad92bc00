"""`run --dry-run`: the plan as text, before anything runs: every training and cell with what sets it
apart (options that differ from the method's defaults, data, seed, weights and where they come from),
whether the output folder has it finished already, what each SLURM job asks for, and how long each
would take by the speeds its method declares (`benchmark.speeds`), on the kind of device it will get."""

from __future__ import annotations

import pathlib
from typing import Any

from benchmark import registry, speeds
from benchmark.data import catalog
from benchmark.plan import Cell, Plan
from benchmark.speeds import Speed
from benchmark.store import RunStore


def describe(made: Plan, output: pathlib.Path, executor: str, slurm: Any = None, device: str = "auto") -> list[str]:
    store = RunStore(output)
    figures: dict[int, tuple[int, Speed]] = {}  # id -> (number, figure): those a time quotes, in order of use
    kind = _device_kind(executor, slurm, device)
    shards = slurm.shards if executor == "slurm" and slurm is not None else 1
    lines = [*made.notes, f"{len(made.trainings)} trainings, then {len(made.cells)} evaluation cells -> {output}",
             f"time estimates: for a {kind}, from the speeds each method declares (`list options NAME` shows "
             "its options; benchmark.speeds says how they are used)"]
    if made.trainings:
        lines.append("trainings (each waits for nothing; the cells that load its weights wait for it):")
    for planned in made.trainings:
        training = planned.training
        state = "finished: reused" if planned.finished else "to train (resumes from its folder's last checkpoint)"
        lines.append(f"  {training.method}{_changed(training.method, training.options)} on "
                     f"{training.dataset}:{training.setting}, seed {training.seed}: {state}\n"
                     f"    -> {planned.context.folder}\n"
                     f"    time: {_quoted(_training_time(training.method, training.options, kind), figures)}")
    lines.append("cells:")
    for cell in made.cells:
        done = (store.read_result(cell.id) or {}).get("status") == "done"
        lines.append(f"  {cell.method}{_changed(cell.method, cell.options)} on {cell.dataset}:{cell.setting} "
                     f"({cell.protocol}), seed {cell.seed}: {'finished' if done else 'to run'}\n"
                     f"    weights: {made.weights.get(cell.id, 'none needed')}\n"
                     f"    time: {_quoted(_cell_time(cell, kind, shards), figures)}")
    lines += _jobs(made.cells, len(made.trainings), executor, slurm)
    if figures:
        lines.append("measured speeds quoted above:")
        lines += [f"  [{n}] on a {s.device} ({s.machine}): {s.source}" for n, s in figures.values()]
    lines.append("where a time is unknown, measure it with one cell: `python -m benchmark run --methods NAME "
                 "--datasets SETTING` and read timing.frames_per_s in its result.json")
    here = f"{pathlib.Path.cwd()}/"
    return [line.replace(here, "") for line in lines]  # paths under the working folder, as the user types them


def _quoted(estimate: tuple[str, Speed | None], figures: dict[int, tuple[int, Speed]]) -> str:
    text, quoted = estimate
    if quoted is None:
        return text
    return f"{text} [{figures.setdefault(id(quoted), (len(figures) + 1, quoted))[0]}]"


def _device_kind(executor: str, slurm: Any, device: str) -> str:
    if executor == "slurm" and slurm is not None:
        return "gpu" if slurm.profile.gpus_per_node else "cpu"
    if device == "auto":
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    return "cpu" if device == "cpu" else "gpu"


def _cell_time(cell: Cell, kind: str, shards: int) -> str:
    size = catalog.reader(cell.dataset, cell.dataset_options).eval_size()
    return speeds.estimate(registry.get(cell.method).speeds, cell.options, kind, "seconds_per_frame",
                           size and size["annotated_frames"], "annotated frame", shards,
                           frame=size and tuple(size["frame"]))


def _training_time(method: str, options: dict[str, Any], kind: str) -> str:
    cls = registry.get(method)
    recipe = cls(**options).planned_training()
    return speeds.estimate(cls.speeds, {**options, **recipe}, kind, "seconds_per_iteration",
                           recipe.get("iterations"), "iteration")
def _changed(method: str, options: dict[str, Any]) -> str:
    """The options that differ from the method's defaults, as `[key=value, ...]` ('' when none)."""
    changed = registry.non_default_options(method, options)
    return f" [{', '.join(f'{k}={v}' for k, v in changed.items())}]" if changed else ""


def _jobs(cells: list[Cell], trainings: int, executor: str, slurm: Any) -> list[str]:
    if executor != "slurm" or slurm is None:
        return [f"executor {executor}: every cell {'in this process' if executor == 'debug' else 'in its own process'}"
                ", one after another unless --workers says otherwise"]
    profile = slurm.profile
    asks = (f"partition {profile.partition or '(the default)'}, {profile.gpus_per_node} GPU(s), {profile.cpus_per_task} "
            f"CPUs, {profile.mem_gb:g} GB, {profile.timeout_min} min per job")
    return [f"executor slurm, profile {profile.name}: {trainings} training jobs, then {len(cells) * slurm.shards} "
            f"cell jobs ({slurm.shards} per cell), as array jobs that wait for the trainings they load; each asks "
            f"for {asks}; a job that reaches its time limit is "
            f"requeued up to {profile.max_requeues} times, and one cancelled, preempted or lost resubmitted up to "
            f"{profile.max_retries} times, each resuming from its saved videos (a training: its last checkpoint)"]

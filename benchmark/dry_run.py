"""`run --dry-run`: the plan as text, before anything runs: every training and cell with what sets it
apart (options that differ from the method's defaults, data, seed, weights and where they come from),
whether the output folder has it finished already, and what each SLURM job asks for."""

from __future__ import annotations

import pathlib
from typing import Any

from benchmark import registry
from benchmark.plan import Cell, Plan
from benchmark.store import RunStore


def describe(made: Plan, output: pathlib.Path, executor: str, slurm: Any = None) -> list[str]:
    store = RunStore(output)
    lines = [f"{len(made.trainings)} trainings, then {len(made.cells)} evaluation cells -> {output}"]
    if made.trainings:
        lines.append("trainings (each waits for nothing; the cells that load its weights wait for it):")
    for planned in made.trainings:
        training = planned.training
        state = "finished: reused" if planned.finished else "to train (resumes from its folder's last checkpoint)"
        lines.append(f"  {training.method}{_changed(training.method, training.options)} on "
                     f"{training.dataset}:{training.setting}, seed {training.seed}: {state}\n"
                     f"    -> {planned.context.folder}")
    lines.append("cells:")
    for cell in made.cells:
        done = (store.read_result(cell.id) or {}).get("status") == "done"
        lines.append(f"  {cell.method}{_changed(cell.method, cell.options)} on {cell.dataset}:{cell.setting} "
                     f"({cell.protocol}), seed {cell.seed}: {'finished' if done else 'to run'}\n"
                     f"    weights: {made.weights.get(cell.id, 'none needed')}")
    lines += _jobs(made.cells, executor, slurm)
    lines.append("time per job: unknown (no method declares measured frames/s or s/iteration yet); time one cell "
                 "with `python -m benchmark run --methods NAME --datasets SETTING` and read its result's "
                 "timing.frames_per_s")
    return lines


def _changed(method: str, options: dict[str, Any]) -> str:
    """The options that differ from the method's defaults, as `[key=value, ...]` ('' when none)."""
    defaults = registry.get(method).default_options()
    changed = {key: value for key, value in options.items() if defaults.get(key, object()) != value}
    return f" [{', '.join(f'{k}={v}' for k, v in changed.items())}]" if changed else ""


def _jobs(cells: list[Cell], executor: str, slurm: Any) -> list[str]:
    if executor != "slurm" or slurm is None:
        return [f"executor {executor}: every cell {'in this process' if executor == 'debug' else 'in its own process'}"
                ", one after another unless --workers says otherwise"]
    profile = slurm.profile
    asks = (f"partition {profile.partition or '(the default)'}, {profile.gpus_per_node} GPUs, {profile.cpus_per_task} "
            f"CPUs, {profile.mem_gb:g} GB, {profile.timeout_min} min per job")
    return [f"executor slurm, profile {profile.name}: {len(cells) * slurm.shards} cell jobs "
            f"({slurm.shards} per cell) as array jobs; each asks for {asks}; a job cancelled, preempted or lost is "
            f"resubmitted up to {profile.max_retries} times, resuming from its saved videos"]

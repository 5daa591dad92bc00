"""One training run of a trainable method, as data: what `train` runs and what `run --train` queues
before the evaluation cells that load its weights.

A run's folder is named by a hash of its configuration, so `train` and `run --train` with the same
method, options and data share one folder: weights are trained once and reused, and an interrupted
run resumes from what its folder holds. A finished run records its checkpoint in `trained.json`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pathlib
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmark.code_identity import changed_files, method_code
from benchmark.store import atomic_write_json, now, read_json

log = logging.getLogger(__name__)

TRAIN_ROOT = pathlib.Path("results/train")
TRAINED = "trained.json"


@dataclass(frozen=True)
class Training:
    method: str
    options: dict[str, Any]                      # the method's, defaults resolved
    dataset: str
    setting: str = "seen"
    protocol: str = "intended"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    @property
    def id(self) -> str:
        digest = hashlib.sha1(json.dumps(asdict(self), sort_keys=True, default=str).encode()).hexdigest()[:10]
        return f"{self.method}__{self.dataset}-{self.setting}__{self.protocol}__{digest}"

    def folder(self, root: pathlib.Path = TRAIN_ROOT) -> pathlib.Path:
        return pathlib.Path(root).resolve() / self.id

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Training:
        return cls(**{k: v for k, v in data.items() if k != "id"})


@dataclass
class TrainContext:
    """What a training process needs besides the run itself."""

    folder: str
    plugins: list[str] = field(default_factory=list)
    data_root: str | None = None
    device: str = "auto"
    argv: list[str] = field(default_factory=list)


@dataclass
class PlannedTraining:
    """A training run that cells of a `run --train` wait for."""

    training: Training
    context: TrainContext

    @property
    def task_id(self) -> str:
        return f"train__{self.training.id}"

    @property
    def finished(self) -> bool:
        return (pathlib.Path(self.context.folder) / TRAINED).is_file()


def run_training(training_data: dict[str, Any], context: TrainContext) -> str:
    """Train (resuming from the folder's last checkpoint) and return the final checkpoint's path; a
    run whose folder already records a finished checkpoint returns it without training again."""
    from benchmark import registry
    from benchmark.data.training import open_training
    from benchmark.runtime import resolve_device, seed_everything, set_threads

    training = Training.from_dict(training_data)
    folder = pathlib.Path(context.folder)
    finished = folder / TRAINED
    if finished.is_file():
        return str(read_trained(folder))
    for plugin in context.plugins:
        registry.load_plugin(plugin)
    device = resolve_device(context.device)
    data_root = pathlib.Path(context.data_root) if context.data_root else None
    train_set = open_training(training.dataset, training.setting, training.protocol, data_root,
                              training.dataset_options)
    log.info("training %s on %s -> %s", training.method, train_set, folder)
    folder.mkdir(parents=True, exist_ok=True)
    code = method_code(registry.get(training.method))
    atomic_write_json(folder / "config.json", {**training.to_dict(), "argv": context.argv, "method_code": code,
                                               "threads": set_threads()})
    seed_everything(training.seed)
    method = registry.create(training.method, **training.options)
    method.setup(train_set.vocabulary, device)
    checkpoint = pathlib.Path(method.fit(train_set, train_set.vocabulary, folder)).resolve()
    atomic_write_json(finished, {"checkpoint": str(checkpoint), "finished": now(), "method_code": code,
                                 **method.training_summary()})
    return str(checkpoint)


def changed_code(folder: pathlib.Path, code: dict[str, Any]) -> list[str]:
    """The method's files that changed since the training run in `folder` started, or [] (also for a
    folder that records no code: nothing started yet, or a run from before the harness recorded it)."""
    config = folder / "config.json"
    recorded = read_json(config).get("method_code") if config.is_file() else None
    return [] if recorded is None or recorded["sha256"] == code["sha256"] else changed_files(recorded, code)


def read_trained(folder: pathlib.Path) -> pathlib.Path:
    """The checkpoint recorded by the finished training run in `folder`."""
    path = folder / TRAINED
    if not path.is_file():
        raise FileNotFoundError(f"training run {folder} has not finished (no {TRAINED}); run it with "
                                f"`python -m benchmark run --train ...` or `python -m benchmark train`")
    checkpoint = pathlib.Path(read_json(path)["checkpoint"])
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{path} names checkpoint {checkpoint}, which is gone; delete {path} to train again")
    return checkpoint

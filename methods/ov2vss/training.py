"""The authors' training recipe (facts.md section 2), shared by OV2VSS and the image-only baseline.

AdamW (lr 3e-6, betas 0.9/0.999, weight decay 0.01, everything but the backbone at 10x), a linear
warm-up over 1500 iterations then poly decay (power 0.9) to 100k iterations, gradients accumulated
over 4 iterations; training crops: random rescale 0.5-2x, 480x480 crop with at most 75% of one class,
horizontal flip, photometric distortion; only seen classes supervised, and held-out (unseen) pixels
blanked in the input (`mask_unseen_input`, as the paper's text says; the authors' code does not).
Every value is a field of `TrainConfig`.

An iteration is one sample, as mmcv's IterBasedRunner counts them in the authors' config: 100k
iterations with accumulation over 4 are 25k optimiser steps (`train`).

Samples are drawn from a generator seeded by (seed, iteration), so a resumed run draws exactly what
an uninterrupted one would; `last.pt` holds everything else (weights, optimiser, RNG).
"""

from __future__ import annotations

import contextlib
import csv
import logging
import pathlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark import options as typed_options
from benchmark.metrics import IGNORE
from benchmark.progress import Progress
from methods import checkpoints
from methods.ov2vss.backbones import IMAGENET_MEAN

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "ovvss-checkpoint-1"


@dataclass(frozen=True)
class Schedule:
    """What the training loop (`train`) reads, the authors' values by default; a method's recipe
    subclasses it with its data handling, and `check` adds that recipe's own limits."""

    iterations: int = 100_000
    lr: float = 3e-6
    head_lr_mult: float = 10.0
    weight_decay: float = 0.01
    warmup: int = 1500
    warmup_ratio: float = 1e-6
    power: float = 0.9
    accumulate: int = 4
    checkpoint_every: int = 1000
    log_every: int = 20

    @classmethod
    def from_options(cls, options: dict[str, Any]):
        """The recipe from method options: unknown keys refused, values coerced to each field's type."""
        defaults = asdict(cls())
        unknown = sorted(set(options) - set(defaults))
        if unknown:
            raise TypeError(f"unknown training options {unknown}; known: {sorted(defaults)}")
        config = cls(**{key: coerce(key, value, type(defaults[key])) for key, value in options.items()})
        config.check()
        return config

    def check(self) -> None:
        if self.iterations < 1 or self.accumulate < 1:
            raise ValueError(f"training options iterations={self.iterations}, accumulate={self.accumulate}: need "
                             "iterations >= 1, accumulate >= 1")
        # Training states are saved at optimiser steps, so checkpoint_every counts whole steps.
        if self.checkpoint_every < 1 or self.checkpoint_every % self.accumulate:
            raise ValueError(f"training options checkpoint_every={self.checkpoint_every}, accumulate={self.accumulate}: "
                             "checkpoint_every counts iterations and must be a multiple of accumulate (a state is "
                             "saved after an optimiser step)")


@dataclass(frozen=True)
class TrainConfig(Schedule):
    """The paper's recipe: the schedule, and how a training crop is made."""

    crop: int = 480
    scale_min: float = 0.5
    scale_max: float = 2.0
    cat_max_ratio: float = 0.75
    flip: bool = True
    photometric: bool = True
    mask_unseen_input: bool = True

    def check(self) -> None:
        super().check()
        if self.crop < 16:
            raise ValueError(f"training option crop={self.crop}: need crop >= 16")
        if not 0 < self.scale_min <= self.scale_max:
            raise ValueError(f"training scale range {self.scale_min}..{self.scale_max} is empty")


def coerce(key: str, value: Any, kind: type) -> Any:
    """Option values from the command line as the field's type ('1e-3' is a string to YAML), checked as
    every option is (`benchmark.options`)."""
    try:
        return kind(typed_options.check("training option", key, value, kind))
    except typed_options.OptionError:
        raise ValueError(f"training option {key}={value!r}: expected a {kind.__name__}") from None


def learning_rate_factor(iteration: int, config: Schedule) -> float:
    """mmseg's poly schedule with linear warm-up: the factor applied to each group's base rate."""
    poly = (1 - iteration / config.iterations) ** config.power
    if iteration < config.warmup:
        return poly * (1 - (1 - iteration / config.warmup) * (1 - config.warmup_ratio))
    return poly


def augment(image: torch.Tensor, target: np.ndarray, held_out: np.ndarray, config: TrainConfig,
            rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One training crop: uint8 [3, H, W] frame and its targets -> uint8 [3, S, S], int64 [S, S]."""
    images, targets = augment_clip([image], [target], [held_out], config, rng)
    return images[0], targets[0]


def augment_clip(images: list[torch.Tensor], targets: list[np.ndarray | None], held_out: list[np.ndarray | None],
                 config: TrainConfig, rng: np.random.Generator) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    """Training crops of a clip's frames (same size), all with the same scale, crop, flip and colour
    change, as the authors' clip pipeline does. The last frame is the target: the crop is chosen on
    its labels. Frames without labels (None) get no target and no blanking of held-out pixels.
    Returns uint8 [N, 3, S, S] and int64 [S, S] targets (or None)."""
    if targets[-1] is None:
        raise ValueError("the last frame of a training clip is its target and needs labels")
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    height, width = images[-1].shape[-2:]
    frames, labels = [], []
    for image, target, held in zip(images, targets, held_out):
        image = image.float()
        if config.mask_unseen_input and held is not None and held.any():
            image = torch.where(torch.from_numpy(held), mean, image)
        frames.append(image)
        labels.append(None if target is None else torch.from_numpy(target))
    scale = rng.uniform(config.scale_min, config.scale_max)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    frames = list(F.interpolate(torch.stack(frames), size=size, mode="bilinear", align_corners=False))
    labels = [None if t is None else F.interpolate(t[None, None].float(), size=size, mode="nearest")[0, 0].long()
              for t in labels]
    top, left = _crop_corner(labels[-1], config, rng)
    window = (slice(top, top + config.crop), slice(left, left + config.crop))
    frames = [f[:, window[0], window[1]] for f in frames]
    labels = [None if t is None else t[window] for t in labels]
    if config.flip and rng.random() < 0.5:
        frames = [f.flip(-1) for f in frames]
        labels = [None if t is None else t.flip(-1) for t in labels]
    if config.photometric:
        distort = photometric_distortion(rng)
        frames = [distort(f) for f in frames]
    pad = (0, config.crop - frames[0].shape[-1], 0, config.crop - frames[0].shape[-2])
    if any(pad):  # padding is the mean colour (zero after normalisation) and ignored in the loss
        frames = [F.pad(f - mean, pad) + mean for f in frames]
        labels = [None if t is None else F.pad(t, pad, value=IGNORE) for t in labels]
    return torch.stack(frames).round().clamp(0, 255).to(torch.uint8), labels


def _crop_corner(target: torch.Tensor, config: TrainConfig, rng: np.random.Generator) -> tuple[int, int]:
    """A random crop corner; up to 10 tries for one where no class covers more than cat_max_ratio
    of the labelled pixels (mmseg's RandomCrop)."""
    height, width = target.shape
    for _ in range(10):
        top = int(rng.integers(0, max(height - config.crop, 0) + 1))
        left = int(rng.integers(0, max(width - config.crop, 0) + 1))
        window = target[top: top + config.crop, left: left + config.crop]
        _, counts = torch.unique(window[window != IGNORE], return_counts=True)
        if config.cat_max_ratio >= 1 or len(counts) > 1 and counts.max() / counts.sum() < config.cat_max_ratio:
            break
    return top, left


def photometric_distortion(rng: np.random.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """mmseg's PhotoMetricDistortion (brightness, contrast, saturation and hue, each with probability
    0.5), drawn once: the returned function applies it to float 0-255 images."""
    from torchvision.transforms.v2 import functional as TF

    brightness = rng.uniform(-32, 32) if rng.random() < 0.5 else None
    contrast_first = rng.random() < 0.5
    contrast = rng.uniform(0.5, 1.5) if rng.random() < 0.5 else None
    saturation = rng.uniform(0.5, 1.5) if rng.random() < 0.5 else None
    hue = rng.uniform(-18, 18) / 360 if rng.random() < 0.5 else None

    def apply(image: torch.Tensor) -> torch.Tensor:
        if brightness is not None:
            image = image + brightness
        if contrast_first and contrast is not None:
            image = image * contrast
        image = image.clamp(0, 255) / 255
        if saturation is not None:
            image = TF.adjust_saturation(image, saturation)
        if hue is not None:
            image = TF.adjust_hue(image, hue)
        image = image * 255
        if not contrast_first and contrast is not None:
            image = image * contrast
        return image.clamp(0, 255)

    return apply


#: One iteration: iteration number -> the loss of one sample (one micro-batch).
LossFn = Callable[[int], torch.Tensor]


def optimizer_steps(iterations: int, accumulate: int) -> int:
    """Optimiser steps in `iterations` micro-batches: one every `accumulate`, and one more for a
    remainder at the end (mmcv's GradientCumulativeOptimizerHook)."""
    return -(-iterations // accumulate)


def schedule_record(config: Schedule) -> dict[str, Any]:
    """What a checkpoint and `trained.json` say about how much training it was."""
    return {"iterations": config.iterations, "accumulate": config.accumulate,
            "optimizer_steps": optimizer_steps(config.iterations, config.accumulate),
            "samples": config.iterations, "iteration": ITERATION_MEANS}


#: One iteration is one micro-batch of one sample, as mmcv's IterBasedRunner counts them.
ITERATION_MEANS = "micro-batch (mmcv IterBasedRunner): an optimiser step every `accumulate` iterations"


class RecordsSchedule:
    """For a trainable method whose `train_config` is a `Schedule`: `training_summary` (what
    `trained.json` records) says how much training it was."""

    train_config: Schedule

    def training_summary(self) -> dict[str, Any]:
        return {"schedule": schedule_record(self.train_config)}


def schedule_of(saved: dict[str, Any]) -> dict[str, Any]:
    """The schedule a checkpoint records; checkpoints written before iterations meant micro-batches
    counted optimiser steps, which is the same thing only without accumulation."""
    if "schedule" in saved:
        return saved["schedule"]
    steps = saved.get("iterations")
    accumulate = (saved.get("train_config") or {}).get("accumulate", 1)
    if steps is None:
        return {}
    return {"iterations": steps * accumulate, "accumulate": accumulate, "optimizer_steps": steps,
            "samples": steps * accumulate,
            "iteration": ITERATION_MEANS if accumulate == 1 else "optimiser step (written before iterations "
                                                                  "counted micro-batches)"}


def sample_rng(seed: int, iteration: int, accumulate: int) -> np.random.Generator:
    """The generator of iteration `iteration`'s sample, seeded by (seed, step, position in the step), so
    a resumed run draws what an uninterrupted one would (and, with accumulate 1, what it always drew)."""
    return np.random.default_rng([seed, iteration // accumulate, iteration % accumulate])


def parameter_groups(model: nn.Module, head_parameters: list[nn.Parameter], config: Schedule) -> list[dict[str, Any]]:
    """The backbone at `lr`, the head at `lr * head_lr_mult`, weight decay on everything."""
    head_ids = {id(p) for p in head_parameters}
    backbone = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    return [{"params": backbone, "lr": config.lr, "weight_decay": config.weight_decay},
            {"params": head_parameters, "lr": config.lr * config.head_lr_mult, "weight_decay": config.weight_decay}]


def train(model: nn.Module, groups: list[dict[str, Any]], loss_fn: LossFn, config: Schedule, run_dir: pathlib.Path,
          device: torch.device, write_final: Callable[[pathlib.Path], None], amp: bool = True) -> pathlib.Path:
    """Run `config.iterations` iterations of one sample each, stepping AdamW every `config.accumulate`
    of them, as mmcv's IterBasedRunner with GradientCumulativeOptimizerHook does: each loss is divided
    by `accumulate` (by the remainder's length in a last, shorter step), and the learning rate is set
    before every iteration from the iteration count, so a step uses the rate of its last iteration.
    Resumes from `run_dir/last.pt` (saved at step boundaries); `write_final(path)` writes the result."""
    run_dir.mkdir(parents=True, exist_ok=True)
    model.to(device).train()
    optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.999), weight_decay=config.weight_decay)
    base_rates = [group["lr"] for group in optimizer.param_groups]
    start = _resume(run_dir, model, optimizer, config)
    log_path = run_dir / "loss.csv"
    _truncate_log(log_path, start)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if amp and device.type == "cuda" else contextlib.nullcontext()
    progress = Progress(config.iterations - start, f"train {run_dir.name}", "it")
    whole = config.iterations - config.iterations % config.accumulate  # iterations in full-length steps
    started, window = time.perf_counter(), []
    optimizer.zero_grad(set_to_none=True)
    for iteration in range(start, config.iterations):
        factor = learning_rate_factor(iteration, config)
        for group, rate in zip(optimizer.param_groups, base_rates):
            group["lr"] = rate * factor
        with autocast:
            loss = loss_fn(iteration)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss is {loss.item()} at iteration {iteration}; lower lr "
                                     f"(now {config.lr}) or check the data; {run_dir / 'last.pt'} holds the "
                                     "last good state")
        (loss / (config.accumulate if iteration < whole else config.iterations - whole)).backward()
        window.append(loss.item())
        done = iteration + 1
        if done % config.accumulate == 0 or done == config.iterations:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if done % config.log_every == 0 or done == config.iterations:
            _append_log(log_path, done, float(np.mean(window)), optimizer.param_groups[0]["lr"],
                        time.perf_counter() - started)
            log.info("train %s: iteration %d/%d loss %.4f", run_dir.name, done, config.iterations, np.mean(window))
            window = []
        # After the log row: a kill between the two then resumes from the state before and logs the row
        # again, where the other order would resume past a row never written. (checkpoint_every is a
        # multiple of accumulate, so a state is saved right after an optimiser step.)
        if done % config.checkpoint_every == 0 or done == config.iterations:
            _save_state(run_dir, model, optimizer, done, config)
        progress.update(1)
    progress.close()
    final = run_dir / "final.pt"
    write_final(final)
    return final


def write_ovvss_checkpoint(model: nn.Module, meta: dict[str, Any], config, path: pathlib.Path) -> None:
    """This project's checkpoint format: the weights and `meta` (what built the model, on what data)."""
    checkpoints.save({"format": CHECKPOINT_FORMAT, **meta, "iterations": config.iterations,
                  "schedule": schedule_record(config), "train_config": asdict(config),
                  "model": model.state_dict()}, path)


def _resume(run_dir: pathlib.Path, model: nn.Module, optimizer, config: TrainConfig) -> int:
    path = run_dir / "last.pt"
    if not path.is_file():
        return 0
    state = load_checkpoint(path, "a training state written by `train`")
    if state.get("train_config") != asdict(config):
        changed = {k: (v, asdict(config)[k]) for k, v in state.get("train_config", {}).items() if asdict(config)[k] != v}
        raise ValueError(f"{path} was written with other training options {changed} (saved, now); resume with the "
                         "same options, or start afresh with --fresh")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    log.info("resuming %s from iteration %d", run_dir, state["iteration"])
    return int(state["iteration"])


def _save_state(run_dir: pathlib.Path, model: nn.Module, optimizer, iteration: int, config: TrainConfig) -> None:
    checkpoints.save({"format": CHECKPOINT_FORMAT, "iteration": iteration, "train_config": asdict(config),
                  "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                  "torch_rng": torch.get_rng_state()}, run_dir / "last.pt")


def load_checkpoint(path: pathlib.Path, expected: str) -> dict[str, Any]:
    """A checkpoint written by this module, with an error naming the path and what was expected."""
    state = checkpoints.read(path, expected)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"checkpoint {path} is not {expected} (format {found!r}, expected {CHECKPOINT_FORMAT!r})")
    return state


def _truncate_log(path: pathlib.Path, iteration: int) -> None:
    """Drop log rows past the resumed iteration, so the log reads like one uninterrupted run."""
    if not path.is_file():
        return
    with path.open() as handle:
        rows = [row for row in csv.DictReader(handle) if int(row["iteration"]) <= iteration]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["iteration", "loss", "lr", "seconds"])
        writer.writeheader()
        writer.writerows(rows)


def _append_log(path: pathlib.Path, iteration: int, loss: float, lr: float, seconds: float) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["iteration", "loss", "lr", "seconds"])
        writer.writerow([iteration, f"{loss:.6f}", f"{lr:.3e}", f"{seconds:.1f}"])


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CE of logits [B, C, h, w] upsampled to the target [B, H, W]; IGNORE pixels do not count."""
    logits = F.interpolate(logits.float(), size=target.shape[-2:], mode="bilinear", align_corners=False)
    if not (target != IGNORE).any():
        return logits.sum() * 0  # a crop with no labelled pixel: a zero loss that keeps the graph
    return F.cross_entropy(logits, target, ignore_index=IGNORE)


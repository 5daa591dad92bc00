"""Rebuild the shipped checkpoints of the miniature world from scratch:
`python -m methods.toy.regenerate [--only NAME,...] [--out DIR]`.

In order: the toy CLIP (contrastive pretraining on crops of all classes), the toy SAM (point
prompts), then each trained method on the synthetic world's seen classes with the toy CLIP frozen,
through the same training code as `python -m benchmark train`. Each is evaluated, and
`manifest.json` records its options, seconds, metrics and sha256. `--only` rebuilds some and copies
the rest from the shipped folder (`weights/toy/`), which is what the slow test does.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import pathlib
import platform
import shutil
import sys
import tempfile
import time
from typing import Any

import torch

from methods import checkpoints
from methods.toy import shipped

#: The small recipe every shipped trained method uses: the tiny ResNet, narrow heads, the toy CLIP,
#: and a short schedule at a rate a from-scratch backbone needs (the paper's 3e-6 fine-tunes a
#: pretrained one over 100k iterations). With 1500 iterations at 3e-4 OV2VSS stayed at the trained
#: baseline's unseen mIoU (31 against 30) and below it on degraded frames; 4000 at 6e-4 lifted it to 49.
TOY_RECIPE: dict[str, Any] = {
    "backbone": "resnet-tiny", "clip_model": "ovvss-toy-clip", "cost_channels": 32, "feature_channels": 32,
    "head_channels": 32, "iterations": 4000, "lr": 6e-4, "warmup": 200, "accumulate": 1, "crop": 64,
    "scale_min": 0.75, "scale_max": 1.5, "checkpoint_every": 1000, "log_every": 100,
}
#: The trained checkpoints that ship: artifact -> (method, the options that identify it). Each trains
#: with TOY_RECIPE. OV2VSS ships Table III's key-component ladder (its baseline is the trained
#: clip-cost-volume: OV2VSS with the video modules off); its other variants are a `benchmark train` away.
TRAINED: dict[str, tuple[str, dict[str, Any]]] = {
    "clip-cost-volume": ("clip-cost-volume", {"variant": "trained"}),
    "ov2vss": ("ov2vss", {"variant": "full"}),
    "ov2vss-rfe": ("ov2vss", {"variant": "rfe"}),
    "ov2vss-rfe-stcf": ("ov2vss", {"variant": "rfe-stcf"}),
}
ARTIFACTS = ("toy-clip", "toy-sam", *TRAINED)
#: The setting every trained method is scored on after training (what the manifest records).
EVALUATION = ("synthetic", "unseen")

log = logging.getLogger(__name__)


def file_of(artifact: str) -> str:
    return {"toy-clip": shipped.CLIP, "toy-sam": shipped.SAM}.get(artifact) or f"{artifact}.pt"


def trained_options(artifact: str) -> dict[str, Any]:
    """The options a trained artifact is built (and scored) with."""
    return {**TRAINED[artifact][1], **TOY_RECIPE}


def regenerate(out: pathlib.Path, only: list[str] | None = None, seed: int = 0) -> dict[str, Any]:
    """Build `only` (default: everything) into `out`, copying the others from the shipped folder, and
    write `out/manifest.json`; returns the manifest."""
    only = list(ARTIFACTS) if only is None else only
    unknown = sorted(set(only) - set(ARTIFACTS))
    if unknown:
        raise ValueError(f"unknown checkpoint(s) {unknown}; choose from {', '.join(ARTIFACTS)}")
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    source = shipped.folder().resolve()
    manifest = shipped.manifest()  # the entries of what --only leaves out (the same file when source is out)
    for artifact in ARTIFACTS:
        name = file_of(artifact)
        if artifact not in only and source != out:
            if not (source / name).is_file():
                raise FileNotFoundError(f"{source / name} is missing and --only leaves {artifact} out; "
                                        f"rebuild it too (--only {artifact},...)")
            shutil.copy2(source / name, out / name)
    builders = {"toy-clip": _build_clip, "toy-sam": _build_sam}
    with _shipped_folder(out):  # what the trained methods load (the toy CLIP) comes from `out`
        for artifact in ARTIFACTS:
            if artifact in only:
                manifest[file_of(artifact)] = _build(artifact, out / file_of(artifact), seed, builders)
                (out / shipped.MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


@contextlib.contextmanager
def _shipped_folder(folder: pathlib.Path):
    before = os.environ.get(shipped.FOLDER_ENV)
    os.environ[shipped.FOLDER_ENV] = str(folder)
    try:
        yield
    finally:
        if before is None:
            del os.environ[shipped.FOLDER_ENV]
        else:
            os.environ[shipped.FOLDER_ENV] = before


def _build(artifact: str, target: pathlib.Path, seed: int, builders) -> dict[str, Any]:
    """Build one checkpoint into `target`; its manifest entry."""
    started = time.perf_counter()
    log.info("building %s -> %s", artifact, target)
    entry = builders[artifact](target, seed) if artifact in builders else _build_trained(artifact, target, seed)
    entry.update(seconds=round(time.perf_counter() - started, 1), sha256=checkpoints.file_sha256(target),
                 bytes=target.stat().st_size, command=" ".join(["python -m methods.toy.regenerate", *sys.argv[1:]]),
                 host={"cpus": os.cpu_count(), "machine": platform.machine(), "torch": torch.__version__,
                       "threads": torch.get_num_threads()})
    log.info("%s: %s in %.0f s", artifact, entry["metrics"], entry["seconds"])
    return entry


def _build_clip(target: pathlib.Path, seed: int) -> dict[str, Any]:
    from methods.toy import clip_pretrain

    config = dataclasses.replace(clip_pretrain.ClipPretrainConfig(), seed=seed)
    metrics = clip_pretrain.pretrain(config, target, log=log.info)
    return {"what": "toy CLIP (open_clip config ovvss-toy-clip), contrastive pretraining on crops of all classes",
            "options": dataclasses.asdict(config), "metrics": _numbers(metrics)}


def _build_sam(target: pathlib.Path, seed: int) -> dict[str, Any]:
    from methods.toy import sam_pretrain

    config = dataclasses.replace(sam_pretrain.SamPretrainConfig(), seed=seed)
    metrics = sam_pretrain.pretrain(config, target, log=log.info)
    return {"what": "toy SAM (segment_anything, model type toy), trained on point prompts of the train split",
            "options": dataclasses.asdict(config), "metrics": _numbers(metrics)}


def _build_trained(artifact: str, target: pathlib.Path, seed: int) -> dict[str, Any]:
    """Train the artifact's method on synthetic:seen as `python -m benchmark train` would, keep the
    weights in float16 (half the size; they load into the float32 model), and score it on synthetic:unseen."""
    from benchmark import plan
    from benchmark.execution.training import TrainContext, Training, run_training

    method, identity = TRAINED[artifact]
    options = trained_options(artifact)
    training = Training(method, plan.resolve_options(method, {method: options}), "synthetic", "seen", seed=seed)
    with tempfile.TemporaryDirectory(prefix=f"toy-{method}-") as work:
        final = pathlib.Path(run_training(training.to_dict(), TrainContext(str(pathlib.Path(work) / "train"),
                                                                           device="cpu")))
        state = torch.load(final, map_location="cpu", weights_only=True)
        state["model"] = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
        # Paths on this machine mean nothing elsewhere; the CLIP is known by its sha256.
        state.update(train_set="synthetic:seen (default options)", clip_weights=shipped.CLIP)
        torch.save(state, target)
        metrics = evaluate(artifact, target, pathlib.Path(work) / "eval")
    return {"what": f"{method} ({identity}) trained on synthetic:seen against the toy CLIP", "method": method,
            "identity": identity, "options": options, "schedule": state["schedule"], "metrics": metrics}


def evaluate(artifact: str, checkpoint: pathlib.Path, output: pathlib.Path) -> dict[str, float]:
    """A trained artifact's metrics with these weights on the evaluation setting (one cell, run here)."""
    from benchmark import plan
    from benchmark.runner import RunContext, run_cell

    dataset, setting = EVALUATION
    method = TRAINED[artifact][0]
    cell = plan.Cell(method, dataset, setting, options=plan.resolve_options(method, {method: trained_options(artifact)}),
                     checkpoint=str(checkpoint))
    result = run_cell(cell.to_dict(), RunContext(str(output), [], None, "cpu"))
    if result.get("status") != "done":
        raise RuntimeError(f"evaluating {artifact} with {checkpoint} failed: {result.get('error')}")
    return {f"{dataset}:{setting} {key}": round(value, 2) for key, value in result["metrics"].items()
            if key in ("mIoU", "pAcc") and value is not None}


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in metrics.items() if isinstance(v, (int, float))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m methods.toy.regenerate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=None, help=f"comma-separated subset of {', '.join(ARTIFACTS)}")
    parser.add_argument("--out", type=pathlib.Path, default=shipped.FOLDER,
                        help="folder to write (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    started = time.perf_counter()
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    manifest = regenerate(args.out, only, args.seed)
    for name, entry in manifest.items():
        print(f"{name}: {entry['seconds']:.0f} s, {entry['bytes'] / 1e6:.1f} MB, {entry['metrics']}")
    print(f"done in {time.perf_counter() - started:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Pretraining the toy SAM: a small segment_anything model that segments the synthetic world's objects.

Random SAM weights find nothing under the automatic mask generator's default quality thresholds
(predicted IoU > 0.88, stability >= 0.95), so SAM + CLIP would fill every frame and say nothing;
Meta's checkpoints are too large for a CPU run. This trains the `toy` model type on the synthetic
TRAIN split (never val) with SAM's recipe in miniature: a point prompt inside an object or in the
background (whose target is the background), three multimask outputs with the loss (BCE + dice) on
the best one, and the IoU head regressed (MSE) onto the actual IoU of every output, so that its own
confidence is what the generator's threshold reads. The target of a point is the connected region
of its pixel's class id; void (255, the object outlines) is ignored. Frames go in through
SamPredictor's ResizeLongestSide and `sam.preprocess` and masks come out through
`sam.postprocess_masks`, exactly as at inference.

The stability score thresholds the logits at +-1; the loss reads them divided by `temperature`, so
the model learns logits that many times steeper than the loss alone would ask for, and a boundary
crosses that band within a fraction of a pixel.

    python -m methods.toy.sam_pretrain --out weights/toy/toy-sam.pt [--steps N] [--seed S]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import pathlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.data import synthetic
from benchmark.data.frames import read_frame
from benchmark.data.records import read_mask
from methods import sam as sam_module

MODEL = "toy"
VOID = 255
#: Ground-truth objects smaller than this (a sliver of an object leaving the frame) are not counted.
MIN_OBJECT_PIXELS = 30
MATCH_IOU = 0.5


@dataclass(frozen=True)
class SamPretrainConfig:
    """The defaults train the shipped checkpoint."""

    steps: int = 2000
    batch_size: int = 8           # frames per step
    points: int = 8               # point prompts per frame
    background_fraction: float = 0.25
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup: int = 50
    temperature: float = 4.0
    seed: int = 0
    val_stride: int = 1           # evaluate on every val_stride-th val frame


def load_split(split: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The default synthetic dataset's annotated frames of `split`: uint8 [H, W, 3] frames, [H, W] masks."""
    frames, masks = [], []
    for video in synthetic.SyntheticReader().read_videos(synthetic.ensure(), split):
        for index, path in sorted(video.masks.items()):
            frames.append(read_frame(video.frames[index]).permute(1, 2, 0).numpy())
            masks.append(read_mask(path))
    return frames, masks


def regions(mask: np.ndarray) -> np.ndarray:
    """The connected regions of one class id each (the background's too) numbered 0, 1, ...; void -1."""
    from scipy import ndimage

    labelled = np.full(mask.shape, -1, np.int64)
    count = 0
    for value in np.unique(mask):
        if value == VOID:
            continue
        found, n = ndimage.label(mask == value)
        labelled[found > 0] = found[found > 0] - 1 + count
        count += n
    return labelled


def sample_points(mask: np.ndarray, labelled: np.ndarray, count: int, background_fraction: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` prompts on one frame: (x, y) coordinates [count, 2] and the region id of each. A prompt
    lies in the background with probability `background_fraction`, else in an object region chosen
    uniformly (a small object is asked about as often as a large one). Slivers of objects smaller
    than MIN_OBJECT_PIXELS are not asked about, and points keep off a region's outermost pixels where
    it has others: a point there is as much its neighbour's at the model's 8 px patches."""
    from scipy import ndimage

    ids = [i for i in np.unique(labelled[labelled >= 0])
           if mask[labelled == i][0] == 0 or (labelled == i).sum() >= MIN_OBJECT_PIXELS]
    background = [i for i in ids if mask[labelled == i][0] == 0]
    objects = [i for i in ids if mask[labelled == i][0] != 0]
    coords, chosen = [], []
    for _ in range(count):
        pool = background if not objects or (background and rng.uniform() < background_fraction) else objects
        region = pool[int(rng.integers(len(pool)))]
        inside = labelled == region
        inner = ndimage.binary_erosion(inside)
        ys, xs = np.nonzero(inner if inner.any() else inside)
        k = int(rng.integers(len(ys)))
        # SAM reads a coordinate as a pixel index (its prompt encoder adds 0.5 for the pixel's centre).
        coords.append((xs[k] + rng.uniform(-0.5, 0.5), ys[k] + rng.uniform(-0.5, 0.5)))
        chosen.append(region)
    return np.array(coords, np.float32), np.array(chosen)


def mask_iou(predicted: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """IoU of boolean masks over the valid pixels [..., H, W] -> [...] (1 when both are empty)."""
    inter = (predicted & target & valid).sum((-2, -1))
    union = ((predicted | target) & valid).sum((-2, -1))
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter, dtype=torch.float32))


def mask_losses(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """BCE + dice of each mask over its valid pixels: logits, target, valid [..., H, W] -> [...]."""
    pixels = valid.sum((-2, -1)).clamp(min=1)
    bce = (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * valid).sum((-2, -1)) / pixels
    p, target = logits.sigmoid() * valid, target * valid
    dice = 1 - (2 * (p * target).sum((-2, -1)) + 1) / (p.sum((-2, -1)) + target.sum((-2, -1)) + 1)
    return bce + dice


def decode(sam, embeddings: torch.Tensor, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """segment_anything's prompt encoder and `MaskDecoder.predict_masks` for K positive points on each of
    B images (embeddings [B, C, h, w], coords [B, K, 2] in the input frame) in one pass: low-resolution
    multimask logits [B * K, 3, 4h, 4w] and IoU predictions [B * K, 3]. `predict_masks` pairs every
    prompt with a single image; here each prompt has its own image, otherwise the computation is its."""
    decoder = sam.mask_decoder
    points = coords.flatten(0, 1)[:, None]
    sparse, dense = sam.prompt_encoder(points=(points, torch.ones(len(points), 1, dtype=torch.int)), boxes=None,
                                       masks=None)
    tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight]).expand(len(sparse), -1, -1)
    src = embeddings.repeat_interleave(coords.shape[1], 0) + dense
    b, c, h, w = src.shape
    hs, src = decoder.transformer(src, sam.prompt_encoder.get_dense_pe().expand(b, -1, -1, -1),
                                  torch.cat([tokens, sparse], 1))
    upscaled = decoder.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
    hyper = torch.stack([mlp(hs[:, 1 + i]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)], 1)
    masks = (hyper @ upscaled.flatten(2)).view(b, -1, *upscaled.shape[-2:])
    return masks[:, 1:], decoder.iou_prediction_head(hs[:, 0])[:, 1:]  # the multimask outputs


def pretrain(config: SamPretrainConfig, out: pathlib.Path, log: Callable[[str], None] = print) -> dict:
    """Train the toy SAM, save its state dict (float16) to `out`; `evaluate`'s metrics on val, the
    training time and the file's size."""
    from segment_anything.utils.transforms import ResizeLongestSide

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        sam = sam_module.build_sam(sam_module.SAM_CONFIGS[MODEL]).train()
    rng = np.random.default_rng(config.seed)
    transform = ResizeLongestSide(sam.image_encoder.img_size)
    frames, masks = load_split("train")
    labelled = [regions(m) for m in masks]
    log(f"toy SAM: {sum(p.numel() for p in sam.parameters()) / 1e6:.2f}M parameters, {len(frames)} training frames")

    optimiser = torch.optim.AdamW(sam.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: min(1, (step + 1) / config.warmup) * 0.5 * (
        1 + math.cos(math.pi * step / config.steps)))
    start = time.time()
    for step in range(config.steps):
        images, coords, region_maps, ids = [], [], [], []
        for index in rng.integers(len(frames), size=config.batch_size):
            frame, mask, region_map = frames[index], masks[index], labelled[index]
            if rng.uniform() < 0.5:  # mirrored: the world has no left or right
                frame, mask, region_map = frame[:, ::-1], mask[:, ::-1], region_map[:, ::-1]
            images.append(torch.as_tensor(transform.apply_image(np.ascontiguousarray(frame))).permute(2, 0, 1))
            points, chosen = sample_points(mask, region_map, config.points, config.background_fraction, rng)
            coords.append(torch.as_tensor(transform.apply_coords(points, frame.shape[:2]), dtype=torch.float32))
            region_maps.append(torch.as_tensor(np.ascontiguousarray(region_map)).expand(len(chosen), -1, -1))
            ids.append(torch.as_tensor(chosen))
        low_res, iou_pred = decode(sam, sam.image_encoder(sam.preprocess(torch.stack(images).float())),
                                   torch.stack(coords))
        logits = sam.postprocess_masks(low_res, tuple(images[0].shape[-2:]), frames[0].shape[:2])  # [P, 3, H, W]
        region_map = torch.cat(region_maps)[:, None].expand_as(logits)
        target, valid = region_map == torch.cat(ids)[:, None, None, None], region_map >= 0
        per_output = mask_losses(logits / config.temperature, target.float(), valid.float())
        mask_loss = per_output.min(1).values.mean()  # only the best of the three masks learns, as in SAM
        with torch.no_grad():
            actual = mask_iou(logits > 0, target, valid)
        iou_loss = F.mse_loss(iou_pred, actual)
        optimiser.zero_grad()
        (mask_loss + iou_loss).backward()
        optimiser.step()
        schedule.step()
        if step % 100 == 0 or step == config.steps - 1:
            best = actual.gather(1, per_output.argmin(1, keepdim=True)).mean()
            log(f"step {step}: mask loss {mask_loss.item():.3f}, IoU loss {iou_loss.item():.4f}, "
                f"IoU of the best mask {best.item():.3f}, {time.time() - start:.0f}s")
    train_seconds = time.time() - start

    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in sam.state_dict().items()}, out)
    frames, masks = load_split("val")
    metrics = evaluate(sam_module.load_sam(MODEL, str(out)), frames[::config.val_stride], masks[::config.val_stride])
    return {"train_seconds": train_seconds, "checkpoint_bytes": out.stat().st_size, **metrics}


def evaluate(loaded_sam: sam_module.LoadedSam, frames: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> dict:
    """The automatic mask generator at its default thresholds (sam-clip's) on `frames` (uint8 [H, W, 3])
    against the objects of `masks` (class ids, void 255): connected regions of one class id of at least
    MIN_OBJECT_PIXELS pixels, each found when some mask has IoU >= MATCH_IOU with it (void ignored)."""
    generator = sam_module.mask_generator(loaded_sam)
    counts, best_ious = [], []
    seconds = 0.0
    for frame, mask in zip(frames, masks):
        start = time.time()
        records = generator.generate(np.ascontiguousarray(frame))
        seconds += time.time() - start
        counts.append(len(records))
        found = torch.as_tensor(np.stack([r["segmentation"] for r in records])) if records \
            else torch.zeros((0, *mask.shape), dtype=torch.bool)
        labelled = regions(mask)
        valid = torch.as_tensor(mask != VOID)
        for region in np.unique(labelled[labelled >= 0]):
            inside = labelled == region
            if mask[inside][0] != 0 and inside.sum() >= MIN_OBJECT_PIXELS:
                ious = mask_iou(found, torch.as_tensor(inside), valid)
                best_ious.append(float(ious.max()) if len(ious) else 0.0)
    best = np.array(best_ious)
    return {"frames": len(counts), "masks_per_frame": float(np.mean(counts)),
            "frames_with_masks": float(np.mean(np.array(counts) > 0)), "objects": len(best),
            "object_recall": float(np.mean(best >= MATCH_IOU)), "mean_best_iou": float(best.mean()),
            "seconds_per_frame": seconds / max(1, len(counts))}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, required=True, help="where the state dict goes")
    parser.add_argument("--steps", type=int, default=SamPretrainConfig.steps)
    parser.add_argument("--seed", type=int, default=SamPretrainConfig.seed)
    args = parser.parse_args(argv)
    start = time.time()
    config = dataclasses.replace(SamPretrainConfig(), steps=args.steps, seed=args.seed)
    print(f"{config} on {torch.get_num_threads()} threads")
    metrics = pretrain(config, args.out)
    for key, value in metrics.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    print(f"total: {time.time() - start:.0f}s (training and evaluation)")


if __name__ == "__main__":
    main()

"""Training as the authors' code trains (config `vitb.py` with `vspw_repeat2.py`, dataset
`CustomDataset_video4.prepare_train_img2`, head `SegFormerHead_CAT`, mmcv 1.7.2's runner and hooks).

- Clips (`custom.py:3727-3830`): a video uniformly; the whole frame list reversed with probability
  0.5; the target t uniformly among positions 9..N-1 of that list, its clip [t-9, t-6, t-3, t]; in
  front, a random frame drawn from positions 0..N-10 that is not in the clip. Only the target's mask
  is loaded. Videos of 10 frames or fewer are left out (theirs fail on them: none to draw, or a draw
  that never ends).
- Augmentation (`vspw_repeat2.py`, `pipelines/transforms.py`), in this order: one keep-ratio
  rescale of every frame to fit (1024 r)^2, r ~ U[0.5, 2) (OpenCV bilinear on uint8; the mask
  nearest); one 480x480 crop, retried up to 10 times on the target's mask until no class holds
  75% of its labelled pixels (the 11th draw is taken unchecked); one horizontal flip with
  probability 0.5; photometric distortion drawn for EACH frame (brightness, contrast before or after,
  saturation, hue, each with probability 0.5, on uint8 with truncation); ImageNet normalisation;
  padding to 480x480 with 0 (the mean colour) and 255 in the mask. Unseen classes' pixels stay
  visible in the input: only their labels are ignored (`handle_data/prepare_vspw_seen.py`).
- Loss (`decode_head.py:511-590`, `cross_entropy_loss.py`): softmax cross-entropy of the target's
  main map and the auxiliary head's map, each bilinearly resized from 120x120 to the crop, against
  the same mask, summed over both maps' pixels and divided by ALL of them (ignored ones included:
  this mmseg averages before `avg_non_ignore` existed); the K = num_seen_classes + 1 channels end
  with "background", which no pixel is labelled.
- Optimiser (mmcv `DefaultOptimizerConstructor` with `paramwise_cfg.custom_keys`): AdamW lr 3e-6,
  betas (0.9, 0.999), weight decay 0.01; a parameter whose name contains "pos_block", else "head",
  else "norm" (longest key first) gets decay 0, lr 10x, decay 0 respectively. mmcv's poly schedule
  (power 0.9, min 0) after 1500 linear warm-up iterations from 1e-6, set before every iteration;
  GradientCumulativeOptimizerHook over 4 iterations (`methods.ov2vss.training.train`).
- Initialisation: torch's defaults, their VTE's own (`cat_zeroshot_classifier.py:93-104`), and the
  backbone as `init_weights` leaves it: `load_checkpoint(strict=False)` of Meta's SAM file loads no
  tensor, as none of its key names match (`backbone_init=as-released`); `backbone_init=sam`
  converts Meta's names and loads all of it.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.metrics import IGNORE
from methods.ov2vss.training import Schedule
from methods.ov2vss_authors import preprocess

#: mmcv's custom_keys of their paramwise_cfg, in the order mmcv tries them (longest first, then by
#: name); "head" takes the recipe's head_lr_mult (theirs: 10).
CUSTOM_KEYS = (("pos_block", {"decay_mult": 0.0}), ("head", {"lr_mult": None}), ("norm", {"decay_mult": 0.0}))
BACKBONE_INITS = ("as-released", "sam")
#: The clip's positions relative to the target (their `dilation`) and the first position a target may take.
DILATION = (-9, -6, -3)
#: The smallest training crop their model runs on (6x6 tokens; 4x4 fails in STCF's convolutions).
MIN_CROP = 96


@dataclass(frozen=True)
class TrainConfig(Schedule):
    """Their recipe: the schedule (iterations as mmcv counts them), their clips and augmentation."""

    scale: int = 1024                 # Resize img_scale (1024, 1024)
    ratio_min: float = 0.5
    ratio_max: float = 2.0
    crop: int = 480
    cat_max_ratio: float = 0.75
    flip: float = 0.5
    reverse: float = 0.5              # their "flip video": the frame list reversed
    photometric: bool = True
    checkpoint_every: int = 10_000    # their checkpoint_config interval
    log_every: int = 50               # their log_config interval

    def check(self) -> None:
        super().check()
        if self.scale < 32:
            raise ValueError(f"ov2vss-authors scale={self.scale}: need scale >= 32")
        if self.crop < MIN_CROP or self.crop % 16:
            raise ValueError(f"ov2vss-authors crop={self.crop}: use a multiple of 16 of at least {MIN_CROP} (their "
                             "STCF pools the 1/16 grid 2-8x and convolves the pooled maps; 64 is too small)")
        if not 0 < self.ratio_min <= self.ratio_max:
            raise ValueError(f"ov2vss-authors ratio range {self.ratio_min}..{self.ratio_max} is empty")


# -- the optimiser ---------------------------------------------------------------------------------

def parameter_groups(model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """One group per trainable parameter, with mmcv's paramwise rule applied to its name (their names:
    `backbone.*`, `decode_head.*`)."""
    groups = []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        rule = next((options for key, options in CUSTOM_KEYS if key in name), {})
        lr_mult = config.head_lr_mult if rule.get("lr_mult", 1.0) is None else rule.get("lr_mult", 1.0)
        groups.append({"params": [parameter], "name": name, "lr": config.lr * lr_mult,
                       "weight_decay": config.weight_decay * rule.get("decay_mult", 1.0)})
    return groups


# -- initialisation --------------------------------------------------------------------------------

def init_like_theirs(model: nn.Module) -> None:
    """Their VTE's own init (truncated normal 0.02 for linear weights, zero biases, unit LayerNorms;
    alpha stays 1e-4); every other module keeps torch's default, as theirs do."""
    for module in model.decode_head.predictor.prompts_generator.modules():
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02, a=-2.0, b=2.0)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def init_backbone(backbone: nn.Module, path: str | pathlib.Path, mode: str) -> dict[str, Any]:
    """Load a SAM image-encoder file into the backbone. `as-released`: what their mmcv
    `load_checkpoint(strict=False)` does, copying only tensors whose name and shape match (none of
    Meta's file); `sam`: Meta's names converted, every tensor loaded. Returns what was loaded."""
    from methods import checkpoints

    if mode not in BACKBONE_INITS:
        raise ValueError(f"ov2vss-authors backbone_init={mode!r}: choose one of {', '.join(BACKBONE_INITS)}")
    stored = checkpoints.read(pathlib.Path(path), "a SAM checkpoint (Meta's sam_vit_b_01ec64.pth)")
    state = stored.get("state_dict", stored) if isinstance(stored, dict) else stored
    if not isinstance(state, dict):
        raise ValueError(f"SAM checkpoint {path} holds {type(state).__name__}, not a state dict")
    if state and all(key.startswith("module.") for key in state):  # mmcv strips this prefix too
        state = {key[len("module."):]: value for key, value in state.items()}
    own = backbone.state_dict()
    if mode == "sam":
        state = _from_meta_names(state, own, path)
    loaded = {key: value for key, value in state.items() if key in own and tuple(value.shape) == tuple(own[key].shape)}
    backbone.load_state_dict(loaded, strict=False)
    return {"file": str(path), "mode": mode, "loaded_tensors": len(loaded), "backbone_tensors": len(own),
            "file_tensors": len(state)}


def _from_meta_names(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor], path) -> dict[str, torch.Tensor]:
    """Meta's `image_encoder.*` names -> the backbone's: `patch_embed.proj` is `patch_embed.projection`,
    and the (1, g, g, C) position grid becomes (1, 1 + g*g, C) behind the unused class slot."""
    encoder = {key[len("image_encoder."):]: value for key, value in state.items() if key.startswith("image_encoder.")}
    if not encoder:
        raise ValueError(f"SAM checkpoint {path} has no image_encoder.* tensors; expected Meta's SAM file "
                         "(sam_vit_b_01ec64.pth)")
    converted = {key.replace("patch_embed.proj.", "patch_embed.projection."): value for key, value in encoder.items()}
    grid = converted.get("pos_embed")
    if grid is not None and grid.ndim == 4:
        converted["pos_embed"] = torch.cat([own["pos_embed"][:, :1], grid.flatten(1, 2)], dim=1)
    missing = sorted(set(own) - set(converted) - {"cls_token"})
    wrong = [key for key in own if key in converted and tuple(converted[key].shape) != tuple(own[key].shape)]
    if missing or wrong:
        raise ValueError(f"SAM checkpoint {path} does not fit the backbone: missing {missing[:4]}, wrong shape "
                         f"{wrong[:4]}; expected Meta's ViT-B file for the vitb widths")
    return converted


# -- clips and augmentation ------------------------------------------------------------------------

def eligible(length: int) -> bool:
    """Whether their sampler can draw a clip from a video of `length` frames."""
    return length > -DILATION[0] + 1


def sample_clip(length: int, rng: np.random.Generator, reverse: float) -> list[int]:
    """Frame indices [random, t-9, t-6, t-3, t] of one training clip of a video of `length` frames."""
    order = list(range(length))[::-1] if rng.random() < reverse else list(range(length))
    first = -DILATION[0]
    position = int(rng.integers(length - first)) + first
    steps = [position + d for d in DILATION] + [position]
    extra = int(rng.integers(length - first))
    while extra in steps:
        extra = int(rng.integers(length - first))
    return [order[i] for i in [extra, *steps]]


def augment(frames: list[torch.Tensor], target: np.ndarray, config: TrainConfig,
            rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A clip's uint8 RGB frames [3, H, W] (target last) and the target's labels [H, W] -> normalised
    float32 [N, 3, crop, crop] and int64 labels [crop, crop] (IGNORE where unlabelled or padded)."""
    import cv2

    images = [np.ascontiguousarray(frame.permute(1, 2, 0).numpy()) for frame in frames]
    labels = target.astype(np.uint8)
    ratio = rng.random() * (config.ratio_max - config.ratio_min) + config.ratio_min
    side = int(config.scale * ratio)
    (height, width), _ = preprocess.input_size(*images[-1].shape[:2], (side, side), 1)
    images = [cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR) for image in images]
    labels = cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)
    top, left = _crop_corner(labels, config, rng)
    window = (slice(top, top + config.crop), slice(left, left + config.crop))
    images, labels = [image[window] for image in images], labels[window]
    if rng.random() < config.flip:
        images, labels = [image[:, ::-1] for image in images], labels[:, ::-1]
    if config.photometric:
        images = [_photometric(image, rng) for image in images]
    tensors = torch.cat([preprocess.normalize(np.ascontiguousarray(image)) for image in images])
    pad = (0, config.crop - tensors.shape[-1], 0, config.crop - tensors.shape[-2])
    truth = torch.from_numpy(np.ascontiguousarray(labels)).long()
    return F.pad(tensors, pad, value=0.0), F.pad(truth, pad, value=IGNORE)


def _crop_corner(labels: np.ndarray, config: TrainConfig, rng: np.random.Generator) -> tuple[int, int]:
    """mmseg's RandomCrop_clips on the target's mask, including its quirk: after 10 rejected windows
    an 11th is drawn and taken without a check."""
    def draw() -> tuple[int, int]:
        return (int(rng.integers(0, max(labels.shape[0] - config.crop, 0) + 1)),
                int(rng.integers(0, max(labels.shape[1] - config.crop, 0) + 1)))

    top, left = draw()
    if config.cat_max_ratio < 1.0:
        for _ in range(10):
            values, counts = np.unique(labels[top: top + config.crop, left: left + config.crop], return_counts=True)
            counts = counts[values != IGNORE]
            if len(counts) > 1 and counts.max() / counts.sum() < config.cat_max_ratio:
                break
            top, left = draw()
    return top, left


def _photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """mmseg's PhotoMetricDistortion on one uint8 RGB image (their BGR and HSV conversions give the
    same hue and saturation from RGB): each step with probability 0.5, contrast first or last."""
    import cv2

    def convert(x: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
        return np.clip(x.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)

    def contrast(x: np.ndarray) -> np.ndarray:
        return convert(x, alpha=rng.uniform(0.5, 1.5)) if rng.integers(2) else x

    if rng.integers(2):
        image = convert(image, beta=rng.uniform(-32, 32))
    contrast_first = rng.integers(2) == 1
    if contrast_first:
        image = contrast(image)
    if rng.integers(2):
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        hsv[:, :, 1] = convert(hsv[:, :, 1], alpha=rng.uniform(0.5, 1.5))
        image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rng.integers(2):
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        hsv[:, :, 0] = (hsv[:, :, 0].astype(int) + int(rng.integers(-18, 18))) % 180
        image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if not contrast_first:
        image = contrast(image)
    return image


# -- the loss --------------------------------------------------------------------------------------

def loss(main: torch.Tensor, aux: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Their CE of [main, aux] logits [1, K, g, g] against labels [S, S]: both maps resized to the
    labels, the per-pixel losses summed and divided by every pixel of both, ignored ones included."""
    logits = F.interpolate(torch.cat([main, aux]).float(), size=labels.shape[-2:], mode="bilinear",
                           align_corners=False)
    per_pixel = F.cross_entropy(logits, labels.expand(2, *labels.shape[-2:]), ignore_index=IGNORE, reduction="none")
    return per_pixel.sum() / per_pixel.numel()


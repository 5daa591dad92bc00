"""The image-only CLIP cost-volume baseline, in two variants.

- `training-free`: the cosine cost volume of CLIP's dense features against the vocabulary's text
  embeddings, averaged over templates, upsampled, argmax (MaskCLIP-style; CAT-Seg's lower bound).
  Needs no training and takes any vocabulary.
- `trained`: OV2VSS with its three video modules off (`methods/ov2vss/model.py`): the cost volume
  refined by convolution, given the shallow backbone features, fused with the frame's feature and
  classified per class; trained on the seen classes with the authors' recipe
  (`python -m benchmark train --method clip-cost-volume`), then evaluated with `--checkpoint`.

Frames larger than the model's input are covered by sliding windows (`inference=slide`, `overlap`),
or resized whole (`inference=whole`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import torch

from benchmark.interface import ImageMethod, TableLabel
from benchmark.options import Range
from benchmark.speeds import DEV_CPU, Speed
from methods import clip as clip_module
from methods.ov2vss.trainable import TrainableCostVolume
from methods.windows import WindowedInference

VARIANTS = ("training-free", "trained")


class ClipCostVolume(ImageMethod, TrainableCostVolume):
    """Image-only CLIP cost volume: training-free (template-averaged cosine) or trained (OV2VSS without video modules)."""

    name = "clip-cost-volume"
    speeds = (
        Speed("cpu", DEV_CPU, "python benchmarks/clip_speed.py --configs full --variants training-free",
              seconds_per_frame=4.44,
              when={"variant": "training-free"}),
        Speed("cpu", DEV_CPU, "python benchmarks/clip_speed.py --configs full --variants trained",
              seconds_per_frame=9.52,
              when={"variant": "trained"}),
        Speed("cpu", DEV_CPU, "python benchmarks/clip_speed.py --configs tiny --variants trained",
              seconds_per_frame=0.39,
              when={"variant": "trained", "backbone": "resnet-tiny"}),
        Speed("cpu", DEV_CPU, "python -m methods.toy.regenerate --only clip-cost-volume (4000 iterations in 72 s)",
              seconds_per_iteration=0.018, when={"variant": "trained", "backbone": "resnet-tiny", "crop": 64}),
    )
    inference_options = ("amp", "inference", "window", "overlap", "batch_size")

    def __init__(self, variant: str = "training-free", clip_model: str = "auto",
                 clip_pretrained: str = "auto", clip_input: int | None = None, prompts: str = "imagenet",
                 last_block: str = "value", inference: str = "slide", window: int | None = None,
                 overlap: Annotated[float, Range(0, 1, high_open=True)] = 1 / 3,
                 batch_size: Annotated[int, Range(1)] = 8, amp: bool = True,
                 backbone: str = "sam-vit-b", backbone_pretrained: str | None = None, cost_channels: int = 128,
                 feature_channels: int = 128, head_channels: int = 64, head_stride: int = 8,
                 fusion: str = "concat", **training: Any):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"clip-cost-volume variant={variant!r}: choose one of {', '.join(VARIANTS)}")
        self.variant = variant
        self._configure({"backbone": backbone, "clip_model": clip_model, "clip_input": clip_input, "prompts": prompts,
                         "last_block": last_block, "cost_channels": cost_channels,
                         "feature_channels": feature_channels, "head_channels": head_channels,
                         "head_stride": head_stride, "fusion": fusion},
                        clip_pretrained, amp, backbone_pretrained, training)
        # Built now so bad values fail before a run; the window size is settled in setup.
        self.windows = WindowedInference(inference, window or 1, overlap, batch_size)
        self.window = window

    @classmethod
    def needs_checkpoint(cls, options: dict[str, Any]) -> bool:
        return options.get("variant") == "trained"

    @classmethod
    def table_label(cls, options: dict[str, Any], loaded: dict[str, Any]) -> TableLabel:
        if options.get("variant") == "trained":
            return TableLabel("CLIP cost volume (trained)", *cls._backbone_label(options, loaded))
        clip = (loaded.get("clip") or {}).get("model") or options.get("clip_model")
        return TableLabel("CLIP cost volume", f"CLIP {clip}", clip in (clip_module.TINY_MODEL, clip_module.TOY_MODEL))

    def _trainable(self) -> str | None:
        if self.variant != "trained":
            return (f"clip-cost-volume variant={self.variant}; add --opt clip-cost-volume.variant=trained "
                    "(only the trained variant learns anything)")
        return None

    # -- evaluation ------------------------------------------------------------------------------

    def setup(self, vocabulary: list[str], device: torch.device) -> None:
        super().setup(vocabulary, device)
        self.windows.size = self.window or (self.model_options["clip_input"] if self.variant == "training-free"
                                            else self._crop())

    def segment_frame(self, image: torch.Tensor) -> torch.Tensor:
        if self.variant == "trained":
            self._require_model()
        predict = self._training_free_scores if self.variant == "training-free" else self._trained_scores
        return self.windows(image, predict).argmax(0)

    def _training_free_scores(self, crops: torch.Tensor) -> torch.Tensor:
        size = self.model_options["clip_input"]
        images = crops.to(self.device).float()
        if images.shape[-2:] != (size, size):
            images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        dense = self.clip.dense_features(clip_module.normalize(images), self.model_options["last_block"])
        return clip_module.cost_volume(dense, self.text).mean(1)

    def _trained_scores(self, crops: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), self.clip.autocast():
            return self.model(crops.to(self.device), self.clip, self.text).float()

    def provenance(self) -> dict[str, Any]:
        return {"variant": self.variant, **super().provenance(),
                "inference": {k: getattr(self.windows, k) for k in ("mode", "size", "overlap", "batch_size")}}

    # -- training --------------------------------------------------------------------------------

    def _loss_fn(self, train) -> Callable[[int], torch.Tensor]:
        from methods.ov2vss import training

        model, clip, text, device, config = self.model, self.clip, self.text, self.device, self.train_config
        frames = [(v, i) for v, record in enumerate(train.videos) for i in record.annotated]
        seed = torch.initial_seed()

        def loss_fn(iteration: int) -> torch.Tensor:
            rng = training.sample_rng(seed, iteration, config.accumulate)
            video, index = frames[int(rng.integers(len(frames)))]
            target, held_out = train.labels(video, index)
            image, target = training.augment(train.frame(video, index), target, held_out, config, rng)
            return training.cross_entropy(model(image[None].to(device), clip, text), target[None].to(device))

        return loss_fn

    def _crop(self) -> int:
        saved = (self.checkpoint or {}).get("train_config") or {}
        return int(saved.get("crop", self.train_config.crop))

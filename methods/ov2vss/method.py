"""OV2VSS as a benchmark method: training on clips, and streaming inference over whole videos.

Every annotated frame t is segmented with its past frames (t-9, t-6, t-3 that exist) and the video's
first or last frame, whichever is farther, as the distant frame. Each frame's encoding (backbone,
CLIP, P2T tokens) is computed once and kept while a later target can still use it, so a video costs
about one encoder pass per frame instead of five; `streaming=false` re-encodes every clip (the naive
way, for checking and timing). Frames are segmented whole, at their own size, as the paper tests.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F

from benchmark.interface import TableLabel, Video
from benchmark.speeds import DEV_CPU, Speed
from methods.ov2vss import clips
from methods.ov2vss.trainable import TrainableCostVolume
from methods.ov2vss.variants import variant_of, variant_options

#: The architecture options a variant decides; a checkpoint must match the ones asked for.
VARIANT_FIELDS = ("stcf", "rfe", "vte", "fusion")


#: How the training speeds below were measured (seconds per iteration from the run's loss.csv).
TRAINING_SPEED = ("python -m benchmark train --method ov2vss --dataset synthetic:seen --dataset-opt synthetic.height=480 "
                  "--dataset-opt synthetic.width=853 --opt ov2vss.clip_pretrained=random --opt ov2vss.iterations=6")


class OV2VSS(TrainableCostVolume):
    """OV2VSS (STCF + RFE + VTE on a CLIP cost volume); `variant` picks a Table III configuration."""

    name = "ov2vss"
    video = True
    speeds = (
        Speed("cpu", DEV_CPU, "python benchmarks/ov2vss_streaming.py --configs full --backbones sam",
              seconds_per_frame=4.61, when={"backbone": "sam-vit-b"}),
        Speed("cpu", DEV_CPU, "python benchmarks/ov2vss_streaming.py --configs full --backbones resnet",
              seconds_per_frame=3.04, when={"backbone": "resnet101"}),
        Speed("cpu", DEV_CPU, "python benchmarks/predict_overhead.py --size 480x853 (toy weights)",
              seconds_per_frame=0.27, when={"backbone": "resnet-tiny"}),
        # the paper's recipe (480 crops of 480x853 frames, random CLIP weights: speed does not depend on them)
        Speed("cpu", DEV_CPU, TRAINING_SPEED, seconds_per_iteration=10.4, when={"backbone": "sam-vit-b", "crop": 480}),
        Speed("cpu", DEV_CPU, f"{TRAINING_SPEED} --opt ov2vss.backbone=resnet101", seconds_per_iteration=5.1,
              when={"backbone": "resnet101", "crop": 480}),
        Speed("cpu", DEV_CPU, "python -m methods.toy.regenerate --only ov2vss (4000 iterations in 248 s)",
              seconds_per_iteration=0.062, when={"backbone": "resnet-tiny", "crop": 64}),
    )
    inference_options = ("amp", "streaming", "short_side", "offsets")

    def __init__(self, variant: str = "full", stcf: bool | None = None, rfe: bool | None = None,
                 vte: str | None = None, fusion: str | None = None, annotations: str | None = None,
                 alpha: float | None = None, beta: float | None = None, offsets: str | None = None,
                 reverse: float = 0.5, clip_model: str = "auto", clip_pretrained: str = "auto",
                 clip_input: int | None = None, prompts: str = "imagenet", last_block: str = "value",
                 backbone: str = "sam-vit-b", backbone_pretrained: str | None = None, cost_channels: int = 128,
                 feature_channels: int = 128, head_channels: int = 64, head_stride: int = 8,
                 temporal_scales: int = 3, pool_sizes: tuple[int, ...] = (2, 4, 8, 12), regions: int = 16,
                 heads: int = 8, text_heads: int = 8, streaming: bool = True, short_side: int | None = None,
                 amp: bool = True, **training: Any):
        super().__init__()
        given = {"stcf": stcf, "rfe": rfe, "vte": vte, "fusion": fusion, "annotations": annotations,
                 "alpha": alpha, "beta": beta}
        chosen = {**variant_options(variant), **{k: v for k, v in given.items() if v is not None}}
        self.variant = variant
        self.offsets_option = offsets  # None: the checkpoint's, else the paper's 9, 6, 3
        self.recipe = clips.ClipRecipe(offsets or clips.ClipRecipe.offsets, reverse, chosen["annotations"],
                                       float(chosen["alpha"]), float(chosen["beta"]))
        self._configure({"backbone": backbone, "clip_model": clip_model, "clip_input": clip_input,
                         "prompts": prompts, "last_block": last_block, "cost_channels": cost_channels,
                         "feature_channels": feature_channels, "head_channels": head_channels,
                         "head_stride": head_stride, "fusion": chosen["fusion"], "stcf": bool(chosen["stcf"]),
                         "rfe": bool(chosen["rfe"]), "vte": chosen["vte"], "temporal_scales": temporal_scales,
                         "pool_sizes": tuple(pool_sizes), "regions": regions, "heads": heads,
                         "text_heads": text_heads},
                        clip_pretrained, amp, backbone_pretrained, training)
        if short_side is not None and short_side < 16:
            raise ValueError(f"ov2vss short_side={short_side}: a frame's short side must be at least 16 pixels")
        self.streaming, self.short_side = bool(streaming), short_side
        self.encoder_passes = 0  # frames encoded so far: what streaming saves

    @classmethod
    def table_label(cls, options: dict[str, Any], loaded: dict[str, Any]) -> TableLabel:
        backbone, stand_in = cls._backbone_label(options, loaded)
        variant = variant_of(options) or "custom"
        if variant == "full":
            return TableLabel("OV2VSS", backbone, stand_in)
        return TableLabel(f"OV2VSS ({variant})", backbone, stand_in, variant=variant)

    # -- evaluation ------------------------------------------------------------------------------

    def segment(self, video: Video) -> Iterator[torch.Tensor]:
        model = self._require_model()
        length, offsets = len(video), self.recipe.offsets
        encoded: dict[int, Any] = {}
        for t in video.annotated:
            past = clips.past_frames(t, length, offsets)
            distant = clips.distant_frame(t, length) if model.rfe is not None else None
            if not self.streaming:
                encoded.clear()
            for i in [*past, t] + ([distant] if distant is not None else []):
                if i not in encoded:
                    encoded[i] = self._encode(video.frame(i))
            with torch.no_grad(), self.clip.autocast():
                logits, _ = model.decode(encoded[t], self.text, [encoded[i] for i in past],
                                         None if distant is None else encoded[distant])
            height, width = video.frame(t).shape[-2:]
            logits = F.interpolate(logits.float(), size=(height, width), mode="bilinear", align_corners=False)
            yield logits[0].argmax(0).cpu()
            # Later targets are later frames: their past starts after t - max(offsets). With RFE the
            # first and last frames stay, as every target's distant frame is one of them.
            horizon = t + 1 - offsets[0]
            kept = (0, length - 1) if distant is not None else ()
            for i in [i for i in encoded if i < horizon and i not in kept]:
                del encoded[i]

    def _encode(self, image: torch.Tensor):
        self.encoder_passes += 1
        image = image.to(self.device)
        if self.short_side is not None:
            scale = self.short_side / min(image.shape[-2:])
            size = [round(side * scale) for side in image.shape[-2:]]
            image = F.interpolate(image[None].float(), size=size, mode="bilinear", antialias=True,
                                  align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
        with torch.no_grad(), self.clip.autocast():
            return self.model.encode(image[None], self.clip)

    def load(self, checkpoint: pathlib.Path) -> None:
        asked = {k: self.model_options[k] for k in VARIANT_FIELDS}
        super().load(checkpoint)
        trained = {k: self.model_options[k] for k in VARIANT_FIELDS}
        if trained != asked:  # a result would be filed under a variant the weights are not
            raise ValueError(f"checkpoint {checkpoint} was trained as variant {self.checkpoint.get('variant')!r} "
                             f"({trained}), but the options ask for {asked} (variant {self.variant!r}); pass "
                             f"--opt ov2vss.variant={self.checkpoint.get('variant')} or the matching checkpoint")
        saved = self.checkpoint.get("recipe") or {}
        if self.offsets_option is None and "offsets" in saved:  # infer with the clips it was trained on
            self.recipe = clips.ClipRecipe(**{**self.recipe.to_dict(), "offsets": saved["offsets"]})

    def provenance(self) -> dict[str, Any]:
        return {"variant": self.variant, **super().provenance(), "recipe": self.recipe.to_dict(),
                "inference": {"streaming": self.streaming, "short_side": self.short_side, "mode": "whole"}}

    # -- training --------------------------------------------------------------------------------

    def _checkpoint_meta(self) -> dict[str, Any]:
        return {"variant": self.variant, "recipe": self.recipe.to_dict()}

    def _loss_fn(self, train) -> Callable[[int], torch.Tensor]:
        from methods.ov2vss import training

        model, clip, text, device = self.model, self.clip, self.text, self.device
        config, recipe = self.train_config, self.recipe
        targets = [(v, i) for v, record in enumerate(train.videos) for i in record.annotated]
        seed = torch.initial_seed()

        def labels(video: int, index: int):
            return train.labels(video, index) if index in train.videos[video].masks else (None, None)

        def loss_fn(iteration: int) -> torch.Tensor:
            rng = training.sample_rng(seed, iteration, config.accumulate)
            video, target = targets[int(rng.integers(len(targets)))]
            frames, distant = recipe.sample(target, len(train.videos[video].frames), rng, model.rfe is not None)
            # The target goes last into the augmentation: its labels choose the crop.
            order = [*frames[:-1], *([] if distant is None else [distant]), target]
            found = [labels(video, i) for i in order]
            images, crops = training.augment_clip([train.frame(video, i) for i in order], [f[0] for f in found],
                                                  [f[1] for f in found], config, rng)
            encoded = model.encode(images.to(device), clip)
            per_frame = {i: encoded.take(j) for j, i in enumerate(order)}
            truth = dict(zip(order, crops))
            scored = frames if recipe.annotations == "all" else [target]
            losses = []
            for position, i in enumerate(frames):
                if i not in scored or truth[i] is None:
                    continue
                logits, aux = model.decode(per_frame[i], text, [per_frame[p] for p in frames[:position]],
                                           None if distant is None else per_frame[distant])
                goal = truth[i][None].to(device)
                loss = recipe.alpha * training.cross_entropy(logits, goal)
                if aux is not None:
                    loss = loss + recipe.beta * training.cross_entropy(aux, goal)
                losses.append(loss)
            return torch.stack(losses).mean()

        return loss_fn

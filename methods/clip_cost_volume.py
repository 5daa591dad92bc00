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

import logging
import pathlib
from typing import Any

import torch

from benchmark.interface import ImageMethod, TrainableMethod
from methods import clip as clip_module
from methods.windows import WindowedInference

log = logging.getLogger(__name__)

VARIANTS = ("training-free", "trained")


class ClipCostVolume(ImageMethod, TrainableMethod):
    """Image-only CLIP cost volume: training-free (template-averaged cosine) or trained (OV2VSS without video modules)."""

    name = "clip-cost-volume"

    def __init__(self, variant: str = "training-free", clip_model: str = "auto",
                 clip_pretrained: str = "auto", clip_input: int | None = None, prompts: str = "imagenet",
                 last_block: str = "value", inference: str = "slide", window: int | None = None,
                 overlap: float = 1 / 3, batch_size: int = 8, amp: bool = True,
                 backbone: str = "sam-vit-b", backbone_pretrained: str | None = None, cost_channels: int = 128,
                 feature_channels: int = 128, head_channels: int = 64, head_stride: int = 8,
                 fusion: str = "concat", **training: Any):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"clip-cost-volume variant={variant!r}: choose one of {', '.join(VARIANTS)}")
        if prompts not in clip_module.PROMPT_SETS or last_block not in clip_module.LAST_BLOCKS:
            raise ValueError(f"clip-cost-volume prompts={prompts!r}, last_block={last_block!r}: prompts is one of "
                             f"{clip_module.PROMPT_SETS}, last_block one of {clip_module.LAST_BLOCKS}")
        from methods.ov2vss.training import TrainConfig

        self.variant, self.clip_pretrained, self.amp = variant, clip_pretrained, amp
        self.train_config = TrainConfig.from_options(training)  # only `train` uses it; checked early
        # Built now so bad values fail before a run; the window size is settled in setup.
        self.windows = WindowedInference(inference, window or 1, overlap, batch_size)
        self.window = window
        self.model_options = {"backbone": backbone, "clip_model": clip_model,
                              "clip_input": clip_input, "prompts": prompts,
                              "last_block": last_block, "cost_channels": cost_channels,
                              "feature_channels": feature_channels, "head_channels": head_channels,
                              "head_stride": head_stride, "fusion": fusion}
        self.backbone_pretrained = backbone_pretrained
        self.model = None
        self.checkpoint: dict[str, Any] | None = None

    # -- evaluation ------------------------------------------------------------------------------

    def setup(self, vocabulary: list[str], device: torch.device) -> None:
        options = self.model_options
        self.device = device
        self.clip = clip_module.load_clip(options["clip_model"], self.clip_pretrained, device, self.amp)
        # "auto" resolves now; a loaded checkpoint already names its model and input size.
        options["clip_model"] = self.clip.name
        options["clip_input"] = options["clip_input"] or self.clip.input_size
        self.text = self.clip.text_embeddings(list(vocabulary), options["prompts"])
        if self.model is not None:
            self.model.to(device).eval()
        self.windows.size = self.window or (options["clip_input"] if self.variant == "training-free" else self._crop())

    def segment_frame(self, image: torch.Tensor) -> torch.Tensor:
        if self.variant == "trained" and self.model is None:
            raise ValueError("clip-cost-volume variant=trained has no trained weights: train it with `python -m "
                             "benchmark train --method clip-cost-volume --dataset vspw:seen`, then pass "
                             "--checkpoint clip-cost-volume=PATH/final.pt")
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
        clip = self.clip  # called after setup
        options = self.model_options
        info: dict[str, Any] = {"variant": self.variant,
                                "clip": {"model": options["clip_model"], "weights": clip.weights,
                                         **{k: options[k] for k in ("clip_input", "prompts", "last_block")}},
                                "inference": {k: getattr(self.windows, k) for k in ("mode", "size", "overlap",
                                                                                     "batch_size")},
                                "warnings": []}
        if clip.weights == "random":
            info["warnings"].append(f"CLIP {clip.name} has random weights (none found): the numbers say nothing "
                                    "about the method; pass --opt clip-cost-volume.clip_pretrained=PATH to the "
                                    "paper's OpenAI ViT-B/16 weights")
        if self.variant == "trained":
            info["model_config"] = options
            if self.checkpoint is not None:
                info["checkpoint"] = {k: self.checkpoint.get(k) for k in
                                      ("path", "iterations", "train_set", "clip_weights", "train_config")}
                trained_with = self.checkpoint.get("clip_weights")
                if trained_with != clip.weights or clip.weights == "random":  # random weights differ per process
                    info["warnings"].append(f"trained against CLIP weights {trained_with} but evaluated with "
                                            f"{clip.weights}: the cost volumes differ from the ones it learned")
        return info

    # -- training --------------------------------------------------------------------------------

    def fit(self, train, vocabulary: list[str], run_dir: pathlib.Path) -> pathlib.Path:
        """Train the `trained` variant on `train` (a TrainingSet); `setup(vocabulary, device)` came first."""
        from methods.ov2vss import training
        from methods.ov2vss.model import CostVolumeSegmenter, ModelConfig

        if self.variant != "trained":
            raise ValueError("only variant=trained learns anything: add --opt clip-cost-volume.variant=trained")
        config = self.train_config
        if self.model is None:
            self.model = CostVolumeSegmenter(ModelConfig.from_dict(self.model_options), self.backbone_pretrained)
            if self.backbone_pretrained is None:
                log.warning("clip-cost-volume: backbone %s starts from random weights; the paper initialises it "
                            "from pretrained ones (pass --opt clip-cost-volume.backbone_pretrained=PATH)",
                            self.model_options["backbone"])
        model, clip, text, device = self.model, self.clip, self.text, self.device
        frames = [(v, i) for v, record in enumerate(train.videos) for i in record.annotated]
        seed = torch.initial_seed()

        def loss_fn(iteration: int, micro: int) -> torch.Tensor:
            rng = training.sample_rng(seed, iteration, micro)
            video, index = frames[int(rng.integers(len(frames)))]
            target, held_out = train.labels(video, index)
            image, target = training.augment(train.frame(video, index), target, held_out, config, rng)
            return training.cross_entropy(model(image[None].to(device), clip, text), target[None].to(device))

        meta = {"method": self.name, "model_config": self.model_options, "vocabulary": list(vocabulary),
                "clip_weights": clip.weights, "backbone_pretrained": self.backbone_pretrained,
                "train_set": repr(train), "seed": seed}
        final = training.train(model, model.head_parameters(), loss_fn, config, pathlib.Path(run_dir), device, meta,
                               self.amp)
        model.eval()
        return final

    def load(self, checkpoint: pathlib.Path) -> None:
        from methods.ov2vss.model import CostVolumeSegmenter, ModelConfig
        from methods.ov2vss.training import load_checkpoint

        if self.variant != "trained":
            raise ValueError(f"--checkpoint {checkpoint} given but clip-cost-volume variant={self.variant}; "
                             "add --opt clip-cost-volume.variant=trained")
        expected = "a clip-cost-volume checkpoint (final.pt) written by `python -m benchmark train --method clip-cost-volume`"
        state = load_checkpoint(checkpoint, expected)
        if state.get("method") != self.name or "model_config" not in state:
            raise ValueError(f"checkpoint {checkpoint} belongs to method {state.get('method')!r}; expected {expected}")
        config = ModelConfig.from_dict(state["model_config"])
        differs = {k: v for k, v in config.to_dict().items() if self.model_options.get(k) != v}
        if differs:  # the architecture is the checkpoint's; options only matter for new training
            log.info("clip-cost-volume: using the checkpoint's architecture %s", differs)
        model = CostVolumeSegmenter(config)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as error:
            raise ValueError(f"checkpoint {checkpoint} does not fit its own model config {config}: {error}") from error
        self.model, self.model_options = model.eval(), config.to_dict()
        self.checkpoint = {"path": str(checkpoint), **{k: v for k, v in state.items() if k != "model"}}

    def _crop(self) -> int:
        saved = (self.checkpoint or {}).get("train_config") or {}
        return int(saved.get("crop", self.train_config.crop))


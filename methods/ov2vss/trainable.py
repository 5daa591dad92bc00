"""What the methods built on `OV2VSSModel` share: frozen CLIP and the vocabulary's text, building the
model, training it with the authors' recipe, loading its checkpoint, and recording all of it.

`ov2vss` and the trained variant of `clip-cost-volume` subclass this; each says how a training sample
becomes a loss (`_loss_fn`) and how a video is segmented.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import pathlib
from collections.abc import Callable
from typing import Any

import torch

from benchmark.interface import TrainableMethod
from methods import checkpoints
from methods import clip as clip_module
from methods.ov2vss.backbones import TABLE_LABELS
from methods.ov2vss.training import RecordsSchedule

log = logging.getLogger(__name__)


class TrainableCostVolume(RecordsSchedule, TrainableMethod):
    """Subclasses call `_configure` in `__init__`, implement `_loss_fn` and segment with `self.model`."""

    #: Options that change how trained weights are applied, not which weights fit.
    inference_options: tuple[str, ...] = ("amp",)

    def _configure(self, model_options: dict[str, Any], clip_pretrained: str, amp: bool,
                   backbone_pretrained: str | None, training: dict[str, Any]) -> None:
        from methods.ov2vss.model import ModelConfig
        from methods.ov2vss.training import TrainConfig

        prompts, last_block = model_options["prompts"], model_options["last_block"]
        if prompts not in clip_module.PROMPT_SETS or last_block not in clip_module.LAST_BLOCKS:
            raise ValueError(f"{self.name} prompts={prompts!r}, last_block={last_block!r}: prompts is one of "
                             f"{clip_module.PROMPT_SETS}, last_block one of {clip_module.LAST_BLOCKS}")
        ModelConfig.from_dict(model_options)  # bad architecture values fail before a run
        self.train_config = TrainConfig.from_options(training)  # only `train` uses it; checked early
        self.model_options, self.clip_pretrained, self.amp = model_options, clip_pretrained, amp
        self.backbone_pretrained = backbone_pretrained
        self.model = None
        self.checkpoint: dict[str, Any] | None = None

    @classmethod
    def needs_checkpoint(cls, options: dict[str, Any]) -> bool:
        return True

    @classmethod
    def default_checkpoint(cls, options: dict[str, Any]) -> str | None:
        """The checkpoint shipped for the miniature world (`weights/toy/`), when it fits the options."""
        from methods.toy import shipped

        options = {**cls.default_options(), **options}  # the options given, the rest at their defaults
        model = options.get("clip_model", "auto")
        if options.get("clip_pretrained", "auto") != "auto" or model not in ("auto", clip_module.TOY_MODEL):
            return None
        if model == "auto" and clip_module.auto_model() != clip_module.TOY_MODEL:
            return None  # real CLIP weights were found: the toy-trained head would read foreign cost volumes
        return shipped.checkpoint_for(cls.name, options, cls.default_options(), cls.inference_options)

    @classmethod
    def _backbone_label(cls, options: dict[str, Any], loaded: dict[str, Any]) -> tuple[str, bool]:
        """The paper's name of the backbone a cell used (its checkpoint's, when it loaded one), and
        whether a tiny backbone or the tiny CLIP stood in for the paper's models."""
        backbone = (loaded.get("model_config") or options).get("backbone")
        label, stand_in = TABLE_LABELS.get(backbone, (str(backbone), False))
        clip = (loaded.get("clip") or {}).get("model")
        return label, stand_in or clip in (clip_module.TINY_MODEL, clip_module.TOY_MODEL)

    def _trainable(self) -> str | None:
        """Why these options cannot be trained or loaded (None: they can)."""
        return None

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

    def _require_model(self):
        if self.model is None:
            raise ValueError(f"{self.name} has no trained weights: train it with `python -m benchmark train --method "
                             f"{self.name} --dataset vspw:seen`, then pass --checkpoint {self.name}=PATH/final.pt")
        return self.model

    def provenance(self) -> dict[str, Any]:
        clip = self.clip  # called after setup
        options = self.model_options
        info: dict[str, Any] = {"clip": {"model": options["clip_model"], "weights": clip.weights,
                                         **{k: options[k] for k in ("clip_input", "prompts", "last_block")}},
                                "warnings": [w for w in [clip_module.random_weights_warning(clip, self.name)] if w]}
        if self._trainable() is None:
            info["model_config"] = options
            if self.checkpoint is not None:
                info["checkpoint"] = {k: self.checkpoint.get(k) for k in
                                      ("path", "iterations", "schedule", "train_set", "clip_weights", "train_config",
                                       "recipe")
                                      if k in self.checkpoint}
                trained_with = self.checkpoint.get("clip_weights")
                if not self._trained_with_this_clip():
                    info["warnings"].append(f"trained against CLIP weights {trained_with} but evaluated with "
                                            f"{clip.weights}: the cost volumes differ from the ones it learned")
        return info

    def _trained_with_this_clip(self) -> bool:
        """Whether the loaded checkpoint was trained against the CLIP weights now loaded: the same
        content where both are files (a clone elsewhere has the same file at another path)."""
        saved = self.checkpoint.get("clip_sha256")
        if saved and checkpoints.weights_sha256(self.clip.weights):
            return saved == checkpoints.weights_sha256(self.clip.weights)
        return self.checkpoint.get("clip_weights") == self.clip.weights

    # -- training --------------------------------------------------------------------------------

    @abc.abstractmethod
    def _loss_fn(self, train) -> Callable[[int], torch.Tensor]:
        """iteration -> the loss of one sample drawn from `train` (a TrainingSet)."""

    def _checkpoint_meta(self) -> dict[str, Any]:
        """Extra facts a checkpoint records, beyond the architecture and the training data."""
        return {}

    def planned_training(self) -> dict[str, Any]:
        return dataclasses.asdict(self.train_config)

    def fit(self, train, vocabulary: list[str], run_dir: pathlib.Path) -> pathlib.Path:
        """Train on `train` (a TrainingSet); `setup(vocabulary, device)` came first."""
        from methods.ov2vss import training
        from methods.ov2vss.model import ModelConfig, OV2VSSModel

        reason = self._trainable()
        if reason:
            raise ValueError(reason)
        if self.model is None:
            # Initial weights from the run's seed alone, not from whatever drew random numbers before
            # (loading CLIP does, unless the process already holds it).
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(torch.initial_seed())
                self.model = OV2VSSModel(ModelConfig.from_dict(self.model_options), self.backbone_pretrained)
            if self.backbone_pretrained is None:
                log.warning("%s: backbone %s starts from random weights; the paper initialises it from pretrained "
                            "ones (pass --opt %s.backbone_pretrained=PATH)", self.name,
                            self.model_options["backbone"], self.name)
        meta = {"method": self.name, "model_config": self.model_options, "vocabulary": list(vocabulary),
                "clip_weights": self.clip.weights, "clip_sha256": checkpoints.weights_sha256(self.clip.weights),
                "backbone_pretrained": self.backbone_pretrained,
                "train_set": repr(train), "seed": torch.initial_seed(), **self._checkpoint_meta()}
        groups = training.parameter_groups(self.model, self.model.head_parameters(), self.train_config)
        final = training.train(self.model, groups, self._loss_fn(train), self.train_config, pathlib.Path(run_dir),
                               self.device, lambda path: training.write_ovvss_checkpoint(
                                   self.model, meta, self.train_config, path), self.amp)
        self.model.eval()
        return final

    def load(self, checkpoint: pathlib.Path) -> None:
        from methods.ov2vss import training
        from methods.ov2vss.model import ModelConfig, OV2VSSModel

        reason = self._trainable()
        if reason:
            raise ValueError(f"--checkpoint {checkpoint} given, but {reason}")
        expected = f"a {self.name} checkpoint (final.pt) written by `python -m benchmark train --method {self.name}`"
        state = training.load_checkpoint(checkpoint, expected)
        if state.get("method") != self.name or "model_config" not in state:
            raise ValueError(f"checkpoint {checkpoint} belongs to method {state.get('method')!r}; expected {expected}")
        config = ModelConfig.from_dict(state["model_config"])
        differs = {k: v for k, v in config.to_dict().items() if self.model_options.get(k) != v}
        if differs:  # the architecture is the checkpoint's; options only matter for new training
            log.info("%s: using the checkpoint's architecture %s", self.name, differs)
        model = OV2VSSModel(config)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as error:
            raise ValueError(f"checkpoint {checkpoint} does not fit its own model config {config}: {error}") from error
        self.model, self.model_options = model.eval(), config.to_dict()
        self.checkpoint = {"path": str(checkpoint), **{k: v for k, v in state.items() if k != "model"},
                           "schedule": training.schedule_of(state)}

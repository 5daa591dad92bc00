"""`ov2vss-authors`: OV2VSS as the authors' released code computes it, from their checkpoint
(`--checkpoint ov2vss-authors=100000.pth`) or trained here as their code trains (`training.py`).

Each target frame t is read with the clip their test builds (`clips.py`), through their input
pipeline (`preprocess.py`), model (`model.py`) and output geometry. Their head recomputes all five
frames of every clip; here each frame is encoded once and kept while a later target may read it,
and the far frame's memory is computed once per video (`streaming=false` re-encodes every clip
frame, t-3 included, as their test does: the same outputs, for checking and timing).

Vocabulary: their test names the 44 raw unseen VSPW classes plus "background", and so does our
`official` protocol, whose scoring puts a background prediction in the last class's bin as theirs
does. Given a vocabulary without "background" (the `intended` protocol, another dataset), the method
adds it, as their model always has it, and reports a background pixel as ABSTAIN: "none of the
named classes", a miss for the pixel's class and no class's false positive (`background=none`
drops it instead).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from benchmark.interface import ABSTAIN, TableLabel, TrainableMethod, Video
from benchmark.speeds import DEV_CPU, Speed
from methods.ov2vss.training import RecordsSchedule
from methods.ov2vss_authors import clips, preprocess
from methods.ov2vss_authors.reference import RECORD_STRIDE

BACKGROUND = "background"
BACKGROUND_MODES = ("abstain", "none")


class OV2VSSAuthors(RecordsSchedule, TrainableMethod):
    """OV2VSS as the authors' code runs it (their checkpoint; quirks kept, see docs/authors-code.md)."""

    name = "ov2vss-authors"
    video = True
    speeds = (Speed("cpu", DEV_CPU, "python benchmarks/ov2vss_authors_streaming.py", seconds_per_frame=5.35),)

    def __init__(self, clip_pretrained: str = "checkpoint", text_features: str | None = None,
                 background: str = "abstain", streaming: bool = True, record: str | None = None,
                 architecture: str = "vitb", backbone_pretrained: str | None = None,
                 backbone_init: str = "as-released", **training: Any):
        from methods.ov2vss_authors import model
        from methods.ov2vss_authors import training as recipe

        super().__init__()
        if background not in BACKGROUND_MODES:
            raise ValueError(f"ov2vss-authors background={background!r}: choose one of {', '.join(BACKGROUND_MODES)}")
        if backbone_init not in recipe.BACKBONE_INITS:
            raise ValueError(f"ov2vss-authors backbone_init={backbone_init!r}: choose one of "
                             f"{', '.join(recipe.BACKBONE_INITS)}")
        self.clip_pretrained, self.text_features_path = str(clip_pretrained), text_features
        self.background, self.streaming, self.record = background, bool(streaming), record
        self.architecture = model.architecture(architecture)  # only training builds it; checked now
        self.backbone_pretrained, self.backbone_init = backbone_pretrained, backbone_init
        self.train_config = recipe.TrainConfig.from_options(training)
        self.model = self.checkpoint = self.clip = self.text = None
        self.backbone_loaded: dict[str, Any] | None = None
        self.encoder_passes = 0

    @classmethod
    def needs_checkpoint(cls, options: dict[str, Any]) -> bool:
        return True

    @classmethod
    def check_checkpoint(cls, path: pathlib.Path, options: dict[str, Any]) -> None:
        from methods.ov2vss_authors import checkpoint

        checkpoint.read(path)  # memory-mapped: the structure, keys and shapes, not the values

    @classmethod
    def reference_check(cls, folder: pathlib.Path, text: str = "encode"):
        """A folder made by running the authors' code on rule-made weights (`reference.py`)."""
        from methods.ov2vss_authors.reference import AuthorsFixture

        return AuthorsFixture(folder, text)

    @classmethod
    def table_label(cls, options: dict[str, Any], loaded: dict[str, Any]) -> TableLabel:
        config = (loaded.get("checkpoint") or {}).get("model_config") or {}
        stand_in = bool(config) and config.get("embed_dim", 768) != 768
        return TableLabel("OV2VSS (authors' code)", "ViT-B2", stand_in, reproduces="OV2VSS")

    # -- weights ---------------------------------------------------------------------------------

    def load(self, checkpoint: pathlib.Path) -> None:
        from methods import clip as clip_module
        from methods.ov2vss_authors import checkpoint as reader
        from methods.ov2vss_authors.model import AuthorsModel

        stored = reader.read(checkpoint)
        model = AuthorsModel(stored.config)
        model.load_state_dict(stored.model)
        self.model = model.eval().requires_grad_(False)
        trained = {k: stored.meta[k] for k in reader.TRAINING_KEYS if k in stored.meta}  # written by `fit`
        self.checkpoint = {**stored.summary(), "model_config": stored.config.to_dict(), **trained}
        if self.clip_pretrained == "checkpoint":
            self.clip = clip_module.clip_from_openai_state_dict(stored.clip, f"{checkpoint}:{reader.CLIP_PREFIX}*",
                                                                model=stored.meta.get(reader.CLIP_MODEL_KEY))

    # -- training --------------------------------------------------------------------------------

    def planned_training(self) -> dict[str, Any]:
        return dataclasses.asdict(self.train_config)

    def fit(self, train, vocabulary: list[str], run_dir: pathlib.Path) -> pathlib.Path:
        """Train as their code trains (`training.py`) on `train`; write their checkpoint format."""
        from dataclasses import replace

        from methods import checkpoints
        from methods.ov2vss import training as loop
        from methods.ov2vss_authors import checkpoint as writer
        from methods.ov2vss_authors import text, training
        from methods.ov2vss_authors.model import AuthorsModel

        config = self.train_config
        # their training vocabulary: the seen names and "background" (the official protocol has it)
        names = list(vocabulary) if BACKGROUND in vocabulary else [*vocabulary, BACKGROUND]
        clip = self.clip
        config_model = replace(self.architecture, regions=len(names), text_dim=clip.embed_dim,
                               clip_patch=clip.patch_size, clip_input=clip.input_size)
        with torch.random.fork_rng(devices=[]):  # initial weights from the run's seed alone
            torch.manual_seed(torch.initial_seed())
            model = AuthorsModel(config_model)
            training.init_like_theirs(model)
        if self.backbone_pretrained:
            self.backbone_loaded = training.init_backbone(model.backbone, self.backbone_pretrained, self.backbone_init)
        features = text.text_features(clip, names).to(self.device)
        videos = [v for v, record in enumerate(train.videos) if training.eligible(len(record.frames))]
        if not videos:
            raise ValueError(f"{train}: no video has more than 10 frames, which their clips need (t-9 .. t and a "
                             "random frame before t-9)")
        seed = torch.initial_seed()

        def loss_fn(iteration: int) -> torch.Tensor:
            rng = loop.sample_rng(seed, iteration, config.accumulate)
            torch.manual_seed(int(rng.integers(2 ** 63)))  # dropout masks: a function of the iteration too
            video = videos[int(rng.integers(len(videos)))]
            order = training.sample_clip(len(train.videos[video].frames), rng, config.reverse)
            labels, _ = train.labels(video, order[-1])  # unseen pixels: IGNORE in the labels, visible in the input
            images, truth = training.augment([train.frame(video, i) for i in order], labels, config, rng)
            main, aux = model.forward_train(images.to(self.device), clip, features)
            return training.loss(main, aux, truth.to(self.device))

        meta = {writer.CONFIG_KEY: config_model.to_dict(), writer.CLIP_MODEL_KEY: clip.name,
                "CLASSES": names, "method": self.name, "train_set": repr(train), "seed": seed,
                "train_config": asdict(config), "schedule": loop.schedule_record(config),
                "clip_weights": clip.weights, "clip_sha256": checkpoints.weights_sha256(clip.weights),
                "backbone_init": self.backbone_loaded or {"mode": "torch defaults (no backbone_pretrained)"}}

        def write_final(path: pathlib.Path) -> None:
            state = {**model.state_dict(),
                     **{writer.CLIP_PREFIX + k: v for k, v in clip.model.state_dict().items()}}
            writer.write({k: v.detach().cpu() for k, v in state.items()}, path,
                         {**meta, "iter": config.iterations})

        loop.train(model, training.parameter_groups(model, config), loss_fn, config, pathlib.Path(run_dir),
                   self.device, write_final, amp=False)
        self.model = model.eval().requires_grad_(False)
        return pathlib.Path(run_dir) / "final.pt"

    # -- evaluation ------------------------------------------------------------------------------

    def setup(self, vocabulary: list[str], device: torch.device) -> None:
        from methods import clip as clip_module
        from methods.ov2vss_authors import text

        self.device = device
        if self.model is None:  # training: CLIP as `auto` finds it (the paper's, or the miniature world's toy)
            if self.clip is None:
                named = "auto" if self.clip_pretrained == "checkpoint" else self.clip_pretrained
                self.clip = clip_module.load_clip("auto" if named == "auto" else clip_module.PAPER_MODEL, named,
                                                  device, amp=False)
            return
        if self.clip is None:  # a CLIP file given instead of the one inside the checkpoint
            self.clip = clip_module.load_clip(clip_module.PAPER_MODEL, self.clip_pretrained, device, amp=False)
        self.model.to(device)
        self.clip.model.to(device)
        self.clip.device = device
        self.names = list(vocabulary)
        self.abstain_label = None
        if BACKGROUND not in self.names and self.background == "abstain":
            self.abstain_label = len(self.names)
            self.names.append(BACKGROUND)
        config = self.model.config
        if self.text_features_path:  # checked against the vocabulary and the model as it is read
            features = text.read_text_features(self.text_features_path, self.names, config.templates, config.text_dim)
        else:
            features = text.text_features(self.clip, self.names)
            if features.shape[1:] != (config.templates, config.text_dim):
                raise ValueError(f"CLIP {self.clip.weights} gives {features.shape[1]} templates of width "
                                 f"{features.shape[2]}, but the checkpoint's model reads {config.templates} of width "
                                 f"{config.text_dim}")
        self.text = features.to(device)

    def segment(self, video: Video) -> Iterator[torch.Tensor]:
        model = self._model()
        length = len(video)
        encoded: dict[int, Any] = {}
        memories: dict[int, Any] = {}
        for t in video.annotated:
            clip = clips.clip_for(t, length)
            if not self.streaming:  # their test: every frame of the clip again, t-3 and an unused far frame too
                encoded.clear()
                memories.clear()
                for i in clip.frames:
                    encoded[i] = self._encode(video.frame(i))
            for i in [t] if clip.image_only else [clip.far, clip.steps[0], clip.steps[1], t]:
                if i not in encoded:
                    encoded[i] = self._encode(video.frame(i))
            with torch.no_grad():
                if clip.image_only:
                    logits = model.predict_image_only(encoded[t], self.text)
                else:
                    if clip.far not in memories:
                        memories[clip.far] = model.far_memory(encoded[clip.far])
                    logits = model.predict(encoded[t], memories[clip.far], encoded[clip.steps[0]],
                                           encoded[clip.steps[1]], self.text)
                frame_hw = tuple(video.frame(t).shape[-2:])
                probabilities = preprocess.probabilities(logits, encoded[t].input_hw, frame_hw,
                                                         model.config.head_resize)
                labels = probabilities.argmax(dim=0)
            if self.record:
                self._record(video, t, clip, logits, probabilities, labels)
            if self.abstain_label is not None:
                labels[labels == self.abstain_label] = ABSTAIN
            yield labels.cpu()
            # Later targets read frames from t - 8 on, and the first and last frames (far, fixed lists).
            for i in [i for i in encoded if i < t - 8 and i not in (0, length - 1)]:
                del encoded[i]

    def _model(self):
        if self.model is None:
            raise ValueError("ov2vss-authors has no weights: pass the authors' checkpoint with --checkpoint "
                             "ov2vss-authors=PATH/100000.pth, or train it (`python -m benchmark train --method "
                             "ov2vss-authors`)")
        if self.text is None:
            raise ValueError("ov2vss-authors: call load(checkpoint) and setup(vocabulary, device) before segment()")
        return self.model

    def _encode(self, frame: torch.Tensor):
        self.encoder_passes += 1
        image = preprocess.prepare(frame, self.model.config.input_scale).to(self.device)
        with torch.no_grad():
            return self.model.encode(image, self.clip)

    def _record(self, video: Video, t: int, clip: clips.Clip, logits: torch.Tensor, probabilities: torch.Tensor,
                labels: torch.Tensor) -> None:
        """Their outputs for target t, for checking against their code: sigmoid maps, the final
        probabilities at every 16th row and column, labels and the top-1 minus top-2 margin."""
        top2 = probabilities.topk(2, dim=0).values
        folder = pathlib.Path(self.record) / video.name
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {"sigmoid": logits.float().sigmoid().cpu().numpy(),
                  "probabilities": probabilities[:, ::RECORD_STRIDE, ::RECORD_STRIDE].cpu().numpy(),
                  "labels": labels.cpu().numpy().astype(np.int16), "margin": (top2[0] - top2[1]).cpu().numpy(),
                  "clip": np.asarray(clip.frames), "names": np.asarray(self.names)}
        path = folder / f"{video.frame_id(t)}.npz"
        partial = path.with_name(path.name + ".partial")  # a kill never leaves half a file
        with open(partial, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(partial, path)

    def provenance(self) -> dict[str, Any]:
        info: dict[str, Any] = {"clip": {"weights": self.clip.weights if self.clip else None,
                                         "model": self.clip.name if self.clip else None},
                                "text": self.text_features_path or "encoded (their zeroshot_classifier)",
                                "background": self.background, "streaming": self.streaming}
        if self.checkpoint is not None:
            info["checkpoint"] = self.checkpoint
        return info

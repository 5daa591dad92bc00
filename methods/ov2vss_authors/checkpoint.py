"""Reading the authors' checkpoint (their README's `100000.pth`): an mmcv checkpoint
(`{"meta", "state_dict"[, "optimizer"]}`) or a bare state dict, loaded with `weights_only=True`.

Their keys load one to one into `AuthorsModel` (whose attribute names are theirs). CLIP is stored
inside, frozen, as `decode_head.predictor.clip_model.*` in OpenAI's layout. Everything else their
test never reads (the dead second `Corr`, the unused Aggregator, three of four aggregation layers, the
focal blocks, the auxiliary head, `cls_token`, ...) is skipped and counted. A missing or mis-shaped
tensor is an error naming the tensor and the file.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from methods import checkpoints
from methods.ov2vss_authors.model import AuthorsModel, ModelConfig

CLIP_PREFIX = "decode_head.predictor.clip_model."
EXPECTED = ("the authors' OV2VSS checkpoint (their README's 100000.pth: an mmcv checkpoint with 'state_dict', "
            "or a bare state dict with keys backbone.* and decode_head.*)")
#: Where a checkpoint written by this project keeps the widths it was built with (theirs: the defaults).
CONFIG_KEY = "ov2vss_authors_model_config"
#: ... and the open_clip model its CLIP is, when the tensors' shapes do not tell (theirs: ViT-B/16).
CLIP_MODEL_KEY = "ov2vss_authors_clip_model"
#: What a checkpoint trained here records in its meta, which provenance carries on.
TRAINING_KEYS = ("train_set", "seed", "train_config", "schedule", "clip_weights", "backbone_init", "iter")


@dataclass
class AuthorsCheckpoint:
    path: pathlib.Path
    format: str                                  # "mmcv" or "state_dict"
    config: ModelConfig
    model: dict[str, torch.Tensor]               # the keys AuthorsModel holds
    clip: dict[str, torch.Tensor]                # OpenAI layout, prefix removed
    skipped: dict[str, int] = field(default_factory=dict)   # prefix -> keys their test never reads
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """What provenance records: the file, its format, and what was loaded and skipped."""
        values = sum(t.numel() for t in self.model.values())
        return {"path": str(self.path), "format": self.format, "loaded_tensors": len(self.model),
                "loaded_values": values, "clip_tensors": len(self.clip), "skipped_tensors": sum(self.skipped.values()),
                "skipped_by_prefix": self.skipped}


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The key -> shape of every tensor the model holds (built on the meta device: no memory)."""
    with torch.device("meta"):
        model = AuthorsModel(config)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def _numpy_data() -> list:
    """numpy scalars, dtypes and arrays, which mmcv's `meta` may hold (under numpy 1's module names
    too): data, not code, so `weights_only` may rebuild them. Object arrays stay refused."""
    import numpy as np
    from numpy._core import multiarray

    allowed = [multiarray.scalar, multiarray._reconstruct, np.ndarray, np.dtype,
               (multiarray.scalar, "numpy.core.multiarray.scalar"),
               (multiarray._reconstruct, "numpy.core.multiarray._reconstruct")]
    return allowed + [type(np.dtype(code)) for code in ("?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2",
                                                         "f4", "f8", "U", "S")]


def read(path: str | pathlib.Path, mmap: bool = True) -> AuthorsCheckpoint:
    """Read and check a checkpoint; ValueError (naming the file and the tensor) when it does not fit."""
    path = pathlib.Path(path)
    with torch.serialization.safe_globals(_numpy_data()):
        stored = checkpoints.read(path, EXPECTED, mmap=mmap)
    if isinstance(stored, Mapping) and isinstance(stored.get("state_dict"), Mapping):
        state, meta, kind = stored["state_dict"], stored.get("meta") or {}, "mmcv"
    elif isinstance(stored, Mapping) and stored and all(isinstance(v, torch.Tensor) for v in stored.values()):
        state, meta, kind = stored, {}, "state_dict"
    else:
        found = sorted(stored)[:6] if isinstance(stored, Mapping) else type(stored).__name__
        raise ValueError(f"checkpoint {path} holds {found}, neither an mmcv checkpoint nor a state dict; "
                         f"expected {EXPECTED}")
    state = _without_module_prefix(state)
    config = ModelConfig.from_dict(meta.get(CONFIG_KEY) or {}) if isinstance(meta, Mapping) else ModelConfig()
    shapes = expected_shapes(config)
    clip = {key[len(CLIP_PREFIX):]: value for key, value in state.items() if key.startswith(CLIP_PREFIX)}
    if not clip:
        raise ValueError(f"checkpoint {path} has no CLIP weights ({CLIP_PREFIX}*); expected {EXPECTED}")
    missing = [key for key in shapes if key not in state]
    if missing:
        raise ValueError(f"checkpoint {path} misses {len(missing)} tensors the model reads, e.g. "
                         f"{', '.join(missing[:4])}; expected {EXPECTED}")
    wrong = [f"{key}: {tuple(state[key].shape)} in the file, {shapes[key]} expected" for key in shapes
             if tuple(state[key].shape) != shapes[key]]
    if wrong:
        raise ValueError(f"checkpoint {path} has tensors of the wrong shape ({'; '.join(wrong[:3])}); expected "
                         f"{EXPECTED}")
    skipped: dict[str, int] = {}
    for key in state:
        if key not in shapes and not key.startswith(CLIP_PREFIX):
            prefix = ".".join(key.split(".")[:2])
            skipped[prefix] = skipped.get(prefix, 0) + 1
    model = {key: state[key] for key in shapes}
    return AuthorsCheckpoint(path, kind, config, model, clip, skipped, dict(meta) if isinstance(meta, Mapping) else {})


def write(state: dict[str, torch.Tensor], path: pathlib.Path, meta: dict | None = None) -> pathlib.Path:
    """A checkpoint as mmcv's `save_checkpoint` writes it, {"meta": ..., "state_dict": ...}, written
    whole or not at all."""
    return checkpoints.save({"meta": dict(meta or {}), "state_dict": state}, path)


def _without_module_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys as their model names them, also when saved from a DistributedDataParallel wrapper."""
    if state and all(key.startswith("module.") for key in state):
        return {key[len("module."):]: value for key, value in state.items()}
    return dict(state)

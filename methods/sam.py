"""Segment Anything: model types as data, loading from local checkpoints, the automatic mask generator.

The model types are segment_anything's own (`vit_b`, `vit_l`, `vit_h`, built exactly as its
`build_sam` builds them) plus two small configurations of the same parts: `tiny`, random weights
for tests and CPU smoke runs, and `toy`, the size `methods.toy.sam_pretrain` trains on the
synthetic world (a stand-in for ViT-B whose automatic masks mean something on a CPU). Weights come
from a local checkpoint (Meta's `sam_vit_b_01ec64.pth` and friends, or a toy one), checked against
the model type before anything is built; or random, with a warning.
"""

from __future__ import annotations

import functools
import logging
import os
import pathlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from methods import checkpoints

log = logging.getLogger(__name__)

#: Environment variable naming a local SAM checkpoint that `checkpoint="auto"` uses.
CHECKPOINT_ENV = "BENCHMARK_SAM_CHECKPOINT"
#: Random weights are drawn from this seed, so every process builds the same random SAM.
RANDOM_WEIGHTS_SEED = 0
DOWNLOADS = "https://github.com/facebookresearch/segment-anything#model-checkpoints"


@dataclass(frozen=True)
class SamConfig:
    """The sizes of a SAM model (what segment_anything's `_build_sam` takes, and what it fixes)."""

    encoder_embed_dim: int
    encoder_depth: int
    encoder_num_heads: int
    encoder_global_attn_indexes: tuple[int, ...]
    image_size: int = 1024
    patch_size: int = 16
    window_size: int = 14
    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    iou_head_hidden_dim: int = 256
    checkpoint_name: str | None = None  # Meta's file name for these weights


SAM_CONFIGS: dict[str, SamConfig] = {
    "vit_b": SamConfig(768, 12, 12, (2, 5, 8, 11), checkpoint_name="sam_vit_b_01ec64.pth"),
    "vit_l": SamConfig(1024, 24, 16, (5, 11, 17, 23), checkpoint_name="sam_vit_l_0b3195.pth"),
    "vit_h": SamConfig(1280, 32, 16, (7, 15, 23, 31), checkpoint_name="sam_vit_h_4b8939.pth"),
    # Every part at a small size: inputs resized to 128 on the long side, an 8x8 token grid.
    "tiny": SamConfig(64, 4, 2, (1, 3), image_size=128, window_size=4, prompt_embed_dim=32, mask_in_chans=8,
                      decoder_mlp_dim=64, decoder_num_heads=2, iou_head_hidden_dim=32),
    # Pretrained on the synthetic world (methods.toy.sam_pretrain): 96 px inputs, so its 96-wide frames go in
    # unresized; 8 px patches give a 12x12 grid and 48x48 mask logits, 2 px per logit for 20-40 px shapes.
    # (encoder width, depth) must differ from every other type's: checkpoint_type tells them apart by it.
    "toy": SamConfig(96, 4, 4, (1, 3), image_size=96, patch_size=8, window_size=6, prompt_embed_dim=64,
                     mask_in_chans=8, decoder_mlp_dim=256, decoder_num_heads=4, iou_head_hidden_dim=64),
}
#: The paper's SAM rows use ViT-B; `auto` prefers it when several checkpoints are found.
PAPER_MODEL = "vit_b"
TINY_MODEL = "tiny"
TOY_MODEL = "toy"
#: How the paper's tables name each SAM image encoder ("ViT-B2" is SAM's ViT-B); tiny and toy stand in for it.
TABLE_LABELS: dict[str, tuple[str, bool]] = {"vit_b": ("ViT-B2", False), "vit_l": ("ViT-L", False),
                                             "vit_h": ("ViT-H", False), "tiny": ("ViT-B2", True),
                                             "toy": ("ViT-B2", True)}


def build_sam(config: SamConfig):
    """A segment_anything `Sam` with random weights, built as `build_sam` builds Meta's models."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    grid = config.image_size // config.patch_size
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=config.encoder_depth, embed_dim=config.encoder_embed_dim, img_size=config.image_size, mlp_ratio=4,
            norm_layer=functools.partial(torch.nn.LayerNorm, eps=1e-6), num_heads=config.encoder_num_heads,
            patch_size=config.patch_size, qkv_bias=True, use_rel_pos=True,
            global_attn_indexes=config.encoder_global_attn_indexes, window_size=config.window_size,
            out_chans=config.prompt_embed_dim),
        prompt_encoder=PromptEncoder(
            embed_dim=config.prompt_embed_dim, image_embedding_size=(grid, grid),
            input_image_size=(config.image_size, config.image_size), mask_in_chans=config.mask_in_chans),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=config.decoder_depth, embedding_dim=config.prompt_embed_dim,
                                          mlp_dim=config.decoder_mlp_dim, num_heads=config.decoder_num_heads),
            transformer_dim=config.prompt_embed_dim, iou_head_depth=3,
            iou_head_hidden_dim=config.iou_head_hidden_dim),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()


@dataclass
class LoadedSam:
    model: Any          # segment_anything.Sam, eval mode, frozen, on `device`
    name: str           # the model type
    weights: str        # a checkpoint path, or "random"
    device: torch.device


_LOADED: OrderedDict[tuple, LoadedSam] = OrderedDict()


def load_sam(model: str = "auto", checkpoint: str | os.PathLike | None = "auto",
             device: torch.device | str = "cpu") -> LoadedSam:
    """A SAM model of type `model` with weights from `checkpoint`, frozen, in eval mode.

    `checkpoint`: a local file (Meta's release, e.g. sam_vit_b_01ec64.pth, or any state dict of a
    `Sam`); 'random'; or 'auto': ${CHECKPOINT_ENV} when set, else Meta's file for the model type in
    torch hub's checkpoint folder, else (for `auto` and `toy`) the toy SAM shipped in `weights/toy/`,
    else random weights with a warning. `model='auto'` is the type
    the checkpoint's shapes say, or (without weights) `tiny`: random weights mean nothing at any
    size. Loaded models are kept per process, so the cells of a run share one copy.
    """
    if model != "auto" and model not in SAM_CONFIGS:
        raise ValueError(f"unknown SAM model type {model!r}; choose one of {', '.join(SAM_CONFIGS)} or auto "
                         "(segment_anything's vit_b, vit_l, vit_h, our tiny test configuration, and toy, "
                         "pretrained on the synthetic world by methods.toy.sam_pretrain)")
    device = torch.device(device)
    weights = _resolve_checkpoint(model, checkpoint)
    state = None
    if weights != "random":
        state = checkpoints.read_state_dict(weights, f"a segment_anything checkpoint such as "
                                                     f"{SAM_CONFIGS[PAPER_MODEL].checkpoint_name}")
        model = _check_type(state, weights, model)
    elif model == "auto":
        model = TINY_MODEL
    key = (model, weights, str(device))
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    if state is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_WEIGHTS_SEED)
            sam = build_sam(SAM_CONFIGS[model])
    else:
        sam = build_sam(SAM_CONFIGS[model])
        checkpoints.load_strict(sam, state, weights, f"the SAM {model} model",
                                f"a complete segment_anything {model} checkpoint")
    sam.requires_grad_(False).to(device)
    _LOADED[key] = loaded = LoadedSam(sam, model, weights, device)
    while len(_LOADED) > 1:  # a run uses one SAM; hold no more than that in (GPU) memory
        _LOADED.popitem(last=False)
    return loaded


def mask_generator(sam: LoadedSam, **parameters: Any):
    """segment_anything's SamAutomaticMaskGenerator on this model, masks as boolean arrays."""
    from segment_anything import SamAutomaticMaskGenerator

    return SamAutomaticMaskGenerator(sam.model, output_mode="binary_mask", **parameters)


def _resolve_checkpoint(model: str, checkpoint: str | os.PathLike | None) -> str:
    value = "random" if checkpoint is None else str(checkpoint)
    if value.lower() in checkpoints.RANDOM:
        return "random"
    if value != "auto":
        path = pathlib.Path(value).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"SAM checkpoint {path} does not exist; expected a segment_anything checkpoint "
                                    f"such as {SAM_CONFIGS[PAPER_MODEL].checkpoint_name} (from {DOWNLOADS}), or "
                                    "'random' for random weights")
        return str(path.resolve())
    if os.environ.get(CHECKPOINT_ENV):
        try:
            return _resolve_checkpoint(model, os.environ[CHECKPOINT_ENV])
        except FileNotFoundError as error:
            raise FileNotFoundError(f"${CHECKPOINT_ENV}: {error}") from error
    found = _cached_release(model)
    if found:
        return found
    if model in ("auto", TOY_MODEL):
        from methods.toy import shipped

        toy = shipped.path(shipped.SAM)
        if toy:
            return str(toy.resolve())
    log.warning("SAM: no checkpoint given (set $%s or the method's sam_checkpoint option) and none of Meta's "
                "files in %s; using RANDOM weights, so masks are meaningless", CHECKPOINT_ENV, _hub_folder())
    return "random"


def _hub_folder() -> pathlib.Path:
    return pathlib.Path(torch.hub.get_dir()) / "checkpoints"


def _cached_release(model: str) -> str | None:
    """Meta's checkpoint for `model` (for 'auto': ViT-B first) when torch hub's folder holds it."""
    types = [model] if model != "auto" else [PAPER_MODEL, *(m for m in SAM_CONFIGS if m != PAPER_MODEL)]
    for name in types:
        filename = SAM_CONFIGS[name].checkpoint_name
        if filename and (_hub_folder() / filename).is_file():
            return str(_hub_folder() / filename)
    return None


def checkpoint_type(state: Mapping[str, torch.Tensor]) -> str | None:
    """The model type whose encoder width and depth the state dict has (None: no known type)."""
    patch = state.get("image_encoder.patch_embed.proj.weight")
    if patch is None:
        return None
    depth = 1 + max((int(k.split(".")[2]) for k in state if k.startswith("image_encoder.blocks.")), default=-1)
    for name, config in SAM_CONFIGS.items():
        if (config.encoder_embed_dim, config.encoder_depth) == (patch.shape[0], depth):
            return name
    return None


def _check_type(state: Mapping[str, torch.Tensor], path: str, model: str) -> str:
    """The model type to build for this checkpoint; a clear error when it is not `model`."""
    found = checkpoint_type(state)
    if found is None:
        patch = state.get("image_encoder.patch_embed.proj.weight")
        shape = "no image_encoder.patch_embed.proj.weight" if patch is None else f"encoder width {patch.shape[0]}"
        raise ValueError(f"SAM checkpoint {path} fits none of the model types {', '.join(SAM_CONFIGS)} ({shape}); "
                         f"expected a segment_anything checkpoint such as {SAM_CONFIGS[PAPER_MODEL].checkpoint_name}")
    if model not in ("auto", found):
        raise ValueError(f"SAM checkpoint {path} is a {found} checkpoint, but the model type is {model}; pass "
                         f"sam_model={found} (or auto), or a {model} checkpoint"
                         + (f" ({SAM_CONFIGS[model].checkpoint_name})" if SAM_CONFIGS[model].checkpoint_name else ""))
    return found

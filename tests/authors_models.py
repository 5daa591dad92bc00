"""Small rule-free checkpoints in the authors' format for tests: their key layout (mmcv checkpoint,
CLIP inside in OpenAI's layout), tiny widths recorded in the meta, seeded random values."""

from __future__ import annotations

import pathlib

import torch

from methods.ov2vss_authors.model import AuthorsModel, ModelConfig
from methods.ov2vss_authors.checkpoint import CLIP_PREFIX, CONFIG_KEY
from methods.ov2vss_authors.checkpoint import write as write_mmcv_checkpoint

TINY = ModelConfig(embed_dim=32, depth=8, num_heads=2, window_size=4, global_blocks=(1, 3, 5, 7), pretrain_grid=8,
                   channels=32, regions=5, region_hidden=16, heads=2, cost_channels=24, appearance=16, guidance=16,
                   text_dim=64, clip_input=64, clip_patch=8, output=40, input_scale=128, head_resize=64)
#: Keys their checkpoint holds that their model never reads (a few of the 714).
UNUSED = {"backbone.cls_token": (1, 1, 32), "decode_head.conv_seg.weight": (124, 32, 1, 1),
          "decode_head.corr.conv1.weight": (8, 8, 7, 7)}


def tiny_clip_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A tiny ViT CLIP (width 64, 2 layers, patch 8) in OpenAI's layout."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIP(64, CLIPVisionCfg(layers=2, width=64, patch_size=8, image_size=64),
                     CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=2), quick_gelu=True)
    return model.state_dict()


def tiny_state(seed: int = 0) -> dict[str, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AuthorsModel(TINY)
        for name, parameter in model.named_parameters():  # non-trivial norms and biases, so every path matters
            if parameter.ndim == 1 and not name.endswith("alpha"):
                parameter.data.add_(torch.randn_like(parameter) * 0.1)
        model.decode_head.predictor.prompts_generator.alpha.data.fill_(0.05)
    state = dict(model.state_dict())
    state.update({CLIP_PREFIX + k: v for k, v in tiny_clip_state(seed).items()})
    state.update({k: torch.randn(shape) for k, shape in UNUSED.items()})
    return state


def write_tiny(path: pathlib.Path, seed: int = 0, state: dict | None = None) -> pathlib.Path:
    return write_mmcv_checkpoint(state if state is not None else tiny_state(seed), path,
                                 {CONFIG_KEY: TINY.to_dict(), "mmcv_version": "1.7.2"})

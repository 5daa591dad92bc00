"""The authors' OV2VSS at test time (`EncoderDecoder_clips` with `SegFormerHead_CAT`, config
`local_configs/vit/vitb/vitb.py`), split so that a video encodes each frame once.

Their head runs on a whole clip [far, t-9, t-6, t-3, t] and returns the target's map; every
operation on the target's path is per frame except STCF and RFE, which read the far frame, t-9 and
t-6 (`segformer_voca.py:317-461`). So a frame's encoding (`encode`: backbone, the `linear_down`
projections, CLIP's dense tokens) and the far frame's memory (`far_memory`: STCF's first keys and
values, RFE's 81 region vectors) can be computed once and reused by every target that reads them;
`predict` combines them exactly as their clip forward does. RFE quirks (`segformer_voca.py:392-438`):
the region vectors come from a 3x3 conv over a 1 x M strip of pooled tokens (so it mixes adjacent
tokens of different pooling grids), a softmax over the tokens gives 81 regions (`num_seen_classes`),
attention without q/k/v bias and without LayerNorm reads them, and its output replaces the target's
feature through a raw reshape (HW, C) -> (C, H, W), which scrambles channels and positions; no
residual. The image-only path (t < 3) guides the decoder with the SegFormer MLP features instead.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from methods.ov2vss_authors.backbone import SamEncoder
from methods.ov2vss_authors.predictor import Attention, CostHead, VideoTextPrompt
from methods.ov2vss_authors.stcf import STCF, Pooling


@dataclass(frozen=True)
class ModelConfig:
    """Widths of the authors' model; the defaults are their `vitb.py` (tests build smaller ones)."""

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    window_size: int = 14
    global_blocks: tuple[int, ...] = (2, 5, 8, 11)
    pretrain_grid: int = 64          # SAM's 1024 / 16: the position embedding's grid
    channels: int = 256              # the neck's output and every head feature
    regions: int = 81                # num_seen_classes: RFE's region count
    region_hidden: int = 512         # dsn_head's width
    heads: int = 8                   # RFE attention heads
    templates: int = 80              # prompt templates: the cost volume's input channels
    cost_channels: int = 80
    appearance: int = 128
    guidance: int = 64
    text_dim: int = 512              # CLIP's embedding width
    clip_input: int = 384
    clip_patch: int = 16
    output: int = 120
    input_scale: int = 1024          # frames are resized keeping their ratio to fit input_scale^2 ...
    head_resize: int = 480           # ... and the head's maps resized to head_resize^2 before the input size

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown ov2vss-authors model options {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def clip_grid(self) -> int:
        return self.clip_input // self.clip_patch


#: Model configs as data: `vitb` (theirs) and `toy` (the synthetic world's stand-in).
CONFIG_DIR = pathlib.Path(__file__).parent / "configs"


def architecture(name: str) -> ModelConfig:
    """A model config by name (a file in `configs/`) or a path to a JSON file of ModelConfig fields."""
    path = pathlib.Path(name) if name.endswith(".json") else CONFIG_DIR / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
        raise ValueError(f"ov2vss-authors architecture={name!r}: no such config; choose one of {', '.join(known)} "
                         "or give a .json file of ModelConfig fields")
    try:
        data = json.loads(path.read_text())
        return ModelConfig.from_dict({k: v for k, v in data.items() if not k.startswith("_")})
    except (ValueError, TypeError, AttributeError) as error:
        raise ValueError(f"model config {path}: {error}") from error


class Encoded(NamedTuple):
    """One frame as the head reads it."""

    maps: list[torch.Tensor]     # the backbone's 4 maps [1, C, h, w] (blocks 2, 5, 8, 11)
    down: list[torch.Tensor]     # their `linear_down_c1..4` of those maps [1, C, h, w]
    clip: torch.Tensor           # CLIP dense tokens [1, D, g, g] of the squashed input
    input_hw: tuple[int, int]    # the size the frame was resized to


class FarMemory(NamedTuple):
    """What every target reads of its far frame."""

    stcf: list[tuple[torch.Tensor, torch.Tensor]]
    regions: torch.Tensor        # RFE's region vectors [1, M_regions, C]


class MLP(nn.Module):
    """Their SegFormer `MLP`: a linear map of every position, [B, C, h, w] -> [B, h*w, E]."""

    def __init__(self, inputs: int, outputs: int):
        super().__init__()
        self.proj = nn.Linear(inputs, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.flatten(2).transpose(1, 2))


class ConvBN(nn.Module):
    """mmcv's ConvModule(1x1, BN, ReLU) of `linear_fuse` (SyncBN, in eval a BatchNorm)."""

    def __init__(self, inputs: int, outputs: int):
        super().__init__()
        self.conv = nn.Conv2d(inputs, outputs, 1, bias=False)
        self.bn = nn.BatchNorm2d(outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class Predictor(nn.Module):
    """The parts of their `CatClassifier` that hold weights besides CLIP (which `DenseClip` holds)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.prompts_generator = VideoTextPrompt(config.text_dim)
        self.corr = CostHead(config.templates, config.cost_channels, config.channels, config.appearance,
                             config.guidance, 3, config.clip_grid, config.output)


class Head(nn.Module):
    """Their `SegFormerHead_CAT` as it reaches the target's output."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = config.channels
        for k in range(1, 5):
            setattr(self, f"linear_c{k}", MLP(c, c))
            setattr(self, f"linear_down_c{k}", MLP(c, c))
            setattr(self, f"pooling_mhsa_c{k}", Pooling(c))
        self.linear_fuse = ConvBN(4 * c, c)
        self.pooling_linear = nn.Linear(4 * c, c)
        self.hypercorre_module = STCF(c)
        self.dsn_head = nn.Sequential(nn.Conv2d(c, config.region_hidden, 3, padding=1),
                                      nn.BatchNorm2d(config.region_hidden), nn.ReLU(), nn.Dropout2d(0.05),
                                      nn.Conv2d(config.region_hidden, config.regions, 1))
        # Training only: classes (num_seen_classes) of the target's STCF feature, before RFE.
        self.aux_head = nn.Sequential(nn.Conv2d(c, c, 1), nn.BatchNorm2d(c), nn.ReLU(),
                                      nn.Conv2d(c, config.regions, 1))
        self.mul_attention = Attention(c, config.heads)
        self.predictor = Predictor(config)


class AuthorsModel(nn.Module):
    """`backbone` and `decode_head` hold their keys (minus those their test never reads)."""

    def __init__(self, config: ModelConfig = ModelConfig()):
        super().__init__()
        self.config = config
        self.backbone = SamEncoder(config.embed_dim, config.depth, config.num_heads, 16, config.pretrain_grid,
                                   config.window_size, config.global_blocks, config.channels)
        self.decode_head = Head(config)

    # -- per frame -------------------------------------------------------------------------------

    def encode(self, image: torch.Tensor, clip) -> Encoded:
        """A normalised input [1, 3, H, W] -> its encoding; `clip` is a `methods.clip.DenseClip`."""
        head = self.decode_head
        maps = self.backbone(image)
        down = [getattr(head, f"linear_down_c{k + 1}")(x).reshape(1, *x.shape[-2:], -1).permute(0, 3, 1, 2)
                for k, x in enumerate(maps)]
        side = self.config.clip_input
        squashed = F.interpolate(image, size=(side, side), mode="bilinear", align_corners=False)
        return Encoded(maps, down, clip.dense_features(squashed), tuple(image.shape[-2:]))

    def far_memory(self, far: Encoded) -> FarMemory:
        head = self.decode_head
        pooled = [getattr(head, f"pooling_mhsa_c{k + 1}")(x[:, None]) for k, x in enumerate(far.down)]
        tokens = head.pooling_linear(torch.cat(pooled, dim=-1).squeeze(1))            # [1, M, C]
        strip = tokens.unsqueeze(0).permute(0, 3, 1, 2)                               # [1, C, 1, M]
        weights = head.dsn_head(strip).flatten(2).softmax(dim=2)                      # [1, R, M]
        regions = weights @ strip.flatten(2).permute(0, 2, 1)                         # [1, R, C]
        return FarMemory(head.hypercorre_module.memory(far.down), regions)

    # -- per target ------------------------------------------------------------------------------

    def predict(self, target: Encoded, far: FarMemory, t9: Encoded, t6: Encoded, text: torch.Tensor) -> torch.Tensor:
        """Class logits [K, g, g] of a target read with its clip (t-3 is never read)."""
        fused = self.decode_head.hypercorre_module(far.stcf, t9.down, t6.down, target.down)   # [1, C, h, w]
        return self._predict_fused(fused, far, target, text)

    def _predict_fused(self, fused: torch.Tensor, far: FarMemory, target: Encoded, text: torch.Tensor) -> torch.Tensor:
        channels, height, width = fused.shape[1:]
        attended = self.decode_head.mul_attention(fused.flatten(2).transpose(1, 2), far.regions)  # [1, h*w, C]
        scrambled = attended.reshape(1, channels, height, width)                      # quirk: raw reshape
        return self._classify(scrambled, target, text)

    def predict_image_only(self, target: Encoded, text: torch.Tensor) -> torch.Tensor:
        """Class logits [K, g, g] of a target read alone (their path for clips shorter than 5)."""
        return self._classify(self._segformer(target.maps), target, text)

    def _segformer(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """Their SegFormer MLP decoder over frames [N, C, h, w] at half its grid [N, C, h/2, w/2]."""
        head = self.decode_head
        size = maps[0].shape[-2:]          # block 2's grid (all four share it)
        parts = []
        for k in (4, 3, 2, 1):
            x = maps[k - 1]
            x = getattr(head, f"linear_c{k}")(x).permute(0, 2, 1).reshape(x.shape[0], -1, *x.shape[-2:])
            parts.append(F.interpolate(x, size=size, mode="bilinear", align_corners=False) if k > 1 else x)
        fused = head.linear_fuse(torch.cat(parts, dim=1))
        half = (int(fused.shape[-2] / 2), int(fused.shape[-1] / 2))
        return F.interpolate(fused, size=half, mode="bilinear", align_corners=False)

    # -- training --------------------------------------------------------------------------------

    def forward_train(self, clip_frames: torch.Tensor, clip, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Their training forward on one clip [5, 3, S, S] (far, t-9, t-6, t-3, t; normalised) ->
        (the target's class logits, the auxiliary head's), each [1, K, output, output].

        As theirs: the backbone reads all five frames; the SegFormer decoder runs on all five,
        moving linear_fuse's BatchNorm statistics (which their image-only test path uses); the far
        frame's dsn_head BatchNorm normalises over its tokens; the auxiliary head reads the target's
        STCF feature before RFE. Their head also predicts t-9, t-6 and t-3, which the loss never reads
        (not computed here); but t-9's prediction is guided by the far frame's SegFormer feature, so
        the SegFormer decoder sits in the loss's graph with a gradient of exactly zero, and AdamW
        still decays its weights every step. The zero term added to the logits keeps that so."""
        head = self.decode_head
        maps = self.backbone(clip_frames)
        down = [getattr(head, f"linear_down_c{k + 1}")(x).reshape(x.shape[0], *x.shape[-2:], -1).permute(0, 3, 1, 2)
                for k, x in enumerate(maps)]
        in_graph_unused = self._segformer(maps)[:1].sum() * 0.0
        frames = [Encoded([x[i:i + 1] for x in maps], [x[i:i + 1] for x in down], None, tuple(clip_frames.shape[-2:]))
                  for i in range(clip_frames.shape[0])]
        side = self.config.clip_input
        with torch.no_grad():  # CLIP is frozen and reads the target only
            squashed = F.interpolate(clip_frames[-1:], size=(side, side), mode="bilinear", align_corners=False)
            target = frames[-1]._replace(clip=clip.dense_features(squashed))
        far = self.far_memory(frames[0])
        fused = head.hypercorre_module(far.stcf, frames[1].down, frames[2].down, target.down)
        size = (self.config.output, self.config.output)
        aux = F.interpolate(head.aux_head(fused), size=size, mode="bilinear", align_corners=False)
        return self._predict_fused(fused, far, target, text)[None] + in_graph_unused, aux

    def _classify(self, guidance: torch.Tensor, target: Encoded, text: torch.Tensor) -> torch.Tensor:
        predictor = self.decode_head.predictor
        text = text[None]
        text = text + predictor.prompts_generator(text, target.clip)
        return predictor.corr(guidance, target.clip, target.down[3], text)[0]

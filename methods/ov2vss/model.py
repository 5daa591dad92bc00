"""The OV2VSS model (Fig. 3): per-frame encoding, then the clip's decoding into class logits.

`encode` runs everything that depends on one frame alone: the backbone pyramid U^l, CLIP's dense
features F^V and the P2T tokens D^l (Eq. 2). `decode` takes the target frame's encoding, its past
frames' and the distant frame's, and applies the video modules: STCF (Eq. 3-7) adds the temporal
context to the target's feature, RFE (Eq. 8-10) reads the distant frame, VTE (Eq. 11) refines the
text with the clip's CLIP features, and the cost volume (Eq. 12-13) is fused with the feature and
classified per class (Eq. 14). The split is what lets inference encode each frame of a video once.

With every video module off this is the image-only baseline (clip-cost-volume `trained`). CLIP stays
outside the module's parameters: it is frozen and shared, and checkpoints hold only what is trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from methods import clip as clip_module
from methods.ov2vss.backbones import create_backbone
from methods.ov2vss.backbones import normalize as backbone_normalize
from methods.ov2vss.cost import CostRefinement
from methods.ov2vss.fpn import PyramidFusion
from methods.ov2vss.head import AuxHead, ClassHead
from methods.ov2vss.p2t import P2TEncoder
from methods.ov2vss.rfe import RandomFrameEnhancement
from methods.ov2vss.stcf import SpatialTemporalFusion
from methods.ov2vss.vte import MODES as VTE_MODES
from methods.ov2vss.vte import VideoTextEncoder


@dataclass(frozen=True)
class ModelConfig:
    """The architecture: what a checkpoint must match. Widths are the paper's ViT-B2 setting; the
    video modules are off (the image-only model) unless switched on, as OV2VSS's variants do."""

    backbone: str = "sam-vit-b"
    clip_model: str = clip_module.PAPER_MODEL
    clip_input: int = clip_module.PAPER_INPUT_SIZE   # CLIP sees a square crop at this size, a frame's short side
    prompts: str = "imagenet"
    last_block: str = "value"
    cost_channels: int = 128
    feature_channels: int = 128
    head_channels: int = 64
    head_stride: int = 8                              # logits at 1/8 of the input, then upsampled
    fusion: str = "concat"
    stcf: bool = False
    rfe: bool = False
    vte: str = "off"                                  # off, attn, attn-ffn
    temporal_scales: int = 3                          # STCF and RFE use the deepest scales (strides 8, 16, 32)
    pool_sizes: tuple[int, ...] = (2, 4, 8, 12)       # P2T's pooled grids
    regions: int = 16                                 # RFE's soft regions
    heads: int = 8                                    # RFE's attention heads
    text_heads: int = 8                               # VTE's attention heads

    def __post_init__(self):
        object.__setattr__(self, "pool_sizes", tuple(int(s) for s in self.pool_sizes))  # JSON gives a list
        if self.vte not in VTE_MODES:
            raise ValueError(f"vte={self.vte!r}: choose one of {', '.join(VTE_MODES)}")
        if not 1 <= self.temporal_scales <= 4 or not self.pool_sizes or min(self.pool_sizes) < 1:
            raise ValueError(f"temporal_scales={self.temporal_scales} (1..4), pool_sizes={self.pool_sizes} "
                             "(positive grid sizes) are out of range")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}; known: {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FrameFeatures:
    """One encoding pass over a batch of frames: everything `decode` needs from them."""

    pyramid: list[torch.Tensor]              # U^l [B, C_l, H/s, W/s], strides 4, 8, 16, 32
    clip: torch.Tensor                       # F^V [B, D, h, w]
    maps: list[torch.Tensor] | None          # X^l, the fused scales projected (STCF's queries)
    tokens: list[torch.Tensor] | None        # D^l, their P2T tokens
    size: tuple[int, int]                    # the input's height and width

    def take(self, index: int) -> FrameFeatures:
        """Frame `index` of the batch, as a batch of one."""
        pick = slice(index, index + 1)
        return FrameFeatures([x[pick] for x in self.pyramid], self.clip[pick],
                             None if self.maps is None else [x[pick] for x in self.maps],
                             None if self.tokens is None else [x[pick] for x in self.tokens], self.size)


class OV2VSSModel(nn.Module):
    def __init__(self, config: ModelConfig, backbone_pretrained: str | None = None):
        super().__init__()
        self.config = config
        self.backbone = create_backbone(config.backbone, backbone_pretrained)
        channels = tuple(self.backbone.channels)
        text_dim = clip_module.embed_dim(config.clip_model)
        templates = len(clip_module.prompt_templates(config.prompts))
        self.cost = CostRefinement(templates, config.cost_channels, channels[0])
        self.pyramid = PyramidFusion(channels, config.feature_channels)
        self.head = ClassHead(config.cost_channels, config.feature_channels, config.head_channels, config.fusion)
        width, scales = config.feature_channels, config.temporal_scales
        video = config.stcf or config.rfe
        self.p2t = P2TEncoder(channels[-scales:], width, config.pool_sizes) if video else None
        self.stcf = SpatialTemporalFusion(scales, width, self.p2t.tokens) if config.stcf else None
        self.aux = AuxHead(width, text_dim) if config.stcf else None
        self.rfe = RandomFrameEnhancement(scales, width, config.regions, config.heads) if config.rfe else None
        self.vte = VideoTextEncoder(text_dim, config.text_heads, config.vte == "attn-ffn") if config.vte != "off" else None

    def head_parameters(self) -> list[nn.Parameter]:
        """Everything but the backbone: the part the recipe trains at 10x the learning rate."""
        return [p for name, p in self.named_parameters() if not name.startswith("backbone.")]

    def clip_size(self, height: int, width: int, patch: int) -> tuple[int, int]:
        """CLIP's input for a frame: a square crop at `clip_input`, any other frame with its short side
        there and its aspect kept (so CLIP sees objects at the scale it saw them in training)."""
        scale = self.config.clip_input / min(height, width)
        return tuple(max(patch, round(side * scale / patch) * patch) for side in (height, width))

    def encode(self, images: torch.Tensor, clip: clip_module.DenseClip) -> FrameFeatures:
        """uint8 RGB frames [B, 3, H, W] -> their features (one encoder pass per frame)."""
        height, width = images.shape[-2:]
        pyramid = self.backbone(backbone_normalize(images))
        size = self.clip_size(height, width, clip.patch_size)
        clip_input = F.interpolate(images.float(), size=size, mode="bilinear", align_corners=False)
        dense = clip.dense_features(clip_module.normalize(clip_input), self.config.last_block)
        maps = tokens = None
        if self.p2t is not None:
            maps, tokens = self.p2t(pyramid[-self.config.temporal_scales:])
        return FrameFeatures(pyramid, dense, maps, tokens, (height, width))

    def decode(self, target: FrameFeatures, text: torch.Tensor, past: list[FrameFeatures] = (),
               distant: FrameFeatures | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The target frame, text embeddings [T, C, D], its past frames (oldest first) and the distant
        frame -> logits [B, C, H/stride, W/stride] and, with STCF in training, the auxiliary logits (Eq. 7)."""
        frames = [*past, target]
        stride = self.config.head_stride
        size = tuple(-(-side // stride) for side in target.size)
        clip_text = text if self.vte is None else self.vte(text, torch.stack([f.clip for f in frames], dim=1))
        cost = self.cost(clip_module.cost_volume(target.clip, clip_text), target.pyramid[0])
        feature = self.pyramid(target.pyramid, size)                               # the target's own feature
        if self.stcf is not None and past:
            context = self.stcf([f.maps for f in frames], past[0].tokens, self.p2t)
            feature = feature + F.interpolate(context, size=size, mode="bilinear", align_corners=False)  # O_t
        aux = self.aux(feature, text) if self.aux is not None and self.training else None
        if self.rfe is not None and distant is not None:
            feature = self.rfe(feature, distant.tokens)                            # Ô_t
        return self.head(cost, feature), aux

    def forward(self, images: torch.Tensor, clip: clip_module.DenseClip, text: torch.Tensor) -> torch.Tensor:
        """Frames on their own (no past, no distant frame): uint8 [B, 3, H, W] -> logits."""
        return self.decode(self.encode(images, clip), text)[0]

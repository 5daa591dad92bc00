"""The cost-volume segmenter: a backbone, the frozen CLIP's cost volume, its refinement, and the head.

With the video modules switched off this is the image-only baseline ("Baseline w/o text" in Table
III, the image-only row of Table I): backbone features of the frame, the CLIP cost volume refined and
given the shallow features (Eq. 12-13), fused with the frame's pyramid feature and classified per
class (Eq. 14). CLIP stays outside the module's parameters: it is frozen and shared, and checkpoints
hold only what is trained.
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
from methods.ov2vss.head import ClassHead


@dataclass(frozen=True)
class ModelConfig:
    """The architecture: what a checkpoint must match. Defaults are the paper's ViT-B2 setting."""

    backbone: str = "sam-vit-b"
    clip_model: str = clip_module.PAPER_MODEL
    clip_input: int = clip_module.PAPER_INPUT_SIZE   # CLIP sees each crop resized to this square
    prompts: str = "imagenet"
    last_block: str = "value"
    cost_channels: int = 128
    feature_channels: int = 128
    head_channels: int = 64
    head_stride: int = 8                              # logits at 1/8 of the input, then upsampled
    fusion: str = "concat"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}; known: {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CostVolumeSegmenter(nn.Module):
    def __init__(self, config: ModelConfig, backbone_pretrained: str | None = None):
        super().__init__()
        self.config = config
        self.backbone = create_backbone(config.backbone, backbone_pretrained)
        templates = len(clip_module.prompt_templates(config.prompts))
        channels = tuple(self.backbone.channels)
        self.cost = CostRefinement(templates, config.cost_channels, channels[0])
        self.pyramid = PyramidFusion(channels, config.feature_channels)
        self.head = ClassHead(config.cost_channels, config.feature_channels, config.head_channels, config.fusion)

    def head_parameters(self) -> list[nn.Parameter]:
        """Everything but the backbone: the part the recipe trains at 10x the learning rate."""
        return [p for name, p in self.named_parameters() if not name.startswith("backbone.")]

    def forward(self, images: torch.Tensor, clip: clip_module.DenseClip, text: torch.Tensor) -> torch.Tensor:
        """uint8 RGB [B, 3, H, W] and text embeddings [T, C, D] -> logits [B, C, H/stride, W/stride]."""
        height, width = images.shape[-2:]
        features = self.backbone(backbone_normalize(images))
        size = self.config.clip_input
        clip_input = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False)
        dense = clip.dense_features(clip_module.normalize(clip_input), self.config.last_block)
        cost = clip_module.cost_volume(dense, text)
        stride = self.config.head_stride
        feature = self.pyramid(features, (-(-height // stride), -(-width // stride)))
        return self.head(self.cost(cost, features[0]), feature)

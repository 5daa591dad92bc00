"""The prediction head (Eq. 14-15): the per-class cost embedding fused with the frame's feature.

The cost embedding is upsampled to the head's resolution and fused with the image feature (Ô_t in
OV2VSS; the frame's own pyramid feature in the image-only baseline) by concatenation or, for the
Table III ablation, element-wise addition; a small convolutional head gives one logit per class and
pixel. Classes stay folded into the batch, so the head serves any vocabulary.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

FUSIONS = ("concat", "add")


class ClassHead(nn.Module):
    def __init__(self, cost_channels: int, feature_channels: int, hidden: int, fusion: str = "concat"):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion={fusion!r}: choose one of {', '.join(FUSIONS)}")
        self.fusion = fusion
        # Addition needs equal widths: the feature is projected to the cost embedding's.
        self.align = nn.Conv2d(feature_channels, cost_channels, 1) if fusion == "add" else nn.Identity()
        width = cost_channels if fusion == "add" else cost_channels + feature_channels
        self.layers = nn.Sequential(
            nn.Conv2d(width, hidden, 3, padding=1), nn.GroupNorm(min(8, hidden), hidden), nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.GroupNorm(min(8, hidden), hidden), nn.GELU(),
            nn.Conv2d(hidden, 1, 1))

    def forward(self, cost: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        """cost [B, C, E, h, w], feature [B, F, H, W] -> logits [B, C, H, W]."""
        batch, classes, channels, height, width = cost.shape
        size = feature.shape[-2:]
        x = F.interpolate(cost.reshape(batch * classes, channels, height, width), size=size, mode="bilinear",
                          align_corners=False)
        first = self.layers[0]
        if self.fusion == "add":
            x = first(x + self.align(feature).repeat_interleave(classes, dim=0))
        else:
            # conv(concat[cost, feature]) = conv_cost(cost) + conv_feature(feature): the feature's half
            # is the same for every class, so it is convolved once per image, not once per class.
            shared = F.conv2d(feature, first.weight[:, channels:], None, padding=first.padding)
            x = F.conv2d(x, first.weight[:, :channels], first.bias, padding=first.padding)
            x = x + shared.repeat_interleave(classes, dim=0)
        return self.layers[1:](x).reshape(batch, classes, *size)


class AuxHead(nn.Module):
    """φ_seg of Eq. 7: a convolutional head on O_t whose per-pixel embedding is compared with the
    class text embeddings (cosine, learned temperature), so it serves any vocabulary like the main head."""

    def __init__(self, channels: int, text_dim: int):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(min(8, channels), channels),
                                    nn.GELU(), nn.Conv2d(channels, text_dim, 1))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's initial temperature

    def forward(self, feature: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """feature [B, E, h, w], text [T, C, D] -> logits [B, C, h, w]."""
        pixels = F.normalize(self.layers(feature).float(), dim=1)
        classes = F.normalize(text.float().mean(0), dim=-1)
        return self.logit_scale.exp() * torch.einsum("bdhw,cd->bchw", pixels, classes)

"""The frame's own multi-scale feature at the head's resolution: what the head fuses with the cost
volume when the video modules are off (the image-only baseline's stand-in for Ô_t)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PyramidFusion(nn.Module):
    """Each scale projected by a 1x1 convolution, resampled to the finest requested stride, summed,
    then mixed by a 3x3 convolution (an FPN without the top-down path)."""

    def __init__(self, in_channels: tuple[int, ...], channels: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.mix = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(min(8, channels), channels),
                                 nn.GELU())

    def forward(self, features: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        total = sum(F.interpolate(lateral(f), size=size, mode="bilinear", align_corners=False)
                    for lateral, f in zip(self.lateral, features))
        return self.mix(total)

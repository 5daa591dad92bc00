"""The language branch's cost volume refinement (Eq. 12-13), kept per class so any vocabulary works.

The cosine cost volume [B, T, C, h, w] (templates x classes) is refined by a convolution over its
template axis, as CAT-Seg does, giving an embedding per class and position; the shallow backbone
features, resampled to the cost grid, are concatenated and projected, which adds the position
information CLIP's features lack (Eq. 13). Classes are folded into the batch, so no layer depends on
how many classes there are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CostRefinement(nn.Module):
    def __init__(self, templates: int, channels: int, guidance_channels: int):
        super().__init__()
        self.templates = templates
        self.refine = nn.Sequential(nn.Conv2d(templates, channels, 7, padding=3), nn.GELU())
        self.project = nn.Sequential(nn.Conv2d(channels + guidance_channels, channels, 1), nn.GELU())

    def forward(self, cost: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        """cost [B, T, C, h, w], shallow features [B, G, H, W] -> per-class embedding [B, C, E, h, w]."""
        batch, templates, classes, height, width = cost.shape
        if templates != self.templates:
            raise ValueError(f"the cost volume has {templates} templates but this model was built for "
                             f"{self.templates}; use the prompt set it was trained with")
        x = self.refine(cost.transpose(1, 2).reshape(batch * classes, templates, height, width))
        guidance = F.interpolate(shallow, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
        x = self.project(torch.cat([x, guidance.repeat_interleave(classes, dim=0)], dim=1))
        return x.reshape(batch, classes, -1, height, width)

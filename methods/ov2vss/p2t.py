"""P2T pyramid pooling (Eq. 2): a feature map -> a short sequence of pooled tokens D.

As in P2T, the map is average-pooled to several grids, each pooled grid gets a depth-wise 3x3
convolution added (P2T's relative position encoding), and the flattened grids are concatenated and
layer-normalised. P2T pools by fixed ratios of the input; here the grids have fixed sizes, so the
tokens of every scale and frame line up one to one: Eq. 5 adds affinities across scales and Eq. 8
concatenates scales token by token, and both need that.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PyramidPooling(nn.Module):
    def __init__(self, channels: int, sizes: tuple[int, ...]):
        super().__init__()
        self.sizes = tuple(sizes)
        self.position = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1, groups=channels) for _ in sizes)
        self.norm = nn.LayerNorm(channels)

    @property
    def tokens(self) -> int:
        return sum(size * size for size in self.sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, E, H, W] -> [B, tokens, E]."""
        pooled = []
        for size, position in zip(self.sizes, self.position):
            grid = F.adaptive_avg_pool2d(x, size)
            pooled.append((grid + position(grid)).flatten(2))
        return self.norm(torch.cat(pooled, dim=2).transpose(1, 2))


class P2TEncoder(nn.Module):
    """Eq. 2 on every scale STCF and RFE use: each backbone map U^l projected to a common width (X^l,
    which STCF queries) and pooled to tokens (D^l, its keys and values). Both are per-frame, so they are
    computed once per frame and reused by every clip the frame belongs to."""

    def __init__(self, in_channels: tuple[int, ...], channels: int, sizes: tuple[int, ...]):
        super().__init__()
        self.project = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.pool = nn.ModuleList(PyramidPooling(channels, sizes) for _ in in_channels)

    @property
    def tokens(self) -> int:
        return self.pool[0].tokens

    def forward(self, features: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Backbone maps, shallow to deep -> (projected maps [B, E, h, w], pooled tokens [B, M, E]) per scale."""
        maps = [project(x) for project, x in zip(self.project, features)]
        return maps, [pool(x) for pool, x in zip(self.pool, maps)]

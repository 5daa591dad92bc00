"""Random Frame Enhancement (Eq. 8-10): context from a temporally distant frame, read by attention.

The distant frame's pooled tokens of every fused scale are concatenated and projected (Eq. 8); a
1x1 convolution scores each token for a few soft regions, and a softmax over tokens pools each
region's representation (Eq. 9, OCR's object-region context); every position of O_t then attends to
the regions with multi-head attention (Eq. 10). The result is added to O_t, so a distant frame that
shows something else can only add context, never replace the target's own feature.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.ov2vss.attention import CrossAttention


class RandomFrameEnhancement(nn.Module):
    def __init__(self, scales: int, channels: int, regions: int, heads: int):
        super().__init__()
        self.merge = nn.Linear(scales * channels, channels)
        self.region = nn.Linear(channels, regions)
        self.norm = nn.LayerNorm(channels)
        self.attention = CrossAttention(channels, heads)

    def forward(self, feature: torch.Tensor, tokens: list[torch.Tensor]) -> torch.Tensor:
        """O_t [B, E, h, w] and the distant frame's pooled tokens per scale [B, M, E] -> Ô_t [B, E, h, w]."""
        frame = self.merge(torch.cat(tokens, dim=-1))                          # D_random [B, M, E]
        weights = self.region(frame).softmax(dim=1)                            # [B, M, K]
        regions = weights.transpose(1, 2) @ frame                               # L_r [B, K, E]
        queries = feature.flatten(2).transpose(1, 2)                           # [B, hw, E]
        context = self.attention(self.norm(queries), regions)
        return feature + context.transpose(1, 2).reshape(feature.shape)

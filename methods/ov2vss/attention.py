"""Multi-head cross-attention and the feed-forward block, shared by RFE (Eq. 10) and VTE (Eq. 11).

Attention goes through `scaled_dot_product_attention`, so a GPU picks a memory-efficient kernel: VTE
attends from every (class, template) text embedding to every CLIP token of the clip, thousands by
thousands.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CrossAttention(nn.Module):
    """Queries [B, Nq, dim] attend to keys/values [B, Nk, kv_dim]; returns [B, Nq, dim]."""

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads; pick heads that divide it")
        self.heads = heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(kv_dim or dim, dim)
        self.value = nn.Linear(kv_dim or dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        def split(x: torch.Tensor) -> torch.Tensor:  # [B, N, dim] -> [B, heads, N, dim / heads]
            return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

        x = F.scaled_dot_product_attention(split(self.query(queries)), split(self.key(context)),
                                           split(self.value(context)))
        return self.out(x.transpose(1, 2).flatten(2))


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, expansion: int = 4):
        super().__init__(nn.Linear(dim, dim * expansion), nn.GELU(), nn.Linear(dim * expansion, dim))

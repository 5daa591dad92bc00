"""Video Text Encoding (Eq. 11): the class embeddings refined by the clip they are applied to.

Every (template, class) text embedding attends to the CLIP dense tokens of all the clip's frames
and adds what it reads (F^T + MHSA(F^T, F^V)); Table III's better variant adds a feed-forward block.
The result is one set of text embeddings per clip, which the cost volume (Eq. 12) then uses.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.ov2vss.attention import CrossAttention, FeedForward

MODES = ("off", "attn", "attn-ffn")


class VideoTextEncoder(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: bool):
        super().__init__()
        self.norm_text = nn.LayerNorm(dim)
        self.norm_image = nn.LayerNorm(dim)
        self.attention = CrossAttention(dim, heads)
        self.ffn = nn.Sequential(nn.LayerNorm(dim), FeedForward(dim)) if ffn else None

    def forward(self, text: torch.Tensor, clip: torch.Tensor) -> torch.Tensor:
        """text [T, C, D] and the clip's CLIP features [B, frames, D, h, w] -> text per clip [B, T, C, D]."""
        batch, dim = clip.shape[0], clip.shape[2]
        queries = text.flatten(0, 1).unsqueeze(0).expand(batch, -1, -1).to(clip.dtype)
        context = clip.permute(0, 1, 3, 4, 2).reshape(batch, -1, dim)
        refined = queries + self.attention(self.norm_text(queries), self.norm_image(context))
        if self.ffn is not None:
            refined = refined + self.ffn(refined)
        return refined.view(batch, *text.shape)

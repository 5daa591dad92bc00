"""The authors' SAM ViT-B image encoder (`mmseg/models/backbones/sam_vit.py`).

The blocks are Meta's (segment_anything's `Block`, the same code), with three of their changes:
the block LayerNorms are `torch.nn.LayerNorm(dim)` with eps 1e-5, whatever the config says
(`sam_vit.py:338,353`); the absolute position embedding is ViT-style, (1, 1 + 64*64, 768) with an
unused class-token slot, bicubically resized to the token grid (`:153,206-238`); and SAM's neck is
applied to the output of each global-attention block (2, 5, 8, 11), so the encoder returns four
256-channel maps all at stride 16 (`:298-300`), not a pyramid. Attribute names are theirs, so their
checkpoint's `backbone.*` keys load one to one (`cls_token` is never read: the token it prefixes is
dropped before the first block).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SamEncoder(nn.Module):
    def __init__(self, embed_dim: int = 768, depth: int = 12, num_heads: int = 12, patch_size: int = 16,
                 pretrain_grid: int = 64, window_size: int = 14, global_blocks: tuple[int, ...] = (2, 5, 8, 11),
                 out_chans: int = 256):
        from segment_anything.modeling.common import LayerNorm2d
        from segment_anything.modeling.image_encoder import Block

        super().__init__()
        self.patch_size, self.pretrain_grid, self.global_blocks = patch_size, pretrain_grid, tuple(global_blocks)
        self.patch_embed = nn.Module()
        self.patch_embed.projection = nn.Conv2d(3, embed_dim, patch_size, patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + pretrain_grid * pretrain_grid, embed_dim))
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, 4.0, qkv_bias=True, norm_layer=nn.LayerNorm, act_layer=nn.GELU,
                  use_rel_pos=True, window_size=0 if i in self.global_blocks else window_size,
                  input_size=(pretrain_grid, pretrain_grid))
            for i in range(depth))
        self.neck = nn.Sequential(nn.Conv2d(embed_dim, out_chans, 1, bias=False), LayerNorm2d(out_chans),
                                  nn.Conv2d(out_chans, out_chans, 3, padding=1, bias=False), LayerNorm2d(out_chans))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Normalised images [B, 3, H, W] (H, W multiples of the patch size) -> 4 maps [B, C, H/16, W/16]."""
        if images.shape[-2] % self.patch_size or images.shape[-1] % self.patch_size:
            raise ValueError(f"input {tuple(images.shape[-2:])} is not a multiple of the patch size {self.patch_size}")
        x = self.patch_embed.projection(images)
        grid = tuple(x.shape[-2:])
        x = x.flatten(2).transpose(1, 2) + self._positions(grid)
        x = x.reshape(x.shape[0], *grid, -1)
        maps = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.global_blocks:
                maps.append(self.neck(x.permute(0, 3, 1, 2)))
        return maps

    def _positions(self, grid: tuple[int, int]) -> torch.Tensor:
        """The patch positions of `pos_embed` for this token grid [1, h*w, C] (class slot dropped)."""
        side = self.pretrain_grid
        patches = self.pos_embed[:, 1:]
        if grid == (side, side):
            return patches
        patches = patches.reshape(1, side, side, -1).permute(0, 3, 1, 2)
        resized = F.interpolate(patches, size=grid, mode="bicubic", align_corners=False)
        return resized.flatten(2).transpose(1, 2)

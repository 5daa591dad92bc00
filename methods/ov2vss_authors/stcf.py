"""The authors' Spatial-Temporal Context Fusion (`hypercorre.py` `hypercorre_topk2` and its
`pooling_mhsa` and `HPNLearner_topk2`), as their test path runs it.

What their code does, which the paper does not say (each a quirk, reproduced on purpose):
- the memory starts at the far frame (clip index 0), not at t-9 (`hypercorre.py:381`);
- t-9 reads the far frame's pooled tokens, t-6 reads t-9's pooled reading, and the target reads
  t-6's: t-3 is never read (`:378` loops over 2 of the 4 query frames);
- affinities are raw dot products, with no softmax and no scaling (`:409,491`);
- each memory token's affinity map over the query grid is refined by single-channel 2-D convolutions
  mixing the three deepest scales (the block-2 scale is unused) (`:98-112,503`);
- the values of all four scales are concatenated and projected back to 256 channels, and that alone
  is the output (`:479,512,517`).
Scale ii = 0..3 is block 11, 8, 5, 2 (their lists are reversed, `:282`); their projections are
numbered both ways (k4/q4 read scale 0, pk1/f1p/i1 read scale 0 too). Names are theirs, so their
checkpoint's keys load one to one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Pooled grid sizes are round(h / r) x round(w / r) for these r whatever the caller asks (their
#: `redu_ratios = [2,4,6,8]` overwrites the argument, `hypercorre.py:142`); Python's round halves to even.
POOL_RATIOS = (2, 4, 6, 8)


def pool_grids(height: int, width: int) -> list[tuple[int, int]]:
    return [(round(height / r), round(width / r)) for r in POOL_RATIOS]


class Pooling(nn.Module):
    """Their `pooling_mhsa`: adaptive average pools at 4 grids, each plus a depthwise 3x3 conv of
    itself, flattened and concatenated, then LayerNorm: [B, N, C, h, w] -> [B, N, M, C]."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.d_convs = nn.ModuleList(nn.Conv2d(dim, dim, 3, padding=1, groups=dim) for _ in POOL_RATIOS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, frames, channels, height, width = x.shape
        x = x.reshape(-1, channels, height, width)
        pools = []
        for conv, size in zip(self.d_convs, pool_grids(height, width)):
            pool = F.adaptive_avg_pool2d(x, size)
            pool = pool + conv(pool)
            pools.append(pool.view(batch * frames, channels, -1))
        pooled = self.norm(torch.cat(pools, dim=2).permute(0, 2, 1))
        return pooled.reshape(batch, frames, -1, channels)


class MapConv(nn.Module):
    """The 2-D convolution that is all their `CenterPivotConv4d_half` computes (`.conv2`)."""

    def __init__(self, kernel: int):
        super().__init__()
        self.conv2 = nn.Conv2d(1, 1, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(x)


def _refine(kernel: int) -> nn.Sequential:
    return nn.Sequential(MapConv(kernel), nn.GroupNorm(1, 1), nn.ReLU(inplace=True))


class HPN(nn.Module):
    """Their `HPNLearner_topk2` for a non-'b1' backbone: one single-channel conv per scale, then
    deep-to-shallow mixing; maps [M, 1, h, w] at scales 0, 1, 2 -> [M, 1, h2, w2]."""

    def __init__(self):
        super().__init__()
        self.encoder_layer4, self.encoder_layer3, self.encoder_layer2 = _refine(3), _refine(5), _refine(5)
        self.encoder_layer4to3, self.encoder_layer3to2 = _refine(3), _refine(3)

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        deep, middle, shallow = self.encoder_layer4(maps[0]), self.encoder_layer3(maps[1]), self.encoder_layer2(maps[2])
        mixed = self.encoder_layer4to3(_resize(deep, middle) + middle)
        return self.encoder_layer3to2(_resize(mixed, shallow) + shallow)


def _resize(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, like.shape[-2:], mode="bilinear", align_corners=True)


class STCF(nn.Module):
    """Their `hypercorre_topk2` as it reaches the target's prediction."""

    def __init__(self, dim: int = 256):
        super().__init__()
        linear = lambda: nn.Linear(dim, dim)  # noqa: E731
        for name in ("k1", "k2", "k3", "k4", "q2", "q3", "q4", "i1", "i2", "i3", "i4", "iv1", "iv2", "iv3", "iv4",
                     "pk1", "pk2", "pk3", "pk4", "f1p", "f2p", "f3p", "f4p", "f1", "f2", "f3", "v1", "v2", "v3", "v4"):
            setattr(self, name, linear())
        for kind in ("fk", "sk", "f"):
            for k in range(1, 5):
                setattr(self, f"pooling_mhsa_{kind}{k}", Pooling(dim))
        self.pooling_proj_linear = nn.Linear(4 * dim, dim)
        self.hpn = HPN()

    def memory(self, far: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The far frame's pooled keys and values per scale (what t-9 reads): `far` holds its four
        maps [1, C, h, w], shallow to deep. Depends on the far frame alone, so a video computes it once."""
        memory = []
        for ii, x in enumerate(reversed(far)):
            pooled = getattr(self, f"pooling_mhsa_fk{ii + 1}")(x[:, None])
            memory.append((getattr(self, f"pk{ii + 1}")(pooled), getattr(self, f"f{ii + 1}p")(pooled)))
        return memory

    def forward(self, memory: list[tuple[torch.Tensor, torch.Tensor]], t9: list[torch.Tensor],
                t6: list[torch.Tensor], target: list[torch.Tensor]) -> torch.Tensor:
        """The fused feature of the target [1, C, h, w]; frames give their four maps, shallow to deep."""
        readings, keys = [], []
        for ii in range(4):
            level = ii + 1
            key_proj = getattr(self, f"k{4 - ii}")
            first = key_proj(_channels_last(t9[3 - ii]))                                  # [1, 1, h, w, C]
            mem_key, mem_value = memory[ii]
            reading = (first @ mem_key.transpose(2, 3).unsqueeze(1)) @ mem_value.unsqueeze(1)
            pooled = getattr(self, f"pooling_mhsa_sk{level}")(reading.permute(0, 1, 4, 2, 3))
            second = key_proj(_channels_last(t6[3 - ii]))
            reading = (second @ getattr(self, f"i{level}")(pooled).transpose(2, 3).unsqueeze(1)) \
                @ getattr(self, f"iv{level}")(pooled).unsqueeze(1)                            # t-6's reading
            pooled = getattr(self, f"pooling_mhsa_f{level}")(reading.permute(0, 1, 4, 2, 3))
            readings.append(getattr(self, f"v{level}")(pooled))
            keys.append(getattr(self, f"f{level}")(pooled) if ii < 3 else None)  # scale 3's map is never used
        maps = []
        for ii in range(3):
            height, width = target[3 - ii].shape[-2:]
            query = getattr(self, f"q{4 - ii}")(_channels_last(target[3 - ii][:, None]))
            query = query.reshape(1, 1, height * width, -1)
            affinity = query @ keys[ii].transpose(2, 3)                                         # [1, 1, hw, M]
            maps.append(affinity.permute(0, 1, 3, 2).reshape(-1, 1, height, width))
        refined = self.hpn(maps)                                             # [M, 1, h, w] at the block-5 scale
        height, width = refined.shape[-2:]
        refined = refined.reshape(1, -1, height * width).unsqueeze(1).permute(0, 1, 3, 2)      # [1, 1, hw, M]
        values = self.pooling_proj_linear(torch.cat(readings, dim=3))                          # [1, 1, M, C]
        fused = refined @ values
        return fused.reshape(1, height, width, -1).permute(0, 3, 1, 2)


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """[B, N, C, h, w] (or [B, C, h, w], read as one frame) -> [B, N, h, w, C]."""
    if x.ndim == 4:
        x = x[:, None]
    return x.permute(0, 1, 3, 4, 2)

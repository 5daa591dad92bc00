"""Spatial-Temporal Context Fusion (Eq. 3-6): gradual frame-to-frame attention with cross-scale
affinity aggregation.

The clip's frames are fused oldest first. The first frame's pooled tokens are the history D_past;
each later frame queries it at every scale (A^l = Q_{t_i} K_past^T, Eq. 3-4), the affinities are
aggregated from the deepest scale to the shallowest (B^l = Conv(Up(B^{l+1}) + A^l), Eq. 5, as in
MRCFA), and the history is read with them (N = softmax(B) V_past). The frame's own map plus what it
read, pooled again, becomes the history for the next frame; at the target frame the reading at the
shallowest fused scale is the temporal context that makes O_t (Eq. 6).

Affinities are kept as maps over the query grid with one channel per history token, so the Eq. 5
convolution mixes neighbouring queries' affinities, and upsampling follows the query grid. The
aggregation convolutions start as identities: before training, B^l is the plain sum of affinities.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from methods.ov2vss.p2t import P2TEncoder


class SpatialTemporalFusion(nn.Module):
    def __init__(self, scales: int, channels: int, tokens: int):
        super().__init__()
        self.scales = scales
        self.query = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(scales))
        self.key = nn.ModuleList(nn.Linear(channels, channels) for _ in range(scales))
        self.value = nn.ModuleList(nn.Linear(channels, channels) for _ in range(scales))
        self.update = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(scales))
        self.aggregate = nn.ModuleList(nn.Conv2d(tokens, tokens, 3, padding=1) for _ in range(scales - 1))
        for conv in self.aggregate:
            nn.init.dirac_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, maps: list[list[torch.Tensor]], first_tokens: list[torch.Tensor],
                pooling: P2TEncoder) -> torch.Tensor:
        """maps[i][l]: frame i's projected map at scale l (frames oldest first, the target last; scales
        shallow to deep); first_tokens[l]: the first frame's pooled tokens. Returns the target's temporal
        context at the shallowest scale, [B, E, h, w]."""
        if len(maps) < 2:
            raise ValueError("spatial-temporal fusion needs the target and at least one past frame")
        history = first_tokens
        for i, frame in enumerate(maps[1:], start=1):
            affinities = self._affinities(frame, history)
            if i == len(maps) - 1:
                return self._read(0, affinities[0], history[0])
            history = [pooling.pool[s](frame[s] + self._read(s, affinities[s], history[s])) for s in range(self.scales)]
        raise AssertionError("unreachable")

    def _affinities(self, frame: list[torch.Tensor], history: list[torch.Tensor]) -> list[torch.Tensor]:
        """Eq. 3-5: refined affinities B^l [B, M, h_l, w_l] of the frame's positions to the history tokens."""
        raw = []
        for s in range(self.scales):
            query = self.query[s](frame[s])                                   # [B, E, h, w]
            key = self.key[s](history[s])                                     # [B, M, E]
            raw.append(torch.einsum("bme,behw->bmhw", key, query) / math.sqrt(key.shape[-1]))
        refined = [raw[-1]]
        for s in range(self.scales - 2, -1, -1):
            deeper = F.interpolate(refined[0], size=raw[s].shape[-2:], mode="bilinear", align_corners=False)
            refined.insert(0, self.aggregate[s](deeper + raw[s]))
        return refined

    def _read(self, scale: int, affinity: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        """N = softmax(B) V_past, projected: what the frame takes from the history at this scale."""
        value = self.value[scale](history)                                   # [B, M, E]
        read = torch.einsum("bmhw,bme->behw", affinity.softmax(dim=1), value)
        return self.update[scale](read)

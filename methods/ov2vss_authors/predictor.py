"""The authors' predictor (`cat_zeroshot_classifier.py` `CatClassifier` and the `Corr` of
`hyper_correlation_copy.py`): video text prompt, cost volume, aggregation, decoder.

Their quirks, reproduced on purpose:
- CLIP reads the ImageNet-normalised backbone input squashed to 384x384, never CLIP's own
  statistics or aspect (`cat_zeroshot_classifier.py:252-255`);
- the "video" text prompt is per frame: each class's 80 template embeddings attend to that frame's
  own CLIP tokens only; its output is alpha * (text + delta), added to the text (`:107-120,265-269`);
  FFN with QuickGELU;
- the cost volume's 7x7 conv has no activation; of four aggregation layers only the last acts,
  since each reads the same input and overwrites the previous result (`hyper_correlation_copy.py:616`),
  and it is a per-pixel linear map of [cost, ReLU(conv(block-11 feature))]; the text guidance is
  computed and never used (`:600-603`);
- the decoder works on a square grid: 24x24 -> ConvTranspose (k3, s3) -> 72x72 (which leaves a
  3-pixel pattern in every class map), guided by a 64-channel projection of the target's feature,
  then bilinear to 120x120 (`:479-510,620`).
Attribute names are theirs, so their checkpoint's keys load one to one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Attention(nn.Module):
    """Their `MulitHeadAttention`: q, k, v without bias, scaled dot-product, output projection."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.proj = nn.Linear(dim, dim)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """[..., N, C] -> [..., heads, N, C / heads]."""
        return x.reshape(*x.shape[:-1], self.heads, -1).transpose(-3, -2)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Projected, split q [..., H, N, c] and k, v [..., H, M, c] (broadcast) -> [..., N, C]."""
        weights = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
        x = weights.softmax(dim=-1) @ v
        return self.proj(x.transpose(-3, -2).flatten(-2))

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        return self.attend(self.split(self.q_proj(q)), self.split(self.k_proj(kv)), self.split(self.v_proj(kv)))


class PromptLayer(nn.Module):
    """Their `PromptGeneratorLayer`: text attends to the frame's tokens, then an FFN."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.cross_attn = Attention(dim, heads)
        self.norm1, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), QuickGELU(), nn.Dropout(0.0), nn.Linear(4 * dim, dim))

    def forward(self, text: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """text [B, K, T, C], visual [B, 1, N, C] (normalised) -> [B, K, T, C]."""
        attention = self.cross_attn
        q = attention.split(attention.q_proj(self.norm1(text)))
        k, v = attention.split(attention.k_proj(visual)), attention.split(attention.v_proj(visual))
        text = text + attention.attend(q, k, v)
        return text + self.mlp(self.norm3(text))


class VideoTextPrompt(nn.Module):
    """Their `VideoSpecificPrompt(layers=1, alpha=1e-4)`: returns alpha * (text + delta)."""

    def __init__(self, dim: int = 512, layers: int = 1, alpha: float = 1e-4):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.decoder = nn.ModuleList(PromptLayer(dim, dim // 64) for _ in range(layers))
        self.alpha = nn.Parameter(torch.full((dim,), alpha))

    def forward(self, text: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """text [B, K, T, C] and CLIP tokens [B, C, h, w] -> [B, K, T, C]. Every class attends to the
        same tokens, so their keys and values are projected once per frame (theirs repeat them)."""
        visual = self.norm(visual.flatten(2).transpose(1, 2))[:, None]
        for layer in self.decoder:
            text = layer(text, visual)
        return self.alpha * text


class AggregationLayer(nn.Module):
    """The one aggregation layer that acts (their `ensemble`, minus the focal blocks it never calls)."""

    def __init__(self, channels: int, appearance: int):
        super().__init__()
        self.downlinear = nn.Linear(channels + appearance, channels)

    def forward(self, cost: torch.Tensor, appearance: torch.Tensor) -> torch.Tensor:
        """cost [B*K, P, g, g], appearance [B, A, g, g] -> [B*K, P, g, g]."""
        repeats = cost.shape[0] // appearance.shape[0]
        # their AdaptiveAvgPool2d to the grid's own size is the identity
        x = torch.cat([cost, appearance.repeat_interleave(repeats, dim=0)], dim=1)
        return self.downlinear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Decoder(nn.Module):
    """Their `decoder`: ConvTranspose up by `scale`, concat guidance, conv-GN-ReLU, 1-channel conv."""

    def __init__(self, channels: int = 80, guidance: int = 64, scale: int = 3):
        super().__init__()
        self.decoder1 = nn.Module()
        self.decoder1.up = nn.ConvTranspose2d(channels, channels - guidance, scale, stride=scale)
        self.decoder1.conv = nn.Module()
        self.decoder1.conv.double_conv = nn.Sequential(nn.Conv2d(channels, guidance, 3, padding=1, bias=False),
                                                       nn.GroupNorm(guidance // 16, guidance), nn.ReLU(inplace=True))
        self.head = nn.Conv2d(guidance, 1, 3, padding=1)

    def forward(self, cost: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        """cost [B*K, P, g, g], guidance [B, G, s*g, s*g] -> logits [B*K, 1, s*g, s*g]."""
        x = self.decoder1.up(cost)
        x = torch.cat([x, guidance.repeat_interleave(x.shape[0] // guidance.shape[0], dim=0)], dim=1)
        return self.head(self.decoder1.conv.double_conv(x))


class CostHead(nn.Module):
    """Their `Corr` (the one in `hyper_correlation_copy.py`) as it reaches the output."""

    def __init__(self, templates: int = 80, hidden: int = 80, feature: int = 256, appearance: int = 128,
                 guidance: int = 64, scale: int = 3, grid: int = 24, output: int = 120):
        super().__init__()
        self.grid, self.scale, self.output = grid, scale, output
        self.conv1 = nn.Conv2d(templates, hidden, 7, padding=3)
        self.layers = nn.ModuleDict({"3": AggregationLayer(hidden, appearance)})  # layers 0-2 are overwritten
        self.proj_img_c4 = nn.Sequential(nn.Conv2d(feature, appearance, 3, padding=1), nn.ReLU())
        self.proj_img_1 = nn.Sequential(nn.Conv2d(feature, guidance, 3, padding=1), nn.ReLU())
        self.decodeh1 = Decoder(hidden, guidance, scale)

    def forward(self, guidance_feature: torch.Tensor, clip_dense: torch.Tensor, deep: torch.Tensor,
                text: torch.Tensor) -> torch.Tensor:
        """guidance_feature [B, F, h', w'], CLIP tokens [B, D, g, g], the block-11 feature [B, F, h, w]
        and text [B, K, T, D] -> class logits [B, K, output, output]."""
        batch, classes = text.shape[:2]
        cost = torch.einsum("bchw,bktc->bkthw", F.normalize(clip_dense, dim=1), F.normalize(text, dim=-1))
        cost = self.conv1(cost.flatten(0, 1))                                   # [B*K, P, g, g]
        appearance = F.interpolate(self.proj_img_c4(deep), size=(self.grid, self.grid), mode="bilinear",
                                   align_corners=False)
        side = self.scale * self.grid
        guidance = F.interpolate(self.proj_img_1(guidance_feature), size=(side, side), mode="bilinear",
                                 align_corners=False)
        cost = self.layers["3"](cost, appearance)
        logits = self.decodeh1(cost, guidance).reshape(batch, classes, side, side)
        return F.interpolate(logits, size=(self.output, self.output), mode="bilinear", align_corners=False)

"""PAMR (pixel-adaptive mask refinement, Araslanov and Roth, CVPR 2020): class scores smoothed over
each pixel's neighbours, weighted by how alike their colours are. NACLIP refines its scores with it.

Neighbours are the 8 pixels at distance d (rows and columns) for each dilation d, borders replicated.
The affinity of a pixel to neighbour n is -|I(p) - I(n)| / (1e-8 + 0.1 * sigma(p)), sigma the
standard deviation of the image over the pixel and all its neighbours (per channel), averaged over
channels and softmax-normalised over the neighbours; each iteration replaces the scores with the
affinity-weighted sum of the neighbours' scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def neighbours(x: torch.Tensor, dilations: Sequence[int], centre: bool = False) -> torch.Tensor:
    """[B, K, H, W] -> [B, K, N, H, W]: each pixel's neighbours at every dilation (the pixel itself
    first, once per dilation, when `centre`)."""
    height, width = x.shape[-2:]
    found = []
    for d in dilations:
        padded = F.pad(x, [d] * 4, mode="replicate")
        offsets = ((0, 0), *OFFSETS) if centre else OFFSETS
        found += [padded[..., d + dy * d: d + dy * d + height, d + dx * d: d + dx * d + width] for dy, dx in offsets]
    return torch.stack(found, dim=2)


def refine(image: torch.Tensor, scores: torch.Tensor, iterations: int, dilations: Sequence[int]) -> torch.Tensor:
    """Image [B, K, H, W] (any normalisation) and class scores [B, C, h, w] -> refined scores [B, C, H, W]."""
    scores = F.interpolate(scores, size=image.shape[-2:], mode="bilinear", align_corners=True)
    spread = neighbours(image, dilations, centre=True).std(dim=2, keepdim=True)
    affinity = -(image.unsqueeze(2) - neighbours(image, dilations)).abs() / (1e-8 + 0.1 * spread)
    affinity = affinity.mean(dim=1, keepdim=True).softmax(dim=2)
    for _ in range(iterations):
        scores = (neighbours(scores, dilations) * affinity).sum(dim=2)
    return scores

"""PAMR (pixel-adaptive mask refinement, Araslanov and Roth, CVPR 2020): class scores smoothed over
each pixel's neighbours, weighted by how alike their colours are. NACLIP refines its scores with it.

Neighbours are the 8 pixels at distance d (rows and columns) for each dilation d, borders replicated.
The affinity of a pixel to neighbour n is -|I(p) - I(n)| / (1e-8 + 0.1 * sigma(p)), sigma the
standard deviation of the image over the pixel and all its neighbours (per channel), averaged over
channels and softmax-normalised over the neighbours; each iteration replaces the scores with the
affinity-weighted sum of the neighbours' scores.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def shifted(x: torch.Tensor, dilations: Sequence[int], centre: bool = False) -> Iterator[torch.Tensor]:
    """[B, K, H, W] -> each pixel's neighbour at every offset and dilation, one [B, K, H, W] view at a
    time (the pixel itself first, once per dilation, when `centre`)."""
    height, width = x.shape[-2:]
    for d in dilations:
        padded = F.pad(x, [d] * 4, mode="replicate")
        for dy, dx in ((0, 0), *OFFSETS) if centre else OFFSETS:
            yield padded[..., d + dy * d: d + dy * d + height, d + dx * d: d + dx * d + width]


def refine(image: torch.Tensor, scores: torch.Tensor, iterations: int, dilations: Sequence[int]) -> torch.Tensor:
    """Image [B, K, H, W] (any normalisation) and class scores [B, C, h, w] -> refined scores [B, C, H, W]."""
    scores = F.interpolate(scores, size=image.shape[-2:], mode="bilinear", align_corners=True)
    spread = torch.stack(list(shifted(image, dilations, centre=True)), dim=2).std(dim=2)
    affinity = torch.stack([-(image - n).abs().div(1e-8 + 0.1 * spread).mean(dim=1) for n in shifted(image, dilations)],
                           dim=1).softmax(dim=1)  # [B, N, H, W]
    for _ in range(iterations):
        # one neighbour at a time: the stacked neighbours of C class maps would take N times the memory
        refined = torch.zeros_like(scores)
        for k, neighbour in enumerate(shifted(scores, dilations)):
            refined.addcmul_(neighbour, affinity[:, k: k + 1])
        scores = refined
    return scores

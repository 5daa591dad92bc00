"""Frames larger than a model's input: sliding windows, or the whole frame resized.

The paper evaluates at 480p while CLIP takes 384x384, so a frame is covered by overlapping square
windows whose class scores are averaged where they overlap (mmseg's and CAT-Seg's `slide` mode); or,
in `whole` mode, resized to one input and the scores resized back.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

MODES = ("slide", "whole")

#: A model on a batch of uint8 windows [B, 3, S, S] -> class scores [B, C, h, w] (any h, w).
Predict = Callable[[torch.Tensor], torch.Tensor]


def keep_ratio_size(height: int, width: int, long: int, short: int) -> tuple[int, int]:
    """The (h, w) mmcv's keep-ratio rescale gives a frame: scaled by min(long / long side, short / short
    side), each side int(x * factor + 0.5) (mmseg's `Resize(keep_ratio=True)`)."""
    factor = min(long / max(height, width), short / min(height, width))
    return int(height * factor + 0.5), int(width * factor + 0.5)


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets of windows covering 0..length, the last one flush with the end."""
    if length <= window:
        return [0]
    count = math.ceil((length - window) / stride) + 1
    return sorted({min(i * stride, length - window) for i in range(count)})


class WindowedInference:
    """Class scores for a whole frame from a model that takes `size` x `size` inputs."""

    def __init__(self, mode: str = "slide", size: int = 384, overlap: float = 1 / 3, batch_size: int = 8):
        if mode not in MODES:
            raise ValueError(f"inference mode {mode!r}: choose one of {', '.join(MODES)}")
        if not 0 <= overlap < 1:
            raise ValueError(f"window overlap {overlap}: must be in [0, 1), the fraction two neighbouring windows share")
        if size < 1 or batch_size < 1:
            raise ValueError(f"window size {size} and batch size {batch_size} must be positive")
        self.mode, self.size, self.overlap, self.batch_size = mode, size, overlap, batch_size

    def windows(self, height: int, width: int) -> list[tuple[int, int]]:
        """Top-left corners of the windows over a frame of this size (after any upscaling)."""
        stride = max(1, round(self.size * (1 - self.overlap)))
        return [(top, left) for top in window_starts(height, self.size, stride)
                for left in window_starts(width, self.size, stride)]

    def __call__(self, image: torch.Tensor, predict: Predict) -> torch.Tensor:
        """uint8 RGB [3, H, W] -> float class scores [C, H, W]."""
        height, width = image.shape[-2:]
        if self.mode == "whole":
            resized = _resize(image.unsqueeze(0).float(), (self.size, self.size)).round().clamp(0, 255).to(torch.uint8)
            return _resize(predict(resized).float(), (height, width))[0]
        # A frame smaller than a window is scaled up (keeping its aspect) until a window fits.
        scale = max(1.0, self.size / height, self.size / width)
        frame = image.unsqueeze(0)
        if scale > 1:
            frame = _resize(frame.float(), (math.ceil(height * scale), math.ceil(width * scale)))
            frame = frame.round().clamp(0, 255).to(torch.uint8)
        total = counts = None
        corners = self.windows(*frame.shape[-2:])
        for start in range(0, len(corners), self.batch_size):
            batch = corners[start: start + self.batch_size]
            crops = torch.cat([frame[..., t: t + self.size, left: left + self.size] for t, left in batch])
            scores = _resize(predict(crops).float(), (self.size, self.size))
            if total is None:
                total = scores.new_zeros((scores.shape[1], *frame.shape[-2:]))
                counts = scores.new_zeros((1, *frame.shape[-2:]))
            for (top, left), window_scores in zip(batch, scores):
                total[:, top: top + self.size, left: left + self.size] += window_scores
                counts[:, top: top + self.size, left: left + self.size] += 1
        scores = total / counts
        return _resize(scores.unsqueeze(0), (height, width))[0] if scale > 1 else scores


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

"""What the streaming benchmarks share: a method's label maps for a video and each target's seconds."""

from __future__ import annotations

import time

import torch


def timed_segment(method, video) -> tuple[list[torch.Tensor], list[float]]:
    """`method.segment(video)`'s maps, and the seconds between them: each target's own cost."""
    labels, seconds = [], []
    started = time.perf_counter()
    for label_map in method.segment(video):
        labels.append(label_map)
        seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
    return labels, seconds

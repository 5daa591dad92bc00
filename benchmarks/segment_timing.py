"""What the streaming benchmarks share: timing a method's two ways over a video, and the comparison."""

from __future__ import annotations

import time
from typing import NamedTuple

import torch


class Way(NamedTuple):
    labels: list[torch.Tensor]
    passes_per_frame: float
    seconds: float               # the whole video
    steady: float                # per target once its clip is full


def timed_segment(method, video, full_from: int) -> Way:
    """`method.segment(video)` timed target by target (the seconds between maps are each target's
    cost); `full_from`: the first target whose clip is full."""
    method.encoder_passes = 0
    labels, seconds = [], []
    started = time.perf_counter()
    for label_map in method.segment(video):
        labels.append(label_map)
        seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
    steady = seconds[full_from:] or seconds
    return Way(labels, method.encoder_passes / len(video), sum(seconds), sum(steady) / len(steady))


def report(name: str, way: Way) -> None:
    print(f"  {name:9s}: {way.passes_per_frame:.2f} encoder passes per frame, {way.seconds:.1f} s in all, "
          f"{way.steady:.2f} s per target with a full clip")


def compare(slow_name: str, slow: Way, fast: Way) -> None:
    same = all(torch.equal(a, b) for a, b in zip(slow.labels, fast.labels))
    print(f"  {slow_name} / streamed: {slow.passes_per_frame / fast.passes_per_frame:.2f}x encoder passes, "
          f"{slow.seconds / fast.seconds:.2f}x wall time ({slow.steady / fast.steady:.2f}x per target with a full "
          f"clip); label maps identical: {same}")

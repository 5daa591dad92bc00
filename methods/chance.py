"""The chance level: every pixel gets a label drawn uniformly from the vocabulary."""

from __future__ import annotations

import zlib

import torch

from benchmark.interface import Method, Video


class ChanceMethod(Method):
    """Uniform random label per pixel: the floor a real method has to beat by a margin."""

    name = "chance"

    def __init__(self, seed: int = 0):
        super().__init__()
        self.seed = seed

    def setup(self, vocabulary: list[str], device: torch.device) -> None:
        if not vocabulary:
            raise ValueError("chance: the vocabulary is empty; there is nothing to draw from")
        self.num_classes = len(vocabulary)

    def segment(self, video: Video):
        # A generator per video, seeded from the video's name, so any subset or order of videos
        # (shards, resumed runs) draws the same labels.
        generator = torch.Generator().manual_seed(self.seed ^ zlib.crc32(video.name.encode()))
        for i in video.annotated:
            height, width = video.frame(i).shape[1:]
            yield torch.randint(self.num_classes, (height, width), generator=generator, dtype=torch.int64)

"""SCLIP, ClearCLIP and NACLIP speed on 480x853 frames, and the text-embedding cache shared by them.

    python benchmarks/attention_clip_speed.py [--frames 2] [--configs full,tiny] [--device cpu]

`full` is their setting: OpenAI's ViT-B/16 architecture (random weights: speed does not depend on
them) at each method's defaults (SCLIP and NACLIP: short side 336, 224 windows every 112; ClearCLIP:
448, 448 every 224; NACLIP's PAMR at the frame's size). `tiny` is the tiny test CLIP at the same
settings. The three methods share one loaded CLIP per process, so the second and third find VSPW's
44 unseen names already embedded: setup (text embeddings) is timed apart, with the cache's hits.
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmark import registry
from benchmark.data.cards import load_card
from methods import clip

CONFIGS = {"full": {"clip_model": clip.PAPER_MODEL, "clip_pretrained": "random"},
           "tiny": {"clip_model": clip.TINY_MODEL, "clip_pretrained": "random"}}
METHODS = ("sclip", "clearclip", "naclip")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--configs", default="full,tiny")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    card = load_card("vspw")
    vocabulary = card["classes"][card["num_seen"]:]
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    frames = [torch.randint(0, 256, (3, 480, 853), dtype=torch.uint8, generator=generator) for _ in range(args.frames)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}; frames 480x853; "
          f"vocabulary: VSPW's {len(vocabulary)} unseen names, 80 templates")
    print(f"{'config':6s} {'method':10s} {'frames/s':>9s} {'s/frame':>8s} {'setup s':>8s} {'text cache':>12s}")
    for config in args.configs.split(","):
        for name in METHODS:
            method = registry.create(name, **CONFIGS[config], amp=False)
            started = time.perf_counter()
            method.setup(vocabulary, device)
            setup = time.perf_counter() - started
            stats = method.clip.cache_stats
            method.segment_frame(frames[0])  # warm-up: positional embeddings and the neighbourhood bias
            started = time.perf_counter()
            for frame in frames:
                method.segment_frame(frame)
            seconds = (time.perf_counter() - started) / len(frames)
            print(f"{config:6s} {name:10s} {1 / seconds:9.3f} {seconds:8.2f} {setup:8.2f} "
                  f"{stats.hits:>4d} hit {stats.misses:d} miss")


if __name__ == "__main__":
    main()

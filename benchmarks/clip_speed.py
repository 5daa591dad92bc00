"""clip-cost-volume speed on 480x853 frames, and the text-embedding cache hit rate over a paper-like run.

    python benchmarks/clip_speed.py [--frames 3] [--configs tiny,full] [--variants training-free,trained]
                                    [--prompts imagenet] [--device cpu]

`tiny` is our registered tiny CLIP with the tiny ResNet; `full` is the paper's setting with random
weights: OpenAI's ViT-B/16 architecture at 384 and, for the trained variant, the SAM ViT-B backbone at
480 (no weights needed: speed does not depend on them). Frames per second exclude setup (model
loading and text embeddings), which is timed separately. The cache figure replays what one process
running the paper's cells asks for: both variants on VSPW's unseen, seen and all vocabularies.
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmark import registry
from benchmark.data.cards import load_card
from benchmark.data.settings import display_name
from methods import clip

CONFIGS = {
    "tiny": {"clip_model": clip.TINY_MODEL, "clip_pretrained": "random", "backbone": "resnet-tiny",
             "cost_channels": 32, "feature_channels": 32, "head_channels": 32},
    "full": {"clip_model": clip.PAPER_MODEL, "clip_pretrained": "random", "backbone": "sam-vit-b"},
}


def frames_per_second(options: dict, variant: str, vocabulary: list[str], frames: list[torch.Tensor],
                      device: torch.device) -> tuple[float, float]:
    from methods.ov2vss.model import OV2VSSModel, ModelConfig

    method = registry.create("clip-cost-volume", variant=variant, **options)
    started = time.perf_counter()
    method.setup(vocabulary, device)
    if variant == "trained":  # random weights in the trained architecture: the speed of a trained model
        method.model = OV2VSSModel(ModelConfig.from_dict(method.model_options)).to(device).eval()
    setup = time.perf_counter() - started
    method.segment_frame(frames[0])  # warm-up: first-call allocations
    started = time.perf_counter()
    for frame in frames:
        method.segment_frame(frame)
    return len(frames) / (time.perf_counter() - started), setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--configs", default="tiny,full")
    parser.add_argument("--variants", default="training-free,trained")
    parser.add_argument("--prompts", default="imagenet", choices=clip.PROMPT_SETS)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    card = load_card("vspw")
    names = [display_name(name) for name in card["classes"]]
    seen, unseen = names[: card["num_seen"]], names[card["num_seen"]:]
    generator = torch.Generator().manual_seed(0)
    frames = [torch.randint(0, 256, (3, 480, 853), generator=generator, dtype=torch.uint8) for _ in range(args.frames)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}; frames 480x853; "
          f"vocabulary: VSPW's {len(unseen)} unseen names; prompts {args.prompts}")
    print(f"{'config':6s} {'variant':14s} {'frames/s':>9s} {'s/frame':>8s} {'setup s':>8s}")
    for config in args.configs.split(","):
        for variant in args.variants.split(","):
            options = {**CONFIGS[config], "prompts": args.prompts}
            fps, setup = frames_per_second(options, variant, unseen, frames, device)
            print(f"{config:6s} {variant:14s} {fps:9.3f} {1 / fps:8.2f} {setup:8.1f}", flush=True)

    # The cache over a paper-like run in one process: 2 variants x 3 vocabularies, tiny CLIP.
    model = clip.load_clip(clip.TINY_MODEL, "random", device)
    model.text_cache.clear()  # start cold, as a fresh process would
    before = (model.cache_stats.hits, model.cache_stats.misses)
    timings = []
    for _variant in ("training-free", "trained"):
        for vocabulary in (unseen, seen, names):
            started = time.perf_counter()
            model.text_embeddings(vocabulary, args.prompts)
            timings.append(time.perf_counter() - started)
    hits, misses = model.cache_stats.hits - before[0], model.cache_stats.misses - before[1]
    print(f"text-embedding cache over 6 cells (2 variants x VSPW unseen/seen/all): {hits} hits, {misses} misses, "
          f"hit rate {hits / (hits + misses):.0%}; a miss took {max(timings[:3]):.2f} s (tiny CLIP, "
          f"{len(names)} names x {len(clip.prompt_templates(args.prompts))} templates at most), a hit "
          f"{max(timings[3:]) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()

"""OV2VSS inference, streamed (each frame encoded once) against naive (every clip encoded afresh).

    python benchmarks/ov2vss_streaming.py [--configs tiny,full] [--backbones resnet,sam] [--frames 20]
                                          [--prompts imagenet] [--device cpu]

One synthetic video of 480x853 frames, every frame annotated (as in VSPW), segmented by the full
model (STCF + RFE + VTE) with random weights: speed does not depend on the weights. `tiny` is the tiny
CLIP with the tiny backbones; `full` is the paper's size: ViT-B/16 CLIP at 384 and ResNet-101 or SAM
ViT-B at the frame's own size. For each it prints the parameter counts, encoder passes per frame and
wall time for both ways with their ratio (over the video, and per frame once clips are full, as in
most of a 70-frame VSPW video), and whether the label maps agree. Setup (text embeddings of VSPW's
44 unseen names) is timed apart.
"""

from __future__ import annotations

import argparse
import time

import torch
from segment_timing import compare, report, timed_segment

from benchmark import registry
from benchmark.data import catalog, synthetic
from benchmark.interface import Video
from methods import clip
from methods.ov2vss.model import ModelConfig, OV2VSSModel

CONFIGS = {
    "tiny": {"clip_model": clip.TINY_MODEL, "cost_channels": 32, "feature_channels": 32, "head_channels": 32,
             "heads": 2, "text_heads": 2},
    "full": {"clip_model": clip.PAPER_MODEL},
}
BACKBONES = {("tiny", "resnet"): "resnet-tiny", ("tiny", "sam"): "sam-vit-tiny",
             ("full", "resnet"): "resnet101", ("full", "sam"): "sam-vit-b"}


def parameter_counts(model: OV2VSSModel, clip_model: torch.nn.Module) -> dict[str, float]:
    """Millions of parameters per part."""
    def millions(module) -> float:
        return sum(p.numel() for p in module.parameters()) / 1e6 if module is not None else 0.0

    video = sum(millions(getattr(model, name)) for name in ("p2t", "stcf", "aux", "rfe", "vte"))
    return {"backbone": millions(model.backbone), "video modules": video,
            "cost+head": millions(model.cost) + millions(model.pyramid) + millions(model.head),
            "trainable": millions(model), "CLIP (frozen)": millions(clip_model)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,full")
    parser.add_argument("--backbones", default="resnet,sam")
    parser.add_argument("--frames", type=int, default=20, help="video length (targets from frame 9 on have full clips)")
    parser.add_argument("--prompts", default="imagenet", choices=clip.PROMPT_SETS)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    root = synthetic.ensure({"videos": 1, "frames": args.frames, "height": 480, "width": 853})
    record = synthetic.SyntheticReader().read_videos(root, "val")[0]
    vocabulary = list(catalog.reader("vspw").setting("unseen").vocabulary)
    print(f"video: {len(record.frames)} frames of 480x853, all annotated; vocabulary: {len(vocabulary)} names, "
          f"prompts {args.prompts}; device {device}, {torch.get_num_threads()} threads")
    for config in args.configs.split(","):
        for backbone in args.backbones.split(","):
            options = {**CONFIGS[config], "backbone": BACKBONES[config, backbone], "clip_pretrained": "random",
                       "prompts": args.prompts}
            method = registry.create("ov2vss", **options)
            started = time.perf_counter()
            method.setup(vocabulary, device)
            setup = time.perf_counter() - started
            torch.manual_seed(0)
            method.model = OV2VSSModel(ModelConfig.from_dict(method.model_options)).to(device).eval()
            counts = parameter_counts(method.model, method.clip.model)
            print(f"\n{config} / {options['backbone']} (setup {setup:.1f} s): parameters (M) "
                  + ", ".join(f"{k} {v:.2f}" for k, v in counts.items()))
            ways = {}
            for streaming in (True, False):
                method.streaming = streaming
                # Targets from frame 9 on have their whole clip: the cost of every frame of a long video.
                ways[streaming] = timed_segment(method, Video(record.name, record.frames, record.annotated),
                                                max(method.recipe.offsets))
                report("streamed" if streaming else "naive", ways[streaming])
            compare("naive", ways[False], ways[True])

if __name__ == "__main__":
    main()

"""sam-clip speed on 480x853 frames, and batched against one-by-one crop classification.

    python benchmarks/sam_clip_speed.py [--frames 2] [--configs tiny,full] [--crop-batch 32] [--device cpu]

Frames come from the synthetic dataset generated at 480x853 (VSPW's 480p). `tiny` is our tiny SAM
and tiny CLIP; `full` is SAM ViT-B with OpenAI's ViT-B/16 architecture. Both have random weights
(speed does not depend on them), so the mask generator runs with permissive thresholds
(pred_iou_thresh=0, stability_score_thresh=0) to keep masks to name, as trained weights would; the
other generator settings are segment_anything's defaults (32 x 32 points). Per frame it prints the
seconds spent by SAM (and by its image encoder alone), by naming and painting its regions and in
all (setup excluded and timed separately). Random SAM weights give one or two regions per frame
(NMS merges their near-identical masks), where trained weights give dozens, so batching is measured
on a grid of `--grid` cells per frame (8 x 12 = 96 regions by default): the same regions named with `--crop-batch` crops per CLIP
call and with one crop per call, timed in the same run, and their ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmark import registry
from benchmark.data import synthetic
from benchmark.data.cards import load_card
from benchmark.data.settings import display_name
from benchmark.interface import Video
from methods import clip, sam

PERMISSIVE = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
CONFIGS = {
    "tiny": {"sam_model": sam.TINY_MODEL, "clip_model": clip.TINY_MODEL},
    "full": {"sam_model": sam.PAPER_MODEL, "clip_model": clip.PAPER_MODEL},
}


def timed(function, *args):
    started = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - started


def grid_regions(height: int, width: int, rows: int, cols: int) -> torch.Tensor:
    """Boolean masks [rows * cols, H, W], one per cell of a grid over the frame."""
    cell_y = torch.arange(height) * rows // height
    cell_x = torch.arange(width) * cols // width
    cells = cell_y[:, None] * cols + cell_x[None, :]
    return cells[None] == torch.arange(rows * cols)[:, None, None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--configs", default="tiny,full")
    parser.add_argument("--crop-batch", type=int, default=32, help="crops per CLIP call in the batched run")
    parser.add_argument("--grid", default="8x12", help="rows x columns of the regions that batching is timed on")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    card = load_card("vspw")
    vocabulary = [display_name(name) for name in card["classes"][card["num_seen"]:]]
    root = synthetic.ensure({"videos": 1, "frames": args.frames, "height": 480, "width": 853})
    record = synthetic.SyntheticReader().read_videos(root, "val")[0]
    rows, cols = (int(v) for v in args.grid.split("x"))
    video = Video(record.name, record.frames, record.annotated)
    frames = [video.frame(i) for i in range(args.frames)]
    print(f"{len(frames)} frames of 480x853; vocabulary: the {len(vocabulary)} unseen VSPW names x 80 templates; "
          f"device {device}, {torch.get_num_threads()} threads; random weights, permissive thresholds")
    for config in args.configs.split(","):
        options = {**CONFIGS[config], "sam_checkpoint": "random", "clip_pretrained": "random", **PERMISSIVE,
                   "crop_batch_size": args.crop_batch, "fill": "nearest"}
        method = registry.create("sam-clip", **options)
        _, setup = timed(method.setup, vocabulary, device)
        method.segment_frame(frames[0][:, :64, :64])  # warm-up: first-call allocations
        sam_s = encoder_s = name_s = total_s = 0.0
        batched_s = single_s = 0.0
        regions = 0
        for image in frames:
            started = time.perf_counter()
            pixels = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
            records, seconds = timed(method.generator.generate, pixels)
            sam_s += seconds
            masks = [r["segmentation"] for r in records]
            _, seconds = timed(method.label_regions, image, masks)
            name_s += seconds
            total_s += time.perf_counter() - started
            regions += len(masks)
            # The image encoder alone (the generator runs it once per frame); the rest is per point prompt.
            _, seconds = timed(method.generator.predictor.set_image, pixels)
            encoder_s += seconds
            method.generator.predictor.reset_image()
            # Naming alone, batched and one by one, on the same regions.
            stacked = grid_regions(*image.shape[1:], rows, cols).to(device)
            batched, seconds = timed(method.name_regions, image.to(device), stacked)
            batched_s += seconds
            method.crop_batch_size = 1
            single, seconds = timed(method.name_regions, image.to(device), stacked)
            single_s += seconds
            method.crop_batch_size = args.crop_batch
            assert torch.equal(batched, single), "batched and one-by-one naming disagree"
        n = len(frames)
        print(f"{config:5s} SAM {method.sam.name} + CLIP {method.clip.name}: setup {setup:.1f} s; per frame "
              f"{total_s / n:.2f} s (SAM {sam_s / n:.2f} s, of which its image encoder {encoder_s / n:.2f} s; "
              f"naming and painting {name_s / n:.2f} s), "
              f"{regions / n:.0f} regions")
        print(f"      naming {rows * cols} grid regions: {args.crop_batch} per call {batched_s / n:.2f} s, "
              f"one per call {single_s / n:.2f} s per frame: batched is {single_s / batched_s:.1f}x faster; same names")


if __name__ == "__main__":
    main()

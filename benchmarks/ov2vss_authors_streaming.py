"""`ov2vss-authors`, streamed (each frame encoded once, the far frame's memory once per video)
against their test's way (every frame of every clip encoded again, t-3 and unused far frames too).

    python benchmarks/ov2vss_authors_streaming.py [--size full|tiny] [--frames 12] [--device cpu]

One synthetic video of 480x853 frames, every frame a target (as in their VSPW test), through the
method's real loading path: a checkpoint in their mmcv format with default-initialised weights
(speed does not depend on the weights) and 45 names' text features from a file (random: encoding
45 x 80 prompts is setup, not per-frame cost). Prints encoder passes per frame, wall time for both
ways and their ratio (over the video, and per target once clips are full, t >= 9), and whether the
label maps agree.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile

import numpy as np
import torch
from segment_timing import compare, report, timed_segment

from benchmark import registry
from benchmark.data import catalog, synthetic
from benchmark.interface import Video
from methods.ov2vss_authors.checkpoint import CLIP_PREFIX, CONFIG_KEY
from methods.ov2vss_authors.model import AuthorsModel, ModelConfig
from methods.ov2vss_authors.checkpoint import write as write_mmcv_checkpoint

REPO = pathlib.Path(__file__).resolve().parents[1]


def checkpoint(size: str, folder: pathlib.Path) -> tuple[pathlib.Path, ModelConfig]:
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(0)
    if size == "full":
        config = ModelConfig()
        clip = CLIP(512, CLIPVisionCfg(layers=12, width=768, patch_size=16, image_size=224),
                    CLIPTextCfg(context_length=77, vocab_size=49408, width=512, heads=8, layers=12), quick_gelu=True)
        meta = {}
    else:
        sys.path.insert(0, str(REPO / "tests"))
        from authors_models import TINY, tiny_clip_state

        config, clip, meta = TINY, None, {CONFIG_KEY: TINY.to_dict()}
    state = dict(AuthorsModel(config).state_dict())
    clip_state = clip.state_dict() if clip is not None else tiny_clip_state()
    state.update({CLIP_PREFIX + k: v for k, v in clip_state.items()})
    return write_mmcv_checkpoint(state, folder / f"{size}.pth", meta), config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="full", choices=("full", "tiny"))
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    root = synthetic.ensure({"videos": 1, "frames": args.frames, "height": 480, "width": 853})
    record = synthetic.SyntheticReader().read_videos(root, "val")[0]
    vocabulary = list(catalog.reader("vspw").setting("unseen", "official").vocabulary)
    with tempfile.TemporaryDirectory() as scratch:
        folder = pathlib.Path(scratch)
        path, config = checkpoint(args.size, folder)
        features = np.random.default_rng(0).standard_normal((len(vocabulary), config.templates, config.text_dim))
        features /= np.linalg.norm(features, axis=(1, 2), keepdims=True)  # rows of norm 1/sqrt(80), as theirs
        np.save(folder / "text.npy", features.astype(np.float32))
        print(f"video: {args.frames} frames of 480x853, all targets; {len(vocabulary)} names; size {args.size}; "
              f"device {device}, {torch.get_num_threads()} threads")
        ways = {}
        for streaming in (True, False):
            method = registry.create("ov2vss-authors", streaming=streaming, text_features=str(folder / "text.npy"))
            method.load(path)
            method.setup(vocabulary, device)
            ways[streaming] = timed_segment(method, Video(record.name, record.frames, list(range(len(record.frames)))),
                                            9)
            report("streamed" if streaming else "per clip", ways[streaming])
        compare("per clip", ways[False], ways[True])

if __name__ == "__main__":
    main()

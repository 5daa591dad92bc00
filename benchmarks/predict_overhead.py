"""What `predict` costs per frame over `run` for the same method: decoding a video file and encoding the
overlay video and the label PNGs.

    python benchmarks/predict_overhead.py [--method clip-cost-volume] [--videos 4] [--size 480x853] [--repeats 3]

Writes the synthetic world's first `--videos` validation videos (at `--size`, height x width) as one mp4
(PyAV, H.264), then times the same method over the same frames, set-up (model loading) left out: as
`run` segments and scores them (the cell's `segment_s`, from its result), as `run --save-predictions`
does (also writing each map in both VSPW id spaces), and as `predict` does (decoding the mp4, then
segmenting and writing each label PNG and overlay frame, from predictions.json's `timing`). Prints the
median milliseconds per frame of each over `--repeats` and the differences.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import av
import numpy as np
from PIL import Image


def write_mp4(path: pathlib.Path, frames: list[np.ndarray], fps: int = 10) -> None:
    """H.264 in 4:2:0 wants even sizes: an odd side (VSPW's 853) gets one more column or row, edge-padded."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.pix_fmt = "yuv420p"
        stream.height, stream.width = height + height % 2, width + width % 2
        for frame in frames:
            frame = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def time_saving_maps(reader, record, folder: pathlib.Path, repeats: int = 20) -> float:
    """Seconds to write one frame's maps in every format, as `run --save-predictions` does (a ground-truth
    mask stands in for a prediction: both are mostly flat regions, which is what PNG compresses)."""
    from benchmark.data.records import read_mask
    from benchmark.saved_predictions import PredictionFiles
    from benchmark.store import RunStore

    path = record.masks[record.annotated[0]]
    card_labels = record.mask_format.decode(read_mask(path), path)
    files = PredictionFiles(RunStore(folder), "cell", reader.label_formats())
    files.start(record.name)
    started = time.perf_counter()
    for k in range(repeats):
        files.write(record.name, f"{k:08d}", card_labels)
    return (time.perf_counter() - started) / repeats


def main() -> None:
    from benchmark.data import synthetic
    from benchmark.data.cards import load_card

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="clip-cost-volume")
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--size", default=None, metavar="HxW", help="frame size (default: the synthetic world's)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    options = {"videos": args.videos}
    if args.size:
        options["height"], options["width"] = (int(v) for v in args.size.split("x"))
    reader = synthetic.SyntheticReader(options)
    records = reader.read_videos(reader.locate(), "val")
    frames = [np.asarray(Image.open(p).convert("RGB")) for record in records for p in record.frames]
    names = ", ".join(load_card("synthetic")["classes"][16:])
    dataset_options = [item for key, value in options.items() for item in ("--dataset-opt", f"synthetic.{key}={value}")]
    run_s, saving_s, predict_s = [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        root = pathlib.Path(scratch)
        write_mp4(root / "footage.mp4", frames)
        for repeat in range(args.repeats):
            for times, extra in ((run_s, []), (saving_s, ["--save-predictions"])):
                out = root / f"run{repeat}{extra}"
                subprocess.run([sys.executable, "-m", "benchmark", "run", "--methods", args.method, "--datasets",
                                "synthetic:unseen", *dataset_options, "--output", str(out), "--no-tracking", *extra],
                               check=True, capture_output=True)
                (result,) = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
                times.append(result["timing"]["segment_s"] / result["timing"]["frames"])
            subprocess.run([sys.executable, "-m", "benchmark", "predict", str(root / "footage.mp4"), "--method",
                            args.method, "--classes", names, "--output", str(root / f"pred{repeat}")],
                           check=True, capture_output=True)
            summary = json.loads((root / f"pred{repeat}" / "predictions.json").read_text())
            timing = summary["timing"]
            predict_s.append((summary["footage"]["decode_s"] + timing["frames_s"]) / timing["frames"])
        maps_s = time_saving_maps(reader, records[0], root / "maps")
    run, saving, pred = (statistics.median(times) for times in (run_s, saving_s, predict_s))
    print(f"{args.method} on {len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]}, median of "
          f"{args.repeats}:")
    print(f"  run (segment + score, per frame):                    {1000 * run:.1f} ms")
    print(f"  run --save-predictions (+ 2 PNGs per frame):         {1000 * saving:.1f} ms ({1000 * (saving - run):+.1f})")
    print(f"    its maps alone (a frame's 2 PNGs, timed apart):    {1000 * maps_s:.1f} ms")
    print(f"  predict (decode + segment + write, per frame):      {1000 * pred:.1f} ms")
    print(f"  predict - run (decoding the mp4, PNGs, overlay):     {1000 * (pred - run):+.1f} ms")


if __name__ == "__main__":
    main()

"""What a cell's bootstrap intervals cost at VSPW's size: seconds per cell.

    python benchmarks/bootstrap_speed.py [--videos 343] [--classes 124] [--resamples 1000] [--repeats 5]

Builds per-video counts the shape of a VSPW val cell (343 videos, 124 classes, each video showing 8-25
classes, as VSPW's do, with VC_8 and VC_16 windows), then times what the runner adds to every cell:
turning the videos' confusion matrices into `VideoCounts` and computing every metric's and every
class's interval; and what a table adds per pair of cells: one paired comparison. Prints the median
of `--repeats` runs of each.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from benchmark import uncertainty


def vspw_sized_cell(rng: np.random.Generator, videos: int, classes: int):
    confusions, vc_states = [], []
    for _ in range(videos):
        counts = np.zeros((classes, classes + 1), dtype=np.int64)
        present = rng.choice(classes, size=rng.integers(8, 26), replace=False)
        pixels = rng.integers(10_000, 3_000_000, size=len(present))
        counts[present, present] = (pixels * rng.uniform(0.2, 0.9, size=len(present))).astype(np.int64)
        wrong = rng.choice(classes + 1, size=len(present))
        counts[present, wrong] += pixels - counts[present, present]
        confusions.append(counts)
        frames = int(rng.integers(20, 120))
        vc_states.append({"rule": "vspw", "ratio_sum": {n: float(rng.uniform(0.5, 0.9) * (frames - int(n)))
                                                        for n in ("8", "16")},
                          "windows": {n: frames - int(n) for n in ("8", "16")}, "empty_windows": {"8": 0, "16": 0}})
    return confusions, vc_states


def median_seconds(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=343)
    parser.add_argument("--classes", type=int, default=124)
    parser.add_argument("--resamples", type=int, default=uncertainty.RESAMPLES)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    names = [f"video_{v}" for v in range(args.videos)]
    class_names = [f"class_{c}" for c in range(args.classes)]
    groups = {"seen": list(range(args.classes * 2 // 3)), "unseen": list(range(args.classes * 2 // 3, args.classes))}
    first, second = vspw_sized_cell(rng, args.videos, args.classes), vspw_sized_cell(rng, args.videos, args.classes)
    bootstrap = uncertainty.Bootstrap(resamples=args.resamples)

    def one_cell(cell=first):
        counts = uncertainty.VideoCounts.from_states(names, *cell)
        return uncertainty.cell_intervals(counts, groups, class_names, bootstrap)

    per_cell = median_seconds(one_cell, args.repeats)
    a, b = (uncertainty.samples(uncertainty.VideoCounts.from_states(names, *cell), groups, bootstrap)
            for cell in (first, second))
    per_pair = median_seconds(lambda: uncertainty.paired_difference([a], [b], "mIoU", bootstrap), args.repeats)
    print(f"bootstrap over videos: {args.videos} videos, {args.classes} classes, {args.resamples} resamples, "
          f"median of {args.repeats}")
    print(f"  per cell (counts + every metric's and class's interval): {per_cell:.3f} s")
    print(f"  per paired comparison (one metric, samples reused):     {per_pair * 1000:.2f} ms")


if __name__ == "__main__":
    main()

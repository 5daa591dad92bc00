"""Reader speed on 480p frames: `data check` throughput, and frames per second decoding on demand
versus ahead in N background threads (the way `run` reads), in one process so the ratios compare.

    python benchmarks/reader_speed.py [--videos 6] [--frames 60] [--threads 1,2,4,8]

Writes a VSPW-layout folder of 480x853 JPEG frames (smooth shading plus texture, so the files are
about as large as real ones) into a temporary folder, then times the reader on it.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[1]


def write_dataset(root: pathlib.Path, videos: int, frames: int) -> None:
    base = root / "VSPW_480p"
    names = [f"video_{v:03d}" for v in range(videos)]
    base.mkdir(parents=True)
    (base / "val.txt").write_text("".join(n + "\n" for n in names))
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:853]
    for v, name in enumerate(names):
        for sub in ("origin", "mask"):
            (base / "data" / name / sub).mkdir(parents=True)
        texture = rng.integers(0, 40, (480, 853, 3), dtype=np.uint8)
        for t in range(frames):
            shade = ((x + 4 * t + 50 * v) % 256)[..., None] * np.array([1.0, 0.6, 0.3]) + (y % 128)[..., None] * 0.5
            frame = (shade.clip(0, 215).astype(np.uint8) + texture)
            Image.fromarray(frame).save(base / "data" / name / "origin" / f"{t + 1:08d}.jpg", quality=90)
            mask = ((x // 107 + y // 120 + t // 10) % 125).astype(np.uint8)
            Image.fromarray(mask, mode="L").save(base / "data" / name / "mask" / f"{t + 1:08d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--threads", default="1,2,4")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = pathlib.Path(folder)
        write_dataset(root, args.videos, args.frames)
        total = args.videos * args.frames
        print(f"{total} frames of 480x853 in {root}; {os.cpu_count()} cores")
        for threads in [int(t) for t in args.threads.split(",")]:
            env = {**os.environ, "BENCHMARK_DECODE_WORKERS": str(threads)}
            command = [sys.executable, "-m", "benchmark", "data", "check", "vspw", "--root", str(root),
                       "--workers", str(threads)]
            started = time.perf_counter()
            checked = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - started
            timed = subprocess.run([*command, "--speed", "--speed-frames", str(total)], cwd=REPO, env=env,
                                   capture_output=True, text=True)
            speed = [line for line in timed.stdout.splitlines() if "frames/s" in line or "waits" in line]
            print(f"\n{threads} thread(s): data check decoded {total} frames and masks in {elapsed:.1f} s "
                  f"({total / elapsed:.0f} frames/s, process start included), exit {checked.returncode}")
            print("\n".join(speed) or timed.stderr[-2000:])

if __name__ == "__main__":
    main()

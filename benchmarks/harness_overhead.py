"""What the harness itself costs per frame, around a method that costs nothing.

    python benchmarks/harness_overhead.py [--videos 12] [--frames 72] [--executors debug,local] [--repo DIR]

Writes a VSPW-layout folder of 480x853 frames (JPEG) and masks (PNG) into a temporary folder, then runs
`run --methods instant` (benchmarks/instant_method.py: it returns a prepared map) on vspw:unseen with
each executor, twice: instantly, and waiting 30 ms per frame with the GIL released, as a GPU method
does. The method times what runs on the main thread between its maps: the harness's reading, checking
and scoring. Printed per executor:
- main-thread CPU ms per frame and frames/s (instant method): the harness alone;
- harness wall ms per frame in series with a 30 ms method, and its share of that cell's time.
`--repo DIR` runs another checkout's harness (e.g. a worktree of an older commit) for a before/after.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

from reader_speed import write_dataset

HERE = pathlib.Path(__file__).resolve().parent


def run_cell(repo: pathlib.Path, root: pathlib.Path, output: pathlib.Path, executor: str, delay_ms: float) -> dict:
    timing_dir = output / "timing"
    timing_dir.mkdir(parents=True)
    command = [sys.executable, "-m", "benchmark", "run", "--methods", "instant", "--plugin",
               str(HERE / "instant_method.py"), "--datasets", "vspw:unseen", "--data-root", str(root),
               "--executor", executor, "--output", str(output / "run"), "--no-tracking",
               "--opt", f"instant.delay_ms={delay_ms:g}"]
    env = {**os.environ, "HARNESS_TIMING_DIR": str(timing_dir), "PYTHONPATH": str(repo)}
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    (gaps,) = [json.loads(path.read_text()) for path in timing_dir.glob("*.json")]
    (result,) = [json.loads(path.read_text()) for path in (output / "run" / "cells").glob("*.json")]
    return {**gaps, "segment_s": result["timing"]["segment_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--frames", type=int, default=72, help="annotated frames per video (VSPW val: 71 on average)")
    parser.add_argument("--executors", default="debug,local")
    parser.add_argument("--repo", type=pathlib.Path, default=HERE.parent, help="the checkout whose harness runs")
    parser.add_argument("--delay-ms", type=float, default=30.0)
    args = parser.parse_args()
    repo = args.repo.resolve()
    commit = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%h %s"], capture_output=True,
                            text=True).stdout.strip()[:80]
    with tempfile.TemporaryDirectory(prefix="harness-overhead-") as folder:
        root = pathlib.Path(folder) / "data"
        write_dataset(root, args.videos, args.frames)
        print(f"harness of {repo} ({commit})")
        print(f"{args.videos} videos x {args.frames} frames of 480x853 (vspw:unseen, 44 names); {os.cpu_count()} cores")
        print(f"{'executor':9s} {'main-thread CPU ms/frame':>25s} {'frames/s':>9s} "
              f"{'harness wall ms/frame, %g ms method' % args.delay_ms:>37s} {'harness share':>14s}")
        for executor in args.executors.split(","):
            instant = run_cell(repo, root, pathlib.Path(folder) / f"{executor}-instant", executor, 0)
            paced = run_cell(repo, root, pathlib.Path(folder) / f"{executor}-paced", executor, args.delay_ms)
            frames = instant["frames"]
            share = paced["wall_s"] / paced["segment_s"]
            print(f"{executor:9s} {1000 * instant['cpu_s'] / frames:25.2f} {frames / instant['segment_s']:9.1f} "
                  f"{1000 * paced['wall_s'] / paced['frames']:37.2f} {100 * share:13.1f}%")


if __name__ == "__main__":
    main()

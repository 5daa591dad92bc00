"""`data check`: read a dataset copy exactly as a run will, and report everything wrong with it.

Every frame and mask is decoded in full (a truncated file only fails when decoded), in threads,
since Pillow releases the GIL while it decodes. Problems are collected, each with its file, rather
than stopping at the first; the class histogram shows whether the labels look as they should.
"""

from __future__ import annotations

import pathlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmark.data.frames import decode_workers
from benchmark.data.loading import PREFETCH_FRAMES, prefetched_videos
from benchmark.data.reader import DatasetReader
from benchmark.data.records import MASK_SIZE_FIX, DatasetError, Problem, VideoRecord, read_mask, unknown_label_problem
from benchmark.interface import Video
from benchmark.progress import Progress


@dataclass
class SplitSummary:
    videos: int = 0
    frames: int = 0
    annotated: int = 0


@dataclass
class CheckReport:
    dataset: str
    root: pathlib.Path
    class_names: list[str]
    class_groups: list[str]                           # the group each class belongs to ('' if none)
    splits: dict[str, SplitSummary] = field(default_factory=dict)
    class_pixels: np.ndarray = field(default_factory=lambda: np.zeros(256, dtype=np.int64))  # by card label
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "root": str(self.root), "ok": self.ok,
                "splits": {s: vars(summary) for s, summary in self.splits.items()},
                "class_pixels": {name: int(self.class_pixels[k]) for k, name in enumerate(self.class_names)},
                "unscored_pixels": int(self.class_pixels[255]),
                "problems": [{"kind": p.kind, "path": str(p.path), "message": p.message} for p in self.problems],
                "notes": self.notes}


def check(dataset: DatasetReader, root: pathlib.Path, splits: list[str] | None = None,
          workers: int = 1) -> CheckReport:
    setting = dataset.setting("all")
    groups = {k: group for group, members in setting.groups.items() for k in members}
    report = CheckReport(dataset.name, root, setting.class_names, [groups.get(k, "") for k in range(len(setting.class_names))])
    dataset.check_files(root, report.problems.append)
    splits = splits or dataset.splits(root)
    if not splits:
        report.problems.append(Problem("missing-split", root, f"no split found; {dataset.layout_hint()} expected"))
    for split in splits:
        records = dataset.read_videos(root, split, report.problems.append)
        report.notes.extend(dataset.notes(root, split))
        summary = report.splits[split] = SplitSummary(len(records))
        progress = Progress(len(records), f"check {dataset.name} {split}", unit="video")
        with ThreadPoolExecutor(max(1, workers)) as pool:
            for frames, annotated, pixels, problems in pool.map(check_video, records):
                summary.frames += frames
                summary.annotated += annotated
                report.class_pixels += pixels
                report.problems.extend(problems)
                progress.update(1)
        progress.close()
    return report


def check_video(record: VideoRecord) -> tuple[int, int, np.ndarray, list[Problem]]:
    """Decode every frame and mask of a video: (frames, annotated frames, pixels per card label, problems)."""
    problems: list[Problem] = []
    sizes = {}
    for index, path in enumerate(record.frames):
        try:
            sizes[index] = _decoded_size(path)
        except OSError as error:
            problems.append(Problem("unreadable", path, f"cannot decode the frame ({error}); the file is corrupt "
                                                        "or truncated: extract it again from the dataset archive"))
    if len(set(sizes.values())) > 1:
        first = next(iter(sizes.items()))
        changed = next((i, s) for i, s in sizes.items() if s != first[1])
        problems.append(Problem("size-mismatch", record.frames[changed[0]], (
            f"video {record.name}: frame size changes from {first[1]} (frame {first[0]}) to {changed[1]} (H, W); "
            "frames of a video must share one size")))
    pixels = np.zeros(256, dtype=np.int64)
    for index, path in record.masks.items():
        try:
            raw = read_mask(path)
        except DatasetError as error:
            problems.append(Problem("unreadable", path, str(error).removeprefix(f"mask {path} ")))
            continue
        unknown = record.mask_format.unknown_values(raw)
        if unknown:
            problems.append(unknown_label_problem(record.mask_format, unknown, path))
        if index in sizes and raw.shape != sizes[index]:
            problems.append(Problem("size-mismatch", path, f"the mask is {raw.shape} but its frame "
                                                           f"{record.frames[index]} is {sizes[index]} (H, W); "
                                                           f"{MASK_SIZE_FIX}"))
        pixels += np.bincount(record.mask_format.lut[raw].ravel(), minlength=256)
    return len(record.frames), len(record.masks), pixels, problems


def _decoded_size(path: pathlib.Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return image.height, image.width


def measure_speed(dataset: DatasetReader, root: pathlib.Path, split: str, frames: int = 200) -> dict[str, Any]:
    """Frames per second of the reader alone: decoding on demand, and the way `run` reads (frames
    decoding ahead in background threads); then how long a method that computes for as long as a
    decode takes waits for each frame, both ways."""
    chosen, total = [], 0
    for record in dataset.read_videos(root, split):
        if total >= frames:
            break
        chosen.append(record)
        total += len(record.frames)
    if not total:
        raise DatasetError(f"split {split} of {root} has no frames to time")
    def on_demand_videos():
        return (Video(r.name, r.frames, r.annotated) for r in chosen)

    def ahead_videos():
        return prefetched_videos(chosen, PREFETCH_FRAMES, ahead="all")

    # An untimed pass first, so no timed one pays for the disk (page cache) or for importing torch.
    _timed_pass(on_demand_videos(), compute_s=0.0)
    on_demand = _timed_pass(on_demand_videos(), compute_s=0.0)
    ahead = _timed_pass(ahead_videos(), compute_s=0.0)
    compute_s = on_demand["seconds"] / total
    waited_on_demand = _timed_pass(on_demand_videos(), compute_s)
    waited_ahead = _timed_pass(ahead_videos(), compute_s)
    return {"split": split, "frames": total, "decode_threads": decode_workers(), "prefetch": PREFETCH_FRAMES,
            "on_demand_fps": total / on_demand["seconds"], "ahead_fps": total / ahead["seconds"],
            "method_compute_ms": compute_s * 1e3,
            "wait_ms_on_demand": waited_on_demand["waited"] / total * 1e3,
            "wait_ms_ahead": waited_ahead["waited"] / total * 1e3}


def _timed_pass(videos, compute_s: float) -> dict[str, float]:
    """Read every frame of every video in order; `compute_s` stands for the method's work per frame
    (a sleep, which like GPU work leaves the decoding threads free)."""
    waited = 0.0
    started = time.perf_counter()
    for video in videos:
        for i in range(len(video)):
            before = time.perf_counter()
            video.frame(i)
            waited += time.perf_counter() - before
            if compute_s:
                time.sleep(compute_s)
    return {"seconds": time.perf_counter() - started, "waited": waited}


def format_report(report: CheckReport) -> str:
    lines = [f"{report.dataset} at {report.root}", "",
             f"{'split':8s} {'videos':>8s} {'frames':>10s} {'annotated':>10s}"]
    for split, s in report.splits.items():
        lines.append(f"{split:8s} {s.videos:8d} {s.frames:10d} {s.annotated:10d}")
    scored = int(report.class_pixels[: len(report.class_names)].sum())
    total = scored + int(report.class_pixels[255])
    lines += ["", f"class pixels over the annotated frames of {', '.join(report.splits) or 'no split'}:",
              f"{'id':>4s}  {'class':38s} {'group':8s} {'pixels':>14s} {'share':>7s}"]
    for k, name in enumerate(report.class_names):
        count = int(report.class_pixels[k])
        lines.append(f"{k:4d}  {name[:38]:38s} {report.class_groups[k]:8s} {count:14d} {_share(count, total):>7s}")
    lines.append(f"{'-':>4s}  {'(not scored: others, void, unused ids)':38s} {'':8s} "
                 f"{int(report.class_pixels[255]):14d} {_share(int(report.class_pixels[255]), total):>7s}")
    absent = [n for k, n in enumerate(report.class_names) if not report.class_pixels[k]]
    if absent and total:
        lines.append(f"classes with no pixels: {len(absent)} ({', '.join(absent[:10])}{' ...' if len(absent) > 10 else ''})")
    for note in report.notes:
        lines += ["", f"note: {note}"]
    lines.append("")
    if report.ok:
        lines.append("no problems found")
    else:
        lines.append(f"{len(report.problems)} problem(s):")
        lines += [f"  [{p.kind}] {p}" for p in report.problems]
    return "\n".join(lines)


def format_speed(speed: dict[str, Any]) -> str:
    return "\n".join([
        (f"reader speed ({speed['frames']} frames of {speed['split']}, files in the page cache): "
         f"{speed['on_demand_fps']:.1f} frames/s decoding on demand, {speed['ahead_fps']:.1f} frames/s "
         f"decoding ahead ({speed['decode_threads']} threads, {speed['prefetch']} frames ahead), "
         f"x{speed['ahead_fps'] / speed['on_demand_fps']:.2f}"),
        (f"a method computing {speed['method_compute_ms']:.1f} ms per frame waits {speed['wait_ms_on_demand']:.2f} ms "
         f"per frame on demand, {speed['wait_ms_ahead']:.2f} ms with decoding ahead")])


def _share(count: int, total: int) -> str:
    return f"{100 * count / total:.2f}%" if total else "-"

"""A user's own footage as a `Video`: a video file (decoded with PyAV, which ships its own FFmpeg) or a
folder of frames, with the frames to segment chosen by `--frames A:B` and `--every K`.

Video methods get every frame up to the last chosen one, so the frames before a chosen frame are its
past, as in `run`. A video file's frames are decoded once, in order, into a scratch folder of
uncompressed images that `Video` reads like any dataset's frames.
"""

from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.data.vspw import frame_order
from benchmark.interface import Video

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v", ".mpg", ".mpeg", ".gif")
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff")


class FootageError(ValueError):
    """Footage that cannot be read, or a frame choice that selects nothing: the message names it."""


@dataclass(frozen=True)
class Selection:
    """Frames start, start + every, ... below stop (None: to the end)."""

    start: int = 0
    stop: int | None = None
    every: int = 1

    @classmethod
    def parse(cls, frames: str | None, every: int = 1) -> Selection:
        """From `--frames A:B` (either side may be empty) and `--every K`."""
        if every < 1:
            raise FootageError(f"--every {every}: give a step of at least 1 (every K-th frame)")
        if not frames:
            return cls(every=every)
        found = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", frames)
        if not found:
            raise FootageError(f"--frames {frames!r}: expected A:B, the frame numbers from A up to (not "
                               "including) B, counted from 0; either may be left out (e.g. 100: or :50)")
        start = int(found[1]) if found[1] else 0
        stop = int(found[2]) if found[2] else None
        if stop is not None and stop <= start:
            raise FootageError(f"--frames {frames!r}: selects no frame (B must be greater than A)")
        return cls(start, stop, every)

    def indices(self, count: int) -> list[int]:
        return list(range(self.start, min(count, self.stop if self.stop is not None else count), self.every))


def open_footage(source: pathlib.Path, selection: Selection, scratch: pathlib.Path,
                 ahead: str = "annotated") -> tuple[Video, dict[str, Any]]:
    """The footage at `source` as a Video whose annotated frames are the chosen ones, and what was read
    (kind, frame count, frame rate, size). A video file is decoded into `scratch`."""
    source = pathlib.Path(source)
    if source.is_dir():
        paths = sorted((p for p in source.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.is_file()),
                       key=frame_order)  # 9.png before 10.png: names that are numbers sort as numbers
        if not paths:
            raise FootageError(f"{source} holds no frames (image files ending in {', '.join(FRAME_SUFFIXES)}); "
                               "pass a folder of frames or a video file")
        info = {"kind": "frames", "fps": None}
    elif source.is_file():
        if source.suffix.lower() not in VIDEO_SUFFIXES:
            raise FootageError(f"{source}: not a video file this reads ({', '.join(VIDEO_SUFFIXES)}) nor a folder "
                               "of frames")
        paths, fps = _decode(source, selection, scratch)
        info = {"kind": "video", "fps": fps}
    else:
        raise FootageError(f"{source} does not exist; pass a video file or a folder of frames")
    chosen = selection.indices(len(paths))
    if not chosen:
        raise FootageError(f"{source}: --frames/--every choose none of its {len(paths)} frames")
    video = Video(source.stem, paths[: chosen[-1] + 1], chosen, prefetch=4, ahead=ahead)
    height, width = video.frame(chosen[0]).shape[1:]
    return video, {"source": str(source), **info, "frames": len(paths), "size": [int(height), int(width)]}


def _decode(source: pathlib.Path, selection: Selection, scratch: pathlib.Path) -> tuple[list[pathlib.Path], float]:
    """Decode the frames up to the selection's end into `scratch` as .ppm files (lossless, no encoding
    cost); the frame rate of the video stream."""
    import av
    from PIL import Image

    scratch.mkdir(parents=True, exist_ok=True)
    paths: list[pathlib.Path] = []
    try:
        with av.open(str(source)) as container:
            if not container.streams.video:
                raise FootageError(f"{source} has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else None
            for frame in container.decode(stream):
                if selection.stop is not None and len(paths) >= selection.stop:
                    break
                path = scratch / f"{len(paths):06d}.ppm"
                Image.fromarray(np.asarray(frame.to_ndarray(format="rgb24"))).save(path)
                paths.append(path)
    except av.error.FFmpegError as error:
        raise FootageError(f"cannot decode {source}: {error}; is it a complete video file? (FFmpeg reads mp4, mov, "
                           "webm, mkv, avi, ...)") from error
    if not paths:
        raise FootageError(f"{source}: its video stream has no frames")
    return paths, fps

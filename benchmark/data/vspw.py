"""Reader for the VSPW on-disk layout (also written by the synthetic generator).

    ROOT/train.txt val.txt test.txt          video ids, one per line
    ROOT/data/<video>/origin/<frame>.jpg     frames
    ROOT/data/<video>/mask/<frame>.png       masks: 0 = others, 255 = void, k = class k (1-based)

Every frame that has a mask is annotated.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field

import numpy as np

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass
class VideoRecord:
    """Where one video's frames and masks are; masks maps a frame index to its mask file."""

    name: str
    frames: list[pathlib.Path]
    masks: dict[int, pathlib.Path] = field(default_factory=dict)

    @property
    def annotated(self) -> list[int]:
        return sorted(self.masks)


def read_split(root: pathlib.Path, split: str) -> list[str]:
    path = root / f"{split}.txt"
    if not path.is_file():
        present = sorted(p.name for p in root.glob("*.txt"))
        raise FileNotFoundError(f"split file {path} not found (present: {present or 'none'}); "
                                f"the VSPW layout has train.txt, val.txt and test.txt in {root}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_video(root: pathlib.Path, name: str) -> VideoRecord:
    folder = root / "data" / name
    frames = sorted(p for p in (folder / "origin").glob("*") if p.suffix.lower() in FRAME_SUFFIXES)
    if not frames:
        raise FileNotFoundError(f"video {name}: no frames in {folder / 'origin'}; "
                                f"check the split file and that the dataset is fully extracted")
    index = {p.stem: i for i, p in enumerate(frames)}
    masks = {}
    for mask in sorted((folder / "mask").glob("*.png")):
        if mask.stem not in index:
            raise FileNotFoundError(f"video {name}: mask {mask} has no frame {mask.stem}.* in {folder / 'origin'}")
        masks[index[mask.stem]] = mask
    return VideoRecord(name, frames, masks)


def read_videos(root: pathlib.Path, split: str) -> list[VideoRecord]:
    return [read_video(root, name) for name in read_split(root, split)]


def read_mask(path: pathlib.Path) -> np.ndarray:
    """A mask as uint8 [H, W] of raw values."""
    from PIL import Image

    with Image.open(path) as image:
        if image.mode not in ("L", "P"):
            raise ValueError(f"mask {path} has image mode {image.mode}; expected a single-channel "
                             "PNG (mode L or P) whose values are class ids")
        return np.asarray(image, dtype=np.uint8).copy()

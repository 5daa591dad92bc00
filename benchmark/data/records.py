"""What a dataset reader hands the runner: each video's files, how its masks decode, and problems.

Every reader turns a mask file into *card labels*: the index of the class in the dataset card
(0..N-1), or IGNORE for pixels no setting scores. A `MaskFormat` says how, and which raw values the
format may contain at all; anything else is a loud error naming the file, never a silent ignore.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from benchmark.metrics import IGNORE

#: Kinds of problems a reader or `data check` reports; each comes with the file it is about.
PROBLEM_KINDS = {
    "missing-split": "a split file or folder is missing",
    "empty-split": "a split lists no videos",
    "duplicate-id": "a video id is listed twice in a split",
    "missing-video": "a listed video has no folder or no frames",
    "missing-frame": "a mask has no frame, or a snippet lacks a frame",
    "unreadable": "an image or mask cannot be decoded (corrupt or truncated)",
    "size-mismatch": "a mask's size differs from its frame's",
    "unknown-label": "a mask holds values outside the format's known set",
    "class-list": "the dataset's own class list disagrees with the card",
}


class DatasetError(ValueError):
    """A problem with a dataset's files; the message names the file and the fix."""


@dataclass(frozen=True)
class Problem:
    kind: str
    path: pathlib.Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


#: Where readers send problems: `raise_problem` (the default, used by `run`) stops at the first;
#: `data check` collects them all.
Report = Callable[[Problem], None]


#: How to mend a mask whose size is not its frame's (said wherever that is found).
MASK_SIZE_FIX = ("a mask must be the size of its frame: extract this video's frames and masks again from the "
                 "release (a resized copy must use nearest-neighbour resampling, which keeps the labels)")


def raise_problem(problem: Problem) -> None:
    raise DatasetError(str(problem))


def value_ranges(values: Iterable[int]) -> str:
    """[0, 1, 2, 3, 255] -> '0..3, 255'."""
    values = sorted(set(int(v) for v in values))
    parts, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(str(v) if v == start else f"{start}..{v}")
            start = None
    return ", ".join(parts)


@dataclass(frozen=True, eq=False)
class MaskFormat:
    """How a mask file's raw values become card labels."""

    name: str
    lut: np.ndarray       # uint8[256]: raw value -> card class index, or IGNORE
    known: np.ndarray     # bool[256]: the values this format may contain

    @classmethod
    def from_mapping(cls, name: str, mapping: dict[int, int], ignored: Iterable[int]) -> MaskFormat:
        lut = np.full(256, IGNORE, dtype=np.uint8)
        known = np.zeros(256, dtype=bool)
        for raw, label in mapping.items():
            lut[raw], known[raw] = label, True
        known[list(ignored)] = True
        return cls(name, lut, known)

    @property
    def unscored(self) -> np.ndarray:
        """bool[256]: raw values that are no class (e.g. VSPW's "others" and void)."""
        return self.lut == IGNORE

    def unknown_values(self, raw: np.ndarray) -> list[int]:
        present = np.flatnonzero(np.bincount(raw.ravel(), minlength=256))
        return [int(v) for v in present if not self.known[v]]

    def decode(self, raw: np.ndarray, path: pathlib.Path) -> np.ndarray:
        unknown = self.unknown_values(raw)
        if unknown:
            raise DatasetError(str(unknown_label_problem(self, unknown, path)))
        return self.lut[raw]


def unknown_label_problem(mask_format: MaskFormat, unknown: list[int], path: pathlib.Path) -> Problem:
    shown = ", ".join(map(str, unknown[:12])) + (", ..." if len(unknown) > 12 else "")
    return Problem("unknown-label", path, (
        f"mask values {shown} are outside the known set ({value_ranges(np.flatnonzero(mask_format.known))}) "
        f"of {mask_format.name} masks; check that the file belongs to this dataset and was not re-encoded "
        "(a colour palette or a resize that interpolates labels produces such values)"))


@dataclass
class VideoRecord:
    """Where one video's frames and masks are; `masks` maps a frame index to its mask file."""

    name: str
    frames: list[pathlib.Path]
    masks: dict[int, pathlib.Path] = field(default_factory=dict)
    mask_format: MaskFormat | None = None

    @property
    def annotated(self) -> list[int]:
        return sorted(self.masks)


def read_mask(path: pathlib.Path) -> np.ndarray:
    """A mask file as uint8 [H, W] of raw values."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.mode not in ("L", "P"):
                raise DatasetError(f"mask {path} has image mode {image.mode}; expected a single-channel PNG "
                                   "(mode L or P) whose values are class ids")
            return np.asarray(image, dtype=np.uint8).copy()
    except OSError as error:
        raise DatasetError(f"mask {path} cannot be read ({error}); the file is corrupt or truncated: "
                           "extract it again from the dataset archive") from error

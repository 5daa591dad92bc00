"""Which frames make a clip (Eq. 1), in training and at inference, and the video training recipe.

A clip is the target frame t with its past frames t-9, t-6, t-3 (the authors' offsets; fewer near
the start of a video, and none for the first frame, which then goes the image-only way) and one
distant frame for RFE: a random frame outside the clip in training, the video's first or last frame,
whichever is farther from t, at inference. Training reverses the whole video with probability 0.5,
so the "past" then lies after t.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

ANNOTATIONS = ("target", "all")


def parse_offsets(value: Any) -> tuple[int, ...]:
    """'9,6,3', [9, 6, 3] or 3 -> (9, 6, 3): distinct positive offsets, farthest first."""
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, (list, tuple)) else [value]
    try:
        offsets = tuple(sorted({int(item) for item in items}, reverse=True))
    except (TypeError, ValueError):
        offsets = ()
    if not offsets or min(offsets) < 1:
        raise ValueError(f"offsets={value!r}: expected positive frame distances such as 9,6,3 (the paper's)")
    return offsets


def past_frames(target: int, length: int, offsets: tuple[int, ...], direction: int = -1) -> list[int]:
    """The target's past frames that exist, oldest first (direction +1: the video played backwards)."""
    frames = [target + direction * k for k in offsets]
    return [i for i in frames if 0 <= i < length]


def distant_frame(target: int, length: int) -> int:
    """Inference's distant frame: the video's first or last frame, whichever is farther from the target."""
    return 0 if target > length - 1 - target else length - 1


@dataclass(frozen=True)
class ClipRecipe:
    """How OV2VSS turns a labelled frame into a training sample, and its loss weights (Eq. 15)."""

    offsets: tuple[int, ...] = (9, 6, 3)
    reverse: float = 0.5                 # probability of playing the video backwards
    annotations: str = "target"          # "all": every labelled clip frame is scored (Table III's 4 annotations)
    alpha: float = 1.0                   # weight of the main loss
    beta: float = 1.0                    # weight of STCF's auxiliary loss

    def __post_init__(self):
        object.__setattr__(self, "offsets", parse_offsets(self.offsets))
        if self.annotations not in ANNOTATIONS:
            raise ValueError(f"annotations={self.annotations!r}: choose one of {', '.join(ANNOTATIONS)}")
        if not 0 <= self.reverse <= 1 or self.alpha < 0 or self.beta < 0:
            raise ValueError(f"reverse={self.reverse} must be a probability, alpha={self.alpha} and "
                             f"beta={self.beta} non-negative")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sample(self, target: int, length: int, rng: np.random.Generator, distant: bool) -> tuple[list[int], int | None]:
        """A training clip for `target`: its frames (oldest first, the target last) and, when
        `distant`, a random frame of the video outside the clip (the farthest one if none is left)."""
        direction = 1 if rng.random() < self.reverse else -1
        frames = [*past_frames(target, length, self.offsets, direction), target]
        if not distant:
            return frames, None
        outside = np.setdiff1d(np.arange(length), frames)
        return frames, int(rng.choice(outside)) if len(outside) else distant_frame(target, length)

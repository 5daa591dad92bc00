"""Which frames the authors' test feeds the model for target frame t (their `prepare_test_img2`,
`mmseg/datasets/custom.py:3894-3950`).

Frames are indexed over the whole video (every frame of VSPW's `origin/` folder). The clip is the
far frame, then t-9, t-6, t-3 where they exist, then t; t = 3..8 take fixed lists instead, and
t < 3 leaves [t] alone, which sends the model down its image-only path. The far frame is the last
frame when N - t > (first frame of the list), else the first one: not quite "the farther end"
(quirk: for N = 10, t = 9 it is t itself).
"""

from __future__ import annotations

from typing import NamedTuple

DILATION = (-9, -6, -3)
#: Their hard-coded lists for t = 3..8 (`custom.py:3917-3929`): 0 stands in for the missing t-9.
FIXED = {3: (0, 1, 2, 3), 4: (0, 2, 3, 4), 5: (0, 2, 4, 5), 6: (0, 2, 4, 6), 7: (0, 3, 5, 7), 8: (0, 3, 6, 8)}


class Clip(NamedTuple):
    far: int
    steps: tuple[int, ...]   # the frames after the far one, the target last

    @property
    def frames(self) -> tuple[int, ...]:
        """The clip in the order the model reads it: far frame first, target last."""
        return (self.far, *self.steps)

    @property
    def image_only(self) -> bool:
        """Fewer than 5 frames: their head skips STCF and RFE (`segformer_voca.py:365`)."""
        return len(self.frames) != 5


def clip_for(t: int, length: int) -> Clip:
    """The clip of target frame t in a video of `length` frames."""
    if not 0 <= t < length:
        raise ValueError(f"target frame {t} is outside the video's {length} frames")
    steps = FIXED.get(t) or (*(t + d for d in DILATION if 0 <= t + d < length), t)
    far = length - 1 if length - steps[-1] > steps[0] else 0
    return Clip(far, tuple(steps))

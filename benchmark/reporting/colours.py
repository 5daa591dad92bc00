"""One colour per class name, the same in every figure, overlay and palette PNG the harness writes.

A name that contains a colour word ("plain red circle", "yellow_line") gets a shade of that colour, so
a legend never shows a red thing in blue; any other name gets a saturated hue from a hash of the name.
The shade and the lightness also come from the hash, so two red classes still differ a little.
Pixels that are not scored (no class in the ground truth) and pixels a method abstained on get colours
of their own: grey and black.
"""

from __future__ import annotations

import colorsys
import hashlib
import re
from collections.abc import Sequence

import numpy as np

NOT_SCORED_COLOUR = (150, 150, 150)
ABSTAINED_COLOUR = (0, 0, 0)

#: Hue (0..1), saturation, lightness of the basic colour words; achromatic ones have saturation 0.
COLOUR_WORDS = {
    "red": (0.0, 0.75, 0.45), "orange": (0.08, 0.85, 0.5), "yellow": (0.15, 0.8, 0.5),
    "green": (0.36, 0.6, 0.4), "cyan": (0.5, 0.7, 0.45), "blue": (0.62, 0.7, 0.5), "purple": (0.78, 0.55, 0.45),
    "violet": (0.78, 0.55, 0.55), "magenta": (0.85, 0.7, 0.5), "pink": (0.92, 0.7, 0.72), "brown": (0.07, 0.55, 0.3),
    "white": (0.0, 0.0, 0.93), "grey": (0.0, 0.0, 0.55), "gray": (0.0, 0.0, 0.55), "black": (0.0, 0.0, 0.12),
}


def colour_of(name: str) -> tuple[int, int, int]:
    """The colour of a class name, (r, g, b) in 0..255; it depends on the name alone."""
    digest = hashlib.sha1(name.encode()).digest()
    jitter = (digest[2] / 255 - 0.5)  # in [-0.5, 0.5]: tells apart names that share a colour word
    words = [w for w in re.split(r"[\s_\-/]+", name.casefold()) if w in COLOUR_WORDS]
    if words:
        hue, saturation, lightness = COLOUR_WORDS[words[-1]]
        hue = (hue + 0.03 * jitter) % 1.0
        lightness = min(0.9, max(0.1, lightness + 0.12 * jitter))
    else:
        hue, saturation, lightness = int.from_bytes(digest[:2], "big") / 65536, 0.75, 0.45 + 0.15 * digest[2] / 255
    red, green, blue = colorsys.hls_to_rgb(hue, lightness, saturation)
    return round(255 * red), round(255 * green), round(255 * blue)


def class_colours(names: Sequence[str]) -> np.ndarray:
    """uint8 [len(names), 3]: each name's colour."""
    return np.asarray([colour_of(name) for name in names], dtype=np.uint8).reshape(len(names), 3)

"""The embedded synthetic world: short videos of moving, occluding shapes whose class names compose
three attributes (texture x colour x shape, e.g. "striped red triangle"), some frames degraded.

Written once per configuration into a cache folder in exactly the VSPW layout, then read back by
the VSPW reader, so the synthetic run exercises the same code as a real one. Deterministic: the
same options and seed give the same pixels. Class names, colours and the seen/unseen split are in
the card `datasets/synthetic.json`: every attribute value of an unseen class also appears in seen
ones, so a model that learned the words can name an unseen combination. Degraded frames (noise,
blur, faded colour, a passing occluder) are listed in `degraded.json`: a single such frame is
ambiguous, its neighbours are not. `render_crop` draws the single-object crops the toy CLIP learns from.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from benchmark.data.cards import load_card
from benchmark.data.vspw import VSPWLayoutReader

LAYOUT_VERSION = 3  # bump when the rendering changes, so stale caches are not reused
DEGRADED_FILE = "degraded.json"


def cache_root() -> pathlib.Path:
    if os.environ.get("BENCHMARK_CACHE"):
        return pathlib.Path(os.environ["BENCHMARK_CACHE"])
    base = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache"))
    return base / "ovvss-benchmark"


def resolve_options(options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The card's default options updated with `options`; unknown keys are an error."""
    defaults = dict(load_card("synthetic")["options"])
    unknown = sorted(set(options or {}) - set(defaults))
    if unknown:
        raise ValueError(f"unknown synthetic dataset option(s) {unknown}; known: {sorted(defaults)} "
                         "(set them with --dataset-opt synthetic.KEY=VALUE)")
    resolved = {**defaults, **(options or {})}
    for key, value in resolved.items():
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"synthetic dataset option {key}={value!r} must be a non-negative integer")
    if resolved["frames"] < 1 or resolved["annotate_every"] < 1 or min(resolved["height"], resolved["width"]) < 16:
        raise ValueError(f"synthetic dataset options {resolved}: need frames >= 1, annotate_every >= 1, "
                         "height and width >= 16")
    return resolved


def ensure(options: Mapping[str, Any] | None = None) -> pathlib.Path:
    """The folder holding the dataset for these options, generating it on first use."""
    resolved = resolve_options(options)
    card = load_card("synthetic")
    key = json.dumps({"options": resolved, "version": LAYOUT_VERSION,
                      **{k: card[k] for k in ("classes", "colours", "textures", "degradations")}}, sort_keys=True)
    target = cache_root() / f"synthetic-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    if (target / "val.txt").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed, so concurrent jobs never read a half-written dataset.
    staging = pathlib.Path(tempfile.mkdtemp(prefix=".synthetic-", dir=target.parent))
    try:
        write(staging, resolved, card)
        try:
            staging.rename(target)
        except OSError:
            if not (target / "val.txt").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def write(root: pathlib.Path, options: Mapping[str, Any], card: Mapping[str, Any]) -> None:
    """Render every split of the dataset into `root` in the VSPW layout, with `degraded.json` beside it."""
    from PIL import Image

    (root / "label_num_dic_final.json").write_text(
        json.dumps({name: k + 1 for k, name in enumerate(card["classes"])}, indent=1))
    splits = {"train": options["train_videos"], "val": options["videos"]}
    degraded: dict[str, dict[str, str]] = {}
    for split_index, (split, count) in enumerate(splits.items()):
        names = [f"{split}_{v:03d}" for v in range(count)]
        (root / f"{split}.txt").write_text("".join(name + "\n" for name in names))
        for v, name in enumerate(names):
            rng = np.random.default_rng([options["seed"], split_index, v])
            origin, mask_dir = root / "data" / name / "origin", root / "data" / name / "mask"
            origin.mkdir(parents=True)
            mask_dir.mkdir(parents=True)
            shown = _shown_unseen(card, v) if split == "val" else ()
            for t, (frame, mask, degradation) in enumerate(render_video(rng, options, card, shown)):
                stem = f"{t + 1:08d}"
                Image.fromarray(frame).save(origin / f"{stem}.jpg", quality=92)
                if t % options["annotate_every"] == 0:
                    Image.fromarray(mask, mode="L").save(mask_dir / f"{stem}.png")
                if degradation:
                    degraded.setdefault(name, {})[stem] = degradation
    (root / DEGRADED_FILE).write_text(json.dumps(degraded, indent=1, sort_keys=True))


def degraded_frames(root: pathlib.Path) -> dict[str, dict[str, str]]:
    """{video: {frame id: degradation}} of a generated dataset: the frames a single image cannot settle."""
    return json.loads((pathlib.Path(root) / DEGRADED_FILE).read_text())


def _shown_unseen(card: Mapping[str, Any], video: int) -> tuple[str, ...]:
    """Two unseen classes for val video `video`, in turn: a few videos show every unseen class."""
    unseen = card["classes"][card["num_seen"]:]
    return (unseen[(2 * video) % len(unseen)], unseen[(2 * video + 1) % len(unseen)])


def render_video(rng: np.random.Generator, options: Mapping[str, Any], card: Mapping[str, Any],
                 shown: tuple[str, ...] = ()):
    """Yield (frame uint8 [H, W, 3], mask uint8 [H, W], degradation or None) for each frame of one video.

    The first objects are of the classes `shown`, the others random. Objects drift (some out of the
    frame), spin and occlude each other; about `degraded_percent` of the frames other than the first
    and last are degraded by one of the card's degradations."""
    height, width = options["height"], options["width"]
    classes = card["classes"]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    background = _background(rng, ys, xs)
    size = min(height, width)
    names = [*shown, *(classes[int(rng.integers(len(classes)))] for _ in range(options["objects"]))]
    objects = [_new_object(rng, name, card, size, centre=(rng.uniform(0, height), rng.uniform(0, width)),
                           speed=0.06) for name in names[:options["objects"]]]
    for obj in objects:
        obj["id"] = classes.index(obj["name"]) + 1
    for t in range(options["frames"]):
        frame = background.copy()
        mask = np.zeros((height, width), np.uint8)
        for obj in objects:  # later objects occlude earlier ones
            inside = _draw(frame, obj, ys, xs, t)
            mask[inside] = obj["id"]
        mask[_outline(mask)] = 255  # object outlines are void, as boundaries often are in VSPW
        degradation = None
        if 0 < t < options["frames"] - 1 and rng.uniform(0, 100) < options["degraded_percent"]:
            degradation = card["degradations"][int(rng.integers(len(card["degradations"])))]
            frame = _degrade(frame, mask, degradation, rng)
        frame += rng.normal(0, 6, frame.shape).astype(np.float32)
        yield np.clip(frame, 0, 255).astype(np.uint8), mask, degradation


def render_crop(rng: np.random.Generator, name: str, card: Mapping[str, Any], size: int = 64) -> np.ndarray:
    """One object of class `name` on a random background, uint8 [size, size, 3]: what the toy CLIP
    learns names from. Its scale, position and spin vary, another object may overlap it, and some
    crops are noisy or blurred (never faded: the caption names a colour)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    frame = _background(rng, ys, xs)
    centre = size / 2 + rng.uniform(-0.2, 0.2, size=2) * size
    target = _new_object(rng, name, card, size * rng.uniform(1.2, 2.6), centre=centre, speed=0)
    if rng.uniform() < 0.3:  # a partly hidden neighbour teaches that a crop's name is its main object
        other = card["classes"][int(rng.integers(len(card["classes"])))]
        corner = centre + rng.choice([-1, 1], size=2) * size * rng.uniform(0.45, 0.6)
        _draw(frame, _new_object(rng, other, card, size, centre=corner, speed=0), ys, xs, 0)
    _draw(frame, target, ys, xs, 0)
    if rng.uniform() < 0.2:
        frame = _degrade(frame, None, ("noise", "blur")[int(rng.integers(2))], rng)
    frame += rng.normal(0, 6, frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)


def _new_object(rng: np.random.Generator, name: str, card: Mapping[str, Any], size: float,
                centre: Any, speed: float) -> dict[str, Any]:
    texture, colour, shape = name.split(" ")
    return {"name": name, "shape": shape, "texture": texture,
            "colour": np.array(card["colours"][colour], np.float32),
            "radius": size * rng.uniform(0.14, 0.26), "centre": np.array(centre, np.float32),
            # Some objects drift far enough to leave the frame.
            "velocity": rng.uniform(-speed, speed, size=2).astype(np.float32) * size,
            "angle": rng.uniform(0, 2 * np.pi), "spin": rng.uniform(-0.15, 0.15),
            "stripe_angle": rng.uniform(0, np.pi), "stripe_period": rng.uniform(5, 9)}


def _draw(frame: np.ndarray, obj: Mapping[str, Any], ys: np.ndarray, xs: np.ndarray, t: int) -> np.ndarray:
    """Paint `obj` at time `t` into `frame`; returns the pixels it covers."""
    cy, cx = obj["centre"] + t * obj["velocity"]
    inside = _shape_mask(obj["shape"], ys - cy, xs - cx, obj["radius"], obj["angle"] + t * obj["spin"])
    if obj["texture"] == "striped":
        phase = (np.cos(obj["stripe_angle"]) * xs + np.sin(obj["stripe_angle"]) * ys) / obj["stripe_period"]
        shade = np.where(np.sin(2 * np.pi * phase) > 0, 1.0, 0.45)[inside, None]
    elif obj["texture"] == "plain":
        shade = 1.0
    else:
        raise ValueError(f"unknown texture {obj['texture']!r} in the synthetic card; known: plain, striped")
    frame[inside] = obj["colour"] * shade
    return inside


def _degrade(frame: np.ndarray, mask: np.ndarray | None, kind: str, rng: np.random.Generator) -> np.ndarray:
    """`frame` with one degradation; a passing occluder also turns the pixels it hides into "others"."""
    if kind == "noise":
        return frame + rng.normal(0, 45, frame.shape).astype(np.float32)
    if kind == "blur":
        return _blur(frame, sigma=2.5)
    if kind == "fade":  # colour almost gone: the frame alone cannot tell red from green
        grey = frame.mean(-1, keepdims=True)
        return grey + 0.1 * (frame - grey)
    if kind == "occluder":
        width = frame.shape[1]
        left = int(rng.integers(0, max(1, width - width // 3)))
        band = slice(left, left + width // 3)
        frame[:, band] = rng.uniform(70, 110) + 15 * (np.arange(frame.shape[0])[:, None, None] % 8 < 4)
        if mask is not None:
            mask[:, band] = 0
        return frame
    raise ValueError(f"unknown degradation {kind!r} in the synthetic card; known: noise, blur, fade, occluder")


def _blur(frame: np.ndarray, sigma: float) -> np.ndarray:
    radius = int(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(frame, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    rows = sum(w * padded[k:k + frame.shape[0]] for k, w in enumerate(kernel))
    return sum(w * rows[:, k:k + frame.shape[1]] for k, w in enumerate(kernel)).astype(np.float32)


def _background(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """A low-saturation gradient with a checker texture: "others", never a class colour."""
    height, width = ys.shape
    base = rng.uniform(90, 160)
    tint = rng.uniform(-12, 12, size=3)
    gradient = ((ys / height - 0.5)[..., None] * rng.uniform(-40, 40)
                + (xs / width - 0.5)[..., None] * rng.uniform(-40, 40))
    cell = rng.integers(6, 14)
    checker = (((ys // cell) + (xs // cell)) % 2)[..., None] * rng.uniform(8, 20)
    return (base + tint + gradient + checker).astype(np.float32)


def _shape_mask(shape: str, dy: np.ndarray, dx: np.ndarray, radius: float, angle: float) -> np.ndarray:
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    if shape == "circle":
        return u * u + v * v <= radius * radius
    if shape == "square":
        half = radius * 0.8
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if shape == "triangle":
        # Inside all three half-planes of an equilateral triangle with circumradius `radius`.
        inside = np.ones(u.shape, bool)
        for k in range(3):
            theta = 2 * np.pi * k / 3 + np.pi / 2
            inside &= u * np.cos(theta) + v * np.sin(theta) <= radius / 2
        return inside
    raise ValueError(f"unknown shape {shape!r} in the synthetic card; known: circle, square, triangle")


def _outline(mask: np.ndarray) -> np.ndarray:
    """Object pixels with a 4-neighbour of another label."""
    padded = np.pad(mask, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    differs = np.zeros(mask.shape, bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        differs |= padded[dy:dy + mask.shape[0], dx:dx + mask.shape[1]] != centre
    return differs & (mask > 0)


class SyntheticReader(VSPWLayoutReader):
    """The synthetic dataset: generated on first use (its options are the generator's), then read
    through the VSPW reader. The data root plays no part."""

    name = "synthetic"

    def option_defaults(self) -> dict[str, Any]:
        return dict(self.card["options"])

    def generator_options(self) -> dict[str, Any]:
        return {k: self.options[k] for k in self.card["options"]}

    def folders(self) -> list[str]:
        return []

    def eval_size(self) -> dict[str, int]:
        frames, every = self.options["frames"], self.options["annotate_every"]
        videos = self.options["videos"]
        return {"videos": videos, "frames": videos * frames, "annotated_frames": videos * len(range(0, frames, every)),
                "frame": [self.options["height"], self.options["width"]]}

    def locate(self, data_root: pathlib.Path | None = None) -> pathlib.Path:
        return ensure(self.generator_options())

    def layout_hint(self) -> str:
        return "generated synthetic dataset"

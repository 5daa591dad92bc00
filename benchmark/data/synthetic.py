"""The embedded synthetic dataset: short videos of moving, occluding, textured shapes.

Written once per configuration into a cache folder in exactly the VSPW layout, then read back by
the VSPW reader, so the synthetic run exercises the same code as a real one. Deterministic: the
same options and seed give the same pixels. Class names, colours and the seen/unseen split are in
the card `datasets/synthetic.json`.
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

LAYOUT_VERSION = 1  # bump when the rendering changes, so stale caches are not reused


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
    key = json.dumps({"options": resolved, "classes": card["classes"], "colours": card["colours"],
                      "version": LAYOUT_VERSION}, sort_keys=True)
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
    """Render every split of the dataset into `root` in the VSPW layout."""
    from PIL import Image

    (root / "label_num_dic_final.json").write_text(
        json.dumps({name: k + 1 for k, name in enumerate(card["classes"])}, indent=1))
    splits = {"train": options["train_videos"], "val": options["videos"]}
    for split_index, (split, count) in enumerate(splits.items()):
        names = [f"{split}_{v:03d}" for v in range(count)]
        (root / f"{split}.txt").write_text("".join(name + "\n" for name in names))
        for v, name in enumerate(names):
            rng = np.random.default_rng([options["seed"], split_index, v])
            origin, mask_dir = root / "data" / name / "origin", root / "data" / name / "mask"
            origin.mkdir(parents=True)
            mask_dir.mkdir(parents=True)
            for t, (frame, mask) in enumerate(render_video(rng, options, card)):
                stem = f"{t + 1:08d}"
                Image.fromarray(frame).save(origin / f"{stem}.jpg", quality=92)
                if t % options["annotate_every"] == 0:
                    Image.fromarray(mask, mode="L").save(mask_dir / f"{stem}.png")


def render_video(rng: np.random.Generator, options: Mapping[str, Any], card: Mapping[str, Any]):
    """Yield (frame uint8 [H, W, 3], mask uint8 [H, W]) for each frame of one video."""
    height, width = options["height"], options["width"]
    classes = card["classes"]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    background = _background(rng, ys, xs)
    size = min(height, width)
    objects = []
    for _ in range(options["objects"]):
        class_id = int(rng.integers(len(classes))) + 1
        colour, shape = classes[class_id - 1].split(" ")
        objects.append({
            "id": class_id, "shape": shape, "colour": np.array(card["colours"][colour], np.float32),
            "radius": size * rng.uniform(0.14, 0.26),
            "centre": np.array([rng.uniform(0, height), rng.uniform(0, width)], np.float32),
            # Some objects drift far enough to leave the frame.
            "velocity": rng.uniform(-0.06, 0.06, size=2).astype(np.float32) * size,
            "angle": rng.uniform(0, 2 * np.pi), "spin": rng.uniform(-0.15, 0.15),
            "stripe_angle": rng.uniform(0, np.pi), "stripe_period": rng.uniform(4, 9),
        })
    for t in range(options["frames"]):
        frame = background.copy()
        mask = np.zeros((height, width), np.uint8)
        for obj in objects:  # later objects occlude earlier ones
            cy, cx = obj["centre"] + t * obj["velocity"]
            inside = _shape_mask(obj["shape"], ys - cy, xs - cx, obj["radius"], obj["angle"] + t * obj["spin"])
            phase = (np.cos(obj["stripe_angle"]) * xs + np.sin(obj["stripe_angle"]) * ys) / obj["stripe_period"]
            shade = 0.78 + 0.22 * (np.sin(2 * np.pi * phase) > 0)
            frame[inside] = obj["colour"] * shade[inside, None]
            mask[inside] = obj["id"]
        mask[_outline(mask)] = 255  # object outlines are void, as boundaries often are in VSPW
        frame += rng.normal(0, 6, frame.shape).astype(np.float32)
        yield np.clip(frame, 0, 255).astype(np.uint8), mask


def _background(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """A low-saturation gradient with a checker texture: "others", never a class colour."""
    height, width = ys.shape
    base = rng.uniform(90, 160)
    tint = rng.uniform(-12, 12, size=3)
    gradient = (ys / height - 0.5)[..., None] * rng.uniform(-40, 40) + (xs / width - 0.5)[..., None] * rng.uniform(-40, 40)
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

    def locate(self, data_root: pathlib.Path | None = None) -> pathlib.Path:
        return ensure(self.generator_options())

    def layout_hint(self) -> str:
        return "generated synthetic dataset"

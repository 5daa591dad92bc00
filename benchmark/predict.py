"""`predict`: one method on a user's own footage with the user's own class names.

Writes to its output folder:

    labels/<frame>.png   each chosen frame's label map, palette mode: index k is the k-th name, 255 none
    overlay.mp4          the chosen frames blended with the names' colours, a legend of the names present
    predictions.json     the vocabulary and colours, the method and its provenance, the footage, and per
                         frame the share of pixels of each name
    ids/<format>/<frame>.png   with `--dataset`: each map in the dataset's own ids, one folder per id space
                         its tools read (`benchmark.data.label_formats`), as `run --save-predictions` writes

A name's colour depends on the name alone (`benchmark.reporting.colours`), so it is the same in every
run, every vocabulary and every figure.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmark.data.label_formats import LabelFormat, describe_formats
from benchmark.interface import ABSTAIN
from benchmark.reporting.colours import colour_of

#: Overlay: how much of a labelled pixel's colour is the name's (the rest is the frame's).
BLEND = 0.5


class VocabularyError(ValueError):
    """Class names that cannot be used: empty, or the same name twice."""


def parse_classes(text: str, source: str = "--classes") -> list[str]:
    """'dog, frisbee, person' (or one name per line) -> names; VocabularyError when there is none or
    one comes twice (the method could not tell them apart)."""
    names = [name.strip() for line in text.splitlines() for name in line.split(",")]
    names = [name for name in names if name]
    if not names:
        raise VocabularyError(f"{source}: no class names; give them as \"dog, frisbee, person\"")
    seen: dict[str, str] = {}
    for name in names:
        key = name.casefold()
        if key in seen:
            raise VocabularyError(f"{source}: {name!r} comes twice (as {seen[key]!r} too); each name once")
        seen[key] = name
    return names


def palette(names: Sequence[str]) -> list[int]:
    """A PNG palette (768 values): index k the k-th name's colour, the rest black."""
    flat = [channel for name in names for channel in colour_of(name)]
    return flat + [0] * (768 - len(flat))


def save_labels(labels: np.ndarray, names: Sequence[str], path: pathlib.Path) -> None:
    """A label map as a palette PNG: values 0..len(names)-1, ABSTAIN (255) where none applies."""
    from PIL import Image

    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(palette(names))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def areas(labels: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Each name's share of the frame's pixels (names present only), and 'none' for abstained pixels."""
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=256)
    total = labels.size
    shares = {name: counts[k] / total for k, name in enumerate(names) if counts[k]}
    if counts[ABSTAIN]:
        shares["none"] = counts[ABSTAIN] / total
    return {name: round(float(share), 6) for name, share in shares.items()}


def overlay(frame: np.ndarray, labels: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """The frame [H, W, 3] with each labelled pixel blended with its name's colour."""
    colours = np.zeros((256, 3), dtype=np.float32)
    colours[: len(names)] = [colour_of(name) for name in names]
    labelled = (labels != ABSTAIN)[..., None]
    blended = (1 - BLEND) * frame + BLEND * colours[labels]
    return np.where(labelled, blended, frame).round().astype(np.uint8)


def with_legend(image: np.ndarray, present: Sequence[str]) -> np.ndarray:
    """The image with a legend of the names present (a swatch and the name each) in its top-left
    corner, on a half-transparent band no taller than a third of the image ("+N more" past that)."""
    from PIL import Image, ImageDraw, ImageFont

    if not present:
        return image
    height = image.shape[0]
    line = max(10, height // 24)
    fits = max(1, height // 3 // line)
    shown = list(present[:fits]) if len(present) <= fits else [*present[: fits - 1], f"+{len(present) - fits + 1} more"]
    try:
        font = ImageFont.load_default(size=line - 2)
    except TypeError:  # Pillow without FreeType: its one bitmap size
        font = ImageFont.load_default()
    canvas = Image.fromarray(image)
    band = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(band)
    width = line + 8 + max(draw.textlength(name, font=font) for name in shown)
    draw.rectangle((0, 0, width, 2 + line * len(shown)), fill=(0, 0, 0, 140))
    for k, name in enumerate(shown):
        top = 1 + k * line
        if name in present:
            draw.rectangle((3, top + 2, line - 1, top + line - 2), fill=(*colour_of(name), 255))
        draw.text((line + 3, top), name, fill=(255, 255, 255, 255), font=font)
    return np.asarray(Image.alpha_composite(canvas.convert("RGBA"), band).convert("RGB"))


class OverlayVideo:
    """Frames appended one by one into an H.264 video (PyAV); odd sizes are padded by one pixel, as
    the codec's 4:2:0 sampling needs even ones."""

    def __init__(self, path: pathlib.Path, fps: float | None):
        import av

        self.path = path
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream("libx264", rate=round(fps or 10))
        self.stream.pix_fmt = "yuv420p"
        self.frames = 0

    def add(self, image: np.ndarray) -> None:
        import av

        height, width = image.shape[:2]
        if self.frames == 0:
            self.stream.height, self.stream.width = height + height % 2, width + width % 2
        padded = np.pad(image, ((0, self.stream.height - height), (0, self.stream.width - width), (0, 0)), mode="edge")
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(padded), format="rgb24")):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def predict(method, video, vocabulary: Sequence[str], output: pathlib.Path, device, footage: dict[str, Any],
            progress=None, label_formats: Sequence[LabelFormat] = (), card_map: np.ndarray | None = None) -> dict[str, Any]:
    """Run a loaded method over the video's chosen frames and write the label PNGs, the overlay video and
    predictions.json to `output`; returns what predictions.json holds. With `label_formats` (a dataset's,
    the vocabulary being its setting's, whose `card_map` turns labels into card labels) each map is also
    written in those id spaces."""
    from benchmark.metrics import as_label_map, check_prediction
    from benchmark.store import atomic_write_json

    started = time.perf_counter()
    method.setup(list(vocabulary), device)
    timing = {"setup_s": time.perf_counter() - started}
    started = time.perf_counter()
    output.mkdir(parents=True, exist_ok=True)
    writer = OverlayVideo(output / "overlay.mp4", footage.get("fps"))
    frames = []
    try:
        maps = iter(method.segment(video))
        for index in video.annotated:
            labels = next(maps, None)
            if labels is None:
                raise ValueError(f"method {method.name} yielded fewer label maps than the {len(video.annotated)} "
                                 "chosen frames")
            labels = as_label_map(labels)
            image = video.frame(index).permute(1, 2, 0).numpy()
            check_prediction(labels, len(vocabulary), image.shape[:2])
            frame_id = video.frame_id(index)
            save_labels(labels, vocabulary, output / "labels" / f"{frame_id}.png")
            for label_format in label_formats:
                path = output / "ids" / label_format.name / f"{frame_id}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                label_format.save(card_map[labels], path)
            shares = areas(labels, vocabulary)
            writer.add(with_legend(overlay(image, labels, vocabulary), [n for n in vocabulary if n in shares]))
            frames.append({"index": index, "frame": frame_id, "areas": shares})
            if progress is not None:
                progress.update(1)
    finally:
        writer.close()
    timing.update(frames=len(frames), frames_s=time.perf_counter() - started)  # segmenting and writing
    summary = {"vocabulary": list(vocabulary), "colours": {name: list(colour_of(name)) for name in vocabulary},
               "method": method.name, "provenance": method.provenance(), "footage": footage,
               "frames": frames, "overlay": {"file": "overlay.mp4", "frames": writer.frames}, "timing": timing}
    if label_formats:
        summary["ids"] = describe_formats(label_formats, vocabulary, card_map)
    atomic_write_json(output / "predictions.json", summary)
    return summary

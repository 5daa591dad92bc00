"""The checkpoints of the miniature world that ship in `weights/toy/`, and when a method uses one.

`weights/toy/manifest.json` records for each file what made it (options, seed, command), how long
it took, the metrics it reached and its sha256; `python -m methods.toy.regenerate` rewrites the
folder from scratch. A trained method given no weights loads its shipped checkpoint only when the
checkpoint fits: the method's CLIP resolves to the toy CLIP the checkpoint was trained against, and
every option the user changed from the method's default is one the shipped training also used, or
one that only changes how weights are applied (`inference_options`).
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Iterable
from typing import Any

#: Environment variable naming another folder of toy weights (a regenerated set, say).
FOLDER_ENV = "BENCHMARK_TOY_WEIGHTS"
FOLDER = pathlib.Path(__file__).resolve().parents[2] / "weights" / "toy"
MANIFEST = "manifest.json"
#: File names, by what they hold: the toy CLIP, the toy SAM, and one trained checkpoint per method.
CLIP, SAM = "toy-clip.pt", "toy-sam.pt"


def folder() -> pathlib.Path:
    return pathlib.Path(os.environ.get(FOLDER_ENV) or FOLDER)


def path(filename: str) -> pathlib.Path | None:
    """The shipped file, when it is there."""
    candidate = folder() / filename
    return candidate if candidate.is_file() else None


def manifest() -> dict[str, Any]:
    """{file name: what made it, its metrics and sha256}; empty when the folder has none."""
    file = folder() / MANIFEST
    return json.loads(file.read_text()) if file.is_file() else {}


def method_file(method: str) -> str:
    return f"{method}.pt"


def checkpoint_for(method: str, options: dict[str, Any], defaults: dict[str, Any],
                   inference_options: Iterable[str] = ()) -> str | None:
    """The shipped checkpoint of `method` that fits these (resolved) options, or None."""
    from methods import clip

    filename = method_file(method)
    entry, file = manifest().get(filename), path(filename)
    if entry is None or file is None:
        return None
    if options.get("clip_pretrained", "auto") != "auto" or options.get("clip_model", "auto") not in ("auto",
                                                                                                    clip.TOY_MODEL):
        return None
    if options.get("clip_model", "auto") == "auto" and clip.auto_model() != clip.TOY_MODEL:
        return None  # real CLIP weights were found: the toy-trained head would read foreign cost volumes
    trained = entry["options"]
    skip = {"clip_model", "clip_pretrained", *inference_options}
    for key, value in options.items():
        if key not in skip and value != defaults.get(key) and trained.get(key) != value:
            return None
    return str(file)

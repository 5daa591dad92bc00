"""The checkpoints of the miniature world that ship in `weights/toy/`, and when a method uses one.

`weights/toy/manifest.json` records for each file what made it (method, options, seed, command), how
long it took, the metrics it reached and its sha256; `python -m methods.toy.regenerate` rewrites the
folder from scratch. A method may ship several checkpoints (OV2VSS's Table III variants), each naming
the options that identify it (`identity`, e.g. the variant). A trained method given no weights loads
a shipped checkpoint only when it fits: its identity options equal the asked ones, the method's CLIP
resolves to the toy CLIP it was trained against, and every other option the user changed from the
method's default is one the shipped training also used, or one that only changes how weights are
applied (`inference_options`).
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
#: File names of the toy CLIP and the toy SAM; a trained checkpoint is named after its artifact.
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


def checkpoint_for(method: str, options: dict[str, Any], defaults: dict[str, Any],
                   inference_options: Iterable[str] = ()) -> str | None:
    """The first shipped checkpoint of `method` that fits these (resolved) options, or None. The
    caller checks first that the options read the toy CLIP, whose cost volumes these heads learned."""
    skip = {"clip_model", "clip_pretrained", *inference_options}
    for filename, entry in sorted(manifest().items()):
        file = path(filename) if entry.get("method") == method else None
        if file is None or any(options.get(key) != value for key, value in entry.get("identity", {}).items()):
            continue
        trained = entry["options"]
        if all(key in skip or value == defaults.get(key) or trained.get(key) == value for key, value in options.items()):
            return str(file)
    return None

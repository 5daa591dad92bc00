"""Dataset cards: class lists, splits and defaults kept as data in the repository's `datasets/`.

`datasets/` is also the default data root (where real datasets are looked for); set another with
`--data-root` or the environment variable BENCHMARK_DATA_ROOT.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
from typing import Any

CARDS_DIR = pathlib.Path(__file__).resolve().parents[2] / "datasets"


def default_data_root() -> pathlib.Path:
    return pathlib.Path(os.environ.get("BENCHMARK_DATA_ROOT") or CARDS_DIR)


@functools.cache
def load_card(name: str) -> dict[str, Any]:
    path = CARDS_DIR / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in CARDS_DIR.glob("*.json"))
        raise FileNotFoundError(f"no dataset card {path}; known cards: {known}")
    card = json.loads(path.read_text())
    classes, seen = card["classes"], card["num_seen"]
    if len(set(classes)) != len(classes) or not 0 < seen < len(classes) or len(classes) > 254:
        raise ValueError(f"dataset card {path}: classes must be unique, at most 254, with 0 < num_seen < their number")
    return card

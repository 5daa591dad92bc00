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
    problem = _card_problem(card)
    if problem:
        raise ValueError(f"dataset card {path}: {problem}")
    return card


def _card_problem(card: dict[str, Any]) -> str | None:
    classes, seen = card["classes"], card.get("num_seen")
    if len(set(classes)) != len(classes) or len(classes) > 254:
        return "classes must be unique, at most 254"
    if {"seen", "unseen"} & set(card.get("settings", ())) and not (isinstance(seen, int) and 0 < seen < len(classes)):
        return "settings seen/unseen need num_seen with 0 < num_seen < the number of classes"
    if card.get("default_setting") not in card.get("settings", ()):
        return f"default_setting {card.get('default_setting')!r} is not one of settings {card.get('settings')}"
    if "label_ids" in card and len(card["label_ids"]) != len(classes):
        return "label_ids must give one id per class"
    return None

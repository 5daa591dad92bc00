"""Evaluation settings: which names a method is given and which pixels are scored as what.

Readers decode masks into card labels (the class's index in the dataset card, or IGNORE); a
setting maps card labels to scored classes. A card lists N classes; when it splits them, the first
S are seen in training and the rest unseen.

- `unseen` (Table I): vocabulary = the N-S unseen names; only unseen pixels are scored.
- `seen`: vocabulary = the S seen names; only seen pixels are scored.
- `all`: vocabulary = all N names; metrics overall, on seen and unseen with hIoU, and on the card's
  other groups (Cityscapes: the novel classes and the rest, `base`).

Names reach the method as users write them (`traffic_light` -> `traffic light`), or as the card
spells them with the dataset option `names=raw`.

Protocols: `intended` is the mapping above. `official` reproduces the OV2VSS authors' label handling
(facts.md section 2): their class remap is applied to the raw 1-based ids *before* the zero-label
reduction, so the last class of the split (raw id N in `unseen`, raw id S in `seen`) is never
scored; "background" is appended to the vocabulary, a background prediction is counted in the last
class's bin, and names are fed raw, as their code does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmark.interface import ABSTAIN
from benchmark.metrics import IGNORE

SETTINGS = ("unseen", "seen", "all")
PROTOCOLS = ("intended", "official")
NAME_STYLES = ("display", "raw")
BACKGROUND = "background"


def display_name(raw: str) -> str:
    """Class names as users write them: 'traffic_light' -> 'traffic light'."""
    return raw.replace("_", " ")


@dataclass(frozen=True)
class EvalSetting:
    dataset: str
    setting: str
    protocol: str
    vocabulary: list[str]           # the names the method is given, in label order
    class_names: list[str]          # the scored classes (confusion-matrix rows)
    label_map: np.ndarray           # card label (0..255) -> scored class or IGNORE
    prediction_map: np.ndarray      # vocabulary label (0..255) -> scored class, ABSTAIN kept
    card_map: np.ndarray            # vocabulary label (0..255) -> card label, ABSTAIN -> IGNORE
    groups: dict[str, list[int]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.dataset}:{self.setting}"

    def ground_truth(self, labels: np.ndarray) -> np.ndarray:
        """Card labels (a reader's decoded mask) -> scored classes or IGNORE."""
        return self.label_map[labels]

    def score_labels(self, prediction: np.ndarray) -> np.ndarray:
        """Vocabulary labels (already checked to lie in range) -> scored classes."""
        return self.prediction_map[prediction]

    def card_labels(self, prediction: np.ndarray) -> np.ndarray:
        """Vocabulary labels (already checked) -> card labels, IGNORE where the method named no class:
        what a dataset's `LabelFormat` writes in its own ids."""
        return self.card_map[prediction]


def make_setting(card: Mapping[str, Any], setting: str, protocol: str = "intended", names: str | None = None,
                 groups: Mapping[str, Sequence[str]] | None = None) -> EvalSetting:
    """The setting `setting` of the dataset described by `card`; `groups` replaces the card's named
    class groups (e.g. another novel set for Cityscapes)."""
    dataset = card["name"]
    settings = card.get("settings", SETTINGS)
    if setting not in settings:
        raise ValueError(f"unknown setting {dataset}:{setting}; {dataset} has {', '.join(settings)}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if protocol == "official" and not card.get("official_protocol"):
        raise ValueError(f"{dataset} has no official protocol: the authors' code does not evaluate it; "
                         "use --protocol intended")
    if protocol == "official" and setting == "all":
        raise ValueError(f"{dataset}:all has no official protocol: the authors' code evaluates only the "
                         "seen and unseen splits; use --protocol intended")
    names = names or ("raw" if protocol == "official" else "display")
    if names not in NAME_STYLES:
        raise ValueError(f"{dataset} dataset option names={names!r}: choose one of {', '.join(NAME_STYLES)}")
    raw_names = list(card["classes"])
    shown = [display_name(c) for c in raw_names]
    total, num_seen = len(raw_names), card.get("num_seen")
    scored = {"unseen": range(num_seen or 0, total), "seen": range(num_seen or 0), "all": range(total)}[setting]
    label_map = np.full(256, IGNORE, dtype=np.uint8)
    label_map[list(scored)] = np.arange(len(scored))
    class_names = [shown[c] for c in scored]
    vocabulary = [(raw_names if names == "raw" else shown)[c] for c in scored]
    prediction_map = np.full(256, ABSTAIN, dtype=np.int64)
    prediction_map[: len(vocabulary)] = np.arange(len(vocabulary))
    card_map = np.full(256, IGNORE, dtype=np.uint8)
    card_map[: len(vocabulary)] = list(scored)
    class_groups: dict[str, list[int]] = {}
    if setting == "all":
        if num_seen:
            class_groups = {"seen": list(range(num_seen)), "unseen": list(range(num_seen, total))}
        class_groups.update(_named_groups(card, groups, raw_names, shown))
    if protocol == "official":
        # The remap meant for 0-based ids hits the raw 1-based ones: raw id k becomes the label of
        # class k, which the reduction then shifts back to class k-1, except the last scored raw
        # id, which the remap does not list, so it is never ground truth.
        label_map[scored[-1]] = IGNORE
        vocabulary.append(BACKGROUND)
        prediction_map[len(class_names)] = len(class_names) - 1
        card_map[len(class_names)] = scored[-1]  # a saved map says what the authors' scoring counts it as
    return EvalSetting(dataset, setting, protocol, vocabulary, class_names, label_map, prediction_map, card_map,
                       class_groups)


def _named_groups(card: Mapping[str, Any], override: Mapping[str, Sequence[str]] | None,
                  raw_names: list[str], shown: list[str]) -> dict[str, list[int]]:
    """The card's class groups (by name) as class indices, each with its complement when the card
    names one (Cityscapes: `novel` and `base`)."""
    index = {name: k for names in (shown, raw_names) for k, name in enumerate(names)}
    named = dict(card.get("groups", {}))
    for group, members in (override or {}).items():
        if group not in named:
            raise ValueError(f"{card['name']} has no class group {group!r} to replace; it has {sorted(named) or 'none'}")
        named[group] = members
    result = {}
    for group, members in named.items():
        if isinstance(members, str) or not isinstance(members, Sequence):
            raise ValueError(f"{card['name']} group {group}={members!r}: give a list of class names")
        unknown = [m for m in members if m not in index]
        if unknown:
            raise ValueError(f"{card['name']} group {group}: {unknown[0]!r} is not one of its classes {shown}")
        result[group] = sorted({index[m] for m in members})
        complement = card.get("complements", {}).get(group)
        if complement:
            result[complement] = [c for c in range(len(raw_names)) if c not in result[group]]
    return result

"""Evaluation settings: which names a method is given and how raw mask values become scored classes.

A dataset card lists N classes, the first S seen in training and the rest unseen. Raw mask value k
(1..N) is class k-1; 0 ("others") and 255 (void) are never scored.

- `unseen` (Table I): vocabulary = the N-S unseen names; only unseen pixels are scored.
- `seen`: vocabulary = the S seen names; only seen pixels are scored.
- `all`: vocabulary = all N names; metrics overall and on the seen and unseen groups (hIoU).

Protocols: `intended` is the mapping above. `official` reproduces the OV2VSS authors' label handling
(facts.md section 2): their class remap is applied to the raw 1-based ids *before* the zero-label
reduction, so the last class of the split (raw id N in `unseen`, raw id S in `seen`) is never
scored; "background" is appended to the vocabulary, and a background prediction is counted in the
last class's bin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from benchmark.interface import ABSTAIN
from benchmark.metrics import IGNORE

SETTINGS = ("unseen", "seen", "all")
PROTOCOLS = ("intended", "official")
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
    label_map: np.ndarray           # raw mask value (0..255) -> scored class or IGNORE
    prediction_map: np.ndarray      # vocabulary label (0..255) -> scored class, ABSTAIN kept
    groups: dict[str, list[int]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.dataset}:{self.setting}"

    def ground_truth(self, raw_mask: np.ndarray) -> np.ndarray:
        return self.label_map[raw_mask]

    def score_labels(self, prediction: np.ndarray) -> np.ndarray:
        """Vocabulary labels (already checked to lie in range) -> scored classes."""
        return self.prediction_map[prediction]


def make_setting(dataset: str, classes: Sequence[str], num_seen: int, setting: str,
                 protocol: str = "intended") -> EvalSetting:
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {dataset}:{setting}; choose one of {', '.join(SETTINGS)}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    names = [display_name(c) for c in classes]
    total = len(names)
    scored = {"unseen": range(num_seen, total), "seen": range(num_seen), "all": range(total)}[setting]
    label_map = np.full(256, IGNORE, dtype=np.uint8)
    for index, class_index in enumerate(scored):
        label_map[class_index + 1] = index
    class_names = [names[c] for c in scored]
    vocabulary = list(class_names)
    prediction_map = np.full(256, ABSTAIN, dtype=np.int64)
    prediction_map[: len(vocabulary)] = np.arange(len(vocabulary))
    groups = {}
    if setting == "all":
        groups = {"seen": list(range(num_seen)), "unseen": list(range(num_seen, total))}
    if protocol == "official":
        if setting == "all":
            raise ValueError(f"{dataset}:all has no official protocol: the authors' code evaluates only the "
                             "seen and unseen splits; use --protocol intended")
        # The remap meant for 0-based ids hits the raw 1-based ones: raw id k becomes the label of
        # class k, which the reduction then shifts back to class k-1, except the last scored raw
        # id, which the remap does not list, so it is never ground truth.
        label_map[scored[-1] + 1] = IGNORE
        vocabulary.append(BACKGROUND)
        prediction_map[len(class_names)] = len(class_names) - 1
    return EvalSetting(dataset, setting, protocol, vocabulary, class_names, label_map, prediction_map, groups)

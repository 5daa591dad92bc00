"""The ids a dataset's own tools read in a prediction map, the reverse of a reader's `MaskFormat`.

A `LabelFormat` turns card labels (a class's index in the dataset card, or IGNORE where the method
named none of the classes) into the ids one family of tools expects, and names the value that stands
for "no class". `run --save-predictions` writes every format its dataset declares
(`DatasetReader.label_formats`), each in its own folder, so each tool reads its folder unchanged.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmark.metrics import IGNORE


@dataclass(frozen=True, eq=False)
class LabelFormat:
    name: str               # the folder the maps go to
    ids: np.ndarray         # uint8[256]: card label -> id written (IGNORE -> `abstain`)
    abstain: int            # the id written where the method named none of the classes
    read_by: str            # which tools read these maps as they are, and how they count `abstain`

    @classmethod
    def from_ids(cls, name: str, class_ids: Sequence[int], abstain: int, read_by: str) -> LabelFormat:
        """`class_ids[k]` is the id of card class k."""
        ids = np.full(256, abstain, dtype=np.uint8)
        ids[: len(class_ids)] = class_ids
        ids[IGNORE] = abstain
        if abstain in set(class_ids):
            raise ValueError(f"label format {name}: the abstain id {abstain} is also a class's id")
        return cls(name, ids, abstain, read_by)

    def encode(self, card_labels: np.ndarray) -> np.ndarray:
        """Card labels (0..N-1, or IGNORE for "none of these") -> uint8 ids of this format."""
        return self.ids[card_labels]

    def save(self, card_labels: np.ndarray, path: pathlib.Path) -> None:
        """The map in this format's ids as an 8-bit PNG (mode L), as the dataset's tools read it."""
        from PIL import Image

        Image.fromarray(self.encode(card_labels)).save(path)

    def describe(self, card_labels: dict[str, int]) -> dict:
        """The id of each named class (given by its card label), the abstain id and who reads them."""
        return {"ids": {name: int(self.ids[label]) for name, label in card_labels.items()}, "abstain": self.abstain,
                "read_by": self.read_by}


def describe_formats(formats: Sequence[LabelFormat], names: Sequence[str], card_map: np.ndarray) -> dict[str, dict]:
    """For each format, the id of each name (the k-th name's card label is `card_map[k]`)."""
    card_labels = {name: int(card_map[k]) for k, name in enumerate(names)}
    return {label_format.name: label_format.describe(card_labels) for label_format in formats}

"""Training data: the labelled videos of a dataset's training split, restricted to one setting's classes.

A trainable method gets a `TrainingSet` in `fit`. Targets index the setting's vocabulary (the seen
classes, for the zero-shot split) or are IGNORE; `held_out` marks the pixels of the classes kept out
of training, which the paper also blanks in the input frames so nothing about them is learned.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.data.records import VideoRecord, raise_problem, read_mask
from benchmark.data.settings import EvalSetting
from benchmark.metrics import IGNORE


@dataclass
class TrainingSet:
    setting: EvalSetting
    root: pathlib.Path
    split: str
    videos: list[VideoRecord]
    held_out_labels: np.ndarray     # bool [256] over card labels: classes the setting keeps out

    @property
    def vocabulary(self) -> list[str]:
        return list(self.setting.vocabulary)

    def frame(self, video: int, index: int):
        """Frame `index` of video number `video` as uint8 RGB [3, H, W]."""
        from benchmark.data.frames import read_frame

        return read_frame(self.videos[video].frames[index])

    def labels(self, video: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(target [H, W] int64: vocabulary index or IGNORE, held_out [H, W] bool) of an annotated frame."""
        record = self.videos[video]
        path = record.masks[index]
        card_labels = record.mask_format.decode(read_mask(path), path)
        return self.setting.ground_truth(card_labels).astype(np.int64), self.held_out_labels[card_labels]

    def __repr__(self) -> str:
        return (f"TrainingSet({self.setting.key}, {self.split}, {len(self.videos)} videos, "
                f"{len(self.setting.vocabulary)} names)")


def open_training(name: str, setting: str = "seen", protocol: str = "intended",
                  data_root: pathlib.Path | None = None, options: Mapping[str, Any] | None = None) -> TrainingSet:
    """The training split of dataset `name` (its card's `train_split`, or the `split` option)."""
    from benchmark.data import catalog

    dataset = catalog.reader(name, options)
    eval_setting = dataset.setting(setting, protocol)
    root = dataset.locate(data_root)
    if root is None:
        raise dataset.not_found(data_root)
    dataset.check_files(root, raise_problem)
    split = dataset.options["split"] or dataset.card.get("train_split", "train")
    videos = [v for v in dataset.read_videos(root, split) if v.masks]
    if not videos:
        raise ValueError(f"{name} split {split!r} under {root} has no annotated frames to train on")
    # Held out: the classes outside the setting. The official protocol's dropped last class is only
    # unlabelled, not held out, so the intended setting decides.
    intended = dataset.setting(setting, "intended").label_map
    held_out = np.zeros(256, dtype=bool)
    held_out[: len(dataset.card["classes"])] = intended[: len(dataset.card["classes"])] == IGNORE
    return TrainingSet(eval_setting, root, split, videos, held_out)

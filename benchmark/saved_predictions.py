"""`run --save-predictions`: every annotated frame's label map, in each id space the dataset's own tools
read (`benchmark.data.label_formats`): DIR/predictions/<cell-id>/<format>/<video>/<frame>.png.

A video's maps are written into the cell's partial state and moved into place whole before the video's
state is saved, so the folder only ever holds complete videos: a killed cell recomputes the video it was
in and replaces whatever of it was there, and a resumed or sharded cell ends with the maps of an
uninterrupted one. `predictions.json`, written when the cell is done, says the folder is complete and
what each format's ids mean.
"""

from __future__ import annotations

import os
import pathlib
import shutil
from typing import Any

import numpy as np

from benchmark.data.label_formats import LabelFormat, describe_formats
from benchmark.data.settings import EvalSetting
from benchmark.store import RunStore, atomic_write_json, writing

DESCRIPTION = "predictions.json"


def folder(store: RunStore, cell_id: str) -> pathlib.Path:
    return store.root / "predictions" / cell_id


def complete(store: RunStore, cell_id: str) -> bool:
    """Whether the cell's maps were all saved (its description is written last)."""
    return (folder(store, cell_id) / DESCRIPTION).is_file()


def describe(store: RunStore, cell_id: str, formats: list[LabelFormat], setting: EvalSetting) -> dict[str, Any]:
    """What a cell result records of its saved maps (and `predictions.json` holds): each format's id of
    each scored class."""
    return {"folder": str(folder(store, cell_id).relative_to(store.root)), "layout": "<format>/<video>/<frame>.png",
            "formats": describe_formats(formats, setting.class_names, setting.card_map)}


def publish(store: RunStore, result: dict[str, Any]) -> None:
    """Mark a finished cell's maps complete, with what their ids mean and which classes were scored."""
    cell = result["cell"]
    atomic_write_json(folder(store, cell["id"]) / DESCRIPTION, {
        **result["predictions"], "cell": cell["id"], "dataset": f"{cell['dataset']}:{cell['setting']}",
        "protocol": cell["protocol"], "vocabulary": result["vocabulary"], "scored_classes": result["class_names"],
        "frames": result["counts"]["frames"]})


class PredictionFiles:
    """The label maps of one cell, written a video at a time (see the module's docstring)."""

    def __init__(self, store: RunStore, cell_id: str, formats: list[LabelFormat]):
        self.folder = folder(store, cell_id)
        self.staging = store.partial_dir(cell_id) / "predictions"
        self.formats = formats

    def saved(self, video: str) -> bool:
        return all((self.folder / f.name / video).is_dir() for f in self.formats)

    def start(self, video: str) -> None:
        """Forget what a killed attempt staged of this video."""
        shutil.rmtree(self.staging / video, ignore_errors=True)
        for label_format in self.formats:
            path = self.staging / video / label_format.name
            with writing(path):
                path.mkdir(parents=True)

    def write(self, video: str, frame_id: str, card_labels: np.ndarray) -> None:
        for label_format in self.formats:
            path = self.staging / video / label_format.name / f"{frame_id}.png"
            with writing(path):
                label_format.save(card_labels, path)

    def finish(self, video: str) -> None:
        """Move the video's staged maps into place, replacing an earlier attempt's."""
        for label_format in self.formats:
            final = self.folder / label_format.name / video
            with writing(final):
                if final.exists():
                    shutil.rmtree(final)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.staging / video / label_format.name, final)
        shutil.rmtree(self.staging / video, ignore_errors=True)

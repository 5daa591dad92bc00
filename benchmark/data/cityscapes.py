"""Reader for Cityscapes: 30-frame snippets whose 20th frame (index 19) is annotated.

    ROOT/leftImg8bit_sequence/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png   snippets
    ROOT/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png            annotated frames only
    ROOT/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelTrainIds.png        train ids 0..18, 255
    ROOT/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png             label ids 0..33

One video per annotated frame, named `<city>_<seq>_<frame>`. `_labelTrainIds.png` is read when
present; otherwise `_labelIds.png` is mapped to the 19 train ids with the card's `label_ids`. Option
`layout`: `sequence` (snippets), `frames` (plain leftImg8bit: one frame per video, so temporal
methods see a single frame) or `auto` (sequence when the split has it). Option `novel`: the class
names of the novel group (default: the card's).
"""

from __future__ import annotations

import pathlib
import re
from typing import Any, ClassVar

from benchmark.data.label_formats import LabelFormat
from benchmark.data.reader import DatasetReader
from benchmark.data.records import MaskFormat, Problem, Report, VideoRecord, raise_problem

SPLITS = ("train", "val", "test")
LAYOUTS = ("auto", "sequence", "frames")
GT_FILE = re.compile(r"^(?P<city>.+)_(?P<seq>\d{6})_(?P<frame>\d{6})_gtFine_(?P<kind>labelTrainIds|labelIds)\.png$")


class CityscapesReader(DatasetReader):
    name = "cityscapes"
    extra_options: ClassVar[dict[str, Any]] = {"layout": "auto", "novel": None}
    option_types: ClassVar[dict[str, Any]] = {"novel": list[str] | None}

    def __init__(self, options=None):
        super().__init__(options)
        if self.options["layout"] not in LAYOUTS:
            raise ValueError(f"cityscapes dataset option layout={self.options['layout']!r}: "
                             f"choose one of {', '.join(LAYOUTS)}")
        classes = self.card["classes"]
        label_ids = self.card["label_ids"]
        self.train_ids = MaskFormat.from_mapping("cityscapes labelTrainIds (0..18 = classes, 255 = void)",
                                                 {k: k for k in range(len(classes))}, ignored=(255,))
        # Every label id that is no evaluation class is ignored; 255 is also accepted as void,
        # since some tools store the license plate's id -1 that way.
        self.label_ids = MaskFormat.from_mapping("cityscapes labelIds (0..33)",
                                                 {label_id: k for k, label_id in enumerate(label_ids)},
                                                 ignored=[i for i in range(34) if i not in label_ids] + [255])
        self.snippet_length = self.card["snippet_length"]
        self.annotated_index = self.card["annotated_index"]

    def label_formats(self) -> list[LabelFormat]:
        return [LabelFormat.from_ids("labelIds", self.card["label_ids"], 0, (
                    "cityscapesScripts' evalPixelLevelSemanticLabeling (it finds each map by its "
                    "<city>_<seq>_<frame> name anywhere under the folder); 0 ('unlabeled') where the method named "
                    "no class, which it counts as a miss and no class's false positive")),
                LabelFormat.from_ids("trainIds", range(len(self.card["classes"])), 255, (
                    "trainId tools such as mmseg's Cityscapes metric: ids 0..18; 255 where the method named no "
                    "class, which they count as a miss"))]

    def group_overrides(self) -> dict[str, list[str]]:
        novel = self.options["novel"]
        return {} if novel is None else {"novel": novel}

    def is_dataset_folder(self, path: pathlib.Path) -> bool:
        return (path / "gtFine").is_dir()

    def layout_hint(self) -> str:
        return "gtFine/ folder (beside leftImg8bit_sequence/ or leftImg8bit/)"

    def splits(self, root: pathlib.Path) -> list[str]:
        return [s for s in SPLITS if (root / "gtFine" / s).is_dir()]

    def layout(self, root: pathlib.Path, split: str) -> str:
        chosen = self.options["layout"]
        if chosen != "auto":
            return chosen
        return "sequence" if (root / "leftImg8bit_sequence" / split).is_dir() else "frames"

    def notes(self, root: pathlib.Path, split: str) -> list[str]:
        if self.layout(root, split) == "frames":
            return [f"cityscapes {split}: no leftImg8bit_sequence/{split} in {root}, so each video is the single "
                    "annotated frame from leftImg8bit/: temporal methods see one frame (add the sequence "
                    "package for 30-frame snippets)"]
        return []

    def read_videos(self, root: pathlib.Path, split: str, report: Report = raise_problem) -> list[VideoRecord]:
        gt_dir = root / "gtFine" / split
        if not gt_dir.is_dir():
            report(Problem("missing-split", gt_dir, f"no ground-truth folder for split {split}; extract "
                                                    "gtFine_trainvaltest.zip into the dataset folder"))
            return []
        annotations: dict[tuple[str, str, str], dict[str, pathlib.Path]] = {}
        for path in sorted(gt_dir.glob("*/*_gtFine_label*Ids.png")):
            match = GT_FILE.match(path.name)
            if match:
                key = (match["city"], match["seq"], match["frame"])
                annotations.setdefault(key, {})[match["kind"]] = path
        if not annotations:
            report(Problem("empty-split", gt_dir, "no *_gtFine_labelIds.png or *_gtFine_labelTrainIds.png files; "
                                                  "extract gtFine_trainvaltest.zip into the dataset folder"))
        layout = self.layout(root, split)
        records = []
        for (city, seq, frame), files in sorted(annotations.items()):
            mask, mask_format = ((files["labelTrainIds"], self.train_ids) if "labelTrainIds" in files
                                 else (files["labelIds"], self.label_ids))
            frames = self._frames(root, split, layout, city, seq, int(frame), mask, report)
            if frames is not None:
                annotated = self.annotated_index if layout == "sequence" else 0
                records.append(VideoRecord(f"{city}_{seq}_{frame}", frames, {annotated: mask}, mask_format))
        return records

    def _frames(self, root: pathlib.Path, split: str, layout: str, city: str, seq: str, frame: int,
                mask: pathlib.Path, report: Report) -> list[pathlib.Path] | None:
        if layout == "frames":
            numbers = [frame]
            folder = root / "leftImg8bit" / split / city
        else:
            first = frame - self.annotated_index
            numbers = list(range(first, first + self.snippet_length))
            folder = root / "leftImg8bit_sequence" / split / city
        frames = [folder / f"{city}_{seq}_{n:06d}_leftImg8bit.png" for n in numbers]
        missing = [p for p in frames if not p.is_file()]
        if missing:
            what = "annotated frame" if layout == "frames" else (
                f"{len(missing)} of the {self.snippet_length} frames of its snippet, first")
            report(Problem("missing-frame", missing[0], f"the mask {mask.name} needs this {what}; extract "
                           f"{'leftImg8bit_trainvaltest.zip' if layout == 'frames' else 'leftImg8bit_sequence_trainvaltest.zip'}"
                           " into the dataset folder"))
            return None
        return frames


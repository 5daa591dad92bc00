"""Reader for the VSPW on-disk layout (the 480p and full-resolution releases; also written by the
synthetic generator).

    ROOT/train.txt val.txt test.txt          video ids, one per line
    ROOT/label_num_dic_final.json            class name -> raw id (checked against the card)
    ROOT/data/<video>/origin/<frame>.jpg     frames
    ROOT/data/<video>/mask/<frame>.png       masks: 0 = others, 255 = void, k = class k (1-based)

Frames are in temporal order (numeric file names); every frame that has a mask is annotated. Masks
reduce as everyone reduces them: 0 -> ignore, k -> k - 1, 255 -> ignore.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, ClassVar

from benchmark.data.label_formats import LabelFormat
from benchmark.data.reader import DatasetReader
from benchmark.data.records import MaskFormat, Problem, Report, VideoRecord, raise_problem

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
SPLITS = ("train", "val", "test")
RELEASES = ("auto", "480p", "full")


def mask_format(classes: list[str], name: str = "vspw") -> MaskFormat:
    """Raw id k (1..N) -> card label k - 1; 0 (others) and 255 (void) are ignored."""
    return MaskFormat.from_mapping(f"{name} (0 = others, 1..{len(classes)} = classes, 255 = void)",
                                   {k: k - 1 for k in range(1, len(classes) + 1)}, ignored=(0, 255))


def frame_order(path: pathlib.Path) -> tuple:
    """Numeric file names sort by number (00000009 before 00000010 even unpadded), others by name."""
    return (0, int(path.stem), "") if path.stem.isdigit() else (1, 0, path.stem)


def read_split(root: pathlib.Path, split: str, report: Report = raise_problem) -> list[str]:
    """The video ids of a split file, first occurrences only."""
    path = root / f"{split}.txt"
    if not path.is_file():
        present = sorted(p.name for p in root.glob("*.txt"))
        report(Problem("missing-split", path, f"split file not found (present: {present or 'none'}); "
                                              f"the VSPW layout has train.txt, val.txt and test.txt in {root}"))
        return []
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        report(Problem("empty-split", path, "the split file lists no videos; restore it from the dataset archive"))
    seen: set[str] = set()
    unique = []
    for line_number, name in enumerate(names, start=1):
        if name in seen:
            report(Problem("duplicate-id", path, f"video id {name!r} is listed again on line {line_number}; "
                                                 "remove the duplicate line"))
            continue
        seen.add(name)
        unique.append(name)
    return unique


def read_video(root: pathlib.Path, name: str, masks_as: MaskFormat, report: Report = raise_problem,
               labelled: bool = True) -> VideoRecord | None:
    """A video of `data/`: its frames and (when `labelled`, which the video must then be) its masks."""
    folder = root / "data" / name
    frames = sorted((p for p in (folder / "origin").glob("*") if p.suffix.lower() in FRAME_SUFFIXES), key=frame_order)
    if not frames:
        report(Problem("missing-video", folder / "origin", f"video {name} has no frames; check the split file "
                                                           "and that the dataset is fully extracted"))
        return None
    masks_folder = folder / "mask"
    if labelled and not (masks_folder.is_dir() and any(masks_folder.glob("*.png"))):
        what = ("holds no .png" if masks_folder.is_dir() else "is a file, not a folder" if masks_folder.exists()
                else "is missing")
        report(Problem("missing-masks", masks_folder, f"video {name} has no masks: its mask folder {what}; "
                                                         "extract the dataset's masks again (a split without masks "
                                                         "must be declared unlabelled in its dataset card)"))
        return None
    if not labelled:
        return VideoRecord(name, frames, {}, masks_as)
    index = {p.stem: i for i, p in enumerate(frames)}
    masks = {}
    for mask in sorted(masks_folder.glob("*.png"), key=frame_order):
        if mask.stem not in index:
            report(Problem("missing-frame", mask, f"video {name}: the mask has no frame {mask.stem}.* in "
                                                  f"{folder / 'origin'}; extract the frames again"))
            continue
        masks[index[mask.stem]] = mask
    return VideoRecord(name, frames, masks, masks_as)


class VSPWLayoutReader(DatasetReader):
    """Any dataset in the VSPW layout; the class list comes from its card."""

    def __init__(self, options=None):
        super().__init__(options)
        self.mask_format = mask_format(self.card["classes"], self.name)

    def is_dataset_folder(self, path: pathlib.Path) -> bool:
        return (path / "data").is_dir() and any((path / f"{s}.txt").is_file() for s in SPLITS)

    def layout_hint(self) -> str:
        return "data/ folder beside train.txt / val.txt / test.txt"

    def splits(self, root: pathlib.Path) -> list[str]:
        return [s for s in SPLITS if (root / f"{s}.txt").is_file()]

    def read_videos(self, root: pathlib.Path, split: str, report: Report = raise_problem) -> list[VideoRecord]:
        labelled = split not in self.card.get("unlabelled_splits", [])
        records = (read_video(root, name, self.mask_format, report, labelled) for name in read_split(root, split, report))
        return [r for r in records if r is not None]

    def label_formats(self) -> list[LabelFormat]:
        # VSPW's own evaluator (eval_miou.py, iou_cal.py) reduces the ground truth (0 and 255 -> void, k -> k-1)
        # and reads the prediction as it is, so it wants ids 0..N-1; it has no id for "no class" (a 255 there
        # is counted as a wrong class, or overflows its bincount), hence the second folder in the masks' ids.
        count = len(self.card["classes"])
        return [LabelFormat.from_ids("reduced", range(count), 255, (
                    f"VSPW's eval_miou.py / iou_cal.py and mmseg with reduce_zero_label: ids 0..{count - 1} "
                    "(the raw id minus 1); 255 where the method named no class, which mmseg counts as a miss and "
                    "VSPW's own scripts cannot count (they have no id for it)")),
                LabelFormat.from_ids("raw", range(1, count + 1), 0, (
                    f"the masks' own ids 1..{count}; 0 ('others') where the method named no class: read with the "
                    "masks' rule (0 and 255 void, k -> k-1) on both sides, a 0 is a miss of the pixel's class"))]

    def check_files(self, root: pathlib.Path, report: Report) -> None:
        """label_num_dic_final.json, when present, must give every card class its raw id."""
        path = root / "label_num_dic_final.json"
        if not path.is_file():
            return
        try:
            ids = {name: int(value) for name, value in json.loads(path.read_text()).items()}
        except (ValueError, TypeError, AttributeError) as error:
            report(Problem("class-list", path, f"not a JSON object of class name -> id ({error})"))
            return
        expected = {name: k for k, name in enumerate(self.card["classes"], start=1)}
        wrong = [f"{name}: {ids.get(name)} (card: {k})" for name, k in expected.items() if ids.get(name) != k]
        extra = sorted(set(ids) - set(expected) - {"others"})
        if wrong or extra:
            report(Problem("class-list", path, "the dataset's class ids disagree with the card "
                           f"datasets/{self.name}.json: {'; '.join(wrong[:8])}{' ...' if len(wrong) > 8 else ''}"
                           f"{'; not in the card: ' + ', '.join(extra) if extra else ''}"))


class VSPWReader(VSPWLayoutReader):
    """VSPW. Option `release`: auto (VSPW_480p, else VSPW), 480p or full."""

    name = "vspw"
    extra_options: ClassVar[dict[str, Any]] = {"release": "auto"}

    def __init__(self, options=None):
        super().__init__(options)
        if self.options["release"] not in RELEASES:
            raise ValueError(f"vspw dataset option release={self.options['release']!r}: "
                             f"choose one of {', '.join(RELEASES)}")

    def folders(self) -> list[str]:
        releases = self.card["releases"]
        chosen = self.options["release"]
        return list(releases.values()) if chosen == "auto" else [releases[chosen]]

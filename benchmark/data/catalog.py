"""The catalog of datasets: a reader per name, where each is found, and the videos of an evaluation."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmark.data.cards import default_data_root, load_card
from benchmark.data.cityscapes import CityscapesReader
from benchmark.data.label_formats import LabelFormat
from benchmark.data.reader import DatasetReader
from benchmark.data.records import VideoRecord, raise_problem
from benchmark.data.settings import SETTINGS, EvalSetting
from benchmark.data.synthetic import SyntheticReader
from benchmark.data.vspw import VSPWReader

#: Every dataset the harness reads, by name; each has a card in `datasets/`.
READERS: dict[str, type[DatasetReader]] = {"vspw": VSPWReader, "cityscapes": CityscapesReader,
                                           "synthetic": SyntheticReader}
DATASETS = tuple(READERS)


@dataclass
class Evaluation:
    """One dataset setting, ready to run: the setting, the videos of its split, and notes for the user."""

    setting: EvalSetting
    root: pathlib.Path
    split: str
    videos: list[VideoRecord]
    notes: list[str] = field(default_factory=list)
    label_formats: list[LabelFormat] = field(default_factory=list)  # the ids its tools read predictions in


def reader(name: str, options: Mapping[str, Any] | None = None) -> DatasetReader:
    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return READERS[name](options)


def parse(spec: str) -> tuple[str, str | None]:
    """'vspw:unseen' -> ('vspw', 'unseen'); 'vspw' -> ('vspw', None)."""
    name, _, setting = spec.partition(":")
    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r} in {spec!r}; known: {', '.join(DATASETS)}")
    settings = load_card(name)["settings"]
    if setting and setting not in settings:
        raise ValueError(f"unknown setting {setting!r} in {spec!r}; {name} has {', '.join(settings)}"
                         + ("" if setting in SETTINGS else f" (settings: {', '.join(SETTINGS)})"))
    return name, setting or None


def found_real(data_root: pathlib.Path | None = None,
               options: Mapping[str, Mapping[str, Any]] | None = None) -> list[str]:
    options = options or {}
    return [name for name, cls in READERS.items()
            if cls is not SyntheticReader and cls(options.get(name)).locate(data_root)]


def expand(specs: list[str], data_root: pathlib.Path | None = None,
           options: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[list[tuple[str, str]], str | None]:
    """Dataset specs -> (name, setting) pairs, and a note when `all` fell back to synthetic.
    `options` (per dataset name) can change where a dataset is looked for (e.g. vspw.release)."""
    options = options or {}
    note = None
    if specs == ["all"]:
        names = found_real(data_root, options)
        if not names:
            root = data_root or default_data_root()
            note = (f"No real dataset found under {root}; using the embedded synthetic dataset "
                    "(see docs/data-and-weights.md).")
            names = ["synthetic"]
        specs = names
    pairs = []
    for spec in specs:
        name, setting = parse(spec)
        dataset = reader(name, options.get(name))
        if name != "synthetic" and dataset.locate(data_root) is None:
            raise dataset.not_found(data_root)
        pairs.append((name, setting or dataset.card["default_setting"]))
    return list(dict.fromkeys(pairs)), note


def open_evaluation(name: str, setting: str, protocol: str = "intended", data_root: pathlib.Path | None = None,
                    options: Mapping[str, Any] | None = None) -> Evaluation:
    dataset = reader(name, options)
    eval_setting = dataset.setting(setting, protocol)
    root = dataset.locate(data_root)
    if root is None:
        raise dataset.not_found(data_root)
    dataset.check_files(root, raise_problem)  # a class list in another order would silently mislabel every class
    split = dataset.split
    return Evaluation(eval_setting, root, split, dataset.read_videos(root, split), dataset.notes(root, split),
                      dataset.label_formats())

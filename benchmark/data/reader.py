"""The base of every dataset reader: its card, its options, where it is found, and its settings."""

from __future__ import annotations

import abc
import pathlib
from collections.abc import Mapping
from typing import Any, ClassVar

from benchmark import options as typed_options
from benchmark.data.cards import default_data_root, load_card
from benchmark.data.label_formats import LabelFormat
from benchmark.data.records import Report, VideoRecord, raise_problem
from benchmark.data.settings import EvalSetting, make_setting


class DatasetNotFoundError(FileNotFoundError):
    pass


class DatasetReader(abc.ABC):
    """Reads one dataset in its real on-disk format.

    Options (`--dataset-opt NAME.KEY=VALUE`) every dataset takes: `names` (display or raw class
    names; default display, raw under the official protocol) and `split` (default the card's
    evaluation split). A reader adds its own in `extra_options`; values are checked against the type
    of their default (`benchmark.options`).
    """

    name: ClassVar[str]
    extra_options: ClassVar[dict[str, Any]] = {}
    COMMON_OPTIONS: ClassVar[dict[str, Any]] = {"names": None, "split": None}
    #: Types of options whose default does not say (a default of None is read as: a string or None).
    option_types: ClassVar[dict[str, Any]] = {}

    def __init__(self, options: Mapping[str, Any] | None = None):
        self.card = load_card(self.name)
        defaults = {**self.COMMON_OPTIONS, **self.option_defaults()}
        unknown = sorted(set(options or {}) - set(defaults))
        if unknown:
            raise ValueError(f"unknown {self.name} dataset option(s) {unknown}; known: {sorted(defaults)} "
                             f"(set them with --dataset-opt {self.name}.KEY=VALUE)")
        types = typed_options.default_types(defaults, self.option_types)
        given = {key: typed_options.check(f"--dataset-opt {self.name}", key, value, types[key])
                 for key, value in (options or {}).items()}
        self.options = {**defaults, **given}

    def option_defaults(self) -> dict[str, Any]:
        """This dataset's own options and their defaults."""
        return dict(self.extra_options)

    @property
    def split(self) -> str:
        return self.options["split"] or self.card["eval_split"]

    def setting(self, setting: str, protocol: str = "intended") -> EvalSetting:
        return make_setting(self.card, setting, protocol, self.options["names"], self.group_overrides())

    def group_overrides(self) -> dict[str, list[str]]:
        """Class groups replaced by options (Cityscapes: `novel`)."""
        return {}

    def folders(self) -> list[str]:
        """Folder names the dataset may have under the data root, in order of preference."""
        return list(self.card.get("folders", []))

    def locate(self, data_root: pathlib.Path | None = None) -> pathlib.Path | None:
        """The dataset's folder: the data root itself, or one of the card's folders under it."""
        base = pathlib.Path(data_root or default_data_root())
        for candidate in (base, *(base / folder for folder in self.folders())):
            if self.is_dataset_folder(candidate):
                return candidate
        return None

    def not_found(self, data_root: pathlib.Path | None = None) -> DatasetNotFoundError:
        base = pathlib.Path(data_root or default_data_root())
        looked = ", ".join(str(base / folder) for folder in self.folders())
        return DatasetNotFoundError(
            f"dataset {self.name} not found: no {self.layout_hint()} in {base} or in {looked}. Put the dataset "
            "under the data root, or point --data-root (or BENCHMARK_DATA_ROOT) at the folder that holds it.")

    @abc.abstractmethod
    def is_dataset_folder(self, path: pathlib.Path) -> bool:
        """Whether `path` holds this dataset in its on-disk layout."""

    @abc.abstractmethod
    def layout_hint(self) -> str:
        """What `is_dataset_folder` looks for, for error messages."""

    @abc.abstractmethod
    def splits(self, root: pathlib.Path) -> list[str]:
        """The splits present in `root`."""

    @abc.abstractmethod
    def read_videos(self, root: pathlib.Path, split: str, report: Report = raise_problem) -> list[VideoRecord]:
        """The videos of a split, in the split's order; problems go to `report` (and are skipped)."""

    def check_files(self, root: pathlib.Path, report: Report) -> None:
        """Check dataset-wide files (e.g. the dataset's own class list) against the card."""

    def eval_size(self) -> dict[str, int] | None:
        """The evaluation split's videos, frames, annotated frames and frame size [H, W], as the card
        states them (for time estimates before any file is read); None when the card does not say."""
        return self.card.get("eval_size") if self.split == self.card["eval_split"] else None

    def label_formats(self) -> list[LabelFormat]:
        """The id spaces this dataset's own evaluation tools read predictions in (`run --save-predictions`
        writes one folder per format); none: predictions of this dataset cannot be saved."""
        return []

    def notes(self, root: pathlib.Path, split: str) -> list[str]:
        """What a user should know about how this copy is read (e.g. single frames, no sequences)."""
        return []

"""The catalog of datasets: where each is found, its settings, and the videos of an evaluation."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benchmark.data import synthetic, vspw
from benchmark.data.cards import default_data_root, load_card
from benchmark.data.settings import SETTINGS, EvalSetting, make_setting

#: Datasets the harness reads; each has a card in `datasets/`. All use the VSPW layout for now.
DATASETS = ("vspw", "synthetic")


class DatasetNotFoundError(FileNotFoundError):
    pass


@dataclass
class Evaluation:
    """One dataset setting, ready to run: the setting and the videos of its split."""

    setting: EvalSetting
    root: pathlib.Path
    split: str
    videos: list[vspw.VideoRecord]


def parse(spec: str) -> tuple[str, str | None]:
    """'vspw:unseen' -> ('vspw', 'unseen'); 'vspw' -> ('vspw', None)."""
    name, _, setting = spec.partition(":")
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r} in {spec!r}; known: {', '.join(DATASETS)}")
    if setting and setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r} in {spec!r}; choose one of {', '.join(SETTINGS)}")
    return name, setting or None


def locate(name: str, data_root: pathlib.Path | None = None,
           options: Mapping[str, Any] | None = None) -> pathlib.Path | None:
    """The dataset's folder, or None when it is not under the data root (synthetic: generated)."""
    if name == "synthetic":
        return synthetic.ensure(options)
    if options:
        raise ValueError(f"dataset {name} takes no options, got {dict(options)}")
    root = pathlib.Path(data_root or default_data_root())
    card = load_card(name)
    for folder in card["folders"]:
        if (root / folder / f"{card['eval_split']}.txt").is_file():
            return root / folder
    return None


def found_real(data_root: pathlib.Path | None = None) -> list[str]:
    return [name for name in DATASETS if name != "synthetic" and locate(name, data_root) is not None]


def expand(specs: list[str], data_root: pathlib.Path | None = None) -> tuple[list[tuple[str, str]], str | None]:
    """Dataset specs -> (name, setting) pairs, and a note when `all` fell back to synthetic."""
    note = None
    if specs == ["all"]:
        names = found_real(data_root)
        if not names:
            root = data_root or default_data_root()
            note = (f"No real dataset found under {root}; using the embedded synthetic dataset "
                    "(see README, 'Real data').")
            names = ["synthetic"]
        specs = names
    pairs = []
    for spec in specs:
        name, setting = parse(spec)
        if name != "synthetic" and locate(name, data_root) is None:
            raise _not_found(name, data_root)
        pairs.append((name, setting or load_card(name)["default_setting"]))
    return list(dict.fromkeys(pairs)), note


def _not_found(name: str, data_root: pathlib.Path | None) -> DatasetNotFoundError:
    card = load_card(name)
    base = pathlib.Path(data_root or default_data_root())
    looked = ", ".join(str(base / f / f"{card['eval_split']}.txt") for f in card["folders"])
    return DatasetNotFoundError(
        f"dataset {name} not found: looked for {looked}. Put the dataset under the data root "
        "or point --data-root (or BENCHMARK_DATA_ROOT) at the folder that holds it.")


def open_evaluation(name: str, setting: str, protocol: str = "intended", data_root: pathlib.Path | None = None,
                    options: Mapping[str, Any] | None = None, split: str | None = None) -> Evaluation:
    card = load_card(name)
    root = locate(name, data_root, options)
    if root is None:
        raise _not_found(name, data_root)
    split = split or card["eval_split"]
    eval_setting = make_setting(name, card["classes"], card["num_seen"], setting, protocol)
    return Evaluation(eval_setting, root, split, vspw.read_videos(root, split))

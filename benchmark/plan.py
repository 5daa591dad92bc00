"""Cells: one method (with its options) on one dataset setting under one protocol.

A cell's id is derived from its full configuration, so the same experiment always lands in the same
result file and a re-run can skip what is finished.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmark import registry
from benchmark.data import catalog


@dataclass(frozen=True)
class Cell:
    method: str
    dataset: str
    setting: str
    protocol: str = "intended"
    options: dict[str, Any] = field(default_factory=dict)          # the method's, defaults resolved
    dataset_options: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    seed: int = 0
    vc_rule: str = "vspw"
    training: str | None = None   # folder of the training run whose weights it loads (run --train)

    @property
    def id(self) -> str:
        fields = asdict(self)
        if fields["training"] is None:  # added later: cells without it keep the ids they always had
            del fields["training"]
        config = json.dumps(fields, sort_keys=True, default=str)
        digest = hashlib.sha1(config.encode()).hexdigest()[:10]
        readable = f"{self.method}__{self.dataset}-{self.setting}__{self.protocol}"
        return f"{re.sub(r'[^A-Za-z0-9._-]+', '-', readable)}__{digest}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cell:
        return cls(**{k: v for k, v in data.items() if k != "id"})


def parse_assignments(items: list[str], flag: str) -> dict[str, dict[str, Any]]:
    """['clip.size=384', 'clip.fast=true'] -> {'clip': {'size': 384, 'fast': True}}."""
    import yaml

    parsed: dict[str, dict[str, Any]] = {}
    for item in items:
        target, eq, value = item.partition("=")
        name, dot, key = target.partition(".")
        if not (eq and dot and name and key):
            raise ValueError(f"{flag} {item!r}: expected NAME.KEY=VALUE, for example {flag} chance.seed=3")
        parsed.setdefault(name, {})[key] = yaml.safe_load(value) if value else ""
    return parsed


def build(methods: list[str], datasets: list[tuple[str, str]], protocol: str = "intended",
          options: dict[str, dict[str, Any]] | None = None,
          dataset_options: dict[str, dict[str, Any]] | None = None,
          checkpoints: dict[str, str] | None = None, seed: int = 0, vc_rule: str = "vspw") -> list[Cell]:
    """Every method x dataset setting, with each method's default options filled in."""
    options = options or {}
    _check_named(options, checkpoints or {}, dataset_options or {}, methods, datasets)
    configs = [(method, resolve_options(method, options), datasets) for method in methods]
    return _cells(configs, protocol, dataset_options or {}, checkpoints or {}, seed, vc_rule)


def _check_named(options, checkpoints, dataset_options, methods, datasets) -> None:
    for flag, given, known in (("--opt", options, methods), ("--checkpoint", checkpoints, methods),
                               ("--dataset-opt", dataset_options, [d for d, _ in datasets])):
        stray = sorted(set(given) - set(known))
        if stray:
            raise ValueError(f"{flag} names {stray}, which this run does not include (it runs {sorted(set(known))})")


def _cells(configs: list[tuple[str, dict[str, Any], list[tuple[str, str]]]], protocol: str,
           dataset_options: dict[str, dict[str, Any]], checkpoints: dict[str, str], seed: int,
           vc_rule: str) -> list[Cell]:
    """The cells of (method, resolved options, dataset settings) configurations, each once."""
    from benchmark.interface import TrainableMethod

    for dataset, setting in {d for *_, settings in configs for d in settings}:
        # bad options or an impossible protocol fail before anything runs
        catalog.reader(dataset, dataset_options.get(dataset)).setting(setting, protocol)
    cells: dict[str, Cell] = {}
    for method, resolved, datasets in configs:
        cls = registry.get(method)
        if method in checkpoints and not issubclass(cls, TrainableMethod):
            raise ValueError(f"--checkpoint {method}=...: method {method} is not a TrainableMethod "
                             "and loads no weights")
        try:  # constructors only check their options, so a bad value fails here, before any cell runs
            registry.create(method, **resolved)
        except (TypeError, ValueError) as error:
            raise ValueError(f"method {method}: {error}") from error
        for dataset, setting in datasets:
            cell = Cell(method, dataset, setting, protocol, resolved, dict(dataset_options.get(dataset, {})),
                        checkpoints.get(method), seed, vc_rule)
            cells.setdefault(cell.id, cell)
    return list(cells.values())


@dataclass(frozen=True)
class SuiteRow:
    """One configuration a paper table needs: the paper's options, and the tiny models that stand in
    for them when the table runs on the synthetic data (so it runs on a laptop). A row that
    `needs_weights` runs only when `--checkpoint` gives them (a released checkpoint, not trainable here)."""

    method: str
    options: dict[str, Any]
    stand_in: dict[str, Any]
    needs_weights: bool = False


@dataclass(frozen=True)
class SuitePart:
    """Rows evaluated on a dataset setting, or on its synthetic stand-in when the dataset is not found."""

    setting: str
    stand_in: str
    rows: tuple[SuiteRow, ...]


def _suites() -> dict[str, tuple[SuitePart, ...]]:
    from methods.ov2vss.variants import TABLE_III

    authors = SuiteRow("ov2vss-authors", {}, {}, needs_weights=True)  # their released model, in every table
    methods = (  # Tables I and II: the paper's rows we run, and the image-only baselines
        SuiteRow("ov2vss", {"backbone": "resnet101"}, {"backbone": "resnet-tiny"}),
        SuiteRow("ov2vss", {"backbone": "sam-vit-b"}, {"backbone": "sam-vit-tiny"}),
        SuiteRow("sam-clip", {"sam_model": "vit_b"}, {"sam_model": "tiny"}),
        SuiteRow("clip-cost-volume", {"variant": "trained", "backbone": "sam-vit-b"},
                 {"variant": "trained", "backbone": "sam-vit-tiny"}),
        SuiteRow("clip-cost-volume", {"variant": "training-free"}, {"variant": "training-free"}),
        authors,
    )
    ablations = tuple(  # Table III: each variant once (several rows name the full model)
        SuiteRow("ov2vss", {"variant": v, "backbone": "sam-vit-b"}, {"variant": v, "backbone": "sam-vit-tiny"})
        for v in dict.fromkeys(variant for *_, variant in TABLE_III)) + (authors,)
    suites = {"table1": (SuitePart("vspw:unseen", "synthetic:unseen", methods),),
              "table2": (SuitePart("cityscapes:all", "synthetic:all", methods),),
              "table3": (SuitePart("vspw:unseen", "synthetic:unseen", ablations),)}
    suites["paper"] = suites["table1"] + suites["table2"] + suites["table3"]
    return suites


SUITE_NAMES = ("table1", "table2", "table3", "paper")


def build_suite(name: str, methods: list[str] | None = None, protocol: str = "intended",
                options: dict[str, dict[str, Any]] | None = None,
                dataset_options: dict[str, dict[str, Any]] | None = None, data_root=None, seed: int = 0,
                vc_rule: str = "vspw", checkpoints: dict[str, str] | None = None) -> tuple[list[Cell], list[str]]:
    """The cells a paper table needs (restricted to `methods` when given), and notes on stand-ins.

    `options` fill in what the suite leaves open (weights, training recipe); a key the suite sets per
    row (e.g. ov2vss.backbone) cannot be given too. `checkpoints` give the rows that need weights theirs."""
    options, dataset_options, checkpoints = options or {}, dataset_options or {}, checkpoints or {}
    if name not in SUITE_NAMES:
        raise ValueError(f"unknown suite {name!r}; choose one of {', '.join(SUITE_NAMES)}")
    given = {row.method for part in _suites()[name] for row in part.rows if row.needs_weights}
    stray = sorted(set(checkpoints) - given)
    if stray:
        raise ValueError(f"--suite {name} trains its own configurations of {', '.join(stray)}: drop their "
                         f"--checkpoint (it gives weights only to {', '.join(sorted(given)) or 'no method'})")
    configs, notes, names = [], [], set()
    for part in _suites()[name]:
        dataset, setting = part.setting.split(":")
        found = catalog.reader(dataset, dataset_options.get(dataset)).locate(data_root) is not None
        if not found:
            note = f"{dataset} not found under the data root: {part.setting} runs on {part.stand_in} with tiny models"
            notes += [note] if note not in notes else []
        for row in part.rows:
            if methods is not None and row.method not in methods:
                continue
            if row.needs_weights and row.method not in checkpoints:
                note = f"{row.method} rows left out: they need weights (--checkpoint {row.method}=FILE)"
                notes += [note] if note not in notes else []
                continue
            fixed = row.options if found else row.stand_in
            clash = sorted(set(options.get(row.method, {})) & set(fixed))
            if clash:
                raise ValueError(f"--suite {name} sets {', '.join(f'{row.method}.{k}' for k in clash)} per row "
                                 f"({', '.join(f'{k}={fixed[k]}' for k in clash)}, ...); drop those --opt")
            resolved = {**resolve_options(row.method, options), **fixed}
            target = catalog.parse(part.setting if found else part.stand_in)
            configs.append((row.method, resolved, [target]))
            names.add(row.method)
    if not configs:
        raise ValueError(f"--suite {name} has no rows for --methods {','.join(methods or [])}")
    _check_named(options, {}, dataset_options, sorted(names), [d for *_, targets in configs for d in targets])
    return _cells(configs, protocol, dataset_options, checkpoints, seed, vc_rule), notes


def resolve_options(method: str, options: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The method's default options updated with the ones given for it (what a cell records)."""
    return {**registry.get(method).default_options(), **options.get(method, {})}


def untrained(cells: list[Cell]) -> list[Cell]:
    """The cells whose method needs trained weights with their options but that name none."""
    from benchmark.interface import TrainableMethod

    return [cell for cell in cells if cell.checkpoint is None and cell.training is None
            and issubclass(cls := registry.get(cell.method), TrainableMethod) and cls.needs_checkpoint(cell.options)]


def untrainable(cells: list[Cell]) -> list[Cell]:
    """The untrained cells whose method no training here can give weights (only --checkpoint can)."""
    return [cell for cell in untrained(cells) if not registry.get(cell.method).trains]


def check_checkpoints(cells: list[Cell]) -> None:
    """Let each method check the weights it was given (once per method and file), so a corrupt,
    truncated or foreign file fails before any cell runs."""
    for cell in {(c.method, c.checkpoint): c for c in cells if c.checkpoint}.values():
        registry.get(cell.method).check_checkpoint(pathlib.Path(cell.checkpoint), cell.options)


def with_default_weights(cells: list[Cell]) -> tuple[list[Cell], list[Cell]]:
    """The cells, each untrained one whose method has default weights for its options (the shipped
    toy checkpoints) now naming them; and the cells still untrained."""
    from dataclasses import replace

    filled = {cell.id: replace(cell, checkpoint=found) for cell in untrained(cells)
              if (found := registry.get(cell.method).default_checkpoint(cell.options))}
    cells = [filled.get(cell.id, cell) for cell in cells]
    return cells, untrained(cells)


def expand_methods(spec: str) -> list[str]:
    """'all' -> every available method; 'a,b' -> ['a', 'b'] (each checked to exist)."""
    names = list(registry.available()) if spec == "all" else [m.strip() for m in spec.split(",") if m.strip()]
    names = list(dict.fromkeys(names))
    for name in names:
        registry.get(name)
    return names


def expand_datasets(spec: str, data_root=None, dataset_options=None) -> tuple[list[tuple[str, str]], str | None]:
    specs = ["all"] if spec == "all" else [d.strip() for d in spec.split(",") if d.strip()]
    return catalog.expand(specs, data_root, dataset_options)

"""Cells: one method (with its options) on one dataset setting under one protocol.

A cell's id is derived from its full configuration, so the same experiment always lands in the same
result file and a re-run can skip what is finished.
"""

from __future__ import annotations

import hashlib
import json
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
          checkpoints: dict[str, str] | None = None, seed: int = 0, vc_rule: str = "vspw",
          trainings: dict[str, str] | None = None) -> list[Cell]:
    """Every method x dataset setting, with each method's default options filled in; `trainings` maps
    a method to the folder of the training run whose weights its cells load."""
    options, dataset_options, checkpoints = options or {}, dataset_options or {}, checkpoints or {}
    trainings = trainings or {}
    for flag, given, known in (("--opt", options, methods), ("--checkpoint", checkpoints, methods),
                               ("--dataset-opt", dataset_options, [d for d, _ in datasets])):
        stray = sorted(set(given) - set(known))
        if stray:
            raise ValueError(f"{flag} names {stray}, which this run does not include (it runs {sorted(set(known))})")
    from benchmark.interface import TrainableMethod

    for dataset, setting in datasets:  # bad options or an impossible protocol fail before anything runs
        catalog.reader(dataset, dataset_options.get(dataset)).setting(setting, protocol)
    cells = []
    for method in methods:
        cls = registry.get(method)
        if method in checkpoints and not issubclass(cls, TrainableMethod):
            raise ValueError(f"--checkpoint {method}=...: method {method} is not a TrainableMethod and loads no weights")
        resolved = resolve_options(method, options)
        try:  # constructors only check their options, so a bad value fails here, before any cell runs
            registry.create(method, **resolved)
        except (TypeError, ValueError) as error:
            raise ValueError(f"method {method}: {error}") from error
        for dataset, setting in datasets:
            cells.append(Cell(method, dataset, setting, protocol, resolved, dict(dataset_options.get(dataset, {})),
                              checkpoints.get(method), seed, vc_rule, trainings.get(method)))
    return cells


def resolve_options(method: str, options: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The method's default options updated with the ones given for it (what a cell records)."""
    return {**registry.get(method).default_options(), **options.get(method, {})}


def untrained(methods: list[str], options: dict[str, dict[str, Any]] | None = None,
              checkpoints: dict[str, str] | None = None) -> list[str]:
    """The methods that need trained weights with these options but were given no --checkpoint."""
    from benchmark.interface import TrainableMethod

    options, checkpoints = options or {}, checkpoints or {}
    missing = []
    for method in methods:
        cls = registry.get(method)
        if (issubclass(cls, TrainableMethod) and method not in checkpoints
                and cls.needs_checkpoint(resolve_options(method, options))):
            missing.append(method)
    return missing


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

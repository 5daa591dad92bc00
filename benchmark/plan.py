"""Planning: what `run` and `train` ask for (a `Request`) becomes a `Plan` in one call, `make`.

A plan holds the cells (one method with its options on one dataset setting under one protocol),
the training runs they wait for, which weights each cell loads and why, and notes for the user.
A cell's id is derived from its full configuration, so the same experiment always lands in the same
result file and a re-run can skip what is finished.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from benchmark import options as typed_options
from benchmark import registry, suites
from benchmark.data import catalog
from benchmark.execution.training import PlannedTraining, TrainContext, Training


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


class PlanError(ValueError):
    """A request that cannot be planned: the message says what to change."""


@dataclass
class Request:
    """What the user asked for, with names and values as given (checked by `make`)."""

    methods: list[str] | None = None           # None: every available method (or every row of the suite)
    datasets: list[str] | None = None          # NAME[:SETTING] specs; None: the real datasets found, else synthetic
    suite: str | None = None                   # a built-in suite's name or a table file's path
    protocol: str = "intended"
    options: dict[str, dict[str, Any]] = field(default_factory=dict)          # per method
    dataset_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per dataset
    checkpoints: dict[str, str] = field(default_factory=dict)                 # method -> weights file
    seed: int = 0
    seeds: int = 1                             # trained configurations: train and evaluate seeds seed..seed+seeds-1
    vc_rule: str = "vspw"
    data_root: str | None = None
    train: bool = False                        # train what has no weights (run --train), or only train (`train`)
    evaluate: bool = True                      # False: plan the training runs alone (`train`)
    train_on: str | None = None                # NAME[:SETTING] the trainings use
    plugins: list[str] = field(default_factory=list)
    device: str = "auto"
    argv: list[str] = field(default_factory=list)


@dataclass
class Plan:
    cells: list[Cell]
    trainings: list[PlannedTraining]
    notes: list[str]                           # what the user should know, in the order it was decided
    weights: dict[str, str]                    # cell id -> which weights it loads and why
    tables: list[str] = field(default_factory=list)  # the table files of the suite, for the reports


def make(request: Request) -> Plan:
    """The plan for a request: the cells (from the suite's rows, or every method x dataset setting),
    each naming its weights (given, shipped for the miniature world, or trained first), the training
    runs, and notes on what was left out and why."""
    if not request.evaluate:
        return _training_only(request)
    if request.seeds < 1 or (request.seeds > 1 and not request.train):
        raise PlanError(f"--seeds {request.seeds}: trains that many seeds of each trained configuration, so it needs "
                        "--train and a count of at least 1 (weights trained with another seed: --seed S --checkpoint "
                        "NAME=PATH, into the same --output)")
    methods = _methods(request)
    notes: list[str] = []
    tables: list[str] = []
    if request.suite:
        if request.datasets is not None:
            raise PlanError(f"--suite {request.suite} picks the dataset settings: drop --datasets (or run rows one "
                            "by one without --suite)")
        suite = suites.find(request.suite)
        cells = _suite_cells(suite, request, methods, notes)
        tables = [str(table.path) for table in suite.tables]
    else:
        datasets, note = catalog.expand(request.datasets or ["all"], request.data_root, request.dataset_options)
        notes += [note] if note else []
        cells = _plain_cells(methods or list(registry.available()), datasets, request)
    _check_checkpoints(cells)
    explicit = request.methods is not None
    given_only = [cell for cell in _untrained(cells) if not registry.get(cell.method).trains]
    if given_only:
        names = list(dict.fromkeys(cell.method for cell in given_only))
        how = "; ".join(f"pass --checkpoint {m}=PATH" for m in names)
        if explicit:
            raise PlanError(f"{', '.join(names)} needs weights it cannot train here: {how}")
        notes.append(f"left out (needs weights given with --checkpoint): {', '.join(names)}; {how}")
        cells = [cell for cell in cells if cell not in given_only]
    untrained = _untrained(cells)
    trainings: list[PlannedTraining] = []
    if untrained and request.train:  # train what was given no weights, shipped ones aside
        cells, trainings = _with_trainings(cells, untrained, request, notes)
    elif untrained:
        cells, untrained = _with_shipped_weights(cells, set(request.checkpoints.values()), notes)
    if untrained and not request.train:
        names = list(dict.fromkeys(cell.method for cell in untrained))
        how = "; ".join(f"train {m} with `python -m benchmark train --method {m}`, then pass --checkpoint {m}=PATH"
                        for m in names)
        if request.suite:  # a table shows the rows that have weights; --train fills in the rest
            if len(untrained) == len(cells):
                raise PlanError(f"--suite {request.suite} needs trained weights for its {len(untrained)} cells of "
                                f"{', '.join(names)}: add --train (finished training runs are reused)")
            notes.append(f"left out: {len(untrained)} cells of {', '.join(names)} with no trained weights for their "
                         "options; add --train to train them (finished training runs are reused)")
        elif explicit:
            raise PlanError(f"{', '.join(names)} needs trained weights: {how} (or add --train)")
        else:
            notes.append(f"left out (no trained weights): {', '.join(names)}; {how} (or add --train)")
        cells = [cell for cell in cells if cell not in untrained]
    given = set(request.checkpoints.values())
    return Plan(cells, trainings, notes, {cell.id: _weights(cell, given) for cell in cells}, tables)


def _weights(cell: Cell, given: set[str]) -> str:
    """Which weights a planned cell loads, and why."""
    if cell.training:
        return f"trained: {cell.training}"
    if cell.checkpoint:
        return f"{'given' if cell.checkpoint in given else 'shipped'}: {cell.checkpoint}"
    return "none needed"


def _methods(request: Request) -> list[str] | None:
    """The methods asked for, each checked to exist; None for all of them."""
    if request.methods is None:
        return None
    names = list(dict.fromkeys(request.methods))
    if not names:
        raise PlanError("no methods to run; name them with --methods or add a --plugin")
    for name in names:
        registry.get(name)
    return names


def _plain_cells(methods: list[str], datasets: list[tuple[str, str]], request: Request) -> list[Cell]:
    """Every method x dataset setting, with each method's default options filled in."""
    _check_named(request.options, request.checkpoints, request.dataset_options, methods, datasets)
    configs = [(method, resolve_options(method, request.options), datasets) for method in methods]
    return _cells(configs, request)


def _suite_cells(suite: suites.Suite, request: Request, methods: list[str] | None, notes: list[str]) -> list[Cell]:
    """The cells a suite's tables need (only `methods`' rows when given), each table on its setting or,
    when that dataset is not found, on its synthetic stand-in with the rows' stand-in options."""
    options, checkpoints = request.options, request.checkpoints
    given = {row.method for table in suite.tables for row in table.rows if row.needs_weights}
    stray = sorted(set(checkpoints) - given)
    if stray:
        raise PlanError(f"--suite {suite.name} trains its own configurations of {', '.join(stray)}: drop their "
                        f"--checkpoint (it gives weights only to {', '.join(sorted(given)) or 'no method'})")
    configs, names = [], set()
    for table in suite.tables:
        dataset, _ = catalog.parse(table.setting)
        found = catalog.reader(dataset, request.dataset_options.get(dataset)).locate(request.data_root) is not None
        if not found:
            _note(notes, f"{dataset} not found under the data root: {table.setting} runs on {table.stand_in} "
                         "with tiny models")
        for row in table.rows:
            if methods is not None and row.method not in methods:
                continue
            if row.needs_weights and row.method not in checkpoints:
                _note(notes, f"{row.method} rows left out: they need weights (--checkpoint {row.method}=FILE)")
                continue
            fixed = row.options_on(stand_in=not found)
            clash = sorted(set(options.get(row.method, {})) & set(fixed))
            if clash:
                raise PlanError(f"--suite {suite.name} sets {', '.join(f'{row.method}.{k}' for k in clash)} per row "
                                f"({', '.join(f'{k}={fixed[k]}' for k in clash)}, ...); drop those --opt")
            resolved = {**resolve_options(row.method, options),
                        **checked_options(row.method, fixed, f"{table.path} row")}
            configs.append((row.method, resolved, [catalog.parse(table.setting if found else table.stand_in)]))
            names.add(row.method)
    if not configs:
        raise PlanError(f"--suite {suite.name} has no rows for --methods {','.join(methods or [])}")
    _check_named(options, {}, request.dataset_options, sorted(names), [d for *_, targets in configs for d in targets])
    return _cells(configs, request)


def _note(notes: list[str], note: str) -> None:
    if note not in notes:
        notes.append(note)


def _check_named(options, checkpoints, dataset_options, methods, datasets) -> None:
    for flag, given, known in (("--opt", options, methods), ("--checkpoint", checkpoints, methods),
                               ("--dataset-opt", dataset_options, [d for d, _ in datasets])):
        stray = sorted(set(given) - set(known))
        if stray:
            raise PlanError(f"{flag} names {stray}, which this run does not include (it runs {sorted(set(known))})")


def _cells(configs: list[tuple[str, dict[str, Any], list[tuple[str, str]]]], request: Request) -> list[Cell]:
    """The cells of (method, resolved options, dataset settings) configurations, each once."""
    from benchmark.interface import TrainableMethod

    for dataset, setting in {d for *_, settings in configs for d in settings}:
        # bad options or an impossible protocol fail before anything runs
        catalog.reader(dataset, request.dataset_options.get(dataset)).setting(setting, request.protocol)
    cells: dict[str, Cell] = {}
    for method, resolved, datasets in configs:
        cls = registry.get(method)
        if method in request.checkpoints and not issubclass(cls, TrainableMethod):
            raise PlanError(f"--checkpoint {method}=...: method {method} is not a TrainableMethod "
                            "and loads no weights")
        try:  # constructors only check their options, so a bad value fails here, before any cell runs
            registry.create(method, **resolved)
        except (TypeError, ValueError) as error:
            raise PlanError(f"method {method}: {error}") from error
        for dataset, setting in datasets:
            cell = Cell(method, dataset, setting, request.protocol, resolved,
                        dict(request.dataset_options.get(dataset, {})), request.checkpoints.get(method),
                        request.seed, request.vc_rule)
            cells.setdefault(cell.id, cell)
    return list(cells.values())


def resolve_options(method: str, options: dict[str, dict[str, Any]], source: str = "--opt") -> dict[str, Any]:
    """The method's default options updated with the ones given for it (what a cell records), each
    given value checked against the option's declared type (`benchmark.options`)."""
    cls = registry.get(method)
    return {**cls.default_options(), **checked_options(method, options.get(method, {}), source)}


def checked_options(method: str, given: dict[str, Any], source: str = "--opt") -> dict[str, Any]:
    """`given` options of `method` as their declared types; PlanError naming the key, the value and
    what is expected (and where it was given: `source`) when one is unknown or of the wrong type."""
    declared, open_ended = typed_options.method_types(registry.get(method))
    checked = {}
    for key, value in given.items():
        if key not in declared and not open_ended:
            raise PlanError(f"{source} {method}.{key}={value!r}: {method} has no option {key!r}; "
                            f"its options: {', '.join(declared) or 'none'}")
        try:
            checked[key] = typed_options.check(f"{source} {method}", key, value, declared.get(key, Any))
        except typed_options.OptionError as error:
            raise PlanError(str(error)) from None
    return checked


def _untrained(cells: list[Cell]) -> list[Cell]:
    """The cells whose method needs trained weights with their options but that name none."""
    from benchmark.interface import TrainableMethod

    return [cell for cell in cells if cell.checkpoint is None and cell.training is None
            and issubclass(cls := registry.get(cell.method), TrainableMethod) and cls.needs_checkpoint(cell.options)]


def _check_checkpoints(cells: list[Cell]) -> None:
    """Let each method check the weights it was given (once per method and file), so a corrupt,
    truncated or foreign file fails before any cell runs."""
    for cell in {(c.method, c.checkpoint): c for c in cells if c.checkpoint}.values():
        registry.get(cell.method).check_checkpoint(pathlib.Path(cell.checkpoint), cell.options)


def _with_shipped_weights(cells: list[Cell], given: set[str], notes: list[str]) -> tuple[list[Cell], list[Cell]]:
    """The cells, each untrained one whose method has default weights for its options (the shipped
    toy checkpoints) now naming them; and the cells still untrained."""
    filled = {cell.id: replace(cell, checkpoint=found) for cell in _untrained(cells)
              if (found := registry.get(cell.method).default_checkpoint(cell.options))}
    cells = [filled.get(cell.id, cell) for cell in cells]
    for method, checkpoint in dict.fromkeys((c.method, c.checkpoint) for c in cells if c.checkpoint):
        if checkpoint not in given:
            notes.append(f"{method}: shipped weights {checkpoint} (trained on the synthetic world's seen classes "
                         "against the toy CLIP; pass --checkpoint or --train for your own)")
    return cells, _untrained(cells)


def _with_trainings(cells: list[Cell], untrained: list[Cell], request: Request,
                    notes: list[str]) -> tuple[list[Cell], list[PlannedTraining]]:
    """The training runs the untrained cells need, one per configuration and seed, on `train_on`'s data;
    and the cells, each untrained one now one cell per seed, naming the training run whose weights it
    loads (the tables show a configuration's seeds as one row)."""
    planned: dict[str, PlannedTraining] = {}
    seeded: dict[str, list[Cell]] = {}
    for cell in untrained:
        seeded[cell.id] = []
        # a cell on the synthetic world (a stand-in among real rows, too) learns from its seen classes
        default = "synthetic:seen" if cell.dataset == "synthetic" else "vspw:seen"
        for seed in range(request.seed, request.seed + request.seeds):
            training = _training(cell.method, cell.options, request.train_on or default, request, seed)
            if training.id not in planned:
                planned[training.id] = _planned(training, request)
                state = "trained already" if planned[training.id].finished else "trains first"
                of_seed = f" (seed {seed})" if request.seeds > 1 else ""
                notes.append(f"{cell.method}{of_seed}: {state} on {training.dataset}:{training.setting} -> "
                             f"{planned[training.id].context.folder}")
            seeded[cell.id].append(replace(cell, seed=seed, training=planned[training.id].context.folder))
    cells = [each for cell in cells for each in seeded.get(cell.id, [cell])]
    return cells, list(planned.values())


def _training_only(request: Request) -> Plan:
    """`train`: one training run per method asked for, on `train_on`'s data."""
    from benchmark.interface import TrainableMethod

    methods = _methods(request) or []
    for method in methods:
        cls = registry.get(method)
        if not issubclass(cls, TrainableMethod):
            raise PlanError(f"method {method} is not trainable (not a TrainableMethod); it runs as it is")
        if not cls.trains:
            raise PlanError(f"method {method} cannot be trained here; it loads weights it is given: "
                            f"run it with --checkpoint {method}=PATH")
    spec = request.train_on or "vspw:seen"
    name, _ = catalog.parse(spec)
    stray = sorted(set(request.options) - set(methods)) + sorted(set(request.dataset_options) - {name})
    if stray:
        raise PlanError(f"--opt/--dataset-opt name {stray}; this trains only {', '.join(methods)} on {name}")
    trainings = [_planned(_training(method, resolve_options(method, request.options), spec, request), request)
                 for method in methods]
    return Plan([], trainings, [], {})


def _training(method: str, options: dict[str, Any], spec: str, request: Request, seed: int | None = None) -> Training:
    name, setting = catalog.parse(spec)
    return Training(method, options, name, setting or "seen", request.protocol,
                    request.dataset_options.get(name, {}), request.seed if seed is None else seed)


def _planned(training: Training, request: Request) -> PlannedTraining:
    context = TrainContext(str(training.folder()), request.plugins, request.data_root, request.device, request.argv)
    return PlannedTraining(training, context)

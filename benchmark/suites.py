"""Suites: paper tables as data files (YAML), found by name or path.

A table file says what a table runs (its rows: a method, its options, and the options of the tiny
models that stand in for them on the synthetic world), on which dataset setting (and its stand-in),
which published CSV it sits beside, how a cell finds its published row, and which metrics it shows.
A suite file lists tables. The built-in ones live in `suites/` (the paper's Tables I-III and
`paper`); `--suite path/to/file.yaml` runs a user's own. The format is described in docs/suites.md.
The harness reads these files and never names a method: every method a table needs is in its file.
"""

from __future__ import annotations

import csv
import pathlib
from dataclasses import dataclass, field
from typing import Any

from benchmark.store import REPOSITORY

SUITES_DIR = REPOSITORY / "suites"
LAYOUTS = ("comparison", "ablation")
#: Published columns a comparison table matches against a cell's table label.
LABEL_COLUMNS = ("Method", "Backbone")
_TABLE_KEYS = {"name", "title", "setting", "stand_in", "published", "layout", "match", "metrics", "rows"}
_ROW_KEYS = {"method", "options", "stand_in", "needs_weights", "reproduces"}


class SuiteError(ValueError):
    """A malformed suite or table file: the message names the file, the key and the fix."""


@dataclass(frozen=True)
class Row:
    """One configuration a table runs. `stand_in` replaces some `options` on the synthetic world; a
    row that `needs_weights` runs only when `--checkpoint` gives them (a released checkpoint)."""

    method: str
    options: dict[str, Any] = field(default_factory=dict)
    stand_in: dict[str, Any] = field(default_factory=dict)
    needs_weights: bool = False
    reproduces: tuple[tuple[str, ...], ...] = ()   # the published rows (values of `match`) it reproduces

    def options_on(self, stand_in: bool) -> dict[str, Any]:
        return {**self.options, **self.stand_in} if stand_in else dict(self.options)


@dataclass(frozen=True)
class TableSpec:
    """One table file."""

    name: str
    path: pathlib.Path
    title: str
    setting: str
    stand_in: str
    published: pathlib.Path
    layout: str
    match: tuple[str, ...]
    metrics: tuple[str, ...]
    rows: tuple[Row, ...]

    def published_rows(self):
        """The published table, every value as printed (strings, so `12.9` stays `12.9`)."""
        import pandas as pd

        return pd.read_csv(self.published, dtype=str, keep_default_na=False)


@dataclass(frozen=True)
class Suite:
    """What `--suite` names: one table file, or a file listing tables."""

    name: str
    path: pathlib.Path
    tables: tuple[TableSpec, ...]


def builtin() -> dict[str, pathlib.Path]:
    """Name -> file of every built-in suite (tables and lists)."""
    return {path.stem: path for path in sorted(SUITES_DIR.glob("*.yaml"))}


def builtin_tables() -> list[TableSpec]:
    """The built-in tables (the paper's), which every report builds when it has their cells."""
    return [load_table(path, data) for path in builtin().values() if "tables" not in (data := _read(path))]


def find(name_or_path: str) -> Suite:
    """A built-in suite by name, or a suite or table file by path."""
    path, known = pathlib.Path(name_or_path), builtin()
    if name_or_path.endswith((".yaml", ".yml")) or path.exists():
        if not path.is_file():
            raise SuiteError(f"--suite {name_or_path}: no such file; pass a table file (.yaml) or one of "
                             f"{', '.join(known)}")
        path = path.resolve()
    elif name_or_path in known:
        path = known[name_or_path]
    else:
        raise SuiteError(f"unknown suite {name_or_path!r}; choose one of {', '.join(known)}, or pass the path "
                         "of your own table file (see docs/suites.md)")
    data = _read(path)
    if "tables" not in data:
        return Suite(path.stem, path, _checked_names(path, (load_table(path, data),)))
    unknown = sorted(set(data) - {"title", "tables"})
    if unknown:
        raise SuiteError(f"{path}: unknown keys {unknown}; a file listing tables has title and tables")
    if not isinstance(data["tables"], list) or not data["tables"]:
        raise SuiteError(f"{path}: 'tables' must be a list of table names or paths, e.g. tables: [table1, table2]")
    tables = []
    for entry in data["tables"]:
        relative = path.parent / str(entry)
        target = relative if relative.suffix in (".yaml", ".yml") else known.get(str(entry))
        if target is None or not target.is_file():
            raise SuiteError(f"{path}: table {entry!r} is neither a built-in table ({', '.join(known)}) nor a "
                             f"file {relative}")
        tables.append(load_table(target))
    return Suite(path.stem, path, _checked_names(path, tuple(tables)))


def _checked_names(path: pathlib.Path, tables: tuple[TableSpec, ...]) -> tuple[TableSpec, ...]:
    """Each table's files in DIR/tables/ are named by the table: a name may not stand for two files."""
    taken = {table.name: table.path for table in builtin_tables()}
    for table in tables:
        if taken.setdefault(table.name, table.path) != table.path:
            raise SuiteError(f"{path}: table {table.name!r} ({table.path}) has the name of {taken[table.name]}; "
                             "rename the file or give it another 'name:'")
    return tables


def load_table(path: pathlib.Path, data: dict[str, Any] | None = None) -> TableSpec:
    """Read (unless its parsed `data` is given) and check one table file."""
    path = pathlib.Path(path).resolve()
    data = _read(path) if data is None else data
    unknown = sorted(set(data) - _TABLE_KEYS)
    if unknown:
        raise SuiteError(f"{path}: unknown keys {unknown}; a table file has {sorted(_TABLE_KEYS)}")
    for key in ("title", "setting", "published", "rows"):
        if key not in data:
            raise SuiteError(f"{path}: missing '{key}' (see docs/suites.md for the format)")
    layout = data.get("layout", "comparison")
    if layout not in LAYOUTS:
        raise SuiteError(f"{path}: layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    published = (path.parent / str(data["published"])).resolve()
    if not published.is_file():
        raise SuiteError(f"{path}: published: {data['published']} names no file (looked for {published}); put the "
                         "published numbers as CSV beside the table file")
    match = tuple(data.get("match", LABEL_COLUMNS))
    metrics = tuple(data.get("metrics", ("mIoU",)))
    columns, printed = _read_csv(published)
    missing = [c for c in (*match, *metrics) if c not in columns]
    if missing:
        raise SuiteError(f"{path}: {published.name} has no column {missing} (its columns: {columns}); fix 'match' "
                         "or 'metrics', or the CSV's header")
    if layout == "comparison" and not set(match) <= set(LABEL_COLUMNS):
        raise SuiteError(f"{path}: a comparison table matches cells by their label's {list(LABEL_COLUMNS)}; "
                         f"match: {list(match)} names others (use layout: ablation, whose rows say what they reproduce)")
    rows = tuple(_row(path, i, entry, match) for i, entry in enumerate(data["rows"] or []))
    if not rows:
        raise SuiteError(f"{path}: 'rows' is empty; list the configurations the table runs")
    keys = {tuple(row[c] for c in match) for row in printed}
    for i, row in enumerate(rows):
        stray = [dict(zip(match, key)) for key in row.reproduces if key not in keys]
        if stray:
            raise SuiteError(f"{path}: rows[{i}] reproduces {stray}, which {published.name} does not have")
    name = str(data.get("name", path.stem))
    setting = str(data["setting"])
    return TableSpec(name, path, str(data["title"]), setting, str(data.get("stand_in", setting)), published, layout,
                     match, metrics, rows)


def _row(path: pathlib.Path, index: int, entry: Any, match: tuple[str, ...]) -> Row:
    where = f"{path}: rows[{index}]"
    if not isinstance(entry, dict) or "method" not in entry:
        raise SuiteError(f"{where}: each row needs at least 'method', e.g. - method: chance")
    unknown = sorted(set(entry) - _ROW_KEYS)
    if unknown:
        raise SuiteError(f"{where}: unknown keys {unknown}; a row has {sorted(_ROW_KEYS)}")
    for key in ("options", "stand_in"):
        if not isinstance(entry.get(key) or {}, dict):
            raise SuiteError(f"{where}: '{key}' must be a mapping of option names to values, e.g. {{seed: 1}}")
    reproduces = []
    for published in entry.get("reproduces") or []:
        if not isinstance(published, dict) or set(published) != set(match):
            raise SuiteError(f"{where}: each 'reproduces' entry gives the values of {list(match)}, got {published!r}")
        reproduces.append(tuple(str(published[column]) for column in match))
    return Row(str(entry["method"]), dict(entry.get("options") or {}), dict(entry.get("stand_in") or {}),
               bool(entry.get("needs_weights", False)), tuple(reproduces))


def _read(path: pathlib.Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SuiteError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(data, dict):
        raise SuiteError(f"{path}: a suite file is a mapping (title, setting, rows, ...); see docs/suites.md")
    return data


def _read_csv(path: pathlib.Path) -> tuple[list[str], list[dict[str, str]]]:
    """A published CSV's header and rows."""
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        return list(reader.fieldnames or []), list(reader)

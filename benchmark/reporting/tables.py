"""Tables from the finished cells of a run folder (pandas), in the paper's format, beside its numbers.

`write_report(DIR)` builds every table the cells allow and writes each as Markdown, CSV and LaTeX
(booktabs) to DIR/tables/:

- one table per table file (`benchmark.suites`): the paper's (suites/table1-3.yaml) and any a run
  of the folder used with `--suite FILE`. A `comparison` table (Tables I, II) lists the published
  rows (marked reported), each followed by the cells that reproduce it and their difference, then the
  rows the publication lacks; an `ablation` table (Table III) lists the published rows with one
  reproduced column per backbone. On the synthetic stand-in setting when the real one did not run.
- per_class: IoU per class and method, with the ground-truth pixel count; generalized: mIoU on
  seen and unseen classes and their harmonic mean (and Cityscapes' base / novel); consistency: VC_8,
  VC_16; cells: every cell with its status.

A table covers one protocol; a protocol other than `intended` adds `__<protocol>` to its file names.
"""

from __future__ import annotations

import logging
import math
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from benchmark import suites
from benchmark.interface import TableLabel
from benchmark.store import REPOSITORY, RunStore, writing

log = logging.getLogger(__name__)

#: Metric columns of the cells table, in display order; a column appears when some cell has the metric.
METRIC_COLUMNS = ("mIoU", "fwIoU", "mAcc", "pAcc", "mIoU_mmseg", "mIoU_seen", "mIoU_unseen", "hIoU", "mIoU_base",
                  "mIoU_novel", "VC_8", "VC_16")
POLICY_NOTE = ("mIoU: mean over classes with ground-truth pixels (VSPW official); "
               "mIoU_mmseg: nanmean, a class only predicted counts as 0. All values in percent.")
STAND_IN_NOTE = "(stand-in)"
_NUMBER = re.compile(r"^-?\d+(\.\d+)?( \([+-]\d+(\.\d+)?\))?$")


@dataclass
class Table:
    """A built table: its data (numbers as numbers), how it is shown, and what it says about itself."""

    name: str
    data: pd.DataFrame       # written as CSV
    shown: pd.DataFrame      # strings, written as Markdown and LaTeX
    caption: str
    notes: list[str] = field(default_factory=list)
    headline: bool = False   # printed by `run` and `report` (the cells and the tables of table files)

    def markdown(self) -> str:
        notes = "".join(f"\n- {note}" for note in self.notes)
        return f"**{self.caption}**\n\n{self.shown.to_markdown(index=False, disable_numparse=True)}\n{notes}\n"

    def latex(self) -> str:
        columns = list(self.shown.columns)
        align = "".join("r" if _numeric_column(self.shown[c]) else "l" for c in columns)
        lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{_tex(self.caption)}}}",
                 rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(_tex(str(c)) for c in columns) + r" \\",
                 r"\midrule"]
        lines += [" & ".join(_tex(str(v)) for v in row) + r" \\" for row in self.shown.itertuples(index=False)]
        lines += [r"\bottomrule", r"\end{tabular}"]
        lines += [rf"\par\smallskip\footnotesize {_tex(note)}" for note in self.notes]
        lines += [r"\end{table}"]
        return "\n".join(lines) + "\n"


@dataclass
class Report:
    tables: list[Table]
    labels: dict[str, str]   # cell id -> how the tables name it


def table_specs(store: RunStore) -> list[suites.TableSpec]:
    """The built-in tables, then those the folder's runs named with `--suite FILE` (each once)."""
    specs = {spec.path: spec for spec in suites.builtin_tables()}
    for run in (store.read_plan() or {}).get("runs", []):
        for path in run.get("tables", []):
            if pathlib.Path(path) in specs:
                continue
            try:
                specs[pathlib.Path(path)] = suites.load_table(pathlib.Path(path))
            except (OSError, suites.SuiteError) as error:  # moved or changed since: the other tables still build
                log.warning("table file of an earlier run left out: %s", error)
    return list(specs.values())


def label_of(result: dict[str, Any]) -> TableLabel:
    """How the tables name a cell: its method's `table_label`, or the method's name when the method
    cannot be loaded here (a plugin that is gone)."""
    from benchmark import registry

    cell = result["cell"]
    try:
        cls = registry.get(cell["method"])
    except LookupError:
        return TableLabel(cell["method"])
    return cls.table_label(cell["options"], (result.get("provenance") or {}).get("method") or {})


def write_report(output: pathlib.Path | str) -> Report:
    """Build every table the finished cells of a run folder allow; write each as md, csv and tex."""
    store = RunStore(output)
    _load_plugins(store)
    results = store.results()
    finished = [r for r in results if r.get("status") == "done"]
    labels = _unique_labels(finished)
    tables = [cells_table(results)]
    specs = table_specs(store)
    for protocol in sorted({r["cell"]["protocol"] for r in finished}):
        chosen = [r for r in finished if r["cell"]["protocol"] == protocol]
        for spec in specs:
            built = (ablation_table if spec.layout == "ablation" else comparison_table)(spec, chosen, labels, protocol)
            if built is not None:
                built.headline = True
                tables.append(built)
        tables += per_class_tables(chosen, labels, protocol)
        tables += [t for t in (generalized_table(chosen, labels, protocol),
                               consistency_table(chosen, labels, protocol)) if t is not None]
    for table in tables:
        base = store.tables_dir / table.name
        with writing(base.with_suffix(".csv")):
            store.tables_dir.mkdir(parents=True, exist_ok=True)
            table.data.to_csv(base.with_suffix(".csv"), index=False, float_format="%.4f")
        with writing(base.with_suffix(".md")):
            base.with_suffix(".md").write_text(table.markdown())
        with writing(base.with_suffix(".tex")):
            base.with_suffix(".tex").write_text(table.latex())
    return Report(tables, {cell: label for cell, (label, _) in labels.items()})


# -- the tables of table files --------------------------------------------------------------------


def comparison_table(spec: suites.TableSpec, results: list[dict], labels: dict, protocol: str) -> Table | None:
    """Tables I and II: the published rows in order, each followed by the cells that reproduce it (the
    same `match` columns in their labels) with the difference; then the cells the publication lacks.
    Ablation variants are left out (they belong to an ablation table)."""
    setting, chosen = _spec_cells(spec, [r for r in results if labels[r["cell"]["id"]][1].variant is None])
    if not chosen:
        return None
    reference = spec.published_rows()
    metrics, match = list(spec.metrics), list(spec.match)
    rows, printed, placed = [], [], set()   # printed: each row's published values as printed, None if reproduced
    for _, row in reference.iterrows():
        key = tuple(row[c] for c in match)
        rows.append({**{c: row[c] for c in match}, "Source": "reported", **{m: float(row[m]) for m in metrics},
                     "cell": ""})
        printed.append(row)
        for result in chosen:
            if _label_key(labels[result["cell"]["id"]][1], match) == key:
                rows.append(_reproduced(result, labels, match, metrics, {m: float(row[m]) for m in metrics}))
                printed.append(None)
                placed.add(result["cell"]["id"])
    rows += [_reproduced(r, labels, match, metrics, None) for r in chosen if r["cell"]["id"] not in placed]
    printed += [None] * (len(rows) - len(printed))
    data = pd.DataFrame(rows, columns=[*match, "Source", *metrics, *[f"{m}_delta" for m in metrics], "cell",
                                       "warnings"])
    shown = data[[*match, "Source"]].copy()
    for metric in metrics:
        shown[metric] = [values[metric] if values is not None else _with_delta(r[metric], r[f"{metric}_delta"])
                         for values, (_, r) in zip(printed, data.iterrows())]
    shown["Source"] = [s + ("*" if w is True else "") for s, w in zip(data["Source"], data["warnings"])]
    notes = _notes(spec, setting, data)
    return Table(_name(spec.name, protocol), data.drop(columns="warnings"), shown,
                 _caption(spec, setting, protocol), notes)


def ablation_table(spec: suites.TableSpec, results: list[dict], labels: dict, protocol: str) -> Table | None:
    """Table III: the published rows, each with the configuration (a row of the table file) that
    reproduces it, and one reproduced column (and its difference) per backbone of the cells of those
    configurations; rows naming the same configuration (the full model) repeat its number."""
    configurations = _Configurations(spec)
    runs = {r["cell"]["id"]: configurations.of(r, labels) for r in results}  # cell id -> its configuration
    setting, chosen = _spec_cells(spec, [r for r in results if runs[r["cell"]["id"]] is not None])
    if not chosen:
        return None
    by_column: dict[str, dict[int, dict]] = {}
    methods_of: dict[str, str] = {}
    notes = []
    for result in sorted(chosen, key=lambda r: r["provenance"].get("end_time") or ""):
        label = labels[result["cell"]["id"]][1]
        column = label.backbone + (f" {STAND_IN_NOTE}" if label.stand_in else "")
        if label.reproduces:  # another implementation of the model: a column of its own, named
            column = f"{label.method} {column}"
        index = runs[result["cell"]["id"]]
        if index in by_column.setdefault(column, {}):
            notes.append(f"{result['cell']['id']} repeats {configurations.text(index)} ({column}); the latest is shown")
        by_column[column][index] = result
        methods_of[column] = result["cell"]["method"]
    # a column needs two configurations of its method (one: Tables I-II's model, no ablation ran), or all
    # it has in the table (a method the table runs in one configuration, e.g. a released model)
    by_column = {column: cells for column, cells in by_column.items()
                 if len(cells) >= min(2, configurations.count(methods_of[column]))}
    if not by_column:
        return None
    reference = spec.published_rows()
    match, metrics = list(spec.match), list(spec.metrics)
    rows = []
    for _, printed in reference.iterrows():
        indices = configurations.reproducing(tuple(printed[c] for c in match))
        row = {**{c: printed[c] for c in match}, "Options": configurations.text(indices[0]) if indices else "",
               **{f"Published {m}": float(printed[m]) for m in metrics}}
        for column, cells in by_column.items():
            result = next((cells[i] for i in indices if i in cells), None)
            for metric in metrics:
                value = (result.get("metrics") or {}).get(metric) if result else None
                row[_column(metric, column, metrics)] = value
                row[_column(metric, column, metrics, "delta")] = None if value is None else value - float(printed[metric])
            row[f"cell {column}"] = result["cell"]["id"] if result else ""
        rows.append(row)
    data = pd.DataFrame(rows)
    shown = data[[*match, "Options"]].copy()
    first = match[0]
    shown[first] = [g if i == 0 or g != data[first][i - 1] else "" for i, g in enumerate(data[first])]
    for metric in metrics:
        suffix = f" {metric}" if len(metrics) > 1 else ""
        shown[f"Published{suffix}"] = list(reference[metric])
        for column in by_column:
            shown[f"Reproduced{suffix} {column}"] = [
                _with_delta(v, d) for v, d in zip(data[_column(metric, column, metrics)],
                                                  data[_column(metric, column, metrics, "delta")])]
    suite = spec.name if spec.path.parent == suites.SUITES_DIR else spec.path
    notes += _notes(spec, setting, data) + [f"rows: {_shown_path(spec.path)}; run them all with --suite {suite} --train"]
    return Table(_name(spec.name, protocol), data, shown, _caption(spec, setting, protocol), notes)


def _column(metric: str, column: str, metrics: list[str], prefix: str = "") -> str:
    """Data column names of an ablation table: `mIoU SAM ViT-B`, `delta SAM ViT-B` (the metric named
    in the delta only when the table shows several)."""
    if not prefix:
        return f"{metric} {column}"
    return f"{prefix} {metric} {column}" if len(metrics) > 1 else f"{prefix} {column}"


class _Configurations:
    """The distinct configurations of an ablation table's rows, and which one a cell runs."""

    def __init__(self, spec: suites.TableSpec):
        self.spec = spec
        self.first = {}   # row index -> the first row with the same method and options
        for i, row in enumerate(spec.rows):
            self.first[i] = next(j for j, other in enumerate(spec.rows)
                                 if (other.method, other.options, other.stand_in) == (row.method, row.options, row.stand_in))
        varying: dict[str, dict[str, set[str]]] = {}
        for row in spec.rows:
            for key, value in row.options.items():
                varying.setdefault(row.method, {}).setdefault(key, set()).add(repr(value))
        self.varying = varying
        self._labels: dict[tuple[int, bool], TableLabel | None] = {}

    def text(self, index: int) -> str:
        """How a configuration reads in the table: its options that differ between its method's rows."""
        row = self.spec.rows[index]
        keys = [k for k, values in self.varying.get(row.method, {}).items() if len(values) > 1 and k in row.options]
        return ", ".join(f"{k}={row.options[k]}" for k in keys) or row.method

    def count(self, method: str) -> int:
        return len({self.first[i] for i, row in enumerate(self.spec.rows) if row.method == method})

    def reproducing(self, key: tuple[str, ...]) -> list[int]:
        """The configurations whose rows reproduce the published row `key`."""
        return list(dict.fromkeys(self.first[i] for i, row in enumerate(self.spec.rows) if key in row.reproduces))

    def of(self, result: dict, labels: dict) -> int | None:
        """The configuration a cell runs: its method's, whose label (name and variant) the method gives
        the row's options too; None when none."""
        label = labels[result["cell"]["id"]][1]
        stand_in = f"{result['cell']['dataset']}:{result['cell']['setting']}" == self.spec.stand_in
        for index in dict.fromkeys(self.first.values()):
            if self.spec.rows[index].method != result["cell"]["method"]:
                continue
            expected = self._label(index, stand_in)
            if expected is not None and (expected.method, expected.variant) == (label.method, label.variant):
                return index
        return None

    def _label(self, index: int, stand_in: bool) -> TableLabel | None:
        if (index, stand_in) not in self._labels:
            from benchmark import registry

            row = self.spec.rows[index]
            try:
                cls = registry.get(row.method)
            except LookupError:  # a plugin that is gone: its cells match no row
                self._labels[index, stand_in] = None
            else:
                self._labels[index, stand_in] = cls.table_label(
                    {**cls.default_options(), **row.options_on(stand_in)}, {})
        return self._labels[index, stand_in]


def _label_key(label: TableLabel, match: list[str]) -> tuple[str, ...]:
    """The values of a comparison table's `match` columns (Method, Backbone) a cell's label gives."""
    method, backbone = label.row
    return tuple(method if column == "Method" else backbone for column in match)


def _spec_cells(spec: suites.TableSpec, results: list[dict]) -> tuple[str, list[dict]]:
    """The cells of the table's setting, or of its synthetic stand-in when the real one has none."""
    for setting in (spec.setting, spec.stand_in):
        chosen = [r for r in results if f"{r['cell']['dataset']}:{r['cell']['setting']}" == setting]
        if chosen:
            return setting, chosen
    return spec.setting, []


def _reproduced(result: dict, labels: dict, match: list[str], metrics: list[str],
                reference: dict[str, float] | None) -> dict[str, Any]:
    label = labels[result["cell"]["id"]][1]
    values = result.get("metrics") or {}
    backbone = label.backbone + (f" {STAND_IN_NOTE}" if label.stand_in else "")
    row = {**{c: (label.method if c == "Method" else backbone) for c in match}, "Source": "reproduced",
           "cell": result["cell"]["id"], "warnings": bool((result["provenance"].get("method") or {}).get("warnings"))}
    for metric in metrics:
        row[metric] = values.get(metric)
        if reference is not None and values.get(metric) is not None:
            row[f"{metric}_delta"] = values[metric] - reference[metric]
    return row


def _caption(spec: suites.TableSpec, setting: str, protocol: str) -> str:
    stand_in = " [synthetic stand-in: the paper's dataset was not evaluated]" if setting != spec.setting else ""
    return (f"{spec.title}{stand_in}. Cells: {setting}, protocol {protocol}; mIoU over classes with ground-truth "
            "pixels (VSPW official policy); percent")


def _notes(spec: suites.TableSpec, setting: str, data: pd.DataFrame) -> list[str]:
    notes = [f"reported: the published numbers ({_shown_path(spec.published)}); reproduced: this run, with "
             "(reproduced - reported) after the reproduced row's value"]
    if data.astype(str).apply(lambda column: column.str.contains(STAND_IN_NOTE, regex=False)).any().any():
        notes.append(f"{STAND_IN_NOTE}: tiny models stood in for the paper's (backbone or CLIP); "
                     "the differences are not comparable")
    if "warnings" in data and (data["warnings"] == True).any():  # noqa: E712 (None where reported)
        notes.append("*: the cell logged warnings (e.g. random weights); see its JSON")
    if setting.startswith("synthetic"):
        notes.append("synthetic data: the numbers check the pipeline, not the paper's claims")
    return notes


def _shown_path(path: pathlib.Path) -> str:
    """A path relative to the repository when inside it (suites/table1.csv), else as it is."""
    try:
        return str(path.relative_to(REPOSITORY))
    except ValueError:
        return str(path)


# -- extra tables ----------------------------------------------------------------------------------


def per_class_tables(results: list[dict], labels: dict, protocol: str) -> list[Table]:
    """Per dataset setting: each class's ground-truth pixel count and IoU per cell."""
    tables = []
    for setting, chosen in _by_setting(results).items():
        classes = chosen[0]["class_names"]
        data = pd.DataFrame({"class": classes,
                             "gt_pixels": [chosen[0]["per_class"][c]["gt_pixels"] for c in classes]})
        for result in chosen:
            data[labels[result["cell"]["id"]][0]] = [result["per_class"][c]["IoU"] for c in classes]
        shown = data.copy()
        for column in data.columns[2:]:
            shown[column] = [_format(v) for v in data[column]]
        caption = (f"IoU per class (percent), {setting}, protocol {protocol}; gt_pixels: scored ground-truth pixels "
                   "(a class without any is left out of mIoU)")
        tables.append(Table(_name(f"per_class__{setting.replace(':', '-')}", protocol), data, shown, caption))
    return tables


def generalized_table(results: list[dict], labels: dict, protocol: str) -> Table | None:
    """The generalized setting: all classes named at once; mIoU overall, on seen and unseen classes,
    their harmonic mean (hIoU), and any other class group (Cityscapes: base and novel)."""
    keys = ("mIoU", "mIoU_seen", "mIoU_unseen", "hIoU", "mIoU_base", "mIoU_novel")
    chosen = [r for r in results if any(k in (r.get("metrics") or {}) for k in keys[1:])]
    if not chosen:
        return None
    return _metric_table("generalized", chosen, labels, protocol, keys,
                         "Generalized setting: every class named at once; mIoU overall, on seen and unseen classes, "
                         "hIoU = their harmonic mean, and on Cityscapes' base / novel classes")


def consistency_table(results: list[dict], labels: dict, protocol: str) -> Table | None:
    chosen = [r for r in results if any((r.get("metrics") or {}).get(k) is not None for k in ("VC_8", "VC_16"))]
    if not chosen:
        return None
    return _metric_table("consistency", chosen, labels, protocol, ("VC_8", "VC_16", "mIoU"),
                         "Video consistency: VC_n = share of pixels whose label agrees across each window of n "
                         "annotated frames, where the ground truth agrees (VSPW's definition)")


def cells_table(results: list[dict[str, Any]]) -> Table:
    """Every cell of the folder with its status and metrics (failed cells too)."""
    rows = []
    for result in results:
        cell = result["cell"]
        row = {"method": cell["method"], "dataset": f"{cell['dataset']}:{cell['setting']}",
               "protocol": cell["protocol"], "status": result.get("status")}
        row.update({k: v for k, v in (result.get("metrics") or {}).items() if k in METRIC_COLUMNS})
        row["cell"] = cell["id"]
        rows.append(row)
    data = pd.DataFrame(rows, columns=["method", "dataset", "protocol", "status", "cell"]) if not rows else \
        pd.DataFrame(rows)
    if rows:
        columns = ["method", "dataset", "protocol", "status", *[c for c in METRIC_COLUMNS if c in data], "cell"]
        data = data[columns].sort_values(["dataset", "protocol", "method"], kind="stable").reset_index(drop=True)
    shown = data.drop(columns="cell").astype(object).map(lambda v: _format(v) if isinstance(v, float) else v)
    return Table("cells", data, shown, "Every cell of the run folder", [POLICY_NOTE], headline=True)


def _metric_table(name: str, results: list[dict], labels: dict, protocol: str, keys: tuple[str, ...],
                  caption: str) -> Table:
    rows = []
    for result in sorted(results, key=lambda r: (r["cell"]["dataset"], r["cell"]["setting"])):
        label = labels[result["cell"]["id"]][1]
        metrics = result.get("metrics") or {}
        rows.append({"Method": label.method, "Backbone": label.backbone,
                     "Dataset": f"{result['cell']['dataset']}:{result['cell']['setting']}",
                     **{k: metrics.get(k) for k in keys}, "cell": result["cell"]["id"]})
    data = pd.DataFrame(rows)
    data = data[[c for c in data.columns if c not in keys or data[c].notna().any()]]
    shown = data.drop(columns="cell").astype(object).map(lambda v: _format(v) if isinstance(v, float) else v)
    return Table(_name(name, protocol), data, shown, f"{caption}; protocol {protocol}; percent")


# -- helpers ---------------------------------------------------------------------------------------


def _unique_labels(results: list[dict]) -> dict[str, tuple[str, TableLabel]]:
    """cell id -> (shown name, label); cells sharing a label and setting get their id's hash appended."""
    labels = {r["cell"]["id"]: label_of(r) for r in results}

    def key(r: dict) -> tuple:
        return labels[r["cell"]["id"]], r["cell"]["dataset"], r["cell"]["setting"], r["cell"]["protocol"]

    counts: dict[tuple, int] = {}
    for r in results:
        counts[key(r)] = counts.get(key(r), 0) + 1
    named = {}
    for r in results:
        label = labels[r["cell"]["id"]]
        if counts[key(r)] > 1:
            label = label._replace(method=f"{label.method} [{r['cell']['id'].rsplit('__', 1)[-1][:6]}]")
        text = label.method if label.backbone == "-" else f"{label.method} ({label.backbone})"
        named[r["cell"]["id"]] = (text, label)
    return named


def _by_setting(results: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for result in results:
        if result.get("per_class"):
            groups.setdefault(f"{result['cell']['dataset']}:{result['cell']['setting']}", []).append(result)
    return groups


def _load_plugins(store: RunStore) -> None:
    """Load the plugins the folder's runs used, so their methods' labels are their own."""
    from benchmark import registry

    for run in (store.read_plan() or {}).get("runs", []):
        for plugin in run.get("plugins", []):
            try:
                registry.load_plugin(plugin)
            except Exception:  # a plugin that is gone: its cells are named by method name
                continue


def _name(base: str, protocol: str) -> str:
    return base if protocol == "intended" else f"{base}__{protocol}"


def _format(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def _with_delta(value: Any, delta: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if delta is None or (isinstance(delta, float) and math.isnan(delta)):
        return f"{value:.2f}"
    return f"{value:.2f} ({delta:+.2f})"


def _numeric_column(column: pd.Series) -> bool:
    """Whether a shown column holds numbers ("17.50", "17.50 (-0.49)", "-"): right-aligned in LaTeX."""
    return all(str(v) in ("", "-") or _NUMBER.match(str(v)) for v in column)


def _tex(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                          ("$", r"\$"), ("{", r"\{"), ("}", r"\}")):
        text = text.replace(char, escaped)
    return text

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

from benchmark import registry, suites
from benchmark.interface import TableLabel
from benchmark.reporting.estimates import Rows, Value
from benchmark.store import REPOSITORY, RunStore, writing
from benchmark.uncertainty import Bootstrap

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
        lines += [" & ".join(v.latex() if isinstance(v, Value) else _tex(str(v)) for v in row) + r" \\"
                  for row in self.shown.itertuples(index=False)]
        lines += [r"\bottomrule", r"\end{tabular}"]
        lines += [rf"\par\smallskip\footnotesize {_tex(note)}" for note in self.notes]
        lines += [r"\end{table}"]
        return "\n".join(lines) + "\n"


@dataclass
class Report:
    tables: list[Table]
    labels: dict[str, str]   # row id (its first seed's cell id) -> how the tables name it
    rows: list[dict[str, Any]] = field(default_factory=list)  # each row as a result (means over seeds)


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


def write_report(output: pathlib.Path | str, bootstrap: Bootstrap | None = None) -> Report:
    """Build every table the finished cells of a run folder allow (seeds of one configuration as one
    row; intervals by `bootstrap`, default the results' own); write each as md, csv and tex."""
    store = RunStore(output)
    _load_plugins(store)
    results = store.results()
    rows = Rows([r for r in results if r.get("status") == "done"], bootstrap)
    finished = rows.results
    labels = _unique_labels(finished)
    tables = [cells_table(results, rows)]
    specs = table_specs(store)
    for protocol in sorted({r["cell"]["protocol"] for r in finished}):
        chosen = [r for r in finished if r["cell"]["protocol"] == protocol]
        for spec in specs:
            build = ablation_table if spec.layout == "ablation" else comparison_table
            built = build(spec, chosen, labels, protocol, rows)
            if built is not None:
                built.headline = True
                tables.append(built)
        tables += per_class_tables(chosen, labels, protocol, rows)
        tables += [t for t in (generalized_table(chosen, labels, protocol, rows),
                               consistency_table(chosen, labels, protocol, rows),
                               comparisons_table(chosen, labels, protocol, rows)) if t is not None]
    for table in tables:
        base = store.tables_dir / table.name
        with writing(base.with_suffix(".csv")):
            store.tables_dir.mkdir(parents=True, exist_ok=True)
            table.data.to_csv(base.with_suffix(".csv"), index=False, float_format="%.4f")
        with writing(base.with_suffix(".md")):
            base.with_suffix(".md").write_text(table.markdown())
        with writing(base.with_suffix(".tex")):
            base.with_suffix(".tex").write_text(table.latex())
    return Report(tables, {cell: label for cell, (label, _) in labels.items()}, finished)


# -- the tables of table files --------------------------------------------------------------------


def comparison_table(spec: suites.TableSpec, results: list[dict], labels: dict, protocol: str,
                     rows: Rows) -> Table | None:
    """Tables I and II: the published rows in order, each followed by the cells that reproduce it (the
    same `match` columns in their labels) with the difference; then the cells the publication lacks.
    Ablation variants are left out (they belong to an ablation table). Reproduced values carry their
    interval; the best of each metric, and those not significantly below it, are bold."""
    setting, chosen = _spec_cells(spec, [r for r in results if labels[r["cell"]["id"]][1].variant is None])
    if not chosen:
        return None
    reference = spec.published_rows()
    metrics, match = list(spec.metrics), list(spec.match)
    data_rows, shown_rows, placed = [], [], set()
    for _, row in reference.iterrows():
        key = tuple(row[c] for c in match)
        data_rows.append({**{c: row[c] for c in match}, "Source": "reported", **{m: float(row[m]) for m in metrics},
                          "cell": ""})
        shown_rows.append({m: row[m] for m in metrics})
        for result in chosen:
            label = labels[result["cell"]["id"]][1]
            if _label_key(label, match) == key:
                # beside the published row either way, but a stand-in (data or model) is no measurement of it
                comparable = setting == spec.setting and not label.stand_in
                data_rows.append(_reproduced(result, labels, match, metrics, rows,
                                             {m: float(row[m]) for m in metrics} if comparable else None))
                shown_rows.append(None)
                placed.add(result["cell"]["id"])
    for result in chosen:
        if result["cell"]["id"] not in placed:
            data_rows.append(_reproduced(result, labels, match, metrics, rows, None))
            shown_rows.append(None)
    columns = [*match, "Source", *metrics, *[f"{m}_{part}" for m in metrics for part in INTERVAL_PARTS], "seeds",
               "cell", "warnings"]
    data = pd.DataFrame(data_rows, columns=columns)
    best = _best_marks(data, metrics, rows)
    shown = data[[*match, "Source"]].copy()
    for metric in metrics:
        shown[metric] = [printed[metric] if printed is not None else Value(
            r[metric], r[f"{metric}_low"], r[f"{metric}_high"], r[f"{metric}_std"], r[f"{metric}_delta"],
            _is_false(r[f"{metric}_published_inside"]), bold=(i, metric) in best)
            for i, (printed, (_, r)) in enumerate(zip(shown_rows, data.iterrows()))]
    shown["Source"] = [s + ("*" if w is True else "") for s, w in zip(data["Source"], data["warnings"])]
    notes = _notes(spec, setting, data, rows)
    if best:
        notes.append(f"bold: the best reproduced value of each metric, and those whose paired difference from it "
                     f"has a {rows.bootstrap.confidence:.0%} interval containing 0 (same resampled videos)")
    return Table(_name(spec.name, protocol), data.drop(columns="warnings"), shown, _caption(spec, setting, protocol),
                 notes)


#: Per metric, the data columns besides its value.
INTERVAL_PARTS = ("low", "high", "std", "delta", "published_inside")


def _best_marks(data: pd.DataFrame, metrics: list[str], rows: Rows) -> set[tuple[int, str]]:
    """(data row, metric) of each metric's best reproduced value and of those indistinguishable from it."""
    marked = set()
    reproduced = data[(data["Source"] == "reproduced")]
    for metric in metrics:
        scored = reproduced[reproduced[metric].notna()]
        if len(scored) < 2:
            continue
        top = scored[metric].idxmax()
        marked.add((top, metric))
        for index, row in scored.iterrows():
            difference = rows.difference(data["cell"][top], row["cell"], metric) if index != top else None
            if difference is not None and not difference.excludes_zero:
                marked.add((index, metric))
    return marked


def ablation_table(spec: suites.TableSpec, results: list[dict], labels: dict, protocol: str,
                   rows: Rows) -> Table | None:
    """Table III: the published rows, each with the configuration (a row of the table file) that
    reproduces it, and one reproduced column (with its interval and difference) per backbone of the
    cells of those configurations; rows naming the same configuration (the full model) repeat its
    number. Every other configuration's row also shows its paired difference from the full model."""
    configurations = _Configurations(spec)
    runs = {r["cell"]["id"]: configurations.of(r, labels) for r in results}  # cell id -> its configuration
    setting, chosen = _spec_cells(spec, [r for r in results if runs[r["cell"]["id"]] is not None])
    if not chosen:
        return None
    by_column: dict[str, dict[int, dict]] = {}
    methods_of: dict[str, str] = {}
    comparable: dict[str, bool] = {}  # a column of stand-ins (data or models) is no measurement of the paper's
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
        comparable[column] = setting == spec.setting and not label.stand_in
    # a column needs two configurations of its method (one: Tables I-II's model, no ablation ran), or all
    # it has in the table (a method the table runs in one configuration, e.g. a released model)
    by_column = {column: cells for column, cells in by_column.items()
                 if len(cells) >= min(2, configurations.count(methods_of[column]))}
    if not by_column:
        return None
    reference = spec.published_rows()
    match, metrics = list(spec.match), list(spec.metrics)
    full = configurations.reference()
    data_rows, shown_rows = [], []
    for _, printed in reference.iterrows():
        indices = configurations.reproducing(tuple(printed[c] for c in match))
        row = {**{c: printed[c] for c in match}, "Options": configurations.text(indices[0]) if indices else "",
               **{f"Published {m}": float(printed[m]) for m in metrics}}
        shown = {**{c: printed[c] for c in match}, "Options": row["Options"]}
        for metric in metrics:
            suffix = f" {metric}" if len(metrics) > 1 else ""
            shown[f"Published{suffix}"] = printed[metric]
            for column, cells in by_column.items():
                result = next((cells[i] for i in indices if i in cells), None)
                estimate = rows.estimate(result["cell"]["id"], metric) if result else None
                value = estimate.value if estimate else None
                published = float(printed[metric]) if comparable[column] else None
                delta = None if value is None or published is None else value - published
                row.update({_column(metric, column, metrics): value, _column(metric, column, metrics, "delta"): delta,
                            _column(metric, column, metrics, "low"): estimate and estimate.low,
                            _column(metric, column, metrics, "high"): estimate and estimate.high,
                            _column(metric, column, metrics, "std"): estimate and estimate.std})
                shown[f"Reproduced{suffix} {column}"] = Value.of(estimate, published) if estimate else "-"
                base = cells.get(full) if full is not None and result is not None and full not in indices else None
                difference = rows.difference(result["cell"]["id"], base["cell"]["id"], metric) if base else None
                row.update({_column(metric, column, metrics, "vs full"): difference and difference.value,
                            _column(metric, column, metrics, "vs full low"): difference and difference.low,
                            _column(metric, column, metrics, "vs full high"): difference and difference.high,
                            _column(metric, column, metrics, "vs full p"): difference and difference.p_value})
                shown[f"vs full{suffix} {column}"] = "" if difference is None else Value(
                    difference.value, difference.low, difference.high, star=difference.excludes_zero)
                row[f"cell {column}"] = result["cell"]["id"] if result else ""
                row[f"seeds {column}"] = _seeds_text(rows, result) if result else ""
        data_rows.append(row)
        shown_rows.append(shown)
    data = pd.DataFrame(data_rows)
    shown = pd.DataFrame(shown_rows)
    first = match[0]
    shown[first] = [g if i == 0 or g != data[first][i - 1] else "" for i, g in enumerate(data[first])]
    suite = spec.name if spec.path.parent == suites.SUITES_DIR else spec.path
    notes += _notes(spec, setting, data, rows) + [f"rows: {_shown_path(spec.path)}; run them all with --suite {suite} --train"]
    if full is not None:
        notes.append(f"vs full: the row's configuration minus the full model's ({configurations.text(full)}) on the "
                     f"same resampled videos, with its {rows.bootstrap.confidence:.0%} interval; *: the interval "
                     "excludes 0")
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

    def reference(self) -> int | None:
        """The full model: the configuration the most published rows name (None when none is named twice)."""
        named: dict[int, int] = {}
        for i, row in enumerate(self.spec.rows):
            named[self.first[i]] = named.get(self.first[i], 0) + len(row.reproduces)
        best = max(named, key=named.get, default=None)
        return best if best is not None and named[best] > 1 else None

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


def _reproduced(result: dict, labels: dict, match: list[str], metrics: list[str], rows: Rows,
                reference: dict[str, float] | None) -> dict[str, Any]:
    label = labels[result["cell"]["id"]][1]
    backbone = label.backbone + (f" {STAND_IN_NOTE}" if label.stand_in else "")
    row = {**{c: (label.method if c == "Method" else backbone) for c in match}, "Source": "reproduced",
           "seeds": _seeds_text(rows, result), "cell": result["cell"]["id"],
           "warnings": bool((result["provenance"].get("method") or {}).get("warnings"))}
    for metric in metrics:
        estimate = rows.estimate(result["cell"]["id"], metric)
        row.update({metric: estimate.value, f"{metric}_low": estimate.low, f"{metric}_high": estimate.high,
                    f"{metric}_std": estimate.std})
        if reference is not None and estimate.value is not None:
            row[f"{metric}_delta"] = estimate.value - reference[metric]
            row[f"{metric}_published_inside"] = estimate.contains(reference[metric])
    return row


def _is_false(value: Any) -> bool:
    """False itself (not None, not NaN: a row without a published value)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and not value


def _seeds_text(rows: Rows, result: dict) -> str:
    return ",".join(str(seed) for seed in rows.seeds(result["cell"]["id"]))


def _caption(spec: suites.TableSpec, setting: str, protocol: str) -> str:
    """The table's title with its placeholders filled from the data the cells ran on, then what that is."""
    stand_in = (f" [a stand-in for {_card_words(spec.setting)['{dataset}']}, which was not evaluated]"
                if setting != spec.setting else "")
    title = spec.title
    for placeholder, value in _card_words(setting).items():
        title = title.replace(placeholder, value)
    return (f"{title}{stand_in}. Cells: {setting}, protocol {protocol}; mIoU over classes with ground-truth "
            "pixels (VSPW official policy); percent")


def _card_words(setting: str) -> dict[str, str]:
    """A title's placeholders ({dataset}, {classes}, {seen}, {unseen}) for a setting, from its dataset's card."""
    from benchmark.data.cards import load_card

    card = load_card(setting.partition(":")[0])
    total, seen = len(card["classes"]), card.get("num_seen") or 0
    return {"{dataset}": card.get("title", card["name"]), "{classes}": str(total), "{seen}": str(seen),
            "{unseen}": str(total - seen)}


def _notes(spec: suites.TableSpec, setting: str, data: pd.DataFrame, rows: Rows) -> list[str]:
    compared = any(data[c].notna().any() for c in data.columns if "delta" in c)  # a measurement beside its paper row
    notes = [f"reported: the published numbers ({_shown_path(spec.published)}); reproduced: this run"
             + (", with (reproduced - reported) after the reproduced row's value" if compared else ""),
             _interval_note(rows) + ("; †: the published value lies outside the reproduced interval (a published "
                                     "row has no per-video counts, so it cannot be tested, only located)"
                                     if compared else "")]
    if data.astype(str).apply(lambda column: column.str.contains(STAND_IN_NOTE, regex=False)).any().any():
        notes.append(f"{STAND_IN_NOTE}: tiny models stood in for the paper's (backbone or CLIP), so no difference "
                     "from the published value is given")
    if "warnings" in data and (data["warnings"] == True).any():  # noqa: E712 (None where reported)
        notes.append("*: the cell logged warnings (e.g. random weights); see its JSON")
    if setting.startswith("synthetic"):
        notes.append("synthetic data: the numbers check the pipeline, not the paper's claims; no difference from "
                     "the published values is given")
    return notes


def _interval_note(rows: Rows) -> str:
    b = rows.bootstrap
    seeds = sorted({len(rows.seeds(r)) for r in rows.members} - {1})
    spread = (f"; ±: standard deviation over a configuration's seeds ({', '.join(map(str, seeds))} seeds), the "
              "value their mean, the interval that of the mean") if seeds else ""
    return (f"[low, high]: {b.confidence:.0%} bootstrap interval over videos ({b.resamples} resamples, seed "
            f"{b.seed}){spread}")


def _shown_path(path: pathlib.Path) -> str:
    """A path relative to the repository when inside it (suites/table1.csv), else as it is."""
    try:
        return str(path.relative_to(REPOSITORY))
    except ValueError:
        return str(path)


# -- extra tables ----------------------------------------------------------------------------------


def per_class_tables(results: list[dict], labels: dict, protocol: str, rows: Rows) -> list[Table]:
    """Per dataset setting: each class's ground-truth pixel count and IoU per row, with its interval."""
    tables = []
    for setting, chosen in _by_setting(results).items():
        classes = chosen[0]["class_names"]
        data = pd.DataFrame({"class": classes,
                             "gt_pixels": [chosen[0]["per_class"][c]["gt_pixels"] for c in classes]})
        shown = data.copy()
        for result in chosen:
            name, row = labels[result["cell"]["id"]][0], result["cell"]["id"]
            values = [result["per_class"][c]["IoU"] for c in classes]
            bounds = [rows.class_interval(row, k) or (None, None) for k in range(len(classes))]
            data[name], data[f"{name} low"], data[f"{name} high"] = values, *zip(*bounds)
            shown[name] = [Value(v, *b) for v, b in zip(values, bounds)]
        caption = (f"IoU per class (percent), {setting}, protocol {protocol}; gt_pixels: scored ground-truth pixels "
                   "(a class without any is left out of mIoU)")
        tables.append(Table(_name(f"per_class__{setting.replace(':', '-')}", protocol), data, shown, caption,
                            [_interval_note(rows)]))
    return tables


def generalized_table(results: list[dict], labels: dict, protocol: str, rows: Rows) -> Table | None:
    """The generalized setting: all classes named at once; mIoU overall, on seen and unseen classes,
    their harmonic mean (hIoU), and any other class group (Cityscapes: base and novel)."""
    keys = ("mIoU", "mIoU_seen", "mIoU_unseen", "hIoU", "mIoU_base", "mIoU_novel")
    chosen = [r for r in results if any(k in (r.get("metrics") or {}) for k in keys[1:])]
    if not chosen:
        return None
    return _metric_table("generalized", chosen, labels, protocol, keys, rows,
                         "Generalized setting: every class named at once; mIoU overall, on seen and unseen classes, "
                         "hIoU = their harmonic mean, and on Cityscapes' base / novel classes")


def consistency_table(results: list[dict], labels: dict, protocol: str, rows: Rows) -> Table | None:
    chosen = [r for r in results if any((r.get("metrics") or {}).get(k) is not None for k in ("VC_8", "VC_16"))]
    if not chosen:
        return None
    return _metric_table("consistency", chosen, labels, protocol, ("VC_8", "VC_16", "mIoU"), rows,
                         "Video consistency: VC_n = share of pixels whose label agrees across each window of n "
                         "annotated frames, where the ground truth agrees (VSPW's definition)")


def comparisons_table(results: list[dict], labels: dict, protocol: str, rows: Rows,
                      metric: str = "mIoU") -> Table | None:
    """Every pair of rows on the same dataset setting: their mIoU difference on the same resampled videos,
    its interval and p-value."""
    data_rows = []
    for setting, chosen in _by_setting(results).items():
        for i, a in enumerate(chosen):
            for b in chosen[i + 1:]:
                difference = rows.difference(a["cell"]["id"], b["cell"]["id"], metric)
                if difference is None:
                    continue
                data_rows.append({"Dataset": setting, "A": labels[a["cell"]["id"]][0], "B": labels[b["cell"]["id"]][0],
                                  f"{metric} A - B": difference.value, "low": difference.low, "high": difference.high,
                                  "p": difference.p_value, "differs": difference.excludes_zero,
                                  "cell A": a["cell"]["id"], "cell B": b["cell"]["id"]})
    if not data_rows:
        return None
    data = pd.DataFrame(data_rows)
    shown = data[["Dataset", "A", "B"]].copy()
    shown[f"{metric} A - B"] = [Value(r[f"{metric} A - B"], r["low"], r["high"], star=r["differs"])
                                for _, r in data.iterrows()]
    shown["p"] = [f"{p:.3f}" for p in data["p"]]
    b = rows.bootstrap
    caption = (f"Paired comparisons: {metric} of A minus B on the same videos, every pair of rows of a dataset "
               f"setting; protocol {protocol}; percent")
    notes = [f"[low, high]: {b.confidence:.0%} paired bootstrap interval over videos ({b.resamples} resamples, seed "
             f"{b.seed}); *: it excludes 0; p: two-sided, the share of resampled differences at least as far from "
             "the observed one as it is from 0", "several rows at once: read the intervals as one test each "
             "(no correction for multiple comparisons)"]
    return Table(_name("comparisons", protocol), data, shown, caption, notes)


def cells_table(results: list[dict[str, Any]], rows: Rows) -> Table:
    """Every cell of the folder with its status and metrics (failed cells too), each seed apart."""
    data_rows, shown_rows = [], []
    for result in results:
        cell = result["cell"]
        changed = registry.non_default_options(cell["method"], cell.get("options") or {})
        row = {"method": cell["method"], "options": ", ".join(f"{k}={v}" for k, v in changed.items()) or "-",
               "dataset": f"{cell['dataset']}:{cell['setting']}", "protocol": cell["protocol"],
               "seed": cell.get("seed", 0), "status": result.get("status")}
        shown = dict(row)
        for key in METRIC_COLUMNS:
            value = (result.get("metrics") or {}).get(key)
            if value is None or result.get("status") != "done":
                continue
            estimate = rows.cell_estimate(cell["id"], key)
            row.update({key: value, f"{key}_low": estimate.low, f"{key}_high": estimate.high})
            shown[key] = Value(value, estimate.low, estimate.high)
        row["cell"] = cell["id"]
        data_rows.append(row)
        shown_rows.append(shown)
    fixed = ["method", "options", "dataset", "protocol", "seed", "status"]
    data, shown = pd.DataFrame(data_rows, columns=[*fixed, "cell"]), pd.DataFrame(shown_rows, columns=fixed)
    if data_rows:
        data, shown = pd.DataFrame(data_rows), pd.DataFrame(shown_rows)
        metrics = [c for c in METRIC_COLUMNS if c in data]
        order = data.sort_values(["dataset", "protocol", "method", "options", "seed"], kind="stable").index
        data = data.loc[order, [*fixed, *[f"{m}{part}" for m in metrics for part in ("", "_low", "_high")], "cell"]]
        shown = shown.loc[order, [*fixed, *metrics]]
        shown = shown.astype(object).where(shown.notna(), "-")
        data, shown = data.reset_index(drop=True), shown.reset_index(drop=True)
    return Table("cells", data, shown, "Every cell of the run folder", [POLICY_NOTE, _interval_note(rows)],
                 headline=True)


def _metric_table(name: str, results: list[dict], labels: dict, protocol: str, keys: tuple[str, ...], rows: Rows,
                  caption: str) -> Table:
    data_rows, shown_rows = [], []
    for result in sorted(results, key=lambda r: (r["cell"]["dataset"], r["cell"]["setting"])):
        label = labels[result["cell"]["id"]][1]
        head = {"Method": label.method, "Backbone": label.backbone + (f" {STAND_IN_NOTE}" if label.stand_in else ""),
                "Dataset": f"{result['cell']['dataset']}:{result['cell']['setting']}"}
        row, shown = dict(head), dict(head)
        for key in keys:
            estimate = rows.estimate(result["cell"]["id"], key)
            row.update({key: estimate.value, f"{key}_low": estimate.low, f"{key}_high": estimate.high,
                        f"{key}_std": estimate.std})
            shown[key] = Value.of(estimate)
        row["seeds"], row["cell"] = _seeds_text(rows, result), result["cell"]["id"]
        data_rows.append(row)
        shown_rows.append(shown)
    data, shown = pd.DataFrame(data_rows), pd.DataFrame(shown_rows)
    kept = [k for k in keys if data[k].notna().any()]
    head = ["Method", "Backbone", "Dataset"]
    data = data[[*head, *[f"{k}{part}" for k in kept for part in ("", "_low", "_high", "_std")], "seeds", "cell"]]
    shown = shown[[*head, *kept]]
    return Table(_name(name, protocol), data, shown, f"{caption}; protocol {protocol}; percent", [_interval_note(rows)])


# -- helpers ---------------------------------------------------------------------------------------


def _unique_labels(results: list[dict]) -> dict[str, tuple[str, TableLabel]]:
    """cell id -> (shown name, label): "Method (Backbone)", with "(stand-in)" when tiny models or data
    stood in; cells of one method that share a label and setting get the options they differ in."""
    labels = {r["cell"]["id"]: label_of(r) for r in results}

    def key(r: dict) -> tuple:
        return labels[r["cell"]["id"]], r["cell"]["dataset"], r["cell"]["setting"], r["cell"]["protocol"]

    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault(key(r), []).append(r)
    named = {}
    for r in results:
        label = labels[r["cell"]["id"]]
        differing = options_apart(r, groups[key(r)])
        if differing:
            label = label._replace(method=f"{label.method} [{differing}]")
        text = label.method if label.backbone == "-" else f"{label.method} ({label.backbone})"
        named[r["cell"]["id"]] = (text + (f" {STAND_IN_NOTE}" if label.stand_in else ""), label)
    return named


def options_apart(result: dict, group: list[dict]) -> str:
    """The options in which `result`'s cell differs from the other cells of `group`, as `k=v, ...`
    (the cell id's hash when they differ in something else, e.g. their checkpoint)."""
    others = [r for r in group if r["cell"]["id"] != result["cell"]["id"]]
    if not others:
        return ""
    options = result["cell"].get("options") or {}
    keys = sorted({k for r in others for k in {*options, *(r["cell"].get("options") or {})}
                   if options.get(k) != (r["cell"].get("options") or {}).get(k)})
    return ", ".join(f"{k}={options.get(k)}" for k in keys) or result["cell"]["id"].rsplit("__", 1)[-1][:6]


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


def _numeric_column(column: pd.Series) -> bool:
    """Whether a shown column holds numbers ("17.50", values with intervals, "-"): right-aligned in LaTeX."""
    return all(isinstance(v, Value) or str(v) in ("", "-") or _NUMBER.match(str(v)) for v in column)


def _tex(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("†", r"$^\dagger$"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                          ("$", r"\$"), ("{", r"\{"), ("}", r"\}")):
        text = text.replace(char, escaped)
    return text

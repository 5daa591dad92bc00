"""Tables from the finished cells of a run folder (pandas), in the paper's format, beside its numbers.

`write_report(DIR)` builds every table the cells allow and writes each as Markdown, CSV and LaTeX
(booktabs) to DIR/tables/:

- table1, table2: the paper's Tables I (VSPW unseen) and II (Cityscapes): Method, Backbone, mIoU,
  fwIoU, mAcc, pAcc; the published rows (marked reported) with each reproduced row under the row it
  reproduces and the difference; rows the paper does not have at the end. On the synthetic stand-in
  settings when the real ones did not run.
- table3: the ablations, grouped as in the paper, one reproduced column per backbone.
- per_class: IoU per class and method, with the ground-truth pixel count; generalized: mIoU on
  seen and unseen classes and their harmonic mean (and Cityscapes' base / novel); consistency: VC_8,
  VC_16; cells: every cell with its status.

A table covers one protocol; a protocol other than `intended` adds `__<protocol>` to its file names.
"""

from __future__ import annotations

import math
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from benchmark.interface import TableLabel
from benchmark.store import REPOSITORY, RunStore

PUBLISHED = REPOSITORY / "results" / "paper"
PAPER_METRICS = ("mIoU", "fwIoU", "mAcc", "pAcc")
#: Metric columns of the cells table, in display order; a column appears when some cell has the metric.
METRIC_COLUMNS = ("mIoU", "fwIoU", "mAcc", "pAcc", "mIoU_mmseg", "mIoU_seen", "mIoU_unseen", "hIoU", "mIoU_base",
                  "mIoU_novel", "VC_8", "VC_16")
POLICY_NOTE = ("mIoU: mean over classes with ground-truth pixels (VSPW official); "
               "mIoU_mmseg: nanmean, a class only predicted counts as 0. All values in percent.")
STAND_IN_NOTE = "(stand-in)"
_NUMBER = re.compile(r"^-?\d+(\.\d+)?( \([+-]\d+(\.\d+)?\))?$")


@dataclass(frozen=True)
class PaperTable:
    """A published table: the setting it reports, the synthetic setting that stands in for it, its CSV."""

    key: str
    title: str
    setting: str
    stand_in: str
    published: str


PAPER_TABLES = (
    PaperTable("table1", "Table I: VSPW, 80 seen / 44 unseen classes; metrics on the 44 unseen classes",
               "vspw:unseen", "synthetic:unseen", "table1.csv"),
    PaperTable("table2", "Table II: Cityscapes, 19 classes; the VSPW-trained model tested directly",
               "cityscapes:all", "synthetic:all", "table2.csv"),
    PaperTable("table3", "Table III: ablations of OV2VSS on VSPW, unseen mIoU (the paper's backbone: ViT-B2)",
               "vspw:unseen", "synthetic:unseen", "table3.csv"),
)


@dataclass
class Table:
    """A built table: its data (numbers as numbers), how it is shown, and what it says about itself."""

    name: str
    data: pd.DataFrame       # written as CSV
    shown: pd.DataFrame      # strings, written as Markdown and LaTeX
    caption: str
    notes: list[str] = field(default_factory=list)

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
    paths: list[pathlib.Path]
    labels: dict[str, str]   # cell id -> how the tables name it


def published(name: str) -> pd.DataFrame:
    """A published table with every value as printed (strings, so `12.9` stays `12.9`)."""
    return pd.read_csv(PUBLISHED / name, dtype=str, keep_default_na=False)


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
    for protocol in sorted({r["cell"]["protocol"] for r in finished}):
        chosen = [r for r in finished if r["cell"]["protocol"] == protocol]
        for paper in PAPER_TABLES:
            built = (ablation_table if paper.key == "table3" else comparison_table)(paper, chosen, labels, protocol)
            if built is not None:
                tables.append(built)
        tables += per_class_tables(chosen, labels, protocol)
        tables += [t for t in (generalized_table(chosen, labels, protocol),
                               consistency_table(chosen, labels, protocol)) if t is not None]
    store.tables_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for table in tables:
        base = store.tables_dir / table.name
        table.data.to_csv(base.with_suffix(".csv"), index=False, float_format="%.4f")
        base.with_suffix(".md").write_text(table.markdown())
        base.with_suffix(".tex").write_text(table.latex())
        paths += [base.with_suffix(s) for s in (".md", ".csv", ".tex")]
    return Report(tables, paths, {cell: label for cell, (label, _) in labels.items()})


def format_report(report: Report) -> str:
    return "\n".join(table.markdown() for table in report.tables)


# -- the paper's tables ----------------------------------------------------------------------------


def comparison_table(paper: PaperTable, results: list[dict], labels: dict, protocol: str) -> Table | None:
    """Table I or II: the published rows in the paper's order, each followed by the cells that
    reproduce it (same Method and Backbone) with the difference; then the cells the paper lacks."""
    setting, chosen = _paper_cells(paper, [r for r in results if not _ablation(r)])
    if not chosen:
        return None
    reference = published(paper.published)
    rows, placed = [], set()
    for _, row in reference.iterrows():
        rows.append({"Method": row["Method"], "Backbone": row["Backbone"], "Source": "reported",
                     **{m: float(row[m]) for m in PAPER_METRICS}, "cell": ""})
        for result in chosen:
            label = labels[result["cell"]["id"]][1]
            if label.row == (row["Method"], row["Backbone"]):
                rows.append(_reproduced(result, labels, {m: float(row[m]) for m in PAPER_METRICS}))
                placed.add(result["cell"]["id"])
    rows += [_reproduced(r, labels, None) for r in chosen if r["cell"]["id"] not in placed]
    data = pd.DataFrame(rows, columns=["Method", "Backbone", "Source", *PAPER_METRICS,
                                       *[f"{m}_delta" for m in PAPER_METRICS], "cell", "warnings"])
    shown = data[["Method", "Backbone", "Source"]].copy()
    for metric in PAPER_METRICS:
        shown[metric] = [_printed(reference, r, metric) if r["Source"] == "reported" else
                         _with_delta(r[metric], r[f"{metric}_delta"]) for _, r in data.iterrows()]
    shown["Source"] = [s + ("*" if w is True else "") for s, w in zip(data["Source"], data["warnings"])]
    notes = _notes(setting, data)
    return Table(_name(paper.key, protocol), data.drop(columns="warnings"), shown,
                 _caption(paper.title, setting, protocol), notes)


def ablation_table(paper: PaperTable, results: list[dict], labels: dict, protocol: str) -> Table | None:
    """Table III: the paper's rows and groups, one reproduced column (and its difference) per backbone
    of the OV2VSS cells; rows naming the same variant (the full model) repeat its number."""
    from methods.ov2vss.variants import TABLE_III, variant_of

    def full_model_elsewhere(result: dict) -> bool:  # another method's full OV2VSS (the authors' code)
        label = labels[result["cell"]["id"]][1]
        return result["cell"]["method"] != "ov2vss" and label.reproduces == "OV2VSS"

    setting, chosen = _paper_cells(paper, [r for r in results if r["cell"]["method"] == "ov2vss"
                                           or full_model_elsewhere(r)])
    if not chosen:
        return None
    by_column: dict[str, dict[str, dict]] = {}
    notes, kept = [], set()
    for result in sorted(chosen, key=lambda r: r["provenance"].get("end_time") or ""):
        label = labels[result["cell"]["id"]][1]
        column = label.backbone + (f" {STAND_IN_NOTE}" if label.stand_in else "")
        variant = variant_of(result["cell"]["options"])
        if full_model_elsewhere(result):
            column, variant = f"{label.method} {column}", "full"
            kept.add(column)
        if variant in by_column.setdefault(column, {}):
            notes.append(f"{result['cell']['id']} repeats variant {variant} ({column}); the latest is shown")
        by_column[column][variant] = result
    # a backbone whose only cells are the full model (Tables I-II rows) ran no ablation: no column
    by_column = {column: cells for column, cells in by_column.items() if set(cells) - {"full"} or column in kept}
    if not by_column:
        return None
    reference = published(paper.published).set_index(["Group", "Setting"])
    rows = []
    for group, setting_name, variant in TABLE_III:
        printed = reference.loc[(group, setting_name), "mIoU"]
        row = {"Group": group, "Setting": setting_name, "Variant": variant, "Published mIoU": float(printed)}
        for column, cells in by_column.items():
            value = (cells[variant].get("metrics") or {}).get("mIoU") if variant in cells else None
            row[f"mIoU {column}"] = value
            row[f"delta {column}"] = None if value is None else value - float(printed)
            row[f"cell {column}"] = cells[variant]["cell"]["id"] if variant in cells else ""
        rows.append(row)
    data = pd.DataFrame(rows)
    shown = data[["Group", "Setting", "Variant"]].copy()
    shown["Group"] = [g if i == 0 or g != data["Group"][i - 1] else "" for i, g in enumerate(data["Group"])]
    shown["Published"] = [reference.loc[(g, s), "mIoU"] for g, s in zip(data["Group"], data["Setting"])]
    for column in by_column:
        shown[f"Reproduced {column}"] = [_with_delta(v, d) for v, d in zip(data[f"mIoU {column}"],
                                                                           data[f"delta {column}"])]
    caption = _caption(paper.title, setting, protocol)
    notes += _notes(setting, data) + ["variants: methods/ov2vss/variants.py; run them all with --suite table3 --train"]
    return Table(_name(paper.key, protocol), data, shown, caption, notes)


def _ablation(result: dict) -> bool:
    """An OV2VSS variant other than the full model: a row of Table III, not of Tables I and II."""
    if result["cell"]["method"] != "ov2vss":
        return False
    from methods.ov2vss.variants import variant_of

    return variant_of(result["cell"]["options"]) != "full"


def _paper_cells(paper: PaperTable, results: list[dict]) -> tuple[str, list[dict]]:
    """The cells of the table's setting, or of its synthetic stand-in when the real one has none."""
    for setting in (paper.setting, paper.stand_in):
        chosen = [r for r in results if f"{r['cell']['dataset']}:{r['cell']['setting']}" == setting]
        if chosen:
            return setting, chosen
    return paper.setting, []


def _reproduced(result: dict, labels: dict, reference: dict[str, float] | None) -> dict[str, Any]:
    label = labels[result["cell"]["id"]][1]
    metrics = result.get("metrics") or {}
    backbone = label.backbone + (f" {STAND_IN_NOTE}" if label.stand_in else "")
    row = {"Method": label.method, "Backbone": backbone, "Source": "reproduced", "cell": result["cell"]["id"],
           "warnings": bool((result["provenance"].get("method") or {}).get("warnings"))}
    for metric in PAPER_METRICS:
        row[metric] = metrics.get(metric)
        if reference is not None and metrics.get(metric) is not None:
            row[f"{metric}_delta"] = metrics[metric] - reference[metric]
    return row


def _caption(title: str, setting: str, protocol: str) -> str:
    stand_in = " [synthetic stand-in: the paper's dataset was not evaluated]" if setting.startswith("synthetic") else ""
    return (f"{title}{stand_in}. Cells: {setting}, protocol {protocol}; mIoU over classes with ground-truth "
            "pixels (VSPW official policy); percent")


def _notes(setting: str, data: pd.DataFrame) -> list[str]:
    notes = ["reported: the paper's numbers (results/paper/); reproduced: this run, with (reproduced - reported) "
             "after the reproduced row's value"]
    if data.astype(str).apply(lambda column: column.str.contains(STAND_IN_NOTE, regex=False)).any().any():
        notes.append(f"{STAND_IN_NOTE}: tiny models stood in for the paper's (backbone or CLIP); "
                     "the differences are not comparable")
    if "warnings" in data and (data["warnings"] == True).any():  # noqa: E712 (None where reported)
        notes.append("*: the cell logged warnings (e.g. random weights); see its JSON")
    if setting.startswith("synthetic"):
        notes.append("synthetic data: the numbers check the pipeline, not the paper's claims")
    return notes


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
    return Table("cells", data, shown, "Every cell of the run folder", [POLICY_NOTE])


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


def _printed(reference: pd.DataFrame, row: pd.Series, metric: str) -> str:
    match = reference[(reference["Method"] == row["Method"]) & (reference["Backbone"] == row["Backbone"])]
    return match[metric].iloc[0]


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

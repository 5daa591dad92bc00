"""Tables from the result files of a run (pandas)."""

from __future__ import annotations

import pathlib
from typing import Any

import pandas as pd

from benchmark.store import RunStore

#: Metric columns in display order; a column appears when some cell has the metric.
METRIC_COLUMNS = ("mIoU", "fwIoU", "mAcc", "pAcc", "mIoU_mmseg", "mIoU_seen", "mIoU_unseen", "hIoU", "mIoU_base",
                  "mIoU_novel", "VC_8", "VC_16")
POLICY_NOTE = ("mIoU: mean over classes with ground-truth pixels (VSPW official); "
               "mIoU_mmseg: nanmean, a class only predicted counts as 0. All values in percent.")


def cells_table(results: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per cell: what ran, its status, and its metrics."""
    rows = []
    for result in results:
        cell = result["cell"]
        row = {"method": cell["method"], "dataset": f"{cell['dataset']}:{cell['setting']}",
               "protocol": cell["protocol"], "status": result.get("status")}
        row.update({k: v for k, v in (result.get("metrics") or {}).items() if k in METRIC_COLUMNS})
        row["cell"] = cell["id"]
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    columns = ["method", "dataset", "protocol", "status", *[c for c in METRIC_COLUMNS if c in table], "cell"]
    return table[columns].sort_values(["dataset", "protocol", "method"], kind="stable").reset_index(drop=True)


def write_tables(output: pathlib.Path | str) -> tuple[pd.DataFrame, list[pathlib.Path]]:
    """Build the cells table of a run folder; write it as CSV and Markdown under DIR/tables/."""
    store = RunStore(output)
    table = cells_table(store.results())
    store.tables_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = store.tables_dir / "cells.csv", store.tables_dir / "cells.md"
    table.to_csv(csv_path, index=False, float_format="%.4f")
    markdown = table.drop(columns="cell").to_markdown(index=False, floatfmt=".2f") if not table.empty else "(no cells)"
    md_path.write_text(f"{markdown}\n\n{POLICY_NOTE}\n")
    return table, [csv_path, md_path]


def format_table(table: pd.DataFrame) -> str:
    if table.empty:
        return "(no finished cells)"
    return table.drop(columns="cell").to_string(index=False, float_format=lambda v: f"{v:.2f}", na_rep="-")

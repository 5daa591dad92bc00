"""The paper's tables from a real synthetic run of `--suite paper`: values against the cell JSONs,
differences against the published CSVs (suites/), and all three formats."""

import json
import math
import re

import pandas as pd
import pytest

from benchmark import cli, suites, uncertainty
from benchmark.reporting import tables
from methods import clip

DATA = ["--dataset-opt", "synthetic.videos=1", "--dataset-opt", "synthetic.frames=12"]
TINY_TRAINED = {"clip_model": clip.TINY_MODEL, "clip_pretrained": "random", "cost_channels": 16,
                "feature_channels": 16, "head_channels": 16, "iterations": 1, "accumulate": 1, "warmup": 1,
                "crop": 64}
TINY = {"ov2vss": {**TINY_TRAINED, "regions": 4, "heads": 2, "text_heads": 2, "pool_sizes": "[1,2,4]"},
        "clip-cost-volume": TINY_TRAINED,
        "sam-clip": {"clip_model": clip.TINY_MODEL, "clip_pretrained": "random", "sam_checkpoint": "random"}}
OPTS = [item for method, options in TINY.items() for key, value in options.items()
        for item in ("--opt", f"{method}.{key}={value}")]


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    """`run --suite paper --train` on the synthetic stand-ins with tiny models (about 25 s)."""
    root = tmp_path_factory.mktemp("paper")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # training runs go to ./results/train
        assert cli.main(["run", "--suite", "paper", "--train", "--output", str(root / "run"), *DATA, *OPTS]) == 0
    cells = {p.stem: json.loads(p.read_text()) for p in (root / "run" / "cells").glob("*.json")}
    return root / "run", cells


def read(run, name):
    return pd.read_csv(run / "tables" / f"{name}.csv", keep_default_na=False, na_values=[""])


SPECS = {spec.name: spec for spec in suites.builtin_tables()}
PAPER_METRICS = SPECS["table1"].metrics


def published(name):
    return SPECS[name].published_rows()


def test_every_table_is_written_in_three_formats(paper_run):
    run, cells = paper_run
    assert len(cells) == 27 and all(c["status"] == "done" for c in cells.values())
    names = {p.stem for p in (run / "tables").iterdir()}
    assert {"table1", "table2", "table3", "generalized", "consistency", "cells", "per_class__synthetic-unseen",
            "per_class__synthetic-all"} <= names
    for name in names:
        markdown = (run / "tables" / f"{name}.md").read_text()
        latex = (run / "tables" / f"{name}.tex").read_text()
        assert markdown.startswith("**") and "| " in markdown
        assert all(rule in latex for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\caption{"))
    caption = (run / "tables" / "table1.md").read_text().splitlines()[0]
    assert "protocol intended" in caption and "classes with ground-truth pixels" in caption
    assert "a stand-in for VSPW" in caption


@pytest.mark.parametrize("table", ["table1", "table2"])
def test_comparison_rows_are_the_cells_beside_the_published_numbers(paper_run, table):
    run, cells = paper_run
    data, paper = read(run, table), published(table)
    reported = data[data["Source"] == "reported"]
    # every published row, in the paper's order, with its numbers as printed
    assert list(zip(reported["Method"], reported["Backbone"])) == list(zip(paper["Method"], paper["Backbone"]))
    for metric in PAPER_METRICS:
        assert list(reported[metric]) == [float(v) for v in paper[metric]]
    reproduced = data[data["Source"] == "reproduced"]
    assert set(reproduced["cell"]) == {c for c, r in cells.items() if r["cell"]["setting"] == (
        "unseen" if table == "table1" else "all") and r["cell"]["options"].get("variant") in ("full", None,
                                                                                             "training-free", "trained")}
    matched = 0
    for _, row in reproduced.iterrows():
        metrics = cells[row["cell"]]["metrics"]
        backbone = row["Backbone"].removesuffix(f" {tables.STAND_IN_NOTE}")
        reference = paper[(paper["Method"] == row["Method"]) & (paper["Backbone"] == backbone)]
        for metric in PAPER_METRICS:
            assert row[metric] == pytest.approx(metrics[metric], abs=1e-4)
            low, high = cells[row["cell"]]["intervals"][metric]
            assert [row[f"{metric}_low"], row[f"{metric}_high"]] == pytest.approx([low, high], abs=1e-4)
            # a stand-in (here the data, and the models) sits beside the published row but is no measurement
            # of it: no difference, no † (user tables on their own data get both: test_suites)
            assert math.isnan(row[f"{metric}_delta"]) and row[f"{metric}_published_inside"] is not True
        matched += bool(len(reference))
    assert matched == 3  # OV2VSS ResNet-101, OV2VSS ViT-B2, SAM (+CLIP) ViT-B2, each as a tiny stand-in
    shown = (run / "tables" / f"{table}.md").read_text()
    ours = reproduced[reproduced["Method"] == "OV2VSS"].iloc[0]
    interval = f"[{ours['mIoU_low']:.1f}, {ours['mIoU_high']:.1f}]"
    assert re.search(rf"\b{ours['mIoU']:.2f}(\*\*)? {re.escape(interval)}(?! \()", shown)  # and no difference
    caption = shown.splitlines()[0]
    assert ("the synthetic world, 16 seen / 8 unseen classes; metrics on the 8 unseen classes [a stand-in for "
            "VSPW, which was not evaluated]" in caption if table == "table1" else
            "the synthetic world, 24 classes; the VSPW-trained model tested directly [a stand-in for Cityscapes" in caption)
    latex = (run / "tables" / f"{table}.tex").read_text()
    assert re.search(rf"{ours['mIoU']:.2f}}}?\\,{{\\scriptsize {re.escape(interval)}}}", latex)


def test_ablation_rows_follow_the_paper(paper_run):
    run, cells = paper_run
    data, paper = read(run, "table3"), published("table3")
    assert list(zip(data["Group"], data["Setting"])) == list(zip(paper["Group"], paper["Setting"]))
    assert list(data["Published mIoU"]) == [float(v) for v in paper["mIoU"]]
    column = f"ResNet-101 {tables.STAND_IN_NOTE}"  # the stand-in rows use the tiny ResNet
    for _, row in data.iterrows():
        cell = cells[row[f"cell {column}"]]
        assert row["Options"] == f"variant={cell['provenance']['method']['variant']}"
        assert row[f"mIoU {column}"] == pytest.approx(cell["metrics"]["mIoU"], abs=1e-4)
        assert math.isnan(row[f"delta {column}"])  # a stand-in is no measurement of the published number
        assert [row[f"low {column}"], row[f"high {column}"]] == pytest.approx(cell["intervals"]["mIoU"], abs=1e-4)
    # each row's difference from the full model, on the same resampled videos
    full = data[data["Options"] == "variant=full"]
    assert len(full) == 5 and full[f"vs full {column}"].isna().all()
    full_cell = cells[full[f"cell {column}"].iloc[0]]
    bootstrap = uncertainty.Bootstrap()
    full_samples = uncertainty.samples(uncertainty.VideoCounts.from_json(full_cell["per_video"]), None, bootstrap)
    others = data[data["Options"] != "variant=full"]
    assert len(others) == 11
    for _, row in others.iterrows():
        cell = cells[row[f"cell {column}"]]
        drawn = uncertainty.samples(uncertainty.VideoCounts.from_json(cell["per_video"]), None, bootstrap)
        difference = uncertainty.paired_difference([drawn], [full_samples], "mIoU", bootstrap)
        assert row[f"vs full {column}"] == pytest.approx(cell["metrics"]["mIoU"] - full_cell["metrics"]["mIoU"], abs=1e-4)
        assert [row[f"vs full low {column}"], row[f"vs full high {column}"], row[f"vs full p {column}"]] == pytest.approx(
            [difference.low, difference.high, difference.p_value], abs=1e-4)
    shown = (run / "tables" / "table3.md").read_text()
    assert f"vs full {column}" in shown and "*: the interval excludes 0" in shown


def test_extra_tables_hold_the_cells_numbers(paper_run):
    run, cells = paper_run
    per_class = read(run, "per_class__synthetic-all")
    generalized, consistency = read(run, "generalized"), read(run, "consistency")
    for cell_id, result in cells.items():
        if result["cell"]["setting"] == "all":
            (row,) = generalized[generalized["cell"] == cell_id].to_dict("records")
            for key in ("mIoU_seen", "mIoU_unseen", "hIoU"):
                assert row[key] == pytest.approx(result["metrics"][key], abs=1e-4)
            assert list(per_class["gt_pixels"]) == [result["per_class"][c]["gt_pixels"]
                                                    for c in result["class_names"]]
        (row,) = consistency[consistency["cell"] == cell_id].to_dict("records")
        assert row["VC_8"] == pytest.approx(result["metrics"]["VC_8"], abs=1e-4)
    ours = next(r for r in cells.values() if r["cell"]["setting"] == "all" and r["cell"]["method"] == "sam-clip")
    expected = [ours["per_class"][c]["IoU"] for c in ours["class_names"]]
    # tiny models on synthetic data: every row says it is a stand-in, in the extra tables too
    named = [c for c in per_class.columns if c not in ("class", "gt_pixels") and not c.endswith((" low", " high"))]
    assert named and all(c.endswith("(stand-in)") for c in named), named
    assert all(b.endswith("(stand-in)") for b in consistency["Backbone"])
    assert list(per_class["SAM (+CLIP) (ViT-B2) (stand-in)"]) == pytest.approx(
        [math.nan if v is None else v for v in expected], abs=1e-4, nan_ok=True)


def test_report_prints_the_tables(paper_run, capsys):
    run, _ = paper_run
    capsys.readouterr()
    assert cli.main(["report", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "Table I:" in printed and "Table II:" in printed and "Table III:" in printed
    assert "| Zegformer " in printed and "reported" in printed


def test_suite_refuses_what_it_sets_and_needs_training(tmp_path, capsys):
    output = ["--output", str(tmp_path / "run"), *DATA]
    assert cli.main(["run", "--suite", "table1", "--opt", "ov2vss.backbone=resnet-tiny", "--train", *output]) == 2
    assert "sets ov2vss.backbone per row" in capsys.readouterr().err
    # no row has weights for a CLIP the shipped heads were not trained against
    assert cli.main(["run", "--suite", "table3", "--opt", f"ov2vss.clip_model={clip.TINY_MODEL}", *output]) == 2
    assert "add --train" in capsys.readouterr().err
    assert cli.main(["run", "--suite", "table1", "--datasets", "synthetic", *output]) == 2
    assert not (tmp_path / "run" / "cells").exists()


def test_two_configurations_of_one_method_are_told_apart_by_their_options(tmp_path):
    run = tmp_path / "run"
    common = ["run", "--methods", "clip-cost-volume", "--datasets", "synthetic:unseen", "--output", str(run),
              "--no-tracking", *DATA]
    assert cli.main(common) == 0
    assert cli.main([*common, "--opt", "clip-cost-volume.inference=whole"]) == 0
    cells = read(run, "cells")
    assert sorted(cells["options"]) == ["-", "inference=whole"]
    table = read(run, "table1")
    ours = table[table["Source"] == "reproduced"]
    assert sorted(ours["Method"]) == ["CLIP cost volume [inference=slide]", "CLIP cost volume [inference=whole]"]
    assert all(ours["Backbone"].str.endswith("(stand-in)"))  # the toy CLIP stood in for ViT-B/16
    for name in ("per_class__synthetic-unseen", "comparisons"):
        text = (run / "tables" / f"{name}.md").read_text()
        assert "[inference=slide]" in text and "[inference=whole]" in text, name

"""Tables as data files: a user's own table (the README's, with its plugin) runs through --suite FILE and
is written beside its own published CSV; malformed files are input errors naming the file."""

import json
import re

import pandas as pd
import pytest
from conftest import REPO, run_cli

from benchmark import suites

README = (REPO / "README.md").read_text()


def block(marker: str) -> str:
    return re.search(rf"<!-- {marker}:start -->\n```\w*\n(.*?)```", README, re.S).group(1)


@pytest.fixture(scope="module")
def readme_table(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mine")
    (folder / "my_method.py").write_text(block("readme-example"))
    (folder / "my_table.yaml").write_text(block("readme-table"))
    (folder / "my_table.csv").write_text(block("readme-table-csv"))
    out = folder / "run"
    done = run_cli("run", "--plugin", folder / "my_method.py", "--suite", folder / "my_table.yaml", "--output", out,
                   "--dataset-opt", "synthetic.videos=2", "--no-tracking", cwd=folder, check=0)
    cells = {r["cell"]["id"]: r for r in (json.loads(p.read_text()) for p in (out / "cells").glob("*.json"))}
    return folder, out, done, cells


def test_a_users_table_runs_its_rows_and_sits_beside_its_published_csv(readme_table):
    folder, out, done, cells = readme_table
    assert {r["cell"]["method"] for r in cells.values()} == {"brightness", "chance", "clip-cost-volume"}
    (brightness,) = [r for r in cells.values() if r["cell"]["method"] == "brightness"]
    assert brightness["cell"]["options"]["threshold"] == 80 and brightness["cell"]["setting"] == "unseen"
    for suffix in (".md", ".csv", ".tex"):
        assert (out / "tables" / f"my_table{suffix}").is_file()
    data = pd.read_csv(out / "tables" / "my_table.csv", keep_default_na=False, na_values=[""])
    published = pd.read_csv(folder / "my_table.csv")
    assert list(data["Method"]) == ["brightness", "brightness", "chance", "chance", "CLIP cost volume"]
    assert list(data["Source"]) == ["reported", "reproduced"] * 2 + ["reproduced"]
    for method in ("brightness", "chance"):
        (row,) = data[(data["Method"] == method) & (data["Source"] == "reproduced")].to_dict("records")
        printed = published[published["Method"] == method].iloc[0]
        for metric in ("mIoU", "pAcc"):
            assert row[metric] == pytest.approx(cells[row["cell"]]["metrics"][metric], abs=1e-4)
            assert row[f"{metric}_delta"] == pytest.approx(row[metric] - printed[metric], abs=1e-4)
    markdown = (out / "tables" / "my_table.md").read_text()
    assert markdown.startswith("**Dark pixels against two built-ins") and "fwIoU" not in markdown
    assert "**Dark pixels against two built-ins" in done.stdout  # printed like the paper's tables
    (invocation,) = json.loads((out / "plan.json").read_text())["runs"]
    assert invocation["tables"] == [str(folder / "my_table.yaml")]
    assert invocation["weights"] == {cell: "none needed" for cell in cells}


def test_report_rebuilds_a_users_table_from_the_run_folder(readme_table):
    _, out, _, _ = readme_table
    before = (out / "tables" / "my_table.csv").read_text()
    for path in (out / "tables").iterdir():
        path.unlink()
    run_cli("report", out, check=0)
    assert (out / "tables" / "my_table.csv").read_text() == before


def test_a_suite_file_lists_a_users_table_beside_a_built_in_one(tmp_path):
    for marker, name in (("readme-table", "my_table.yaml"), ("readme-table-csv", "my_table.csv")):
        (tmp_path / name).write_text(block(marker))
    (tmp_path / "mine.yaml").write_text("tables: [table1, my_table.yaml]\n")
    suite = suites.find(str(tmp_path / "mine.yaml"))
    assert [t.name for t in suite.tables] == ["table1", "my_table"]
    assert suite.tables[1].published == tmp_path / "my_table.csv"


@pytest.mark.parametrize("change, message", [
    (lambda t: t.replace("metrics: [mIoU, pAcc]", "metrics: [mIoU, VC_8]"), "has no column ['VC_8']"),
    (lambda t: t.replace("published: my_table.csv", "published: gone.csv"), "published: gone.csv names no file"),
    (lambda t: t + "colour: blue\n", "unknown keys ['colour']"),
    (lambda t: t.replace("  - method: chance\n", "  - chance\n"), "rows[1]: each row needs at least 'method'"),
    (lambda t: t.replace("match: [Method]", "match: [Group]"), "has no column ['Group']"),
    (lambda t: "title: [unclosed\n", "not valid YAML"),
])
def test_a_malformed_table_file_is_an_input_error_naming_it(tmp_path, change, message):
    (tmp_path / "my_table.csv").write_text(block("readme-table-csv"))
    table = tmp_path / "my_table.yaml"
    table.write_text(change(block("readme-table")))
    done = run_cli("run", "--suite", table, "--output", tmp_path / "run", "--no-tracking", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert str(table) in done.stderr and message in done.stderr, done.stderr
    assert not (tmp_path / "run" / "cells").exists()


def test_an_unknown_suite_name_lists_the_built_in_ones():
    with pytest.raises(suites.SuiteError, match="choose one of paper, table1, table2, table3"):
        suites.find("table9")


def test_a_users_table_may_not_take_a_built_in_tables_name(tmp_path):
    for name in ("table1.yaml", "table1.csv"):
        (tmp_path / name).write_text((suites.SUITES_DIR / name).read_text())
    with pytest.raises(suites.SuiteError, match="has the name of .*suites/table1.yaml; rename the file"):
        suites.find(str(tmp_path / "table1.yaml"))


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path):
    done = run_cli("run", "--suite", "paper", "--train", "--dry-run", "--output", tmp_path / "run", check=0)
    assert "14 trainings, then 27 evaluation cells" in done.stdout
    assert "ov2vss [variant=rfe, backbone=resnet-tiny] on synthetic:seen, seed 0: to train" in done.stdout
    # the stand-ins' frames are 72x96; no figure was measured at that size, and the output says so
    assert "time: unknown at 72x96: measured only at 480x853" in done.stdout
    assert not (tmp_path / "run").exists()


def test_dry_run_estimates_each_job_from_the_speeds_its_method_declares(tmp_path):
    from dataset_fixtures import write_cityscapes, write_vspw

    write_vspw(tmp_path / "data")
    write_cityscapes(tmp_path / "data")
    common = ("run", "--suite", "paper", "--train", "--dry-run", "--data-root", tmp_path / "data",
              "--output", tmp_path / "run")
    on_cpu = run_cli(*common, "--device", "cpu", check=0).stdout
    # VSPW val's 24,502 annotated frames (the card's count) at the 4.61 s per 480p frame that
    # benchmarks/ov2vss_streaming.py measured for the full model with SAM ViT-B: 31.4 hours
    assert ("ov2vss on vspw:unseen (intended), seed 0: to run\n    weights: trained: " in on_cpu
            and "time: ~31.4 h (24,502 annotated frames x 4.61 s on a cpu)" in on_cpu)
    assert "time: ~20.7 h (24,502 annotated frames x 3.04 s on a cpu)" in on_cpu  # the ResNet-101 row
    assert "benchmarks/ov2vss_streaming.py --configs full --backbones sam" in on_cpu  # where each figure comes from
    # a training of the paper's recipe at full size: measured or said to be unknown, never guessed
    assert re.search(r"time: (~[\d.]+ (h|days) \(100,000 iterations x|unknown: never measured)", on_cpu)
    # on a GPU, where nothing was measured, the CPU figure is shown as such; 4 shards share a cell
    on_gpu = run_cli(*common, "--executor", "slurm", "--shards", "4", check=0).stdout
    assert "time: unknown on a gpu: never measured there; on a cpu" in on_gpu and "~7.8 h for 24,502" in on_gpu
    assert "requeued up to 50 times" in on_gpu
    # Cityscapes' 500 annotated frames are 1024x2048: no figure at that size
    assert "unknown at 1024x2048" in on_cpu

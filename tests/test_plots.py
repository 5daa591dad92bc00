"""The PNG plots of a real synthetic run: files, sizes, the fixed palette in the qualitative strip."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from benchmark import cli, plots


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    output = tmp_path_factory.mktemp("plots") / "run"
    assert cli.main(["run", "--methods", "chance", "--datasets", "synthetic:unseen,synthetic:all", "--output",
                     str(output), "--opt", "chance.seed=1", "--no-tracking"]) == 0
    return output


def test_palette_is_fixed_and_distinct():
    colours = plots.palette(130)
    assert colours.shape == (130, 3) and colours.dtype == np.uint8
    assert np.array_equal(colours[:12], plots.palette(12))
    assert len({tuple(c) for c in colours[:20]}) == 20


def test_run_writes_both_plots_per_setting(run):
    names = sorted(p.name for p in (run / "plots").glob("*.png"))
    assert names == ["per_class_iou__synthetic-all__intended.png", "per_class_iou__synthetic-unseen__intended.png",
                     "qualitative__synthetic-all__intended.png", "qualitative__synthetic-unseen__intended.png"]
    for name in names:
        with Image.open(run / "plots" / name) as image:
            assert image.width >= 600 and image.height >= 300


def test_strip_shows_the_ground_truth_classes_in_their_palette_colours(run, tmp_path):
    (folder,) = (run / "showcase").glob("chance__synthetic-unseen*")
    meta = json.loads((folder / "showcase.json").read_text())
    truth = np.asarray(Image.open(folder / f"{meta['frames'][0]}.gt.png"))
    present = [int(k) for k in np.unique(truth) if k != 255]
    assert present and len(meta["frames"]) == 4
    strip = np.asarray(Image.open(plots.qualitative_strip([("chance", folder)], tmp_path / "strip.png")).convert("RGB"))
    colours = plots.palette(len(meta["class_names"]))
    for k in present:
        close = np.abs(strip.astype(int) - colours[k].astype(int)).max(axis=-1) <= 3
        assert close.sum() > 50, f"class {meta['class_names'][k]} not drawn in its palette colour"


def test_incomplete_showcases_and_failed_cells_are_left_out(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (cell,) = (copy / "cells").glob("chance__synthetic-all*.json")
    result = json.loads(cell.read_text())
    (copy / "showcase" / cell.stem / "showcase.json").unlink()  # as a job killed while writing it leaves it
    written = plots.write_plots(copy)
    assert "qualitative__synthetic-all__intended.png" not in {p.name for p in written}
    cell.write_text(json.dumps({**result, "status": "failed"}))
    assert {p.name for p in plots.write_plots(copy)} == {"per_class_iou__synthetic-unseen__intended.png",
                                                         "qualitative__synthetic-unseen__intended.png"}


def test_many_classes_give_a_tall_readable_chart(tmp_path):
    names = [f"class {k}" for k in range(124)]
    result = {"cell": {"id": "m__vspw-all__intended__0", "method": "m", "dataset": "vspw", "setting": "all",
                       "protocol": "intended"}, "status": "done", "class_names": names, "metrics": {"mIoU": 5.0},
              "per_class": {n: {"IoU": float(k % 50), "gt_pixels": 1000 * k} for k, n in enumerate(names)}}
    with Image.open(plots.per_class_iou([result], None, tmp_path / "bars.png")) as image:
        assert image.height / 124 >= 15  # pixels per class row

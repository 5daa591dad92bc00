"""`run --save-predictions`: the maps are written in the ids each dataset's own tools read, and scoring them
with those tools' rules, reimplemented here from their published code (never the harness's), gives the
cell's numbers; a run killed mid-cell and run again leaves the maps of an uninterrupted one."""

from __future__ import annotations

import json
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import REPO, TEST_METHODS, run_cli
from dataset_fixtures import CITYSCAPES_LABEL_IDS, write_cityscapes, write_vspw
from PIL import Image

#: A slow, noisy oracle that also abstains on a share of the pixels it would score.
NOISY = ["--plugin", TEST_METHODS, "--methods", "test-oracle", "--no-tracking", "--save-predictions",
         "--opt", "test-oracle.noise=0.3", "--opt", "test-oracle.abstain=0.1"]
SYNTHETIC = [*NOISY, "--datasets", "synthetic:unseen,synthetic:all", "--opt", "test-oracle.delay=0.03"]


def card(name: str) -> dict:
    return json.loads((REPO / "datasets" / f"{name}.json").read_text())


def results(output: pathlib.Path) -> dict[str, dict]:
    return {r["cell"]["id"]: r for r in (json.loads(p.read_text()) for p in (output / "cells").glob("*.json"))}


def maps(output: pathlib.Path) -> dict[str, np.ndarray]:
    """Every saved map by its path under predictions/."""
    return {str(p.relative_to(output / "predictions")): np.asarray(Image.open(p))
            for p in sorted((output / "predictions").rglob("*.png"))}


def vspw_official_scores(root: pathlib.Path, split: str, predictions: pathlib.Path, classes: range,
                         last_never_truth: bool = False) -> dict:
    """VSPW's eval_miou.py / iou_cal.py: ground truth 0 and 255 void, raw k -> k-1; the prediction read as it
    is (ids 0..N-1); confusion over the split; IoU = TP / (GT + P - TP), averaged over classes with
    ground truth. Restricted to `classes` (reduced ids) as an open-vocabulary split scores them: other
    ground truth is void, and a predicted id outside them (255: no class) is a miss. With
    `last_never_truth`, the last class's ground truth is void too (the authors' quirk, facts.md 2)."""
    size = len(classes)
    confusion = np.zeros((size, size + 1), dtype=np.int64)
    for video in (root / f"{split}.txt").read_text().split():
        for mask in sorted((root / "data" / video / "mask").glob("*.png")):
            truth = np.asarray(Image.open(mask)).astype(np.int64)
            predicted = np.asarray(Image.open(predictions / video / mask.name)).astype(np.int64)
            assert predicted.shape == truth.shape, mask
            truth = np.where((truth == 0) | (truth == 255), -1, truth - 1)
            scored = (truth >= classes.start) & (truth < classes.stop - (1 if last_never_truth else 0))
            rows = truth[scored] - classes.start
            columns = np.where((predicted[scored] >= classes.start) & (predicted[scored] < classes.stop),
                               predicted[scored] - classes.start, size)
            confusion += np.bincount(rows * (size + 1) + columns, minlength=size * (size + 1)).reshape(size, size + 1)
    return _scores(confusion)


def _scores(confusion: np.ndarray) -> dict:
    size = confusion.shape[0]
    tp, truth, predicted = np.diag(confusion[:, :size]), confusion.sum(1), confusion[:, :size].sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = 100 * tp / (truth + predicted - tp)
    present = truth > 0
    return {"mIoU": float(iou[present].mean()), "IoU": [float(v) if p else None for v, p in zip(iou, present)],
            "pAcc": float(100 * tp.sum() / truth.sum())}


def assert_scores_equal(scores: dict, result: dict) -> None:
    assert scores["mIoU"] == pytest.approx(result["metrics"]["mIoU"], rel=1e-12, abs=1e-12)
    assert scores["pAcc"] == pytest.approx(result["metrics"]["pAcc"], rel=1e-12, abs=1e-12)
    ours = [None if s["IoU"] is None or not s["gt_pixels"] else s["IoU"] for s in result["per_class"].values()]
    assert [v if v is None else pytest.approx(v, rel=1e-12, abs=1e-12) for v in scores["IoU"]] == ours


def check_vspw_layout(output: pathlib.Path, dataset: str) -> None:
    """Every cell's reduced maps score its numbers; the raw maps are the reduced ones in the masks' ids."""
    classes = card(dataset)["classes"]
    num_seen = card(dataset)["num_seen"]
    cells = results(output)
    assert cells and all(r["status"] == "done" for r in cells.values())
    for cell_id, result in cells.items():
        folder = output / "predictions" / cell_id
        described = json.loads((folder / "predictions.json").read_text())
        assert described["frames"] == result["counts"]["frames"] > 0
        setting = result["cell"]["setting"]
        scored = {"unseen": range(num_seen, len(classes)), "seen": range(num_seen), "all": range(len(classes))}[setting]
        scores = vspw_official_scores(pathlib.Path(result["data"]["root"]), result["data"]["split"], folder / "reduced",
                                      scored, last_never_truth=result["cell"]["protocol"] == "official")
        assert_scores_equal(scores, result)
        for reduced in sorted((folder / "reduced").rglob("*.png")):
            raw = np.asarray(Image.open(folder / "raw" / reduced.relative_to(folder / "reduced")))
            reduced = np.asarray(Image.open(reduced))
            assert np.array_equal(raw, np.where(reduced == 255, 0, reduced.astype(np.int64) + 1))
    assert any(255 in m for k, m in maps(output).items() if "/reduced/" in k)  # abstentions were written
    assert not list((output / "partial").rglob("*.png"))  # nothing staged is left


def kill_mid_cell_and_resume(output: pathlib.Path, args: list, videos_saved: int) -> None:
    """Start `run ARGS`, SIGKILL it once `videos_saved` videos are saved and a later one is half written,
    then run the same command again."""
    process = subprocess.Popen([sys.executable, "-m", "benchmark", "run", *map(str, args), "--output", str(output)],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (len(list((output / "partial").glob("*/*.json"))) >= videos_saved
               and list((output / "partial").glob("*/predictions/*/*/*.png"))):
        assert process.poll() is None, "the run ended before it could be killed mid-video"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list((output / "partial").glob("*/predictions/*/*/*.png"))  # killed with a video half written
    run_cli("run", *args, "--output", output, check=0)


def test_synthetic_maps_resumed_after_a_kill_equal_an_uninterrupted_run_and_score_its_numbers(tmp_path):
    reference = tmp_path / "reference"
    run_cli("run", *SYNTHETIC, "--output", reference, check=0)
    check_vspw_layout(reference, "synthetic")

    resumed = tmp_path / "resumed"
    kill_mid_cell_and_resume(resumed, SYNTHETIC, videos_saved=1)
    check_vspw_layout(resumed, "synthetic")
    expected, found = maps(reference), maps(resumed)
    assert list(found) == list(expected)
    assert all(np.array_equal(found[k], expected[k]) for k in expected)
    for cell_id, result in results(reference).items():
        assert results(resumed)[cell_id]["metrics"] == result["metrics"]


def test_vspw_layout_maps_score_the_cells_numbers_after_a_kill(tmp_path):
    base = write_vspw(tmp_path / "data", sizes=((24, 32), (24, 32), (24, 32)), frames=4)
    args = [*NOISY, "--opt", "test-oracle.dataset=vspw", "--opt", "test-oracle.delay=0.05", "--data-root", tmp_path / "data",
            "--datasets", "vspw:unseen,vspw:all"]
    kill_mid_cell_and_resume(tmp_path / "run", args, videos_saved=1)
    check_vspw_layout(tmp_path / "run", "vspw")
    assert (tmp_path / "run" / "predictions").is_dir() and base.is_dir()

    # the authors' protocol: "background" is counted as the split's last class, whose ground truth is void
    official = tmp_path / "official"
    run_cli("run", *NOISY, "--opt", "test-oracle.dataset=vspw", "--data-root", tmp_path / "data", "--datasets",
            "vspw:unseen", "--protocol", "official", "--output", official, check=0)
    check_vspw_layout(official, "vspw")


def test_a_finished_cell_without_maps_is_computed_again_to_save_them(tmp_path):
    args = [a for a in SYNTHETIC if a != "--save-predictions"]
    run_cli("run", *args, "--output", tmp_path, check=0)
    before = results(tmp_path)
    assert not (tmp_path / "predictions").exists()
    again = run_cli("run", *args, "--save-predictions", "--output", tmp_path, check=0)
    assert "2 cells (0 finished already)" in again.stdout
    check_vspw_layout(tmp_path, "synthetic")
    assert {k: r["metrics"] for k, r in results(tmp_path).items()} == {k: r["metrics"] for k, r in before.items()}
    assert "2 cells (2 finished already)" in run_cli("run", *SYNTHETIC, "--output", tmp_path, check=0).stdout


def cityscapes_script_scores(root: pathlib.Path, predictions: pathlib.Path) -> dict:
    """cityscapesScripts' evalPixelLevelSemanticLabeling: each ground-truth labelIds file finds its prediction
    by its <city>_<seq>_<frame> name anywhere under the folder; confusion over label ids; for an
    evaluation class, FN = its row minus TP (predictions of ignored ids included), FP = its column over
    the rows of evaluation classes."""
    confusion = np.zeros((256, 256), dtype=np.int64)
    for truth_file in sorted((root / "gtFine" / "val").glob("*/*_gtFine_labelIds.png")):
        key = truth_file.name[: -len("_gtFine_labelIds.png")]
        found = list(predictions.rglob(f"{key}*.png"))
        assert len(found) == 1, key
        truth = np.asarray(Image.open(truth_file)).astype(np.int64)
        predicted = np.asarray(Image.open(found[0])).astype(np.int64)
        np.add.at(confusion, (truth.ravel(), predicted.ravel()), 1)
    ids = CITYSCAPES_LABEL_IDS
    tp = confusion[ids, ids]
    fn = confusion[ids, :].sum(1) - tp
    fp = np.array([confusion[[i for i in ids if i != label], label].sum() for label in ids])
    present = (tp + fn) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = 100 * tp / (tp + fp + fn)
    return {"mIoU": float(iou[present].mean()), "IoU": [float(v) if p else None for v, p in zip(iou, present)],
            "pAcc": float(100 * tp.sum() / (tp + fn).sum())}


def test_cityscapes_maps_in_label_ids_score_the_cells_numbers_and_train_ids_agree(tmp_path):
    write_cityscapes(tmp_path / "data")
    run_cli("run", *NOISY, "--opt", "test-oracle.dataset=cityscapes", "--data-root", tmp_path / "data",
            "--datasets", "cityscapes", "--output", tmp_path / "run", check=0)
    (result,) = results(tmp_path / "run").values()
    folder = tmp_path / "run" / "predictions" / result["cell"]["id"]
    assert_scores_equal(cityscapes_script_scores(tmp_path / "data" / "cityscapes", folder / "labelIds"), result)
    to_label_ids = np.zeros(256, dtype=np.uint8)  # train id -> label id; 255 (no class) -> 0 (unlabeled)
    to_label_ids[: len(CITYSCAPES_LABEL_IDS)] = CITYSCAPES_LABEL_IDS
    for train in sorted((folder / "trainIds").rglob("*.png")):
        label = np.asarray(Image.open(folder / "labelIds" / train.relative_to(folder / "trainIds")))
        assert np.array_equal(label, to_label_ids[np.asarray(Image.open(train))])

"""A miniature VSPW folder in the real on-disk format, read through the same path as the real one."""

import json

import numpy as np
from conftest import TEST_METHODS
from PIL import Image

from benchmark import cli


def write_vspw(root, sizes=((24, 32), (24, 32)), frames=3):
    base = root / "VSPW_480p"
    names = [f"video_{v}" for v in range(len(sizes))]
    (base / "val.txt").parent.mkdir(parents=True)
    (base / "val.txt").write_text("\n".join(names) + "\n")
    rng = np.random.default_rng(0)
    for name, (height, width) in zip(names, sizes):
        for folder in ("origin", "mask"):
            (base / "data" / name / folder).mkdir(parents=True)
        for t in range(frames):
            stem = f"{t * 3 + 1:08d}"
            Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(base / "data" / name / "origin" / f"{stem}.jpg")
            mask = rng.choice([0, 5, 80, 81, 100, 124, 255], size=(height, width)).astype(np.uint8)
            Image.fromarray(mask, mode="L").save(base / "data" / name / "mask" / f"{stem}.png")
    return base


def run(tmp_path, *args):
    out = tmp_path / "run"
    status = cli.main(["run", "--plugin", str(TEST_METHODS), "--data-root", str(tmp_path), "--output", str(out), *args])
    results = [json.loads(p.read_text()) for p in sorted((out / "cells").glob("*.json"))]
    return status, results


def test_vspw_found_under_the_data_root_replaces_synthetic(tmp_path, capsys):
    write_vspw(tmp_path)
    status, results = run(tmp_path, "--methods", "test-oracle", "--opt", "test-oracle.dataset=vspw")
    assert status == 0 and "synthetic" not in capsys.readouterr().out
    (result,) = results
    assert result["cell"]["dataset"] == "vspw" and result["cell"]["setting"] == "unseen"
    assert result["metrics"]["mIoU"] == 100 and len(result["vocabulary"]) == 44
    # raw 81, 100 and 124 are unseen classes; 0, 5, 80 and 255 are not scored
    assert {k for k, v in result["per_class"].items() if v["gt_pixels"]} == {"trash can", "refrigerator", "train"}
    assert result["data"]["videos"] == 2 and result["counts"]["frames"] == 6


def test_official_protocol_drops_train_and_counts_background_as_train(tmp_path):
    write_vspw(tmp_path)
    status, results = run(tmp_path, "--methods", "test-oracle,test-constant", "--opt", "test-oracle.dataset=vspw",
                          "--opt", "test-constant.label=44", "--datasets", "vspw:unseen", "--protocol", "official")
    assert status == 0
    oracle, constant = sorted(results, key=lambda r: r["cell"]["method"])[::-1]
    assert oracle["cell"]["protocol"] == "official" and oracle["vocabulary"][-1] == "background"
    assert oracle["per_class"]["train"]["gt_pixels"] == 0
    # The oracle labels train pixels as train: under the official protocol they are not ground truth.
    assert oracle["metrics"]["mIoU"] == 100 and oracle["per_class"]["train"]["pred_pixels"] == 0
    assert constant["per_class"]["train"]["pred_pixels"] == constant["counts"]["scored_pixels"]


def test_a_mask_that_does_not_fit_its_frame_is_named(tmp_path):
    write_vspw(tmp_path, sizes=((24, 32), (20, 32)))
    status, results = run(tmp_path, "--methods", "test-constant", "--datasets", "vspw:all")
    assert status == 1
    message = results[0]["error"]["message"]
    assert "video video_1, frame 0 (00000001)" in message and "dataset is inconsistent" in message
    assert "VSPW_480p/data/video_1/mask/00000001.png" in message


def test_a_colour_mask_is_rejected_with_the_file(tmp_path):
    base = write_vspw(tmp_path)
    bad = base / "data" / "video_0" / "mask" / "00000004.png"
    Image.new("RGB", (32, 24)).save(bad)
    status, results = run(tmp_path, "--methods", "test-constant", "--datasets", "vspw:unseen")
    assert status == 1 and f"mask {bad} has image mode RGB" in results[0]["error"]["message"]

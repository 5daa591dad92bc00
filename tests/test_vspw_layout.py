"""A miniature VSPW folder in the real on-disk format, read through the same path as the real one."""

import json

from conftest import TEST_METHODS
from dataset_fixtures import write_vspw
from PIL import Image

from benchmark import cli


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


def test_only_the_split_s_videos_are_read_and_the_split_is_an_option(tmp_path):
    write_vspw(tmp_path)
    status, (val,) = run(tmp_path, "--methods", "test-constant", "--datasets", "vspw:all")
    assert status == 0 and val["data"]["split"] == "val" and val["data"]["videos"] == 2
    status, results = run(tmp_path, "--methods", "test-constant", "--datasets", "vspw:all",
                          "--dataset-opt", "vspw.split=train")
    (train,) = [r for r in results if r["data"]["split"] == "train"]
    assert status == 0 and train["data"]["videos"] == 1 and train["counts"]["frames"] == 3


def test_the_full_resolution_release_is_found_and_can_be_required(tmp_path, capsys):
    write_vspw(tmp_path, folder="VSPW")
    status, (result,) = run(tmp_path, "--methods", "test-oracle", "--opt", "test-oracle.dataset=vspw")
    assert status == 0 and result["data"]["root"].endswith("/VSPW") and result["metrics"]["mIoU"] == 100
    assert run(tmp_path, "--methods", "test-oracle", "--datasets", "vspw", "--dataset-opt", "vspw.release=480p")[0] == 2
    assert "dataset vspw not found" in capsys.readouterr().err


def test_raw_names_are_an_option_and_the_official_default(tmp_path):
    write_vspw(tmp_path)
    status, results = run(tmp_path, "--methods", "test-oracle", "--opt", "test-oracle.dataset=vspw",
                          "--datasets", "vspw:unseen", "--dataset-opt", "vspw.names=raw")
    (raw,) = results
    assert status == 0 and raw["vocabulary"][0] == "trash_can" and raw["metrics"]["mIoU"] == 100
    assert raw["class_names"][0] == "trash can"  # tables keep one spelling whatever the method is given
    status, results = run(tmp_path, "--methods", "test-oracle", "--opt", "test-oracle.dataset=vspw",
                          "--datasets", "vspw:unseen", "--protocol", "official")
    official = next(r for r in results if r["cell"]["protocol"] == "official")
    assert official["vocabulary"][:2] == ["trash_can", "cage"] and official["vocabulary"][-1] == "background"


def test_every_setting_reads_100_for_the_oracle(tmp_path):
    write_vspw(tmp_path)
    status, results = run(tmp_path, "--methods", "test-oracle", "--opt", "test-oracle.dataset=vspw",
                          "--datasets", "vspw:unseen,vspw:seen,vspw:all")
    assert status == 0 and len(results) == 3
    for result in results:
        assert result["metrics"]["mIoU"] == 100 and result["metrics"]["pAcc"] == 100, result["cell"]["setting"]
    (everything,) = [r for r in results if r["cell"]["setting"] == "all"]
    assert everything["metrics"]["hIoU"] == 100

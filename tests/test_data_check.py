"""`data check` reports every bad input with its file; a run fails only the cell that reads it."""

import json
import shutil

import numpy as np
import pytest
from conftest import TEST_METHODS
from dataset_fixtures import write_cityscapes, write_vspw
from PIL import Image

from benchmark import cli


def check(capsys, *args):
    status = cli.main(["data", "check", *map(str, args)])
    return status, capsys.readouterr().out


def test_a_clean_copy_passes_with_counts_and_a_class_histogram(tmp_path, capsys):
    base = write_vspw(tmp_path)
    status, out = check(capsys, "vspw", "--root", tmp_path, "--json", tmp_path / "report.json")
    assert status == 0 and out.rstrip().endswith("no problems found")
    assert f"vspw at {base}" in out
    assert "train           1          3          3" in out and "val             2          6          6" in out
    report = json.loads((tmp_path / "report.json").read_text())
    pixels = report["class_pixels"]
    mask_pixels = 3 * 3 * 24 * 32
    assert sum(pixels.values()) + report["unscored_pixels"] == mask_pixels
    assert {name for name, n in pixels.items() if n} == {"ladder", "bag or package", "trash can", "refrigerator", "train"}
    # the dataset's own folder works as --root too
    assert check(capsys, "vspw", "--root", base)[0] == 0


def test_cityscapes_check_counts_snippet_frames(tmp_path, capsys):
    write_cityscapes(tmp_path)
    status, out = check(capsys, "cityscapes", "--root", tmp_path)
    assert status == 0
    assert "val             2         60          2" in out and "train           1         30          1" in out
    assert "sidewalk" in out and "novel" in out


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def remove_frame(base):
    (base / "data" / "video_1" / "origin" / "00000004.jpg").unlink()
    return base / "data" / "video_1" / "mask" / "00000004.png"


def truncate_frame(base):
    path = base / "data" / "video_1" / "origin" / "00000004.jpg"
    truncate(path)
    return path


def truncate_mask(base):
    path = base / "data" / "video_1" / "mask" / "00000004.png"
    truncate(path)
    return path


def resize_mask(base):
    path = base / "data" / "video_1" / "mask" / "00000004.png"
    Image.fromarray(np.zeros((20, 32), np.uint8), mode="L").save(path)
    return path


def unknown_label(base):
    path = base / "data" / "video_1" / "mask" / "00000004.png"
    Image.fromarray(np.full((24, 32), 130, np.uint8), mode="L").save(path)
    return path


def remove_masks(base):
    path = base / "data" / "video_1" / "mask"
    shutil.rmtree(path)
    return path


def masks_as_a_file(base):
    path = remove_masks(base)
    path.write_text("not a folder")
    return path


def empty_split(base):
    (base / "val.txt").write_text("\n")
    return base / "val.txt"


def duplicate_id(base):
    (base / "val.txt").write_text("video_0\nvideo_1\nvideo_0\n")
    return base / "val.txt"


def wrong_class_list(base):
    ids = json.loads((base / "label_num_dic_final.json").read_text())
    ids["wall"], ids["ceiling"] = 2, 1
    (base / "label_num_dic_final.json").write_text(json.dumps(ids))
    return base / "label_num_dic_final.json"


BAD_INPUTS = {
    "missing-frame": (remove_frame, "has no frame 00000004"),
    "unreadable": (truncate_frame, "corrupt or truncated"),
    "unreadable-mask": (truncate_mask, "corrupt or truncated"),
    "size-mismatch": (resize_mask, "(20, 32)"),
    "missing-masks": (remove_masks, "video video_1 has no masks: its mask folder is missing"),
    "missing-masks:file": (masks_as_a_file, "video video_1 has no masks: its mask folder is a file, not a folder"),
    "unknown-label": (unknown_label, "mask values 130 are outside the known set (0..124, 255)"),
    "empty-split": (empty_split, "lists no videos"),
    "duplicate-id": (duplicate_id, "'video_0' is listed again on line 3"),
    "class-list": (wrong_class_list, "wall: 2 (card: 1); ceiling: 1 (card: 2)"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_each_bad_input_is_named_by_data_check_and_fails_only_its_cell(tmp_path, capsys, case):
    damage, message = BAD_INPUTS[case]
    path = damage(write_vspw(tmp_path))
    status, out = check(capsys, "vspw", "--root", tmp_path)
    kind = case.split(":")[0].removesuffix("-mask")
    assert status == 1 and f"[{kind}] {path}: " in out and message in out

    output = tmp_path / "run"
    status = cli.main(["run", "--plugin", str(TEST_METHODS), "--methods", "test-constant", "--data-root", str(tmp_path),
                       "--datasets", "vspw:all,synthetic:all", "--output", str(output)])
    results = {r["cell"]["dataset"]: r for r in (json.loads(p.read_text()) for p in (output / "cells").glob("*.json"))}
    assert status == 1 and results["synthetic"]["status"] == "done"
    assert results["vspw"]["status"] == "failed" and str(path) in results["vspw"]["error"]["message"]


def test_a_missing_snippet_frame_is_reported(tmp_path, capsys):
    base = write_cityscapes(tmp_path)
    missing = base / "leftImg8bit_sequence" / "val" / "frankfurt" / "frankfurt_000000_000300_leftImg8bit.png"
    missing.unlink()
    status, out = check(capsys, "cityscapes", "--root", tmp_path)
    assert status == 1 and f"[missing-frame] {missing}: the mask frankfurt_000000_000294_gtFine_labelTrainIds.png" in out


def test_a_missing_dataset_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["data", "check", "vspw", "--root", str(tmp_path)]) == 2
    assert "dataset vspw not found" in capsys.readouterr().err


def test_speed_prints_frames_per_second(tmp_path, capsys):
    write_vspw(tmp_path)
    status, out = check(capsys, "vspw", "--root", tmp_path, "--speed", "--speed-frames", "6")
    assert status == 0 and "frames/s decoding on demand" in out and "with decoding ahead" in out

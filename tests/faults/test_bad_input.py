"""Bad input, as a user types it: refused with one clear line that names the value, the file or the
folder and what is expected; never a traceback; bad data fails only the cell that reads it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import run_cli
from dataset_fixtures import write_vspw
from PIL import Image

CHANCE = ["run", "--methods", "chance", "--datasets", "synthetic:unseen", "--no-tracking"]


def plugin(tmp_path, text: str) -> str:
    path = tmp_path / "my_method.py"
    path.write_text(text)
    return str(path)


def vspw_run(tmp_path, damage):
    base = write_vspw(tmp_path / "data")
    damage(base)
    return ["run", "--methods", "chance", "--datasets", "vspw:all", "--data-root", str(tmp_path / "data"),
            "--no-tracking"]


def no_masks(base):
    shutil.rmtree(base / "data" / "video_1" / "mask")


def masks_a_file(base):
    no_masks(base)
    (base / "data" / "video_1" / "mask").write_text("")


def small_mask(base):
    Image.fromarray(np.zeros((20, 32), np.uint8), mode="L").save(base / "data" / "video_1" / "mask" / "00000004.png")


#: case -> (arguments given tmp_path, exit status, what the message must say)
CASES = {
    "option not an integer": (lambda t: [*CHANCE, "--opt", "chance.seed=abc"], 2,
                              ["chance.seed='abc': expected an integer"]),
    "option not a number": (lambda t: [*CHANCE[:2], "clip-cost-volume", *CHANCE[3:], "--opt",
                                       "clip-cost-volume.overlap=lots"], 2,
                            ["clip-cost-volume.overlap='lots': expected a number in [0, 1)"]),
    "option out of range": (lambda t: [*CHANCE[:2], "sam-clip", *CHANCE[3:], "--opt", "sam-clip.pred_iou_thresh=2"],
                            2, ["sam-clip.pred_iou_thresh=2: expected a number in [0, 1]"]),
    "option unknown": (lambda t: [*CHANCE, "--opt", "chance.sead=1"], 2, ["chance has no option 'sead'", "seed"]),
    "dataset option of the wrong type": (lambda t: [*CHANCE, "--dataset-opt", "synthetic.videos=many"], 2,
                                         ["synthetic.videos='many': expected an integer"]),
    "plugin with a syntax error": (lambda t: [*CHANCE, "--plugin", plugin(t, "import os\n\nclass X(:\n    pass\n")],
                                   2, ["my_method.py, line 3: SyntaxError"]),
    "plugin importing what is not installed": (
        lambda t: [*CHANCE, "--plugin", plugin(t, "import numpy\nimport not_installed_anywhere\n")], 2,
        ["my_method.py, line 2: ModuleNotFoundError: No module named 'not_installed_anywhere'"]),
    "plugin raising on import": (lambda t: [*CHANCE, "--plugin", plugin(t, "SIZES = {}\nSIZE = SIZES['big']\n")], 2,
                                 ["my_method.py, line 2: KeyError: 'big'"]),
    "output folder that cannot be made": (lambda t: [*CHANCE, "--output", "/proc/benchmark-run"], 2,
                                          ["--output /proc/benchmark-run: cannot create or write it"]),
    "video without a mask folder": (lambda t: vspw_run(t, no_masks), 1,
                                    ["video_1/mask: video video_1 has no masks: its mask folder is missing"]),
    "video whose mask folder is a file": (lambda t: vspw_run(t, masks_a_file), 1,
                                          ["video_1/mask: video video_1 has no masks: its mask folder is a file"]),
    "mask of the wrong size": (lambda t: vspw_run(t, small_mask), 1,
                               ["mask", "00000004.png is (20, 32) but frame", "nearest-neighbour"]),
}


@pytest.mark.fault("bad input: options, plugins, output folder, dataset files")
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_with_a_clear_message_and_no_traceback(tmp_path, case):
    arguments, status, says = CASES[case]
    args = arguments(tmp_path)
    if "--output" not in args:
        args += ["--output", str(tmp_path / "run")]
    done = run_cli(*args)
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr
    for text in says:
        assert text in done.stderr, done.stderr
    if status == 2:  # refused before any work
        assert not (tmp_path / "run" / "cells").exists()


@pytest.mark.fault("bad input: options, plugins, output folder, dataset files")
@pytest.mark.parametrize("damage, says", [(no_masks, "its mask folder is missing"),
                                          (masks_a_file, "its mask folder is a file")])
def test_data_check_sees_every_video_without_masks(tmp_path, damage, says):
    base = write_vspw(tmp_path)
    damage(base)
    done = run_cli("data", "check", "vspw", "--root", tmp_path)
    assert done.returncode == 1 and f"[missing-masks] {base / 'data' / 'video_1' / 'mask'}: " in done.stdout
    assert says in done.stdout


def test_an_unlabelled_split_is_read_without_masks(tmp_path):
    from benchmark.data import catalog

    base = write_vspw(tmp_path, splits={"test": ["video_t"]})
    shutil.rmtree(base / "data" / "video_t" / "mask")
    (record,) = catalog.reader("vspw").read_videos(base, "test")
    assert record.name == "video_t" and record.masks == {} and len(record.frames) == 3

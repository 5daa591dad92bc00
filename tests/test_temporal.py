"""`temporal`: an image method's per-pixel scores combined over neighbouring frames."""

import json

import pytest
import torch
from conftest import run_cli

from benchmark import registry
from benchmark.data import synthetic
from benchmark.interface import Video
from methods import temporal

VOCABULARY = ["plain red circle", "striped blue square", "plain green triangle"]


def result(output, method):
    (path,) = (output / "cells").glob(f"{method}__*.json")
    return json.loads(path.read_text())


def test_each_base_frame_is_computed_once_and_one_frame_windows_equal_the_base(tmp_path):
    data = ["--datasets", "synthetic:unseen", "--dataset-opt", "synthetic.videos=2", "--dataset-opt",
            "synthetic.frames=9", "--dataset-opt", "synthetic.annotate_every=2", "--no-tracking"]
    run_cli("run", "--methods", "sclip,temporal", "--opt", "temporal.window=1", "--output", tmp_path / "one", *data,
            check=0)
    alone, wrapped = result(tmp_path / "one", "sclip"), result(tmp_path / "one", "temporal")
    assert wrapped["metrics"] == alone["metrics"]
    assert wrapped["method_counts"]["base_frames"] == 2 * 5  # frames 0, 2, 4, 6, 8 of each video

    run_cli("run", "--methods", "temporal", "--opt", "temporal.window=3", "--output", tmp_path / "three", *data,
            check=0)
    three = result(tmp_path / "three", "temporal")
    # 5 labelled frames x 3 would be 15 per video; each of the 9 frames is computed once
    assert three["method_counts"]["base_frames"] == 2 * 9
    assert three["provenance"]["method"]["temporal"]["offsets"] == [-1, 0, 1]


def test_a_base_without_scores_is_refused_with_the_ones_that_have_them():
    with pytest.raises(ValueError, match=r"base='chance': chance gives no per-pixel class scores.*sclip"):
        registry.create("temporal", base="chance")
    with pytest.raises(ValueError, match="neither temporal's options nor sclip's"):
        registry.create("temporal", base="sclip", no_such_option=1)


def test_warping_follows_the_flow():
    scores = torch.zeros(2, 6, 8)
    scores[0, :, 5] = 1  # class 0 in the neighbour's column 5
    flow = torch.zeros(2, 6, 8)
    flow[0] = 2  # every pixel of the frame is 2 columns further right in the neighbour
    warped = temporal.warp(scores, flow)
    assert torch.equal(warped[0, :, 3], torch.ones(6)) and warped[0].sum() == 6


def test_raft_weights_from_a_local_file_align_the_neighbours(tmp_path):
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    weights = tmp_path / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), weights)
    root = synthetic.ensure({"videos": 1, "frames": 4})
    frames = sorted((root / "data" / "val_000" / "origin").glob("*.jpg"))
    method = registry.create("temporal", base="sclip", window=3, flow=str(weights))
    method.setup(VOCABULARY, torch.device("cpu"))
    maps = list(method.segment(Video("val_000", frames, [0, 1, 2, 3])))
    assert len(maps) == 4 and maps[0].shape == (72, 96)
    assert method.take_counts()["base_frames"] == 4
    with pytest.raises(ValueError, match="not raft_large weights"):
        registry.create("temporal", flow=str(weights), flow_model="raft_large").setup(VOCABULARY, torch.device("cpu"))

"""The SAM + CLIP region classifier: SAM loading, crop geometry, painting order, batching, fills, the CLI."""

import json

import pytest
import torch

from benchmark import ABSTAIN, cli
from methods import clip, sam
from methods.clip_cost_volume import ClipCostVolume
from methods.sam_clip import UNCOVERED, SamClip, crop_window, paint, region_boxes, region_crop

VOCABULARY = ["red circle", "blue square", "green triangle", "yellow circle"]
#: Thresholds under which even random SAM weights keep masks.
PERMISSIVE = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "points_per_side": 8}


@pytest.fixture(scope="module")
def tiny_sam_checkpoint(tmp_path_factory):
    """A tiny SAM with random weights, saved as a state dict: the file format of Meta's checkpoints."""
    torch.manual_seed(5)
    path = tmp_path_factory.mktemp("sam") / "sam_tiny.pth"
    torch.save(sam.build_sam(sam.SAM_CONFIGS["tiny"]).state_dict(), path)
    return path


def method(checkpoint, **options):
    found = SamClip(sam_checkpoint=str(checkpoint), clip_model=clip.TINY_MODEL, clip_pretrained="random", **options)
    found.setup(VOCABULARY, torch.device("cpu"))
    return found


def frame(seed=0, height=40, width=60):
    return torch.randint(0, 256, (3, height, width), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def box_mask(top, left, bottom, right, height=40, width=60):
    mask = torch.zeros(height, width, dtype=torch.bool)
    mask[top:bottom, left:right] = True
    return mask


# -- loading ----------------------------------------------------------------------------------------


def test_a_checkpoint_loads_by_path_with_its_type_read_from_its_shapes(tiny_sam_checkpoint):
    loaded = sam.load_sam("auto", tiny_sam_checkpoint)
    assert loaded.name == "tiny" and loaded.weights == str(tiny_sam_checkpoint.resolve())
    saved = torch.load(tiny_sam_checkpoint, weights_only=True)
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, saved[key]), key
    assert sam.load_sam("tiny", tiny_sam_checkpoint) is loaded  # kept per process: the cells of a run share it


def test_missing_checkpoint_wrong_model_type_and_empty_vocabulary_fail_clearly(tiny_sam_checkpoint, tmp_path,
                                                                               monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"SAM checkpoint .*nowhere\.pth does not exist.*sam_vit_b_01ec64"):
        sam.load_sam("vit_b", tmp_path / "nowhere.pth")
    monkeypatch.setenv(sam.CHECKPOINT_ENV, str(tmp_path / "moved.pth"))
    with pytest.raises(FileNotFoundError, match=r"\$BENCHMARK_SAM_CHECKPOINT: SAM checkpoint .*moved\.pth does not"):
        sam.load_sam("auto", "auto")
    monkeypatch.setenv(sam.CHECKPOINT_ENV, str(tiny_sam_checkpoint))
    assert sam.load_sam("auto", "auto").weights == str(tiny_sam_checkpoint.resolve())
    with pytest.raises(ValueError, match=r"sam_tiny\.pth is a tiny checkpoint, but the model type is vit_b; "
                                         r"pass sam_model=tiny"):
        sam.load_sam("vit_b", tiny_sam_checkpoint)
    with pytest.raises(ValueError, match=r"sam_model='vit_x': choose one of vit_b, vit_l, vit_h, tiny"):
        SamClip(sam_model="vit_x")
    foreign = tmp_path / "foreign.pth"
    torch.save({"weight": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match=r"foreign\.pth fits none of the model types"):
        sam.load_sam("auto", foreign)
    with pytest.raises(ValueError, match="vocabulary is empty"):
        SamClip(sam_checkpoint=str(tiny_sam_checkpoint), clip_model=clip.TINY_MODEL,
                clip_pretrained="random").setup([], torch.device("cpu"))
    with pytest.raises(ValueError, match=r"fill='everything'"):
        SamClip(fill="everything")


def test_cli_refuses_bad_options_before_running_and_names_a_missing_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["run", "--methods", "sam-clip", "--output", str(out), "--opt", "sam-clip.fill=everything"]) == 2
    assert "method sam-clip: sam-clip fill='everything': choose one of dense, nearest, abstain" in capsys.readouterr().err
    assert not (out / "cells").exists()
    done = cli.main(["run", "--methods", "sam-clip", "--datasets", "synthetic:unseen", "--output", str(out),
                     "--opt", f"sam-clip.sam_checkpoint={tmp_path / 'sam_vit_b.pth'}"])
    assert done == 1
    result = json.loads(next((out / "cells").glob("*.json")).read_text())
    assert result["status"] == "failed"
    assert f"SAM checkpoint {tmp_path / 'sam_vit_b.pth'} does not exist" in result["error"]["message"]


# -- geometry, painting, batching (hand-built masks) ------------------------------------------------


def test_boxes_and_crop_windows_follow_the_mask_and_the_context_scale():
    masks = torch.stack([box_mask(5, 10, 15, 30), box_mask(0, 10, 10, 30), box_mask(38, 59, 40, 60)])
    masks[0, 5, 10] = False  # a corner missing does not shrink the box
    assert region_boxes(masks).tolist() == [[5, 10, 15, 30], [0, 10, 10, 30], [38, 59, 40, 60]]
    assert crop_window((5, 10, 15, 30), 1.0, 40, 60) == (5, 10, 15, 30)
    # x2 about the centre (10, 20): 20 high, 40 wide, the top clipped at the frame's edge.
    assert crop_window((0, 10, 10, 30), 2.0, 40, 60) == (0, 0, 15, 40)
    assert crop_window((5, 10, 15, 30), 1.2, 40, 60) == (4, 8, 16, 32)


def test_a_crop_keeps_the_masked_pixels_blanks_the_rest_and_pads_to_a_centred_square():
    image = frame(1)
    mask = box_mask(5, 10, 15, 30)
    mask[5:10, 10:20] = False  # an L shape: part of its box lies outside the mask
    crop = region_crop(image, mask, (5, 10, 15, 30), 1.0, 20)  # 10 x 20 box -> 20 x 20 square, no resize
    assert crop.shape == (3, 20, 20)
    assert (crop[:, :5] == 0).all() and (crop[:, 15:] == 0).all()  # 5 rows of padding above and below
    expected = image[:, 5:15, 10:30].float() * mask[5:15, 10:30]
    assert torch.equal(crop[:, 5:15], expected)
    assert (crop[:, 5:10, :10] == 0).all() and torch.equal(crop[:, 12, 15], image[:, 12, 25].float())
    resized = region_crop(image, mask, (5, 10, 15, 30), 1.0, 64)
    assert resized.shape == (3, 64, 64) and resized.min() >= 0 and resized.max() <= 255


def test_painting_puts_smaller_regions_on_top_whatever_the_order_and_leaves_the_rest_uncovered():
    big, small, apart = box_mask(0, 0, 30, 50), box_mask(10, 10, 20, 20), box_mask(32, 52, 40, 60)
    for order in ([small, apart, big], [big, small, apart], [apart, big, small]):
        labels = {id(big): 0, id(small): 1, id(apart): 2}
        painted = paint(torch.stack(order), torch.tensor([labels[id(m)] for m in order]))
        assert (painted[small] == 1).all()
        assert (painted[big & ~small] == 0).all()
        assert (painted[apart] == 2).all()
        assert (painted[~(big | apart)] == UNCOVERED).all()


def test_crops_are_named_in_batches_with_the_same_names_as_one_by_one(tiny_sam_checkpoint, monkeypatch):
    image = frame(2)
    masks = [box_mask(0, 0, 30, 50), box_mask(10, 10, 20, 20), box_mask(32, 52, 40, 60),
             box_mask(0, 40, 12, 60), box_mask(20, 0, 40, 25)]
    one_by_one = method(tiny_sam_checkpoint, crop_batch_size=1)
    batched = method(tiny_sam_checkpoint, crop_batch_size=2)
    stacked = torch.stack(masks)
    calls = []
    real = type(batched.clip).image_embeddings

    def spy(self, images):
        calls.append(len(images))
        return real(self, images)

    monkeypatch.setattr(type(batched.clip), "image_embeddings", spy)
    names = batched.name_regions(image, stacked)
    assert calls == [2, 2, 1]
    calls.clear()
    assert torch.equal(one_by_one.name_regions(image, stacked), names)
    assert calls == [1] * 5
    # Each name is CLIP's zero-shot class of that region's own crop.
    boxes = region_boxes(stacked).tolist()
    for i, mask in enumerate(masks):
        crop = region_crop(image, mask, boxes[i], 1.0, batched.clip.image_size)
        embedding = real(batched.clip, clip.normalize(crop[None]))
        assert (embedding @ batched.classes.T).argmax().item() == names[i].item()
    # The map: every region painted with its name, smaller ones on top.
    labels = batched.label_regions(image, masks)
    assert torch.equal(labels[masks[1]], names[1].expand(int(masks[1].sum())))
    assert torch.equal(labels[masks[2]], names[2].expand(int(masks[2].sum())))


# -- fills and the no-mask fallback ------------------------------------------------------------------


def test_uncovered_pixels_are_filled_as_chosen(tiny_sam_checkpoint):
    image = frame(3)
    left, right = box_mask(0, 0, 40, 10), box_mask(0, 50, 40, 60)
    middle = ~(left | right)
    abstain = method(tiny_sam_checkpoint, fill="abstain")
    labels = abstain.label_regions(image, [left, right])
    assert (labels[middle] == ABSTAIN).all()
    names = abstain.name_regions(image, torch.stack([left, right]))

    nearest = method(tiny_sam_checkpoint, fill="nearest").label_regions(image, [left, right])
    assert (nearest[:, 10:30] == names[0]).all() and (nearest[:, 30:50] == names[1]).all()

    dense_method = method(tiny_sam_checkpoint, fill="dense")
    dense = dense_method.label_regions(image, [left, right])
    reference = ClipCostVolume(clip_model=clip.TINY_MODEL, clip_pretrained="random")
    reference.setup(VOCABULARY, torch.device("cpu"))
    assert torch.equal(dense[middle], reference.segment_frame(image)[middle])
    assert torch.equal(dense[left | right], labels[left | right])
    assert dense_method.take_counts() == {"masks": 2, "pixels": 40 * 60, "filled_pixels": int(middle.sum())}


def test_random_sam_finds_masks_under_permissive_thresholds_and_none_under_the_defaults(tiny_sam_checkpoint):
    image = frame(4, 72, 96)
    permissive = method(tiny_sam_checkpoint, **PERMISSIVE)
    labels = permissive.segment_frame(image)
    counts = permissive.take_counts()
    assert counts["masks"] >= 1 and "frames_without_masks" not in counts
    assert labels.shape == (72, 96) and labels.dtype == torch.int64 and labels.max() < len(VOCABULARY)
    cleaned = method(tiny_sam_checkpoint, **PERMISSIVE, min_mask_region_area=50)  # OpenCV removes specks
    assert cleaned.segment_frame(image).shape == (72, 96) and cleaned.take_counts()["masks"] >= 1

    for fill in ("dense", "nearest", "abstain"):
        strict = method(tiny_sam_checkpoint, fill=fill)
        labels = strict.segment_frame(image)
        assert strict.take_counts() == {"masks": 0, "frames_without_masks": 1, "pixels": 72 * 96,
                                        "filled_pixels": 72 * 96}
        if fill != "dense":  # nothing to be near: "none of these"
            assert (labels == ABSTAIN).all()
    blank = method(tiny_sam_checkpoint, fill="abstain")
    assert (blank.segment_frame(torch.zeros(3, 72, 96, dtype=torch.uint8)) == ABSTAIN).all()


def test_run_on_the_synthetic_dataset_counts_the_frames_without_masks(tmp_path, tiny_sam_checkpoint):
    out = tmp_path / "run"
    assert cli.main(["run", "--methods", "sam-clip", "--datasets", "synthetic:unseen", "--output", str(out),
                     "--opt", f"sam-clip.sam_checkpoint={tiny_sam_checkpoint}",
                     "--opt", "sam-clip.points_per_side=8"]) == 0
    result = json.loads(next((out / "cells").glob("*.json")).read_text())
    assert result["status"] == "done" and result["counts"]["frames"] == 80
    # Random weights under the default thresholds: no frame has a mask, and every one is counted.
    assert result["method_counts"]["frames_without_masks"] == 80
    assert result["method_counts"]["filled_pixels"] == result["method_counts"]["pixels"] == 80 * 72 * 96
    recorded = result["provenance"]["method"]
    assert recorded["sam"]["model"] == "tiny" and recorded["sam"]["points_per_side"] == 8
    assert recorded["regions"] == {"context": 1.0, "crop_batch_size": 32, "fill": "dense"}
    # CLIP auto: no real weights here, so the shipped toy CLIP, which needs no warning.
    assert recorded["clip"]["model"] == clip.TOY_MODEL and not any("CLIP" in w for w in recorded["warnings"])

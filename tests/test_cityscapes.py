"""Cityscapes in its real layouts (snippets and single frames, labelIds and labelTrainIds)."""

import json

import numpy as np
import pytest
from conftest import TEST_METHODS
from dataset_fixtures import write_cityscapes

from benchmark import cli
from benchmark.data import catalog
from benchmark.data.records import read_mask

NOVEL = ["sidewalk", "fence", "traffic light", "traffic sign", "vegetation", "terrain", "rider", "train"]


def run(tmp_path, *args):
    out = tmp_path / "run"
    status = cli.main(["run", "--plugin", str(TEST_METHODS), "--data-root", str(tmp_path), "--output", str(out),
                       "--datasets", "cityscapes", *args])
    return status, [json.loads(p.read_text()) for p in sorted((out / "cells").glob("*.json"))]


def test_snippets_are_30_frames_with_the_20th_annotated(tmp_path):
    base = write_cityscapes(tmp_path)
    reader = catalog.reader("cityscapes")
    assert reader.locate(tmp_path) == base and reader.splits(base) == ["train", "val"]
    videos = reader.read_videos(base, "val")
    assert [v.name for v in videos] == ["frankfurt_000000_000294", "lindau_000001_000019"]
    first = videos[0]
    assert len(first.frames) == 30 and first.annotated == [19]
    assert first.frames[0].name == "frankfurt_000000_000275_leftImg8bit.png"
    assert first.frames[19].name == "frankfurt_000000_000294_leftImg8bit.png"
    # labelTrainIds is read when present, labelIds otherwise
    assert first.masks[19].name.endswith("_labelTrainIds.png") and videos[1].masks[19].name.endswith("_labelIds.png")
    assert reader.notes(base, "val") == []


def test_label_ids_decode_exactly_as_the_train_id_files(tmp_path):
    base = write_cityscapes(tmp_path)
    (video, *_) = catalog.reader("cityscapes").read_videos(base, "val")
    gt = video.masks[19]
    via_train_ids = video.mask_format.decode(read_mask(gt), gt)
    label_ids = gt.with_name(gt.name.replace("labelTrainIds", "labelIds"))
    reader = catalog.reader("cityscapes")
    via_label_ids = reader.label_ids.decode(read_mask(label_ids), label_ids)
    np.testing.assert_array_equal(via_train_ids, via_label_ids)
    # ids 0, 1, 4, 9 and 29 are no evaluation class; 7 road -> 0, 26 car -> 13, 33 bicycle -> 18
    raw = np.array([0, 1, 4, 9, 29, 7, 26, 33], dtype=np.uint8)
    assert reader.label_ids.decode(raw, label_ids).tolist() == [255] * 5 + [0, 13, 18]


def test_all_setting_scores_19_classes_and_the_novel_subset():
    setting = catalog.reader("cityscapes").setting("all")
    assert setting.vocabulary[:3] == ["road", "sidewalk", "building"] and len(setting.vocabulary) == 19
    assert [setting.class_names[k] for k in setting.groups["novel"]] == NOVEL
    assert sorted(setting.groups["novel"] + setting.groups["base"]) == list(range(19))
    other = catalog.reader("cityscapes", {"novel": ["traffic light", "rider"]}).setting("all")
    assert other.groups["novel"] == [6, 12] and len(other.groups["base"]) == 17
    with pytest.raises(ValueError, match="'pavement' is not one of its classes"):
        catalog.reader("cityscapes", {"novel": ["pavement"]}).setting("all")
    with pytest.raises(ValueError, match="cityscapes has no official protocol"):
        catalog.reader("cityscapes").setting("all", "official")


@pytest.mark.parametrize("layout", ["sequence", "frames"])
def test_oracle_reads_100_in_both_layouts(tmp_path, layout):
    write_cityscapes(tmp_path, layout=layout)
    status, (result,) = run(tmp_path, "--methods", "test-oracle", "--opt", "test-oracle.dataset=cityscapes")
    assert status == 0 and result["cell"]["setting"] == "all"
    assert result["metrics"]["mIoU"] == 100 and result["metrics"]["mIoU_novel"] == 100
    assert result["metrics"]["mIoU_base"] == 100 and result["counts"]["frames"] == 2
    present = {k for k, v in result["per_class"].items() if v["gt_pixels"]}
    assert present == {"road", "sidewalk", "fence", "traffic light", "rider", "car", "train", "bicycle"}
    notes = result["data"]["notes"]
    assert (notes == []) if layout == "sequence" else ("temporal methods see one frame" in notes[0])


def test_novel_metrics_come_from_the_same_confusion_matrix(tmp_path):
    write_cityscapes(tmp_path)
    status, (result,) = run(tmp_path, "--methods", "test-oracle", "--opt", "test-oracle.dataset=cityscapes",
                            "--opt", "test-oracle.noise=0.5")
    assert status == 0
    per_class, metrics = result["per_class"], result["metrics"]
    for group, members in (("novel", NOVEL), ("base", [c for c in per_class if c not in NOVEL])):
        scored = [per_class[c]["IoU"] for c in members if per_class[c]["gt_pixels"]]
        assert metrics[f"mIoU_{group}"] == pytest.approx(sum(scored) / len(scored))
    assert 0 < metrics["mIoU_novel"] < 100


def test_a_missing_snippet_frame_fails_the_cell_naming_the_file(tmp_path):
    base = write_cityscapes(tmp_path)
    missing = base / "leftImg8bit_sequence" / "val" / "lindau" / "lindau_000001_000003_leftImg8bit.png"
    missing.unlink()
    status, (result,) = run(tmp_path, "--methods", "test-constant")
    assert status == 1 and str(missing) in result["error"]["message"]
    assert "lindau_000001_000019_gtFine_labelIds.png" in result["error"]["message"]


def test_the_official_protocol_is_refused_for_cityscapes(tmp_path, capsys):
    write_cityscapes(tmp_path)
    assert run(tmp_path, "--methods", "test-constant", "--protocol", "official")[0] == 2
    assert "cityscapes has no official protocol" in capsys.readouterr().err

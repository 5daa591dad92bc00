import hashlib

import numpy as np
import pytest
from PIL import Image

from benchmark.data import synthetic, vspw
from benchmark.data.cards import load_card
from benchmark.data.records import DatasetError, read_mask


def digest(root):
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() for p in files}


def test_written_in_the_vspw_layout_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHMARK_CACHE", str(tmp_path))
    root = synthetic.ensure({"videos": 2, "frames": 6, "annotate_every": 2})
    assert vspw.read_split(root, "val") == ["val_000", "val_001"]
    videos = synthetic.SyntheticReader().read_videos(root, "val")
    assert [len(v.frames) for v in videos] == [6, 6]
    assert videos[0].annotated == [0, 2, 4]
    assert videos[0].frames[0].name == "00000001.jpg" and videos[0].masks[2].name == "00000003.png"
    classes = load_card("synthetic")["classes"]
    mask = read_mask(videos[0].masks[0])
    assert mask.shape == (72, 96) and set(np.unique(mask)) <= {0, 255, *range(1, len(classes) + 1)}
    assert {0, 255} <= set(np.unique(mask))  # background is "others", outlines are void
    with Image.open(videos[0].frames[0]) as frame:
        assert frame.size == (96, 72) and frame.mode == "RGB"


def test_deterministic_by_seed(tmp_path, monkeypatch):
    options = {"videos": 1, "train_videos": 1, "frames": 4}
    monkeypatch.setenv("BENCHMARK_CACHE", str(tmp_path / "a"))
    first = digest(synthetic.ensure(options))
    monkeypatch.setenv("BENCHMARK_CACHE", str(tmp_path / "b"))
    assert digest(synthetic.ensure(options)) == first
    assert digest(synthetic.ensure({**options, "seed": 1})) != first


def test_objects_move_and_unseen_classes_appear(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHMARK_CACHE", str(tmp_path))
    root = synthetic.ensure()
    videos = synthetic.SyntheticReader().read_videos(root, "val")
    first, last = (read_mask(videos[0].masks[i]) for i in (0, videos[0].annotated[-1]))
    assert (first != last).mean() > 0.02
    seen = load_card("synthetic")["num_seen"]
    present = set()
    for video in videos:
        present |= set(np.unique(read_mask(video.masks[0])).tolist())
    assert any(seen < k < 255 for k in present), "the default synthetic val split must contain unseen classes"


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="unknown synthetic dataset option.*'vidoes'"):
        synthetic.resolve_options({"vidoes": 3})
    with pytest.raises(ValueError, match="frames"):
        synthetic.resolve_options({"frames": 0})


def test_missing_split_file_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="val.txt: split file not found"):
        vspw.read_split(tmp_path, "val")
    (tmp_path / "val.txt").write_text("v1\n")
    with pytest.raises(DatasetError, match="video v1 has no frames"):
        vspw.VSPWReader().read_videos(tmp_path, "val")


def test_unseen_classes_compose_attributes_seen_in_training():
    card = load_card("synthetic")
    seen, unseen = card["classes"][:card["num_seen"]], card["classes"][card["num_seen"]:]
    for name in unseen:
        for position, word in enumerate(name.split(" ")):
            assert any(other.split(" ")[position] == word for other in seen), (name, word)
    assert len(set(card["classes"])) == len(card["classes"])


def test_degraded_frames_are_listed_and_look_degraded(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHMARK_CACHE", str(tmp_path))
    card = load_card("synthetic")
    root = synthetic.ensure()
    listed = synthetic.degraded_frames(root)
    videos = {v.name: v for v in synthetic.SyntheticReader().read_videos(root, "val")}
    kinds = {kind for frames in listed.values() for kind in frames.values()}
    assert kinds == set(card["degradations"])
    for name, frames in listed.items():
        if name not in videos:
            continue
        ids = [p.stem for p in videos[name].frames]
        for frame_id, kind in frames.items():
            assert frame_id not in (ids[0], ids[-1])  # the distant frame RFE uses is always clean
            if kind == "fade":
                image = np.asarray(Image.open(videos[name].frames[ids.index(frame_id)]), np.float32)
                assert np.abs(image - image.mean(-1, keepdims=True)).mean() < 12  # colour almost gone
    assert synthetic.degraded_frames(synthetic.ensure({"degraded_percent": 0})) == {}


def test_crops_show_one_named_object():
    card = load_card("synthetic")
    crop = synthetic.render_crop(np.random.default_rng(0), "striped red triangle", card, size=64)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    red = (crop[..., 0] > 150) & (crop[..., 1] < 100) & (crop[..., 2] < 100)
    assert red.mean() > 0.02

"""`predict`: a method on the user's own footage and words, from a video made here with PyAV."""

import json

import av
import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from benchmark import predict
from benchmark.data import synthetic
from benchmark.data.cards import load_card
from benchmark.data.footage import FootageError, Selection

UNSEEN = load_card("synthetic")["classes"][16:]


def write_mp4(path, frames, fps=5):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.pix_fmt = "yuv420p"
        stream.height, stream.width = frames[0].shape[:2]
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def synthetic_mp4(tmp_path_factory):
    record = list(synthetic.SyntheticReader().read_videos(synthetic.ensure(), "val"))[0]
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in record.frames]
    return write_mp4(tmp_path_factory.mktemp("footage") / "synthetic.mp4", frames), frames


def decoded(path):
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_predict_on_a_video_with_the_shipped_toy_weights(synthetic_mp4, tmp_path):
    video, frames = synthetic_mp4
    out = tmp_path / "pred"
    run_cli("predict", video, "--method", "ov2vss", "--classes", ", ".join(UNSEEN), "--output", out, check=0)
    overlay = decoded(out / "overlay.mp4")
    assert len(overlay) == len(frames) and overlay[0].shape == frames[0].shape
    summary = json.loads((out / "predictions.json").read_text())
    assert summary["vocabulary"] == UNSEEN and summary["method"] == "ov2vss"
    assert summary["footage"]["kind"] == "video" and summary["footage"]["checkpoint"].endswith("ov2vss.pt")
    assert len(summary["frames"]) == len(frames)
    labels = sorted((out / "labels").glob("*.png"))
    assert len(labels) == len(frames)
    allowed = set(range(len(UNSEEN))) | {255}
    for path in labels:
        image = Image.open(path)
        assert image.mode == "P"
        values = np.asarray(image)
        assert set(np.unique(values)) <= allowed
        colours = np.asarray(image.getpalette()[: 3 * len(UNSEEN)]).reshape(-1, 3)
        assert [tuple(c) for c in colours] == [predict.colour_of(name) for name in UNSEEN]
    shares = summary["frames"][0]["areas"]
    assert sum(shares.values()) == pytest.approx(1, abs=1e-4) and set(shares) <= {*UNSEEN, "none"}
    # the same names found in the PNG as the JSON says
    first = np.asarray(Image.open(labels[0]))
    assert {UNSEEN[k] for k in np.unique(first) if k != 255} == set(shares) - {"none"}


def test_every_and_frames_choose_frames_and_a_folder_of_frames_reads_too(synthetic_mp4, tmp_path):
    _, frames = synthetic_mp4
    folder = tmp_path / "frames"
    folder.mkdir()
    for k, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{k:05d}.png")
    out = tmp_path / "pred"
    run_cli("predict", folder, "--method", "clip-cost-volume", "--classes", ", ".join(UNSEEN), "--frames", "3:15",
            "--every", "4", "--output", out, check=0)
    summary = json.loads((out / "predictions.json").read_text())
    assert [f["index"] for f in summary["frames"]] == [3, 7, 11]
    assert sorted(p.stem for p in (out / "labels").glob("*.png")) == ["00003", "00007", "00011"]
    assert len(decoded(out / "overlay.mp4")) == 3


@pytest.mark.parametrize("args, message", [
    (["--classes", " , ,"], "no class names"),
    (["--classes", "dog, cat, Dog"], "'Dog' comes twice"),
    (["--classes", "dog", "--frames", "9:3"], "selects no frame"),
])
def test_bad_words_or_frame_choices_exit_2_naming_the_value(synthetic_mp4, args, message):
    video, _ = synthetic_mp4
    done = run_cli("predict", video, "--method", "chance", *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_bad_footage_exits_2_naming_the_file(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 20)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no frames here")
    for source, message in ((broken, f"cannot decode {broken}"), (empty, f"{empty} holds no frames"),
                            (tmp_path / "missing.mov", "does not exist"), (empty / "notes.txt", "not a video file")):
        done = run_cli("predict", source, "--method", "chance", "--classes", "dog")
        assert done.returncode == 2 and message in done.stderr, (source, done.stderr)


def test_selection_parses_what_users_write():
    assert Selection.parse("100:", 2).indices(105) == [100, 102, 104]
    assert Selection.parse(":3").indices(10) == [0, 1, 2]
    with pytest.raises(FootageError, match="expected A:B"):
        Selection.parse("1-5")


def test_a_dataset_names_the_classes_and_the_maps_come_in_its_own_ids_too(synthetic_mp4, tmp_path):
    """`--dataset synthetic:unseen`: the unseen names, and each map also in the ids VSPW's tools read."""
    video, frames = synthetic_mp4
    out = tmp_path / "pred"
    run_cli("predict", video, "--method", "chance", "--dataset", "synthetic:unseen", "--frames", ":4", "--output", out,
            check=0)
    summary = json.loads((out / "predictions.json").read_text())
    assert summary["vocabulary"] == UNSEEN
    assert summary["ids"]["reduced"]["ids"] == {name: 16 + k for k, name in enumerate(UNSEEN)}
    for path in sorted((out / "labels").glob("*.png")):
        labels = np.asarray(Image.open(path)).astype(np.int64)
        reduced = np.asarray(Image.open(out / "ids" / "reduced" / path.name)).astype(np.int64)
        raw = np.asarray(Image.open(out / "ids" / "raw" / path.name)).astype(np.int64)
        assert np.array_equal(reduced, np.where(labels == 255, 255, labels + 16))
        assert np.array_equal(raw, np.where(labels == 255, 0, labels + 17))
    done = run_cli("predict", video, "--method", "chance", "--dataset", "synthetic:everything")
    assert done.returncode == 2 and "unknown setting 'everything'" in done.stderr, done.stderr

"""`ov2vss-authors`: the authors' OV2VSS at test time, checked against outputs of their own code
(../shared/reference/authors-ov2vss, made by running it on rule-made weights and a 14-frame video),
their checkpoint format, streaming against their per-clip computation, and bad weight files."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from authors_models import TINY, UNUSED, tiny_state, write_tiny
from conftest import REPO, run_cli

from benchmark import plan, registry
from benchmark.data import synthetic
from benchmark.interface import ABSTAIN, Video
from methods import clip as clip_module
from methods.ov2vss_authors import checkpoint, clips, preprocess, reference, text

FIXTURE = pathlib.Path(os.environ.get("BENCHMARK_AUTHORS_FIXTURE")
                       or REPO.parent / "shared" / "reference" / "authors-ov2vss")
METHOD = "ov2vss-authors"


#: Tests that read the reference folder: skipped without it (beside the repository in ../shared, or at
#: $BENCHMARK_AUTHORS_FIXTURE), unless BENCHMARK_REQUIRE_FIXTURE=1 (CI) makes that a failure.
needs_fixture = pytest.mark.usefixtures("fixture_present")


@pytest.fixture(scope="session")
def fixture_present():
    if not FIXTURE.is_dir():
        message = f"the authors' reference fixture is not at {FIXTURE} (set $BENCHMARK_AUTHORS_FIXTURE)"
        if os.environ.get("BENCHMARK_REQUIRE_FIXTURE") == "1":
            pytest.fail(message)
        pytest.skip(message)


def fixture_json(name: str):
    return json.loads((FIXTURE / name).read_text())


# -- pieces against the fixture --------------------------------------------------------------------

@needs_fixture
def test_clips_are_the_ones_their_test_builds():
    table = fixture_json("clips.json")
    for entry in table["targets"]:
        assert list(clips.clip_for(entry["target"], table["num_frames"]).frames) == entry["clip_indices"]


def test_clip_rule_corner_cases():
    assert clips.clip_for(9, 10).far == 9                   # their far-frame rule picks the target itself
    assert clips.clip_for(5, 6) == clips.Clip(5, (0, 2, 4, 5))  # a fixed list even when the video is short
    assert clips.clip_for(1, 2).image_only and clips.clip_for(0, 1).frames == (0, 0)
    assert clips.clip_for(22, 40) == clips.Clip(39, (13, 16, 19, 22))  # 39 although frame 0 is farther away
    assert clips.clip_for(30, 40) == clips.Clip(0, (21, 24, 27, 30))


@needs_fixture
def test_input_pipeline_reproduces_their_resized_frames():
    from benchmark.data.frames import read_frame

    assert preprocess.input_size(480, 853) == ((576, 1024), (576, 1024))
    assert preprocess.input_size(1024, 2048) == ((512, 1024), (512, 1024))   # Cityscapes
    assert preprocess.input_size(500, 700)[1] == (736, 1024)                # 731 rounded up to a multiple of 32
    for entry in fixture_json("frames.json")["frames"]:
        resized = preprocess.resize_frame(read_frame(FIXTURE / "frames" / entry["file"]))
        assert hashlib.sha256(resized.tobytes()).hexdigest() == entry["resized_576x1024_rgb_uint8_sha256"]


@needs_fixture
def test_weight_rule_reproduces_every_key_of_the_fixture():
    specs = reference.read_keys(FIXTURE / "keys.tsv")
    state, wrong, checksum = reference.rule_state_dict(specs, fixture_json("weights_sha256.json")["salt"])
    assert wrong == [] and len(state) == 1513
    assert checksum == fixture_json("weights_sha256.json")["sha256_all_keys_except_R4"]


@needs_fixture
def test_text_encoding_matches_their_zeroshot_classifier():
    """Three classes encoded with the rule-made CLIP against their text features (stored as float16:
    equal up to float16's rounding of each value)."""
    specs = [s for s in reference.read_keys(FIXTURE / "keys.tsv") if s.key.startswith(checkpoint.CLIP_PREFIX)]
    state = reference.rule_state_dict(specs, "").state
    dense = clip_module.clip_from_openai_state_dict({k[len(checkpoint.CLIP_PREFIX):]: v for k, v in state.items()},
                                                    "rule-made")
    names = fixture_json("vocabulary.json")["names"]
    picks = [0, 17, len(names) - 1]  # trash_can, ..., background
    mine = text.text_features(dense, [names[k] for k in picks]).numpy()
    stored = np.load(FIXTURE / "text_features_test.npy")[picks]
    half_ulp = np.spacing(np.abs(stored)).astype(np.float32) / 2
    assert mine.shape == (3, 80, 512)
    assert (np.abs(mine - stored.astype(np.float32)) <= half_ulp + 1e-6).all()


# -- the whole method through the runner, against their outputs ------------------------------------

@pytest.fixture(scope="module")
def verified(tmp_path_factory, fixture_present):
    """`verify` on the shipped fixture (the rule-made checkpoint, a VSPW-layout folder, the runner),
    its work folder kept for the tests below."""
    work = tmp_path_factory.mktemp("verify")
    done = run_cli("verify", METHOD, "--fixture", FIXTURE, "--work", work)
    return work, done


@needs_fixture
def test_equivalence_with_the_authors_code_on_every_target(verified):
    """All 14 targets (image-only t < 3, fixed lists t = 3..8, regular clips) match their code's
    sigmoid maps, probabilities and labels, at the strict level (10x their own run-to-run spread)."""
    work, done = verified
    assert done.returncode == 0, done.stdout + done.stderr
    assert "default: 14 of 14 frames within; strict: 14 of 14 frames within" in done.stdout
    assert "14 of 14 frames decode and 14 of 14 resize to the folder's hashes" in done.stdout
    comparison = registry.get(METHOD).reference_check(FIXTURE).compare(work / "record")
    assert comparison.failed == [] and len(comparison.rows) == 14
    assert max(row["prob_max_diff"] for row in comparison.rows) < 3e-7


@needs_fixture
def test_verify_fails_naming_the_frame_whose_map_was_altered(verified, tmp_path):
    work, _ = verified
    copy = tmp_path / "altered"
    shutil.copytree(FIXTURE, copy, symlinks=True, ignore=shutil.ignore_patterns("frames"))
    os.symlink(FIXTURE / "frames", copy / "frames")
    maps = np.load(copy / "sigmoid_maps" / "t05.npy")
    maps[3, 40:44, 60:64] += np.float16(0.01)
    np.save(copy / "sigmoid_maps" / "t05.npy", maps)
    done = run_cli("verify", METHOD, "--fixture", copy, "--work", work)  # the run is finished: compared again
    assert done.returncode == 1, done.stdout + done.stderr
    assert "OUTSIDE TOLERANCE: t05" in done.stdout


@needs_fixture
def test_verify_refuses_a_malformed_folder(tmp_path):
    copy = tmp_path / "broken"
    shutil.copytree(FIXTURE, copy, ignore=shutil.ignore_patterns("frames", "*.npy", "labels", "*.tsv"))
    done = run_cli("verify", METHOD, "--fixture", copy)
    assert done.returncode == 2 and "keys.tsv" in done.stderr, done.stderr


@needs_fixture
def test_full_size_checkpoint_runs_through_run_on_a_vspw_folder(verified, tmp_path):
    """The rule-made full-size mmcv checkpoint through `run` on a 3-frame VSPW video: the image-only
    targets depend on their frame alone, so they equal the fixture's t00..t02; the tables name the
    row "OV2VSS (authors' code)" under the published OV2VSS row."""
    work, _ = verified
    root = tmp_path / "VSPW_480p"
    video = root / "data" / "clip3"
    (video / "origin").mkdir(parents=True)
    (video / "mask").mkdir()
    (root / "val.txt").write_text("clip3\n")
    from PIL import Image

    for k in range(3):
        shutil.copy(FIXTURE / "frames" / f"{k:08d}.png", video / "origin" / f"{k:08d}.png")
        Image.fromarray(np.full((480, 853), 81, np.uint8)).save(video / "mask" / f"{k:08d}.png")  # trash_can
    record, output = tmp_path / "record", tmp_path / "run"
    done = run_cli("run", "--methods", METHOD, "--checkpoint", f"{METHOD}={work / 'rule-made.pth'}",
                   "--datasets", "vspw:unseen", "--protocol", "official", "--data-root", tmp_path,
                   "--opt", f"{METHOD}.record={record}",
                   "--opt", f"{METHOD}.text_features={FIXTURE / 'text_features_test.npy'}",
                   "--output", output, "--no-tracking")
    assert done.returncode == 0, done.stdout + done.stderr
    for k in range(3):
        with np.load(record / "clip3" / f"{k:08d}.npz") as mine:
            stored = np.load(FIXTURE / "sigmoid_maps" / f"t{k:02d}.npy").astype(np.float32)
            assert np.abs(mine["sigmoid"] - stored).max() < 4.6e-4
    result = json.loads(next((output / "cells").glob("*.json")).read_text())
    summary = result["provenance"]["method"]["checkpoint"]
    assert summary["format"] == "mmcv" and summary["skipped_tensors"] == 714 and summary["loaded_tensors"] == 497
    table = (output / "tables" / "table1__official.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("|")]
    reported = next(i for i, line in enumerate(rows) if "| OV2VSS " in line and "ViT-B2" in line)
    assert "OV2VSS (authors' code)" in rows[reported + 1] and "reproduced" in rows[reported + 1]
    ablations = pd.read_csv(output / "tables" / "table3__official.csv")
    full = ablations[ablations["Options"] == "variant=full"]["mIoU OV2VSS (authors' code) ViT-B2"]
    assert len(full) == 5 and full.nunique() == 1 and full.iloc[0] == pytest.approx(result["metrics"]["mIoU"], abs=1e-4)


# -- streaming, vocabularies and weight files on a tiny model in their format ----------------------

@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return write_tiny(tmp_path_factory.mktemp("tiny") / "tiny.pth")


def synthetic_video(frames: int = 14) -> Video:
    record = synthetic.SyntheticReader().read_videos(synthetic.ensure(), "val")[0]
    return Video(record.name, record.frames[:frames], list(range(frames)))


def run_method(checkpoint_path, vocabulary, video, **options):
    method = registry.create(METHOD, **options)
    method.load(checkpoint_path)
    method.setup(vocabulary, torch.device("cpu"))
    return method, [labels.clone() for labels in method.segment(video)]


def test_streaming_gives_the_outputs_of_their_per_clip_computation(tiny_checkpoint, tmp_path):
    video = synthetic_video()
    names = ["striped red triangle", "dotted blue circle", "background"]
    streamed, fast = run_method(tiny_checkpoint, names, video, record=str(tmp_path / "a"))
    naive, slow = run_method(tiny_checkpoint, names, video, streaming=False, record=str(tmp_path / "b"))
    assert all(torch.equal(a, b) for a, b in zip(fast, slow))
    for k in range(14):
        with np.load(tmp_path / "a" / video.name / f"{video.frame_id(k)}.npz") as a, \
                np.load(tmp_path / "b" / video.name / f"{video.frame_id(k)}.npz") as b:
            assert np.array_equal(a["sigmoid"], b["sigmoid"]) and np.array_equal(a["probabilities"], b["probabilities"])
    assert streamed.encoder_passes == 14
    assert naive.encoder_passes == sum(len(clips.clip_for(t, 14).frames) for t in range(14)) == 3 * 2 + 11 * 5


def test_background_is_abstain_when_the_vocabulary_lacks_it(tiny_checkpoint):
    video = synthetic_video(4)
    names = ["striped red triangle", "dotted blue circle"]
    with_background, official = run_method(tiny_checkpoint, [*names, "background"], video)
    _, intended = run_method(tiny_checkpoint, names, video)
    for a, b in zip(official, intended):
        assert torch.equal(torch.where(a == 2, ABSTAIN, a), b)
    _, dropped = run_method(tiny_checkpoint, names, video, background="none")
    assert all(int(m.max()) <= 1 for m in dropped)
    assert with_background.provenance()["checkpoint"]["skipped_tensors"] == len(UNUSED)


def test_a_ddp_prefixed_checkpoint_loads(tiny_checkpoint, tmp_path):
    stored = torch.load(tiny_checkpoint, weights_only=True)
    prefixed = tmp_path / "module.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in stored["state_dict"].items()}, "meta": stored["meta"]},
               prefixed)
    assert checkpoint.read(prefixed).config == TINY
    assert checkpoint.read(prefixed).model.keys() == checkpoint.read(tiny_checkpoint).model.keys()


def test_numpy_values_in_the_mmcv_meta_load(tiny_checkpoint, tmp_path):
    """mmcv's meta may carry numpy scalars and arrays (a seed, a palette): data, not code."""
    stored = torch.load(tiny_checkpoint, weights_only=True)
    meta = {**stored["meta"], "seed": np.int64(7), "PALETTE": np.array([[0, 0, 0], [128, 64, 128]], np.uint8),
            "lr": np.float32(3e-6)}
    path = tmp_path / "numpy-meta.pth"
    torch.save({**stored, "meta": meta}, path)
    assert checkpoint.read(path).meta["seed"] == 7


@needs_fixture
def test_a_bare_full_size_state_dict_loads(verified, tmp_path):
    work, _ = verified
    bare = tmp_path / "bare.pth"
    torch.save(torch.load(work / "rule-made.pth", weights_only=True, mmap=True)["state_dict"], bare)
    stored = checkpoint.read(bare)
    assert stored.format == "state_dict" and len(stored.model) == 497 and len(stored.clip) == 302
    assert sum(stored.skipped.values()) == 714


def test_precomputed_text_features_are_checked_against_the_vocabulary(tiny_checkpoint, tmp_path):
    names = ["a", "b", "background"]
    path = tmp_path / "text.npy"
    np.save(path, np.zeros((2, 80, 64), np.float32))
    method = registry.create(METHOD, text_features=str(path))
    method.load(tiny_checkpoint)
    with pytest.raises(ValueError, match=r"vocabulary of 3 names needs \(3, 80, 64\)"):
        method.setup(names, torch.device("cpu"))


def bad_files(tiny_checkpoint: pathlib.Path, folder: pathlib.Path) -> dict[str, tuple[pathlib.Path, str]]:
    """Weight files `run` must refuse, each with what its message must say."""
    good = tiny_checkpoint.read_bytes()
    corrupt, truncated = folder / "corrupt.pth", folder / "truncated.pth"
    corrupt.write_bytes(os.urandom(4096))
    truncated.write_bytes(good[: len(good) // 2])
    marker = folder / "code-ran"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    carrying = folder / "code.pth"
    torch.save({"state_dict": {"backbone.pos_embed": torch.zeros(1)}, "meta": {"x": Payload()}}, carrying)
    state = tiny_state()
    missing_key = "decode_head.predictor.corr.conv1.weight"
    del state[missing_key]
    missing = write_tiny(folder / "missing.pth", state=state)
    state = tiny_state()
    state["decode_head.mul_attention.proj.weight"] = torch.zeros(3, 3)
    shaped = write_tiny(folder / "shape.pth", state=state)
    return {"corrupt": (corrupt, "corrupt, truncated or of another kind"),
            "truncated": (truncated, "corrupt, truncated or of another kind"),
            "code": (carrying, "could run code"), "missing": (missing, missing_key),
            "shape": (shaped, "decode_head.mul_attention.proj.weight: (3, 3) in the file")}


def test_bad_weight_files_are_input_errors(tiny_checkpoint, tmp_path):
    for kind, (path, message) in bad_files(tiny_checkpoint, tmp_path).items():
        done = run_cli("run", "--methods", METHOD, "--checkpoint", f"{METHOD}={path}", "--datasets",
                       "synthetic:unseen", "--output", tmp_path / f"run-{kind}", "--no-tracking")
        assert done.returncode == 2, (kind, done.stdout, done.stderr)
        assert str(path) in done.stderr and message in done.stderr, (kind, done.stderr)
        assert not (tmp_path / f"run-{kind}" / "cells").exists()
    assert not (tmp_path / "code-ran").exists()


def test_runs_on_synthetic_data_through_run_with_a_tiny_checkpoint(tiny_checkpoint, tmp_path):
    done = run_cli("run", "--methods", METHOD, "--checkpoint", f"{METHOD}={tiny_checkpoint}", "--datasets",
                   "synthetic:unseen", "--dataset-opt", "synthetic.videos=1", "--output", tmp_path / "run",
                   "--no-tracking")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(next((tmp_path / "run" / "cells").glob("*.json")).read_text())
    assert result["status"] == "done" and result["metrics"]["mIoU"] is not None
    assert "(stand-in)" in (tmp_path / "run" / "tables" / "table1.md").read_text()


def test_suites_include_the_authors_model_only_with_weights(tiny_checkpoint):
    made = plan.make(plan.Request(suite="table1", train=True))
    assert METHOD not in {c.method for c in made.cells}
    assert any(METHOD in note for note in made.notes)
    made = plan.make(plan.Request(suite="table1", train=True, checkpoints={METHOD: str(tiny_checkpoint)}))
    chosen = [c for c in made.cells if c.method == METHOD]
    assert len(chosen) == 1 and chosen[0].checkpoint == str(tiny_checkpoint)

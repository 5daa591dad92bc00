"""The clip-cost-volume baseline end to end: both variants on the synthetic dataset, training with its
recipe, exact resume, and the checkpoint errors a user meets."""

import json
import pathlib

import numpy as np
import pytest
import torch
from conftest import interrupt_after
from dataset_fixtures import write_vspw

from benchmark import cli, registry
from benchmark.data.cards import load_card
from benchmark.data.training import open_training
from benchmark.metrics import IGNORE
from methods import clip
from methods.ov2vss import training

METHOD = "clip-cost-volume"
# The tiny CLIP and backbone, small widths, a 64-pixel crop: seconds on a CPU.
TINY = {"clip_model": clip.TINY_MODEL, "clip_pretrained": "random", "backbone": "resnet-tiny", "crop": 64,
        "cost_channels": 16, "feature_channels": 16, "head_channels": 16}
SHORT = {"iterations": 6, "accumulate": 2, "warmup": 2, "lr": 0.001, "checkpoint_every": 2, "log_every": 2}


def opts(**options):
    return [item for key, value in options.items() for item in ("--opt", f"{METHOD}.{key}={value}")]


def cell_of(out: pathlib.Path) -> dict:
    (path,) = (out / "cells").glob(f"{METHOD}__*.json")
    return json.loads(path.read_text())


def test_training_set_targets_the_seen_classes_and_marks_unseen_pixels():
    card = load_card("synthetic")
    seen, total = card["num_seen"], len(card["classes"])
    train = open_training("synthetic", "seen", options={"train_videos": 4, "frames": 4})
    assert train.split == "train" and train.vocabulary == train.setting.vocabulary
    assert len(train.vocabulary) == seen
    assert train.held_out_labels[seen:total].all() and not train.held_out_labels[:seen].any()
    seen_any = held_any = False
    for v, record in enumerate(train.videos):
        for i in record.annotated:
            target, held_out = train.labels(v, i)
            assert set(np.unique(target)) <= set(range(seen)) | {IGNORE}
            assert (target[held_out] == IGNORE).all()
            seen_any |= bool((target < seen).any())
            held_any |= bool(held_out.any())
    assert seen_any and held_any
    official = open_training("synthetic", "seen", "official")
    assert official.vocabulary[-1] == "background"
    target, _ = official.labels(0, 0)
    assert seen - 1 not in np.unique(target)  # the authors' quirk: the split's last class is never supervised


def test_recipe_schedule_and_augmentation():
    config = training.TrainConfig(iterations=100, warmup=10, crop=32)
    factors = [training.learning_rate_factor(i, config) for i in (0, 5, 10, 50, 99)]
    assert factors[0] == pytest.approx(1e-6) and factors[1] < factors[2]
    assert factors[2] == pytest.approx(0.9 ** 0.9) and factors[3] == pytest.approx(0.5 ** 0.9)
    assert factors[4] < 0.02
    image = torch.full((3, 20, 24), 200, dtype=torch.uint8)
    target = np.zeros((20, 24), dtype=np.int64)
    held = np.zeros((20, 24), dtype=bool)
    held[:, :12] = True
    target[held] = IGNORE
    quiet_options = {"crop": 32, "scale_min": 1, "scale_max": 1, "flip": False, "photometric": False}
    quiet = training.TrainConfig(**quiet_options)
    crop, labels = training.augment(image, target, held, quiet, np.random.default_rng(0))
    assert crop.shape == (3, 32, 32) and labels.shape == (32, 32)
    assert (crop[:, :20, :12] == torch.tensor([124, 116, 104]).view(3, 1, 1)).all()  # held-out pixels blanked
    assert (crop[:, :20, 12:24] == 200).all() and (labels[20:] == IGNORE).all() and (labels[:, 24:] == IGNORE).all()
    visible = training.TrainConfig.from_options({**quiet_options, "mask_unseen_input": False})  # as the authors' code
    crop, labels = training.augment(image, target, held, visible, np.random.default_rng(0))
    assert (crop[:, :20, :24] == 200).all() and (labels[:, :12] == IGNORE).all()
    again = training.augment(image, target, held, config, np.random.default_rng(3))
    torch.testing.assert_close(again[0], training.augment(image, target, held, config, np.random.default_rng(3))[0])
    with pytest.raises(ValueError, match="training option lr='fast': expected a float"):
        training.TrainConfig.from_options({"lr": "fast"})
    assert training.TrainConfig.from_options({"lr": "1e-3"}).lr == 0.001


def test_training_free_variant_runs_on_the_synthetic_dataset(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["run", "--methods", METHOD, "--datasets", "synthetic:unseen", "--output", str(out),
                     *opts(clip_model=clip.TINY_MODEL, clip_pretrained="random", overlap=0.5)]) == 0
    cell = cell_of(out)
    assert cell["status"] == "done" and cell["counts"]["frames"] == 80
    assert cell["provenance"]["method"]["clip"] == {"model": clip.TINY_MODEL, "weights": "random", "clip_input": 64,
                                                    "prompts": "imagenet", "last_block": "value"}
    assert cell["provenance"]["method"]["inference"] == {"mode": "slide", "size": 64, "overlap": 0.5, "batch_size": 8}
    assert "random weights" in cell["provenance"]["method"]["warnings"][0]


def test_trained_variant_trains_resumes_exactly_and_evaluates_with_its_checkpoint(tmp_path, monkeypatch):
    common = ["train", "--method", METHOD, "--dataset", "synthetic:seen",
              *opts(variant="trained", **TINY, **SHORT)]
    assert cli.main([*common, "--output", str(tmp_path / "straight")]) == 0
    straight = torch.load(tmp_path / "straight" / "final.pt", weights_only=True)
    log = (tmp_path / "straight" / "loss.csv").read_text().splitlines()
    assert log[0] == "iteration,loss,lr,seconds" and [row.split(",")[0] for row in log[1:]] == ["2", "4", "6"]

    # Interrupt a second run after its iteration-4 checkpoint, then run the same command again.
    restore = interrupt_after(monkeypatch, training, "augment", 4)  # one sample per iteration: after the iteration-4 checkpoint
    assert cli.main([*common, "--output", str(tmp_path / "resumed")]) == 130
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["iteration"] == 4
    restore()
    assert cli.main([*common, "--output", str(tmp_path / "resumed")]) == 0
    resumed = torch.load(tmp_path / "resumed" / "final.pt", weights_only=True)
    for key, value in straight["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, rtol=0, atol=0, msg=key)
    assert (tmp_path / "resumed" / "loss.csv").read_text().splitlines()[1:] != []
    assert [r.split(",")[0] for r in (tmp_path / "resumed" / "loss.csv").read_text().splitlines()[1:]] == ["2", "4", "6"]

    out = tmp_path / "run"
    assert cli.main(["run", "--methods", METHOD, "--datasets", "synthetic:unseen", "--output", str(out),
                     "--checkpoint", f"{METHOD}={tmp_path / 'straight' / 'final.pt'}",
                     *opts(variant="trained", clip_model=clip.TINY_MODEL, clip_pretrained="random")]) == 0
    cell = cell_of(out)
    assert cell["status"] == "done"
    saved = cell["provenance"]["method"]["checkpoint"]
    assert saved["iterations"] == 6 and saved["train_set"].startswith("TrainingSet(synthetic:seen")
    assert saved["train_config"]["mask_unseen_input"] is True  # the paper's text: unseen pixels blanked
    assert saved["schedule"] == {"iterations": 6, "accumulate": 2, "optimizer_steps": 3, "samples": 6,
                                 "iteration": training.ITERATION_MEANS}
    assert cell["provenance"]["method"]["model_config"]["backbone"] == "resnet-tiny"  # the checkpoint's, not the default
    warnings = cell["provenance"]["method"]["warnings"]
    assert len(warnings) == 1 and "random weights" in warnings[0]  # random CLIP is the same CLIP in every process

    other = tmp_path / "other-clip.pt"  # a CLIP other than the one it was trained against
    torch.save(clip.load_clip(clip.TINY_MODEL, "random").model.state_dict(), other)
    assert cli.main(["run", "--methods", METHOD, "--datasets", "synthetic:unseen", "--output", str(tmp_path / "other"),
                     "--checkpoint", f"{METHOD}={tmp_path / 'straight' / 'final.pt'}", "--dataset-opt",
                     "synthetic.videos=1", *opts(variant="trained", clip_model=clip.TINY_MODEL,
                                                 clip_pretrained=other)]) == 0
    (path,) = (tmp_path / "other" / "cells").glob("*.json")
    warnings = json.loads(path.read_text())["provenance"]["method"]["warnings"]
    assert warnings == [f"trained against CLIP weights random but evaluated with {other}: the cost volumes differ "
                        "from the ones it learned"]


def test_trained_variant_without_weights_and_bad_checkpoints_fail_clearly(tmp_path):
    method = registry.create(METHOD, variant="trained", clip_model=clip.TINY_MODEL, clip_pretrained="random")
    method.setup(["red circle", "blue square"], torch.device("cpu"))
    with pytest.raises(ValueError, match="no trained weights.*python -m benchmark train"):
        method.segment_frame(torch.zeros(3, 32, 32, dtype=torch.uint8))
    with pytest.raises(FileNotFoundError, match=f"checkpoint {tmp_path / 'none.pt'} does not exist; expected a "
                                                "clip-cost-volume checkpoint"):
        method.load(tmp_path / "none.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match=f"cannot read checkpoint {corrupt}.*expected a clip-cost-volume checkpoint"):
        method.load(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match=f"checkpoint {foreign} is not a clip-cost-volume checkpoint"):
        method.load(foreign)
    with pytest.raises(ValueError, match="variant=training-free; add --opt clip-cost-volume.variant=trained"):
        registry.create(METHOD).load(foreign)
    with pytest.raises(TypeError, match="unknown training options"):
        registry.create(METHOD, iteration=5)


def test_train_reads_vspw_in_its_real_layout_and_supervises_only_seen_classes(tmp_path):
    write_vspw(tmp_path / "data", frames=3)
    train = open_training("vspw", "seen", data_root=tmp_path / "data")
    assert len(train.vocabulary) == 80 and [len(v.annotated) for v in train.videos] == [3]
    target, held_out = train.labels(0, 0)
    assert target.max() < 80 or target.max() == IGNORE
    assert held_out.any() and (target[held_out] == IGNORE).all()  # the fixture draws unseen ids too
    assert cli.main(["train", "--method", METHOD, "--dataset", "vspw:seen", "--data-root", str(tmp_path / "data"),
                     "--output", str(tmp_path / "train"),
                     *opts(variant="trained", **TINY, iterations=2, accumulate=1, warmup=1)]) == 0
    final = torch.load(tmp_path / "train" / "final.pt", weights_only=True)
    assert final["vocabulary"] == train.vocabulary and final["train_set"].startswith("TrainingSet(vspw:seen, train")

"""`train --method ov2vss-authors`: the authors' training recipe as their code runs it (clips,
augmentation, loss, optimiser, initialisation), a tiny model trained on the synthetic world, and one
training run checked against their code's recorded steps (tests/fixtures/authors_train_step)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import torch
from authors_models import TINY
from conftest import interrupt_after

from benchmark import cli
from benchmark.metrics import IGNORE
from methods.ov2vss import training as loop
from methods.ov2vss_authors import training
from methods.ov2vss_authors.model import AuthorsModel, ModelConfig, architecture

METHOD = "ov2vss-authors"
#: The toy architecture and a recipe scaled to the synthetic world's 72x96 frames.
TOY = {"architecture": "toy", "scale": 128, "crop": 96, "lr": 2e-3}


def opts(**options):
    return [item for key, value in options.items() for item in ("--opt", f"{METHOD}.{key}={value}")]


def cells_of(out: pathlib.Path) -> dict[str, dict]:
    cells = [json.loads(path.read_text()) for path in (out / "cells").glob("*.json")]
    return {cell["cell"]["method"]: cell for cell in cells}


def test_parameter_groups_follow_their_paramwise_rule():
    model = AuthorsModel(TINY)
    groups = {g["name"]: g for g in training.parameter_groups(model, training.TrainConfig())}
    assert groups["backbone.blocks.0.norm1.weight"]["weight_decay"] == 0.0     # "norm": no decay
    assert groups["backbone.blocks.0.norm1.weight"]["lr"] == pytest.approx(3e-6)
    assert groups["backbone.pos_embed"]["weight_decay"] == 0.01                # not "pos_block"
    assert groups["backbone.neck.1.weight"]["weight_decay"] == 0.01            # a LayerNorm2d not named norm
    head_norm = groups["decode_head.pooling_mhsa_c1.norm.weight"]
    assert head_norm["lr"] == pytest.approx(3e-5) and head_norm["weight_decay"] == 0.01  # "head" wins over "norm"
    assert len(groups) == sum(1 for p in model.parameters() if p.requires_grad)


def test_clips_are_drawn_as_their_sampler_draws_them():
    rng = np.random.default_rng(0)
    reversed_count = 0
    for _ in range(400):
        far, *steps = training.sample_clip(12, rng, 0.5)
        forward = steps[-1] - steps[0] == 9
        reversed_count += not forward
        position = (lambda i: i) if forward else (lambda i: 11 - i)
        assert [position(i) for i in steps][1:] == [position(steps[0]) + 3 * k for k in (1, 2, 3)]
        assert position(steps[-1]) >= 9 and 0 <= position(far) <= 2 and far not in steps
    assert 150 < reversed_count < 250
    assert not training.eligible(10) and training.eligible(11)


def test_augmentation_shares_geometry_keeps_unseen_pixels_and_pads():
    frames = [torch.full((3, 60, 80), 40 * k, dtype=torch.uint8) for k in range(5)]
    for frame in frames:
        frame[:, :, :40] = 200           # the same left half in every frame
    labels = np.full((60, 80), IGNORE, np.int64)   # an unseen class's pixels: ignored, not blanked
    labels[:, :40], labels[:30, 40:] = 0, 1
    config = training.TrainConfig(scale=80, crop=64, photometric=False, ratio_min=0.5, ratio_max=0.6)
    images, truth = training.augment(frames, labels, config, np.random.default_rng(3))
    assert images.shape == (5, 3, 64, 64) and truth.shape == (64, 64) and truth.dtype == torch.int64
    # rescaled to fit 40..48 px: padded right and below with 0 (the mean colour) and IGNORE
    assert (images[:, :, 50:, :] == 0).all() and (truth[50:, :] == IGNORE).all()
    bright = images[:, 0, 10, :] > 1.0   # the shared bright half, at the same columns in every frame
    assert all(torch.equal(bright[0], row) for row in bright)
    assert images[4, 0, 10][~bright[4]][0] != images[1, 0, 10][~bright[1]][0]  # frames not blanked to one colour


def test_photometric_distortion_is_drawn_per_frame():
    frames = [torch.full((3, 40, 40), 120, dtype=torch.uint8)] * 5
    labels = np.zeros((40, 40), np.int64)
    labels[:, 20:] = 1
    config = training.TrainConfig(scale=40, crop=32, ratio_min=1.0, ratio_max=1.0)
    images, _ = training.augment(frames, labels, config, np.random.default_rng(1))
    assert len({round(float(image.mean()), 4) for image in images}) > 1


def test_loss_averages_over_every_pixel_ignored_ones_included():
    main, aux = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    labels = torch.full((4, 4), IGNORE)
    labels[0, 0] = 1
    # one labelled pixel per map with loss log(3), divided by 2 maps x 16 pixels
    assert training.loss(main, aux, labels).item() == pytest.approx(2 * np.log(3) / 32)


def _meta_sam_file(path: pathlib.Path, backbone) -> pathlib.Path:
    """A SAM file as Meta publishes it: `image_encoder.*`, `patch_embed.proj`, a (1, g, g, C) grid."""
    state = {}
    for key, value in backbone.state_dict().items():
        if key == "cls_token":
            continue
        value = torch.randn_like(value)
        if key == "pos_embed":
            side = int(round((value.shape[1] - 1) ** 0.5))
            value = value[:, 1:].reshape(1, side, side, -1)
        state["image_encoder." + key.replace("patch_embed.projection.", "patch_embed.proj.")] = value
    state["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"] = torch.randn(2, 128)
    torch.save(state, path)
    return path


def test_their_backbone_init_loads_nothing_from_metas_file_and_sam_loads_it(tmp_path):
    model = AuthorsModel(TINY)
    file = _meta_sam_file(tmp_path / "sam_vit_b_01ec64.pth", model.backbone)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    released = training.init_backbone(model.backbone, file, "as-released")
    assert released["loaded_tensors"] == 0
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())
    loaded = training.init_backbone(model.backbone, file, "sam")
    assert loaded["loaded_tensors"] == len(before)
    meta = torch.load(file, weights_only=True)
    torch.testing.assert_close(model.backbone.patch_embed.projection.weight, meta["image_encoder.patch_embed.proj.weight"])
    torch.testing.assert_close(model.backbone.pos_embed[:, 1:].reshape(meta["image_encoder.pos_embed"].shape),
                               meta["image_encoder.pos_embed"])
    with pytest.raises(ValueError, match="no image_encoder"):
        torch.save({"something": torch.zeros(1)}, tmp_path / "other.pth")
        training.init_backbone(model.backbone, tmp_path / "other.pth", "sam")


def test_recipe_options_are_checked():
    with pytest.raises(ValueError, match="crop=64: use a multiple of 16 of at least 96"):
        training.TrainConfig.from_options({"crop": 64})
    with pytest.raises(ValueError, match="checkpoint_every=6, accumulate=4"):
        training.TrainConfig.from_options({"checkpoint_every": 6})
    with pytest.raises(TypeError, match="unknown training options"):
        training.TrainConfig.from_options({"scale_min": 0.5})   # the paper-faithful recipe's name, not theirs


def test_model_configs_are_data():
    assert architecture("vitb") == ModelConfig()
    with pytest.raises(ValueError, match="choose one of .*toy.*vitb"):
        architecture("vitl")


def test_a_tiny_model_trained_on_seen_classes_beats_chance_on_unseen(tmp_path):
    """The main check of the recipe end to end: their clips, loss and optimiser, written in their
    checkpoint format, loaded by `run --checkpoint`, scored on classes it never saw."""
    recipe = {**TOY, "iterations": 1200, "warmup": 60, "checkpoint_every": 400, "log_every": 100}
    folder = tmp_path / "train"
    assert cli.main(["train", "--method", METHOD, "--dataset", "synthetic:seen", "--output", str(folder),
                     *opts(**recipe)]) == 0
    trained = json.loads((folder / "trained.json").read_text())
    assert trained["schedule"]["optimizer_steps"] == 300 and trained["schedule"]["accumulate"] == 4
    stored = torch.load(folder / "final.pt", weights_only=True)
    assert set(stored) == {"meta", "state_dict"} and stored["meta"]["schedule"]["iterations"] == 1200
    assert stored["meta"]["CLASSES"][-1] == "background" and len(stored["meta"]["CLASSES"]) == 17
    assert any(k.startswith("decode_head.predictor.clip_model.") for k in stored["state_dict"])
    out = tmp_path / "run"
    assert cli.main(["run", "--methods", f"{METHOD},chance", "--datasets", "synthetic:unseen", "--output", str(out),
                     "--checkpoint", f"{METHOD}={folder / 'final.pt'}", "--no-tracking"]) == 0
    cells = cells_of(out)
    assert cells[METHOD]["metrics"]["mIoU"] > cells["chance"]["metrics"]["mIoU"] + 5, cells
    provenance = cells[METHOD]["provenance"]["method"]["checkpoint"]
    assert provenance["schedule"]["optimizer_steps"] == 300 and provenance["train_set"].startswith("TrainingSet")


def test_training_resumes_to_the_same_weights(tmp_path, monkeypatch):
    recipe = {**TOY, "iterations": 12, "warmup": 2, "checkpoint_every": 8, "log_every": 4}
    common = ["train", "--method", METHOD, "--dataset", "synthetic:seen", *opts(**recipe)]
    assert cli.main([*common, "--output", str(tmp_path / "straight")]) == 0
    restore = interrupt_after(monkeypatch, training, "augment", 8)   # after the iteration-8 state
    assert cli.main([*common, "--output", str(tmp_path / "resumed")]) == 130
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["iteration"] == 8
    restore()
    assert cli.main([*common, "--output", str(tmp_path / "resumed")]) == 0
    straight, resumed = (torch.load(tmp_path / run / "final.pt", weights_only=True)["state_dict"]
                         for run in ("straight", "resumed"))
    for key, value in straight.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=0, msg=key)


def test_loop_schedule_is_the_authors_by_default():
    config = training.TrainConfig()
    assert loop.schedule_record(config)["optimizer_steps"] == 25_000 and config.checkpoint_every == 10_000


# -- against their code ----------------------------------------------------------------------------

STEP_FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "authors_train_step"


def _their_run():
    """What their code recorded (see the fixture's README) and the rule-made start it ran from."""
    from PIL import Image

    from methods import clip as clip_module
    from methods.ov2vss_authors import checkpoint, preprocess, reference

    specs = reference.read_keys(STEP_FIXTURE / "keys.tsv")
    rule = reference.rule_state_dict(specs, "")
    assert not rule.wrong, rule.wrong[:3]
    model = AuthorsModel(ModelConfig())
    own = model.state_dict()
    model.load_state_dict({k: rule.state[k] for k in own})
    clip = clip_module.clip_from_openai_state_dict(
        {k[len(checkpoint.CLIP_PREFIX):]: v for k, v in rule.state.items() if k.startswith(checkpoint.CLIP_PREFIX)},
        "rule-made")
    del rule
    generator = torch.Generator().manual_seed(__import__("zlib").crc32(b"train_text_features"))
    text = torch.randn((81, 80, 512), generator=generator, dtype=torch.float32)
    text = text / text.norm(dim=-1, keepdim=True)
    text = text / text.norm(dim=(1, 2), keepdim=True)
    frames = torch.cat([preprocess.normalize(np.asarray(Image.open(STEP_FIXTURE / "inputs" / f"frame_{k}.png")
                                                        .convert("RGB"))) for k in range(5)])
    labels = torch.from_numpy(np.asarray(Image.open(STEP_FIXTURE / "inputs" / "gt.png")).astype(np.int64))
    return model, clip, text, frames, labels


def test_training_steps_match_their_code(tmp_path):
    """Six iterations of their training (accumulation over 4: steps after iterations 4 and 6, the
    last one the remainder), run by their mmcv runner on one clip from rule-made weights: the loss
    at every iteration, the first iteration's gradients, the weights and BatchNorm statistics after
    both steps, and every parameter's gradient and change, within tolerances.json (10x their own
    run-to-run spread; see its "how")."""
    record = json.loads((STEP_FIXTURE / "run.json").read_text())
    tol = json.loads((STEP_FIXTURE / "tolerances.json").read_text())
    model, clip, text, frames, labels = _their_run()
    for module in model.modules():  # their run set every dropout to p = 0, so it is deterministic
        if isinstance(module, (torch.nn.Dropout, torch.nn.Dropout2d)):
            module.p = 0.0
    config = training.TrainConfig(iterations=6, accumulate=4, lr=1e-4, warmup=2, checkpoint_every=4, log_every=1)
    groups = training.parameter_groups(model, config)
    theirs = {row["name"]: row for row in _tsv(STEP_FIXTURE / "param_groups.tsv")}
    for group in groups:  # mmcv's paramwise rule, on every parameter name we share with them
        assert float(theirs[group["name"]]["lr"]) == pytest.approx(group["lr"], rel=1e-12), group["name"]
        assert float(theirs[group["name"]]["weight_decay"]) == group["weight_decay"], group["name"]
    names = dict(model.named_parameters())
    initial = {k: p.detach().clone() for k, p in names.items()}
    losses, grads, rates = [], {}, []

    def loss_fn(iteration):
        if iteration == 1:  # what iteration 0's backward left (their hook recorded the same point)
            grads.update({k: p.grad.clone() for k, p in names.items() if p.grad is not None})
        rates.append(config.lr * loop.learning_rate_factor(iteration, config))
        main, aux = model.forward_train(frames, clip, text)
        loss = training.loss(main, aux, labels)
        losses.append(loss.item())
        return loss

    loop.train(model, groups, loss_fn, config, tmp_path, torch.device("cpu"), lambda path: None, amp=False)

    assert rates == pytest.approx(record["lr_backbone"], rel=1e-12) and record["steps_after_iteration"] == [4, 6]
    np.testing.assert_allclose(losses, [e["decode.loss_seg"] for e in record["losses"]], rtol=tol["loss"]["rtol"])
    their_grads, their_final = np.load(STEP_FIXTURE / "grads_iter0.npz"), np.load(STEP_FIXTURE / "params_final.npz")
    state, numerically_zero = model.state_dict(), {}
    for key in their_grads.files:
        expected = their_grads[key].reshape(-1)
        got = grads[key].flatten()[: expected.size].numpy()
        limit = tol["grad"]["atol"] + tol["grad"]["rtol"] * np.abs(expected).max()
        assert np.abs(got - expected).max() <= limit, (key, np.abs(got - expected).max(), limit)
        numerically_zero[key] = np.abs(expected) <= limit
    head_rate = sum(rates[i] for i in (3, 5)) * config.head_lr_mult  # the rates of the two steps
    for key in their_final.files:
        expected = their_final[key].reshape(-1).astype(np.float64)
        got = state[key].flatten()[: expected.size].double().numpy()
        limit = np.full(expected.size, tol["param"]["times_run_to_run"] * tol["param"]["run_to_run"][key]
                        + tol["param"]["floor"])
        if key in numerically_zero:  # Adam's sign of a zero gradient is float noise
            limit[numerically_zero[key]] = 2 * head_rate
        assert (np.abs(got - expected) <= limit).all(), (key, np.abs(got - expected).max())
    norms, zero = json.loads((STEP_FIXTURE / "norms.json").read_text()), tol["norm"]["zero_below"]
    for key, parameter in names.items():  # every parameter: a gradient where theirs had one, the same movement
        assert (key in grads) == (norms[key]["grad0"] is not None), key
        if key in grads and norms[key]["grad0"] > zero:
            assert float(grads[key].double().norm()) == pytest.approx(norms[key]["grad0"],
                                                                       rel=tol["norm"]["grad_rtol"]), key
            moved = float((parameter.detach() - initial[key]).double().norm())
            assert moved == pytest.approx(norms[key]["delta"], rel=tol["norm"]["delta_rtol"]), key
        elif key in grads and norms[key]["grad0"] == 0.0:  # in their graph, gradient 0: decayed only
            moved = float((parameter.detach() - initial[key]).double().norm())
            assert moved == pytest.approx(norms[key]["delta"], rel=1e-4), key


def _tsv(path: pathlib.Path) -> list[dict[str, str]]:
    import csv

    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))

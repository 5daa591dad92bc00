"""Iterations mean what they mean in the authors' config: one iteration is one sample (mmcv's
IterBasedRunner), an optimiser step every `accumulate` iterations, the schedule in iterations."""

import json

import pytest
import torch
from torch import nn

from methods.ov2vss import training


def _run(tmp_path, iterations, accumulate, **extra):
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    config = training.TrainConfig.from_options({"iterations": iterations, "accumulate": accumulate, "warmup": 8,
                                                "checkpoint_every": accumulate * 5, "log_every": 10, **extra})
    steps = []
    optimizer_step = torch.optim.AdamW.step

    def counted(self, *args, **kwargs):
        steps.append(self.param_groups[0]["lr"])
        return optimizer_step(self, *args, **kwargs)

    losses = []

    def loss_fn(iteration):
        x = torch.full((1, 3), float(iteration % 7))
        loss = (model(x) - 1).pow(2).mean()
        losses.append(iteration)
        return loss

    groups = training.parameter_groups(model, [], config)
    torch.optim.AdamW.step = counted
    try:
        training.train(model, groups, loss_fn, config, tmp_path, torch.device("cpu"),
                       lambda path: training.write_ovvss_checkpoint(model, {"method": "test"}, config, path), amp=False)
    finally:
        torch.optim.AdamW.step = optimizer_step
    return model, config, steps, losses


def test_100_iterations_with_accumulation_4_are_25_optimiser_steps(tmp_path):
    model, config, steps, losses = _run(tmp_path, 100, 4)
    assert len(losses) == 100 and len(steps) == 25
    final = torch.load(tmp_path / "final.pt", weights_only=True)
    assert final["schedule"] == {"iterations": 100, "accumulate": 4, "optimizer_steps": 25, "samples": 100,
                                 "iteration": training.ITERATION_MEANS}
    # The AdamW state counts the steps it took.
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["iteration"] == 100 and int(state["optimizer"]["state"][0]["step"]) == 25
    # A step uses the rate set before its last iteration (mmcv sets it before every iteration).
    expected = [config.lr * training.learning_rate_factor(i, config) for i in range(3, 100, 4)]
    assert steps == pytest.approx(expected, rel=1e-12)


def test_a_remainder_makes_a_last_shorter_step(tmp_path):
    _, _, steps, losses = _run(tmp_path, 10, 4)
    assert len(losses) == 10 and len(steps) == 3  # after iterations 4, 8 and 10


def test_accumulated_step_equals_one_step_on_the_mean_loss(tmp_path):
    """mmcv divides each iteration's loss by the accumulation: 4 iterations = one step on their mean."""
    _run(tmp_path / "a", 4, 4, lr=0.1, warmup=1, weight_decay=0.0)
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1 * training.learning_rate_factor(3, training.TrainConfig(
        iterations=4, warmup=1)), weight_decay=0.0)
    loss = sum((model(torch.full((1, 3), float(i))) - 1).pow(2).mean() for i in range(4)) / 4
    loss.backward()
    optimizer.step()
    final = torch.load(tmp_path / "a" / "final.pt", weights_only=True)["model"]
    torch.testing.assert_close(final["weight"], model.weight.detach(), rtol=1e-6, atol=1e-7)


def test_checkpoint_every_must_fall_on_a_step():
    with pytest.raises(ValueError, match="checkpoint_every=6, accumulate=4"):
        training.TrainConfig.from_options({"checkpoint_every": 6, "accumulate": 4})


def test_old_checkpoints_state_their_schedule():
    legacy = {"iterations": 50, "train_config": {"accumulate": 4}}
    assert training.schedule_of(legacy)["optimizer_steps"] == 50
    assert training.schedule_of(legacy)["iterations"] == 200
    assert json.dumps(training.schedule_of({"iterations": 40, "train_config": {"accumulate": 1}}))


def test_shipped_toy_checkpoints_mean_what_their_manifest_says():
    """They were trained without accumulation, so their 4000 iterations were 4000 optimiser steps
    under either meaning; the manifest and the loaded checkpoint say so."""
    from methods.toy import shipped

    for filename, entry in shipped.manifest().items():
        if "schedule" not in entry:
            continue
        saved = torch.load(shipped.path(filename), map_location="cpu", weights_only=True)
        assert training.schedule_of(saved) == entry["schedule"], filename
        assert entry["schedule"]["optimizer_steps"] == entry["options"]["iterations"] // entry["options"]["accumulate"]

"""Faults met by `train`: a SIGKILL at a random moment, and a second driver on the training folder.
The resumed training must end bit-identical to an uninterrupted one (model, optimiser, RNG)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO, run_cli

from methods import clip

METHOD = "clip-cost-volume"
# The tiny CLIP and backbone, small widths, a 64-pixel crop: seconds per run on a CPU.
OPTIONS = {"variant": "trained", "clip_model": clip.TINY_MODEL, "clip_pretrained": "random", "backbone": "resnet-tiny",
           "crop": 64, "cost_channels": 16, "feature_channels": 16, "head_channels": 16, "iterations": 24,
           "accumulate": 2, "warmup": 2, "lr": 0.001, "checkpoint_every": 2, "log_every": 2}
TRAIN = ["train", "--method", METHOD, "--dataset", "synthetic:seen",
         *[item for key, value in OPTIONS.items() for item in ("--opt", f"{METHOD}.{key}={value}")]]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    folder = tmp_path_factory.mktemp("straight")
    run_cli(*TRAIN, "--output", folder, check=0)
    return folder


def assert_identical(a: dict, b: dict, where: str = "") -> None:
    assert a.keys() == b.keys(), where
    for key, value in a.items():
        if isinstance(value, dict):
            assert_identical(value, b[key], f"{where}.{key}")
        elif isinstance(value, torch.Tensor):
            assert torch.equal(value, b[key]), f"{where}.{key}"


def logged(folder) -> list[str]:
    """The rows of the loss log written so far."""
    try:
        return (folder / "loss.csv").read_text().splitlines()[1:]
    except FileNotFoundError:
        return []


@pytest.mark.fault("train killed (SIGKILL) at a random moment, then run again", trials=(2, 12))
def test_a_killed_training_resumes_bit_identical(tmp_path, straight, trial):
    folder = tmp_path / "resumed"
    process = subprocess.Popen([sys.executable, "-m", "benchmark", *TRAIN, "--output", str(folder)], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Killed once the loss log has this many rows (of 12: one every 2 iterations, as a checkpoint), and a
    # moment more: between checkpoints, or while one is being written.
    rows = 2 + (trial * 5) % 9
    deadline = time.monotonic() + 300
    while len(logged(folder)) < rows and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(random.Random(trial).uniform(0, 0.05))
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (folder / "final.pt").exists(), "the kill must land mid-training"
    run_cli(*TRAIN, "--output", folder, check=0)
    final, expected = (torch.load(f / "final.pt", weights_only=True) for f in (folder, straight))
    assert_identical(final["model"], expected["model"], "model")
    last, expected_last = (torch.load(f / "last.pt", weights_only=True) for f in (folder, straight))
    assert_identical(last, expected_last, "last")  # optimiser state and RNG states too
    rows = [(folder / "loss.csv").read_text().splitlines(), (straight / "loss.csv").read_text().splitlines()]
    assert [r.split(",")[:3] for r in rows[0]] == [r.split(",")[:3] for r in rows[1]]  # iteration, loss, lr


@pytest.mark.fault("a second driver on the same training folder")
def test_a_second_training_driver_is_refused(tmp_path, straight):
    folder = tmp_path / "training"
    first = subprocess.Popen([sys.executable, "-m", "benchmark", *TRAIN, "--output", str(folder)], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not ((folder / ".driver.lock").is_file() and (folder / ".driver.lock").stat().st_size):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.02)
    second = run_cli(*TRAIN, "--output", folder)
    assert second.returncode == 2 and f"is in use by another driver (pid {first.pid}" in second.stderr
    assert first.wait() == 0
    assert_identical(torch.load(folder / "final.pt", weights_only=True)["model"],
                     torch.load(straight / "final.pt", weights_only=True)["model"])

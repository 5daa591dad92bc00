"""The toy CLIP's pretraining: a few steps save a float16 state dict that methods.clip loads, and the
held-out crops it is measured on are reproducible."""

import torch

from benchmark.data.cards import load_card
from methods import clip
from methods.toy import clip_pretrain


def test_a_few_steps_save_a_float16_checkpoint_that_load_clip_loads(tmp_path):
    out = tmp_path / "toy-clip.pt"
    config = clip_pretrain.ClipPretrainConfig(steps=3, batch_size=24, warmup=1, held_out_per_class=2)
    metrics = clip_pretrain.pretrain(config, out, log=lambda message: None)
    state = torch.load(out, weights_only=True)
    assert state and all(value.dtype == torch.float16 for value in state.values() if value.is_floating_point())
    assert metrics["steps"] == 3
    assert 0 <= metrics["zero_shot_top1_all"] <= 1 and 0 <= metrics["zero_shot_top1_unseen"] <= 1
    loaded = clip.load_clip(clip.TOY_MODEL, str(out), amp=False)
    assert loaded.weights == str(out.resolve()) and loaded.image_size == clip_pretrain.IMAGE_SIZE
    images, labels = clip_pretrain.held_out_crops(1, seed=0)
    vocabulary = load_card("synthetic")["classes"]
    assert 0 <= clip_pretrain.zero_shot_accuracy(loaded, images, labels, vocabulary) <= 1


def test_held_out_crops_are_deterministic_and_depend_on_the_seed():
    images, labels = clip_pretrain.held_out_crops(2, seed=0)
    again, labels_again = clip_pretrain.held_out_crops(2, seed=0)
    other, _ = clip_pretrain.held_out_crops(2, seed=1)
    assert images.dtype == torch.uint8 and images.shape == (48, 3, clip_pretrain.IMAGE_SIZE, clip_pretrain.IMAGE_SIZE)
    assert torch.equal(labels, torch.arange(24).repeat_interleave(2))
    assert torch.equal(images, again) and torch.equal(labels, labels_again)
    assert not torch.equal(images, other)

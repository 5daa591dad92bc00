"""Pretraining the toy SAM: a few steps give a checkpoint that loads strictly, by type and by `auto`, and scores."""

import pytest
import torch

from methods import sam
from methods.toy import sam_pretrain
from methods.toy.sam_pretrain import SamPretrainConfig


@pytest.fixture
def one_thread():
    """One thread: small ops gain nothing from more, and lose much when other jobs hold the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_a_few_steps_save_a_toy_checkpoint_that_loads_and_is_scored(tmp_path, one_thread):
    out = tmp_path / "toy-sam.pt"
    config = SamPretrainConfig(steps=2, batch_size=2, points=2, val_stride=60)
    lines = []
    metrics = sam_pretrain.pretrain(config, out, log=lines.append)
    assert lines and "step 1" in lines[-1]

    state = torch.load(out, weights_only=True)
    assert sam.checkpoint_type(state) == "toy"
    assert sam.load_sam("auto", out).name == "toy"
    loaded = sam.load_sam("toy", out)
    assert loaded.name == "toy" and loaded.weights == str(out.resolve())
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, state[key].to(value.dtype)), key

    assert metrics["frames"] == 2 and 0 <= metrics["frames_with_masks"] <= 1 and metrics["objects"] > 0
    for key in ("masks_per_frame", "object_recall", "mean_best_iou", "seconds_per_frame", "train_seconds",
                "checkpoint_bytes"):
        assert metrics[key] >= 0, key
    frames, masks = sam_pretrain.load_split("val")
    again = sam_pretrain.evaluate(loaded, frames[:1], masks[:1])
    assert set(again) == {"frames", "masks_per_frame", "frames_with_masks", "objects", "object_recall",
                          "mean_best_iou", "seconds_per_frame"} and again["frames"] == 1


def test_batched_decoding_is_the_mask_decoder_of_each_image(one_thread):
    torch.manual_seed(0)
    model = sam.build_sam(sam.SAM_CONFIGS["toy"])
    grid = model.prompt_encoder.image_embedding_size
    embeddings = torch.randn(3, model.prompt_encoder.embed_dim, *grid)
    coords = torch.rand(3, 4, 2) * model.image_encoder.img_size
    logits, iou = sam_pretrain.decode(model, embeddings, coords)
    for b in range(3):
        sparse, dense = model.prompt_encoder(points=(coords[b][:, None], torch.ones(4, 1, dtype=torch.int)),
                                             boxes=None, masks=None)
        one_logits, one_iou = model.mask_decoder(embeddings[b:b + 1], model.prompt_encoder.get_dense_pe(), sparse,
                                                 dense, multimask_output=True)
        torch.testing.assert_close(logits[4 * b: 4 * b + 4], one_logits)
        torch.testing.assert_close(iou[4 * b: 4 * b + 4], one_iou)

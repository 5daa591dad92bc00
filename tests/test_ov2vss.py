"""OV2VSS on tiny configurations: shapes through every module, where gradients go, training, exact
resume, every Table III variant, and streaming inference against the naive way."""

import json

import numpy as np
import pytest
import torch
from conftest import interrupt_after

from benchmark import cli, registry, suites
from benchmark.data import synthetic
from benchmark.data.training import open_training
from benchmark.interface import Video
from methods import clip
from methods.ov2vss import clips, training
from methods.ov2vss.model import ModelConfig, OV2VSSModel
from methods.ov2vss.variants import VARIANTS

METHOD = "ov2vss"
TINY_MODEL = {"clip_model": clip.TINY_MODEL, "backbone": "resnet-tiny", "prompts": "imagenet_select",
              "cost_channels": 16, "feature_channels": 16, "head_channels": 16, "pool_sizes": (1, 2, 4),
              "regions": 4, "heads": 2, "text_heads": 2}
TINY = {**TINY_MODEL, "clip_pretrained": "random", "crop": 64}
SHORT = {"iterations": 6, "accumulate": 2, "warmup": 2, "lr": 0.001, "checkpoint_every": 2, "log_every": 2}
SMALL_DATA = ["--dataset-opt", "synthetic.videos=1", "--dataset-opt", "synthetic.frames=12"]


def synthetic_video() -> Video:
    record = synthetic.SyntheticReader().read_videos(synthetic.ensure(), "val")[0]
    return Video(record.name, record.frames, record.annotated)


def opts(**options):
    return [item for key, value in options.items()
            for item in ("--opt", f"{METHOD}.{key}={list(value) if isinstance(value, tuple) else value}")]


def tiny_model(backbone: str, **changes) -> OV2VSSModel:
    config = ModelConfig(**{**TINY_MODEL, "backbone": backbone, "clip_input": 32, "stcf": True, "rfe": True,
                            "vte": "attn-ffn", **changes})
    return OV2VSSModel(config)


@pytest.fixture(scope="module")
def tiny_clip():
    return clip.load_clip(clip.TINY_MODEL, "random")


@pytest.mark.parametrize("backbone", ["resnet-tiny", "sam-vit-tiny"])
def test_shapes_through_every_module(backbone, tiny_clip):
    torch.manual_seed(0)
    model = tiny_model(backbone).train()
    text = tiny_clip.text_embeddings(["sky", "road", "car"], "imagenet_select")          # [8 templates, 3, 64]
    frames = model.encode(torch.randint(0, 256, (5, 3, 64, 96), dtype=torch.uint8), tiny_clip)
    assert [tuple(x.shape) for x in frames.pyramid] == [(5, 32, 64 // s, 96 // s) for s in (4, 8, 16, 32)]
    assert tuple(frames.clip.shape) == (5, 64, 4, 6)          # short side at clip_input 32, aspect kept
    assert [tuple(x.shape) for x in frames.maps] == [(5, 16, 64 // s, 96 // s) for s in (8, 16, 32)]
    assert [tuple(x.shape) for x in frames.tokens] == [(5, 1 + 4 + 16, 16)] * 3   # P2T grids 1, 2, 4
    one = [frames.take(i) for i in range(5)]
    context = model.stcf([f.maps for f in one[:4]], one[0].tokens, model.p2t)
    assert tuple(context.shape) == (1, 16, 8, 12)
    assert tuple(model.rfe(torch.zeros(1, 16, 8, 12), one[4].tokens).shape) == (1, 16, 8, 12)
    refined = model.vte(text, torch.stack([f.clip for f in one[:4]], dim=1))
    assert tuple(refined.shape) == (1, 8, 3, 64)
    logits, aux = model.decode(one[3], text, one[:3], one[4])
    assert tuple(logits.shape) == tuple(aux.shape) == (1, 3, 8, 12)
    odd = model.eval().decode(model.encode(torch.zeros(1, 3, 45, 70, dtype=torch.uint8), tiny_clip), text)
    assert tuple(odd[0].shape) == (1, 3, 6, 9) and odd[1] is None  # no past frame: the image-only path, no aux


@pytest.mark.parametrize("backbone", ["resnet-tiny", "sam-vit-tiny"])
def test_gradient_reaches_every_trainable_parameter_and_not_clip(backbone, tiny_clip):
    torch.manual_seed(0)
    model = tiny_model(backbone).train()
    text = tiny_clip.text_embeddings(["sky", "road", "car"], "imagenet_select")
    images = torch.randint(0, 256, (5, 3, 64, 64), dtype=torch.uint8)
    target = torch.randint(0, 3, (1, 64, 64))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def backward():
        optimizer.zero_grad()
        one = [f for f in map(model.encode(images, tiny_clip).take, range(5))]
        logits, aux = model.decode(one[3], text, one[:3], one[4])
        (training.cross_entropy(logits, target) + training.cross_entropy(aux, target)).backward()

    # timm zero-initialises each ResNet block's last BatchNorm, which blocks gradients until one step is taken.
    backward()
    optimizer.step()
    backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    assert all(not p.requires_grad and p.grad is None for p in tiny_clip.model.parameters())


def test_clip_frames_near_the_start_and_in_reverse():
    assert clips.past_frames(10, 20, (9, 6, 3)) == [1, 4, 7]
    assert clips.past_frames(4, 20, (9, 6, 3)) == [1] and clips.past_frames(0, 20, (9, 6, 3)) == []
    assert clips.past_frames(15, 20, (9, 6, 3), direction=1) == [18]
    assert [clips.distant_frame(t, 20) for t in (0, 9, 10, 19)] == [19, 19, 0, 0]
    assert clips.parse_offsets("3,9,6") == (9, 6, 3)
    with pytest.raises(ValueError, match="offsets='9,x'.*positive frame distances"):
        clips.parse_offsets("9,x")
    recipe = clips.ClipRecipe(reverse=1.0)
    frames, distant = recipe.sample(5, 20, np.random.default_rng(0), distant=True)
    assert frames == [14, 11, 8, 5] and distant not in frames and 0 <= distant < 20


def test_training_steps_reduce_the_loss(tmp_path):
    train = open_training("synthetic", "seen")
    method = registry.create(METHOD, **TINY, iterations=60, accumulate=1, warmup=1, lr=0.001, checkpoint_every=60)
    method.setup(train.vocabulary, torch.device("cpu"))
    torch.manual_seed(0)
    method.model = OV2VSSModel(ModelConfig.from_dict(method.model_options)).train()
    loss_fn = method._loss_fn(train)
    samples = list(range(0, 30, 3))
    with torch.no_grad():
        before = np.mean([loss_fn(s).item() for s in samples])
    method.fit(train, train.vocabulary, tmp_path / "train")
    method.model.train()
    with torch.no_grad():
        after = np.mean([loss_fn(s).item() for s in samples])
    # Random CLIP carries no class information, so the loss falls towards the class prior (16 seen
    # classes: 60 steps, not 30, to clear 5%), not towards zero; a model that did not learn would
    # score the same samples the same.
    assert after < 0.95 * before, (before, after)


def test_checkpoint_resumes_to_the_same_next_loss(tmp_path, monkeypatch):
    common = ["train", "--method", METHOD, "--dataset", "synthetic:seen", *opts(**TINY, **SHORT)]
    assert cli.main([*common, "--output", str(tmp_path / "straight")]) == 0
    restore = interrupt_after(monkeypatch, training, "augment_clip", 4)  # one sample per iteration: after the iteration-4 checkpoint
    assert cli.main([*common, "--output", str(tmp_path / "resumed")]) == 130
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["iteration"] == 4
    restore()
    assert cli.main([*common, "--output", str(tmp_path / "resumed")]) == 0
    logs = [(tmp_path / run / "loss.csv").read_text().splitlines() for run in ("straight", "resumed")]
    assert [row.split(",")[:2] for row in logs[0]] == [row.split(",")[:2] for row in logs[1]]  # iteration 6 too
    straight, resumed = (torch.load(tmp_path / run / "final.pt", weights_only=True) for run in ("straight", "resumed"))
    for key, value in straight["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, rtol=0, atol=0, msg=key)
    assert tuple(straight["recipe"]["offsets"]) == (9, 6, 3) and straight["variant"] == "full"


def test_table_iii_rows_name_every_variant():
    rows = suites.find("table3").tables[0].rows
    named = [row.options["variant"] for row in rows if row.method == "ov2vss"]
    assert set(named) == set(VARIANTS) and len(named) == 16 and named.count("full") == 5


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_table_iii_variant_trains_a_step_and_evaluates(variant, tmp_path):
    checkpoint = tmp_path / "train" / "final.pt"
    assert cli.main(["train", "--method", METHOD, "--dataset", "synthetic:seen", "--output", str(tmp_path / "train"),
                     *SMALL_DATA, *opts(variant=variant, **TINY, iterations=1, accumulate=1, warmup=1)]) == 0
    assert torch.load(checkpoint, weights_only=True)["variant"] == variant
    assert cli.main(["run", "--methods", METHOD, "--datasets", "synthetic:unseen", "--output", str(tmp_path / "run"),
                     *SMALL_DATA, "--checkpoint", f"{METHOD}={checkpoint}",
                     *opts(variant=variant, clip_model=clip.TINY_MODEL, clip_pretrained="random")]) == 0
    (path,) = (tmp_path / "run" / "cells").glob("*.json")
    cell = json.loads(path.read_text())
    assert cell["status"] == "done" and cell["counts"]["frames"] == 12
    assert cell["provenance"]["method"]["variant"] == variant
    if variant == "baseline":  # weights filed under another variant would mislabel a Table III row
        assert cli.main(["run", "--methods", METHOD, "--datasets", "synthetic:unseen", "--output",
                         str(tmp_path / "wrong"), *SMALL_DATA, "--checkpoint", f"{METHOD}={checkpoint}",
                         *opts(variant="full", clip_model=clip.TINY_MODEL, clip_pretrained="random")]) == 1
        (path,) = (tmp_path / "wrong" / "cells").glob("*.json")
        assert "was trained as variant 'baseline'" in json.loads(path.read_text())["error"]["message"]


def test_unknown_variant_and_untrained_model_fail_clearly(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown ov2vss variant 'fancy'; choose one of full, baseline"):
        registry.create(METHOD, variant="fancy")
    with pytest.raises(ValueError, match="vte='big': choose one of off, attn, attn-ffn"):
        registry.create(METHOD, vte="big")
    method = registry.create(METHOD, clip_model=clip.TINY_MODEL, clip_pretrained="random")
    method.setup(["sky"], torch.device("cpu"))
    with pytest.raises(ValueError, match="no trained weights.*train --method ov2vss"):
        next(method.segment(synthetic_video()))
    # `run` refuses it up front when named and no shipped checkpoint fits (fusion-add does not ship).
    assert cli.main(["run", "--methods", METHOD, "--datasets", "synthetic:unseen", "--output", str(tmp_path),
                     "--opt", f"{METHOD}.variant=fusion-add"]) == 2
    assert "ov2vss needs trained weights: train ov2vss with `python -m benchmark train --method ov2vss`" in capsys.readouterr().err


def test_streaming_and_naive_inference_give_the_same_label_maps():
    video = synthetic_video()
    assert len(video) == 20
    maps, passes = {}, {}
    for streaming in (True, False):
        method = registry.create(METHOD, **TINY_MODEL, clip_pretrained="random", streaming=streaming)
        method.setup(["sky", "road", "car"], torch.device("cpu"))
        torch.manual_seed(0)
        method.model = OV2VSSModel(ModelConfig.from_dict(method.model_options)).eval()
        maps[streaming] = list(method.segment(video))
        passes[streaming] = method.encoder_passes
    assert len(maps[True]) == len(video.annotated) == 20
    for streamed, naive in zip(maps[True], maps[False]):
        assert torch.equal(streamed, naive)
    assert passes[True] == 20                                   # every frame once; first and last are targets too
    assert passes[False] == sum(len(clips.past_frames(t, 20, (9, 6, 3))) + 2 for t in range(20))


@pytest.mark.parametrize("fusion", ["concat", "add"])
def test_the_head_classifies_the_fusion_of_eq_14(fusion):
    """The head convolves the class-independent feature once per image; that must equal convolving
    the concatenation (or sum) of every class's cost embedding with the feature."""
    from methods.ov2vss.head import ClassHead

    torch.manual_seed(0)
    head = ClassHead(16, 24, 8, fusion).eval()
    cost, feature = torch.randn(2, 5, 16, 6, 7), torch.randn(2, 24, 12, 14)
    upsampled = torch.nn.functional.interpolate(cost.reshape(10, 16, 6, 7), size=(12, 14), mode="bilinear")
    aligned = head.align(feature).repeat_interleave(5, dim=0)
    fused = upsampled + aligned if fusion == "add" else torch.cat([upsampled, aligned], dim=1)
    torch.testing.assert_close(head(cost, feature), head.layers(fused).reshape(2, 5, 12, 14))

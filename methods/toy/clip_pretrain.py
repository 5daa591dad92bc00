"""Pretrain the toy CLIP: a small open_clip model (`methods/clip_configs/ovvss-toy-clip.json`) trained
contrastively on rendered crops of the synthetic world, so the CLIP-based methods show real
zero-shot behaviour on a CPU, where random CLIP weights make every number meaningless.

It is a genuine CLIP, trained as CLIP is: symmetric InfoNCE between image and caption embeddings
with a learnable logit scale, captions drawn from CLIP's 80 ImageNet templates (the prompts the
methods use). It sees all 24 class names, so the unseen 8 are unseen by the segmenters trained on
top of it, not by CLIP, just as real CLIP has seen VSPW's unseen classes on the web. Objects are
drawn smaller than `render_crop` alone draws them, down to the size they have in the videos'
frames, so the patch tokens, not only the whole crop, learn what an object looks like: the methods
classify CLIP's dense features.

    python -m methods.toy.clip_pretrain --out weights/toy/toy-clip.pt
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.data import synthetic
from benchmark.data.cards import load_card
from methods import clip as clip_module

_CONFIG_FILE = clip_module.CONFIG_DIR / f"{clip_module.TOY_MODEL}.json"
IMAGE_SIZE = json.loads(_CONFIG_FILE.read_text())["vision_cfg"]["image_size"]
# Independent random streams (numpy SeedSequence entropy), so held-out crops never repeat training crops.
_TRAIN_STREAM, _HELD_OUT_STREAM = 0, 1


@dataclass(frozen=True)
class ClipPretrainConfig:
    """The recipe; the defaults give the shipped checkpoint."""

    steps: int = 700
    batch_size: int = 96              # a multiple of 24: every class equally often in every batch
    lr: float = 2e-3
    weight_decay: float = 0.1         # on weight matrices only, as CLIP (not on gains, biases, logit scale)
    warmup: int = 50                  # linear warm-up steps, then cosine decay to zero
    seed: int = 0
    min_scale: float = 0.5            # objects drawn at 0.5-1x `render_crop`'s size: as small as in the videos
    held_out_per_class: int = 40      # crops per class for the zero-shot accuracy reported at the end


def pretrain(config: ClipPretrainConfig, out: pathlib.Path, log: Callable[[str], None] = print) -> dict:
    """Train the toy CLIP with `config`, save its state dict (float16) to `out`, return its metrics."""
    start = time.time()
    card = load_card("synthetic")
    classes = card["classes"]
    if config.batch_size % len(classes):
        raise ValueError(f"batch_size={config.batch_size} must be a multiple of the {len(classes)} classes")
    clip_module.register_configs()
    import open_clip

    torch.manual_seed(config.seed)
    model = open_clip.create_model(clip_module.TOY_MODEL, pretrained=None)
    model.train()
    tokenizer = open_clip.get_tokenizer(clip_module.TOY_MODEL)
    templates = clip_module.prompt_templates("imagenet")
    optimizer = _optimizer(model, config)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, config))
    for step in range(config.steps):
        rng = np.random.default_rng([_TRAIN_STREAM, config.seed, step])
        labels = rng.permutation(np.arange(config.batch_size) % len(classes))
        images = torch.from_numpy(np.stack([_crop(rng, classes[k], card, config.min_scale) for k in labels]))
        captions = [templates[int(rng.integers(len(templates)))].format(classes[k]) for k in labels]
        image = model.encode_image(clip_module.normalize(images.permute(0, 3, 1, 2)))
        loss = contrastive_loss(image, model.encode_text(tokenizer(captions)), model.logit_scale.exp(),
                                torch.from_numpy(labels))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():  # CLIP's clamp: a temperature below 1/100 makes training unstable
            model.logit_scale.clamp_(0, math.log(100))
        if step % 50 == 0 or step == config.steps - 1:
            log(f"step {step + 1}/{config.steps}: loss {loss.item():.3f}, "
                f"logit scale {model.logit_scale.exp().item():.1f}")
    train_seconds = time.time() - start
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({name: value.detach().half() for name, value in model.state_dict().items()}, out)

    # Evaluated as the methods see it: the saved float16 weights, loaded as load_clip loads them (not
    # through load_clip itself, whose per-process cache would return an earlier file at this path).
    saved = open_clip.create_model(clip_module.TOY_MODEL, pretrained=str(out)).eval().requires_grad_(False)
    clip = clip_module.DenseClip(saved, tokenizer, clip_module.TOY_MODEL, str(out), torch.device("cpu"))
    images, labels = held_out_crops(config.held_out_per_class, config.seed)
    unseen = labels >= card["num_seen"]
    metrics = {"zero_shot_top1_all": zero_shot_accuracy(clip, images, labels, classes),
               "zero_shot_top1_seen": zero_shot_accuracy(clip, images[~unseen], labels[~unseen],
                                                         classes[:card["num_seen"]]),
               "zero_shot_top1_unseen": zero_shot_accuracy(clip, images[unseen], labels[unseen] - card["num_seen"],
                                                           classes[card["num_seen"]:]),
               "final_loss": loss.item(), "logit_scale": model.logit_scale.exp().item(),
               "steps": config.steps, "train_seconds": train_seconds, "seconds": time.time() - start,
               "checkpoint_bytes": out.stat().st_size, "config": asdict(config)}
    log(f"zero-shot top-1 on held-out crops: {100 * metrics['zero_shot_top1_all']:.1f}% over all "
        f"{len(classes)} classes, {100 * metrics['zero_shot_top1_unseen']:.1f}% among the "
        f"{len(classes) - card['num_seen']} unseen; trained in {train_seconds:.0f} s; saved {out}")
    return metrics


def contrastive_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor,
                     labels: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric InfoNCE, where every caption of a crop's class is a positive: the batch holds
    each class several times, and two captions of one class are the same words in other templates."""
    logits = logit_scale * F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).T
    positives = (labels[:, None] == labels[None, :]).float()
    targets = positives / positives.sum(1, keepdim=True)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def held_out_crops(per_class: int, seed: int = 0, size: int = IMAGE_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """`per_class` crops of each class as `render_crop` draws them, from a stream training never draws
    from: uint8 images [N, 3, size, size] and class indices [N] (the card's order)."""
    card = load_card("synthetic")
    rng = np.random.default_rng([_HELD_OUT_STREAM, seed])
    labels = np.repeat(np.arange(len(card["classes"])), per_class)
    images = np.stack([synthetic.render_crop(rng, card["classes"][k], card, size) for k in labels])
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)


def zero_shot_accuracy(clip: clip_module.DenseClip, images: torch.Tensor, labels: torch.Tensor,
                       vocabulary: list[str], batch_size: int = 256) -> float:
    """Top-1 accuracy of CLIP's zero-shot classifier (80-template mean) over `vocabulary` on uint8
    images [N, 3, S, S] with class indices into `vocabulary`: the path the benchmark's methods use."""
    classifier = clip_module.class_embeddings(clip.text_embeddings(list(vocabulary), "imagenet"))
    predictions = torch.cat([(clip.image_embeddings(clip_module.normalize(images[i: i + batch_size])) @ classifier.T)
                             .argmax(1) for i in range(0, len(images), batch_size)])
    return (predictions.cpu() == labels).float().mean().item()


def _crop(rng: np.random.Generator, name: str, card: dict, min_scale: float) -> np.ndarray:
    """A training crop [IMAGE_SIZE, IMAGE_SIZE, 3]: `render_crop` drawn larger and shrunk by a random
    factor, so its object (and any neighbour) appears at `min_scale`-1x its usual size."""
    scale = rng.uniform(min_scale, 1)
    size = int(round(IMAGE_SIZE / scale))
    crop = synthetic.render_crop(rng, name, card, size)
    if size == IMAGE_SIZE:
        return crop
    image = torch.from_numpy(crop).permute(2, 0, 1)[None].float()
    image = F.interpolate(image, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", antialias=True, align_corners=False)
    return image[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def _optimizer(model: torch.nn.Module, config: ClipPretrainConfig) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.98), eps=1e-6)


def _lr_factor(step: int, config: ClipPretrainConfig) -> float:
    if step < config.warmup:
        return (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return 0.5 * (1 + math.cos(math.pi * progress))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m methods.toy.clip_pretrain", description=(
        "Pretrain the toy CLIP on rendered crops of the synthetic world and save its float16 state dict."))
    parser.add_argument("--out", type=pathlib.Path, required=True, help="where to save the checkpoint (.pt)")
    parser.add_argument("--steps", type=int, default=ClipPretrainConfig.steps)
    parser.add_argument("--seed", type=int, default=ClipPretrainConfig.seed)
    args = parser.parse_args(argv)
    metrics = pretrain(ClipPretrainConfig(steps=args.steps, seed=args.seed), args.out)
    print(json.dumps({k: v for k, v in metrics.items() if k != "config"}, indent=1))


if __name__ == "__main__":
    main()

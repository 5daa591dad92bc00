"""Class text embeddings as the authors' `zeroshot_classifier` computes them
(`cat_zeroshot_classifier.py:275-296`): for each class, its prompts from the 80 ImageNet templates
(a name holding ', ' gives one prompt per part, averaged per template), encoded by CLIP's text
tower, each row L2-normalised, then the class's (templates x D) block divided by its Frobenius norm,
so each row has norm 1/sqrt(80) rather than 1. Names are used as given (raw VSPW names keep their
underscores under the official protocol, as in their code).
"""

from __future__ import annotations

import pathlib

import numpy as np
import torch

from methods import clip as clip_module


@torch.no_grad()
def text_features(clip: clip_module.DenseClip, vocabulary: list[str], prompts: str = "imagenet") -> torch.Tensor:
    """[K, T, D] float32 for the names of `vocabulary` (K) and the templates of `prompts` (T)."""
    templates = clip_module.prompt_templates(prompts)
    features = []
    for name in vocabulary:
        parts = name.split(", ") if ", " in name else [name]
        texts = [template.format(part) for template in templates for part in parts]
        tokens = clip.tokenizer(texts).to(clip.device)
        embeddings = clip.model.encode_text(tokens).float()
        embeddings = embeddings / embeddings.norm(dim=-1, keepdim=True)
        per_template = embeddings.reshape(len(templates), -1, embeddings.shape[-1]).mean(dim=1)
        features.append(per_template / per_template.norm())
    return torch.stack(features)


def read_text_features(path: str | pathlib.Path, vocabulary: list[str], templates: int, width: int) -> torch.Tensor:
    """Precomputed text features [K, T, D] from a .npy file (e.g. their cached `text_features_test`),
    checked against the vocabulary's size and the model's template count and width."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text features {path} do not exist; expected a .npy array [classes, templates, "
                                "width] in the vocabulary's order")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read text features {path} ({error}); expected a .npy array") from error
    expected = (len(vocabulary), templates, width)
    if array.shape != expected:
        raise ValueError(f"text features {path} have shape {array.shape}, but the vocabulary of {len(vocabulary)} "
                         f"names needs {expected} (classes, templates, width)")
    return torch.from_numpy(array.astype(np.float32))

"""Where a cell or a training run computes and how its random streams start: shared by both, so
neither imports the other."""

from __future__ import annotations

import random

import numpy as np


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("this machine has no CUDA device; use --device cpu or auto")
    return device


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)

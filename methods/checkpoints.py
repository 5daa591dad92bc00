"""Reading weight files, with errors that name the file and what it should have been.

Every loader (backbones, trained models, training state) goes through `read`, so a missing,
truncated or foreign file fails the same way wherever it is met. Files load with
`weights_only=True`; `.safetensors` files through safetensors.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import torch


def read(path: str | os.PathLike, expected: str) -> Any:
    """The object stored in `path`; `expected` says what the file should be (used in errors)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; expected {expected}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch and safetensors raise several types for a truncated or foreign file
        raise ValueError(f"cannot read checkpoint {path} ({type(error).__name__}: {str(error)[:300]}); expected "
                         f"{expected}; the file is corrupt, truncated or of another kind") from error

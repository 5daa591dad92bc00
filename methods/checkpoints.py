"""Reading weight files, with errors that name the file and what it should have been; writing them
whole or not at all (`save`).

Every loader (backbones, SAM, trained models, training state) goes through `read`, so a missing,
truncated or foreign file fails the same way wherever it is met; state dicts load strictly through
`load_strict`. Files load with `weights_only=True`; `.safetensors` files through safetensors.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pathlib
import pickle
from collections.abc import Mapping
from typing import Any

import torch

#: Values of a weights option (`clip_pretrained`, `sam_checkpoint`) that mean random initialisation.
RANDOM = ("random", "none", "")


def save(obj: Any, path: pathlib.Path) -> pathlib.Path:
    """`torch.save` through a temporary file renamed into place, so a kill never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(obj, partial)
    os.replace(partial, path)
    return path


def read(path: str | os.PathLike, expected: str, mmap: bool = False) -> Any:
    """The object stored in `path`; `expected` says what the file should be (used in errors). With
    `mmap`, tensors stay in the file until read (a large checkpoint costs no copy)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; expected {expected}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and _is_zip(path))
    except pickle.UnpicklingError as error:
        # weights_only names the class or function a pickle wanted to call; anything else is damage
        found = [line.strip() for line in str(error).splitlines() if "GLOBAL" in line]
        if found:
            raise ValueError(f"refusing checkpoint {path}: it holds Python objects other than tensors and plain "
                             f"containers ({found[0][:200]}), and loading them could run code from the file; "
                             f"expected {expected}. Re-save the weights alone (a state dict).") from error
        raise _unreadable(path, expected, error) from error
    except Exception as error:  # torch and safetensors raise several types for a truncated or foreign file
        raise _unreadable(path, expected, error) from error


def _unreadable(path: pathlib.Path, expected: str, error: Exception) -> ValueError:
    return ValueError(f"cannot read checkpoint {path} ({type(error).__name__}: {str(error)[:300]}); expected "
                      f"{expected}; the file is corrupt, truncated or of another kind")


def _is_zip(path: pathlib.Path) -> bool:
    """torch.save's default format (a zip archive), the only one torch.load can memory-map."""
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime: float) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file (cached while its size and time stamp stay): weights are known by their
    content, since the same file sits at different paths in different clones."""
    stat = os.stat(path)
    return _sha256(str(pathlib.Path(path).resolve()), stat.st_size, stat.st_mtime)


def weights_sha256(weights: str) -> str | None:
    """The sha256 of `weights` when it names a file (else a tag such as 'random': None)."""
    return file_sha256(weights) if pathlib.Path(weights).is_file() else None


def read_state_dict(path: str | os.PathLike, expected: str) -> dict[str, torch.Tensor]:
    """The state dict stored in `path` (an error if the file holds anything else)."""
    state = read(path, expected)
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"checkpoint {path} holds a {type(state).__name__}, not a state dict of tensors; "
                         f"expected {expected}")
    return dict(state)


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike, what: str,
                expected: str, key_prefix: str = "") -> None:
    """`module.load_state_dict(state, strict=True)` with errors that name the checkpoint, the keys
    (as the file spells them: `key_prefix` + key) and what was expected; `what` names the module."""
    own = module.state_dict()
    wrong_shape = [k for k in state if k in own and state[k].shape != own[k].shape]
    if wrong_shape:
        details = "; ".join(f"{key_prefix}{k}: {tuple(state[k].shape)} in the checkpoint, {tuple(own[k].shape)} "
                            f"in {what}" for k in wrong_shape[:3])
        raise ValueError(f"checkpoint {path} does not fit {what} ({details}); the checkpoint is for another "
                         f"model type; expected {expected}")
    # torch fills in BatchNorm's num_batches_tracked, which older torchvision checkpoints lack.
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    for problem, keys in (("misses", missing), ("has unexpected", unexpected)):
        if keys:
            shown = ", ".join(key_prefix + k for k in keys[:5])
            raise ValueError(f"checkpoint {path} {problem} keys for {what}: {len(keys)} in all, e.g. {shown}; "
                             f"expected {expected}")
    module.load_state_dict(state, strict=True)

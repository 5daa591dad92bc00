"""Decoding frames, and the background threads that do it ahead of the method.

Pillow releases the GIL while it decodes, so a few threads decode frames in parallel with the
method's own work; a process pool would have to copy every frame back.
"""

from __future__ import annotations

import os
import pathlib
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

T = TypeVar("T")
R = TypeVar("R")
_DONE = object()

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def decode_workers() -> int:
    """Threads that decode ahead: $BENCHMARK_DECODE_WORKERS, else up to 4 (one per core)."""
    configured = os.environ.get("BENCHMARK_DECODE_WORKERS")
    if configured:
        return max(0, int(configured))
    return min(4, os.cpu_count() or 1)


def decode_pool() -> ThreadPoolExecutor | None:
    """The process-wide decoding pool, or None when background decoding is turned off (0 workers)."""
    global _pool
    if _pool is not None:  # called for every frame: no environment read once the pool exists
        return _pool
    workers = decode_workers()
    if workers == 0:
        return None
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="frame-decoder")
        return _pool


def read_frame(path: pathlib.Path) -> torch.Tensor:
    """An image file as a uint8 RGB tensor [3, H, W]; OSError (naming the file) when it is unreadable
    or truncated. The whole conversion runs in the calling (decoding) thread: done in the method's
    thread instead, it halves the decoding throughput."""
    import torch
    from PIL import Image

    try:
        with Image.open(path) as image:
            array = np.array(image.convert("RGB"))
    except (OSError, ValueError) as error:
        raise OSError(f"cannot read image {path}: {error}; the file is corrupt or truncated: "
                      "extract it again from the dataset archive") from error
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def read_ahead(read: Callable[[T], R], items: Sequence[T], depth: int = 4) -> Iterator[R]:
    """`read(item)` for each item, in order, with up to `depth` reads running ahead in the pool.
    An error surfaces when its item is reached."""
    pool = decode_pool()
    if pool is None:
        yield from map(read, items)
        return
    pending: deque[Future] = deque()
    upcoming = iter(items)
    for item in upcoming:
        pending.append(pool.submit(read, item))
        if len(pending) >= depth:
            break
    while pending:
        future = pending.popleft()
        item = next(upcoming, _DONE)
        if item is not _DONE:
            pending.append(pool.submit(read, item))
        try:
            yield future.result()
        except BaseException:
            for other in pending:
                other.cancel()
            raise

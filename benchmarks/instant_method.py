"""A method that costs nothing, for timing the harness around it (`benchmarks/harness_overhead.py`).

`instant` reads each annotated frame (as every method must) and returns a label map prepared once per
frame size: random vocabulary labels, int64 like an argmax. With `delay_ms` it waits that long per frame
with the GIL released, as a method does while its GPU computes. Between one yield and the next
resumption only the harness runs on the main thread, so the method times those gaps (main-thread CPU
and wall time) and adds them to $HARNESS_TIMING_DIR/<pid>.json after every video.
"""

from __future__ import annotations

import json
import os
import pathlib
import time

import torch

from benchmark.interface import Method


class Instant(Method):
    name = "instant"
    option_help = {"delay_ms": "milliseconds to wait per frame, GIL released (a GPU method's compute)"}

    def __init__(self, delay_ms: float = 0.0):
        self.delay_s = float(delay_ms) / 1000
        self.maps: dict[tuple[int, int], torch.Tensor] = {}
        self.totals = {"frames": 0, "cpu_s": 0.0, "wall_s": 0.0}
        self.mark: tuple[float, float] | None = None

    def setup(self, vocabulary, device):
        self.labels = len(vocabulary)

    def _resumed(self) -> None:
        """The harness ran on this thread since the last mark: count it."""
        if self.mark is not None:
            self.totals["cpu_s"] += time.thread_time() - self.mark[0]
            self.totals["wall_s"] += time.perf_counter() - self.mark[1]

    def segment(self, video):
        for i in video.annotated:
            size = tuple(video.frame(i).shape[1:])  # the harness's decoding: counted with the harness
            self._resumed()
            if size not in self.maps:
                generator = torch.Generator().manual_seed(0)
                self.maps[size] = torch.randint(0, self.labels, size, generator=generator)
            if self.delay_s:
                time.sleep(self.delay_s)
            self.mark = (time.thread_time(), time.perf_counter())
            yield self.maps[size]
        self._resumed()
        self.totals["frames"] += len(video.annotated)
        folder = os.environ.get("HARNESS_TIMING_DIR")
        if folder:
            pathlib.Path(folder, f"{os.getpid()}.json").write_text(json.dumps(self.totals))
        self.mark = (time.thread_time(), time.perf_counter())  # the runner's work until the next video counts

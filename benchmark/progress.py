"""Progress of a long loop: a tqdm bar on a terminal, plain log lines in a batch job."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger(__name__)


def log_to_stderr() -> None:
    """In a job (a SLURM job or a local process), the harness's messages, progress lines among them, go to
    its log (what `status` shows the end of), as a terminal would show them."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")


class Progress:
    """tqdm on a terminal; in a batch job, a plain log line at most every LOG_SECONDS and at the end."""

    LOG_SECONDS = 30.0

    def __init__(self, total: int, label: str, unit: str = "frame"):
        self.total, self.label, self.unit, self.done = total, label, unit, 0
        self.last_log = time.monotonic()
        self.bar = None
        if sys.stderr.isatty() and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=label[:40], unit=unit, leave=False)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif time.monotonic() - self.last_log >= self.LOG_SECONDS or self.done == self.total:
            self.last_log = time.monotonic()
            log.info("%s: %d/%d %ss", self.label, self.done, self.total, self.unit)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

"""The rows tables show, with their uncertainty: cells of one configuration run with several seeds
become one row (mean and standard deviation over seeds), every value carries its bootstrap interval
over videos, and rows on the same videos are compared on the same resamples (`benchmark.uncertainty`).

Cells of one configuration are those whose fields differ only in their seed and in the weights
trained or given for that seed (`training`, `checkpoint`); they form one row when their seeds differ.
A row is shown as its lowest seed's result with the means over seeds in place of its values.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark import uncertainty

#: Cell fields that tell the seeds of one configuration apart.
SEED_FIELDS = ("id", "seed", "training", "checkpoint")


def configuration(result: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in result["cell"].items() if k not in SEED_FIELDS}, sort_keys=True, default=str)


class Rows:
    """The finished cells of a folder as table rows, each with its seeds' samples (computed once)."""

    def __init__(self, finished: list[dict[str, Any]], bootstrap: uncertainty.Bootstrap | None = None):
        self.bootstrap = bootstrap or _recorded(finished) or uncertainty.Bootstrap()
        self.cells = {result["cell"]["id"]: [result] for result in finished}  # each seed apart
        groups: dict[str, list[dict]] = {}
        for result in finished:
            groups.setdefault(configuration(result), []).append(result)
        self.members: dict[str, list[dict]] = {}   # row id (its lowest seed's cell id) -> its cells
        for group in groups.values():
            seeds = [r["cell"].get("seed", 0) for r in group]
            parts = [group] if len(set(seeds)) == len(seeds) else [[r] for r in group]
            for part in parts:
                part.sort(key=lambda r: r["cell"].get("seed", 0))
                self.members[part[0]["cell"]["id"]] = part
        self._samples: dict[str, uncertainty.Samples | None] = {}
        self.results = [self._shown(row, cells) for row, cells in self.members.items()]

    def seeds(self, row: str) -> list[int]:
        return [r["cell"].get("seed", 0) for r in self.members[row]]

    def _shown(self, row: str, cells: list[dict]) -> dict[str, Any]:
        """The row as a result: the lowest seed's, with means over seeds and the row's intervals."""
        if len(cells) == 1:
            return cells[0]
        first = cells[0]
        metrics = {name: _mean([(r.get("metrics") or {}).get(name) for r in cells]) for name in first["metrics"]}
        intervals = {name: [estimate.low, estimate.high] for name in metrics
                     if (estimate := self.estimate(row, name)).low is not None}
        per_class = {name: {**scores, "IoU": _mean([r["per_class"].get(name, {}).get("IoU") for r in cells]),
                            "IoU_interval": self.class_interval(row, k)}
                     for k, (name, scores) in enumerate(first["per_class"].items())}
        return {**first, "metrics": metrics, "intervals": intervals, "per_class": per_class,
                "seeds": [r["cell"].get("seed", 0) for r in cells], "seed_cells": [r["cell"]["id"] for r in cells]}

    def _cell_samples(self, result: dict[str, Any]) -> uncertainty.Samples | None:
        cell = result["cell"]["id"]
        if cell not in self._samples:
            videos = result.get("per_video")
            self._samples[cell] = None if not videos else uncertainty.samples(
                uncertainty.VideoCounts.from_json(videos), result.get("groups"), self.bootstrap)
        return self._samples[cell]

    def _row_samples(self, row: str, members: dict[str, list[dict]] | None = None) -> list[uncertainty.Samples] | None:
        cells = (members or self.members)[row]
        drawn = [self._cell_samples(r) for r in cells]
        names = {tuple(r["per_video"]["names"]) for r in cells if r.get("per_video")}
        return drawn if drawn and None not in drawn and len(names) == 1 else None

    def cell_estimate(self, cell: str, metric: str) -> uncertainty.Estimate:
        """One cell's value of `metric` with its interval, whatever row it belongs to."""
        return self.estimate(cell, metric, self.cells)

    def estimate(self, row: str, metric: str, members: dict[str, list[dict]] | None = None) -> uncertainty.Estimate:
        """The row's value of `metric` with its interval (and spread over seeds)."""
        cells = (members or self.members)[row]
        values = [(r.get("metrics") or {}).get(metric) for r in cells]
        if any(v is None for v in values):
            return uncertainty.Estimate(None, seeds=len(cells))
        drawn = self._row_samples(row, members)
        if drawn is not None and metric in drawn[0].metrics:
            found = uncertainty.estimate(drawn, metric, self.bootstrap)
            found.value = _mean(values)  # the results' own values, not the vectorised recomputation
            found.std = float(np.std(values, ddof=1)) if len(values) > 1 else None
            return found
        stored = (cells[0].get("intervals") or {}).get(metric) if len(cells) == 1 else None
        return uncertainty.Estimate(values[0] if len(cells) == 1 else _mean(values), *(stored or (None, None)),
                                    seeds=len(cells))

    def class_interval(self, row: str, class_index: int) -> list[float] | None:
        """The interval of the row's IoU of one class (of the seeds' mean)."""
        drawn = self._row_samples(row)
        if drawn is None:
            return None
        bounds = self.bootstrap.interval(np.mean([s.per_class_iou[:, class_index] for s in drawn], axis=0))
        return None if math.isnan(bounds[0]) else [float(bounds[0]), float(bounds[1])]

    def difference(self, a: str, b: str, metric: str) -> uncertainty.Difference | None:
        """Row a - row b on the same resampled videos; None when they were not scored on the same videos
        (or a result kept no per-video counts)."""
        first, second = self._row_samples(a), self._row_samples(b)
        if first is None or second is None:
            return None
        if self.members[a][0]["per_video"]["names"] != self.members[b][0]["per_video"]["names"]:
            return None
        return uncertainty.paired_difference(first, second, metric, self.bootstrap)


def _recorded(results: list[dict[str, Any]]) -> uncertainty.Bootstrap | None:
    """The bootstrap the results recorded, when they agree on one."""
    found = {uncertainty.Bootstrap.of(r.get("bootstrap")) for r in results} - {None}
    return found.pop() if len(found) == 1 else None


def _mean(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else sum(values) / len(values)


@dataclass
class Value:
    """A number as a table shows it: `48.56 [45.1, 52.0]`, with the seeds' spread (`48.56 ±1.20 [...]`),
    the difference from a published value (`(+1.20)`, `†` when that value lies outside the interval),
    bold when it is the best or indistinguishable from it. `latex()` gives the paper-ready form."""

    value: float | None
    low: float | None = None
    high: float | None = None
    std: float | None = None
    delta: float | None = None
    outside: bool = False
    bold: bool = False
    star: bool = False

    def __post_init__(self):  # values read back from a table's data come as NaN where missing
        for name in ("value", "low", "high", "std", "delta"):
            value = getattr(self, name)
            if value is not None and math.isnan(value):
                setattr(self, name, None)

    @classmethod
    def of(cls, estimate: uncertainty.Estimate, published: float | None = None, **flags: bool) -> Value:
        delta = None if published is None or estimate.value is None else estimate.value - published
        outside = published is not None and estimate.contains(published) is False
        return cls(estimate.value, estimate.low, estimate.high, estimate.std, delta, outside, **flags)

    def __str__(self) -> str:
        if self.value is None:
            return "-"
        number = f"**{self.value:.2f}**" if self.bold else f"{self.value:.2f}"
        spread = f" ±{self.std:.2f}" if self.std is not None else ""
        interval = f" [{self.low:.1f}, {self.high:.1f}]" if self.low is not None else ""
        return number + spread + interval + self._tail()

    def latex(self) -> str:
        if self.value is None:
            return "-"
        number = rf"\textbf{{{self.value:.2f}}}" if self.bold else f"{self.value:.2f}"
        small = (rf"$\pm${self.std:.2f} " if self.std is not None else "") + (
            f"[{self.low:.1f}, {self.high:.1f}]" if self.low is not None else "")
        tail = self._tail().replace("†", r"$^\dagger$").replace("*", r"$^*$")
        return number + (rf"\,{{\scriptsize {small.strip()}}}" if small else "") + tail

    def _tail(self) -> str:
        delta = f" ({self.delta:+.2f})" if self.delta is not None else ""
        return delta + ("†" if self.outside else "") + ("*" if self.star else "")

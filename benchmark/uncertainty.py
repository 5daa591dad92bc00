"""How sure a number is: a bootstrap over videos, paired comparisons, and the spread over seeds.

Videos, not pixels or frames, are what a dataset samples (a video's frames are alike), so a cell's
metrics are resampled by video: each resample draws the split's V videos with replacement and
recomputes every metric from the drawn videos' summed counts, exactly as `benchmark.metrics` defines
it (never an average of per-video scores); VC_n pools the drawn videos' windows. The interval is the
percentile interval of the resampled values. A resample is a row of video weights (how often each
video was drawn), so all resamples are one matrix product: cheap at VSPW's 343 videos x 124 classes.

Everything derives from the seed: two cells on the same videos see the same resamples, which is what
a paired comparison needs. Several seeds of one configuration are summarised by the mean over seeds,
resampled on the same videos, and the seeds' standard deviation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from benchmark.metrics import class_scores

#: Defaults of every result: resamples, two-sided confidence level, and the seed of the draws.
RESAMPLES = 1000
CONFIDENCE = 0.95
SEED = 0


@dataclass(frozen=True)
class Bootstrap:
    """How intervals are drawn: `resamples` draws of the videos, seeded, `confidence` level."""

    resamples: int = RESAMPLES
    confidence: float = CONFIDENCE
    seed: int = SEED

    def __post_init__(self):
        if self.resamples < 1 or not 0 < self.confidence < 1:
            raise ValueError(f"bootstrap resamples={self.resamples}, confidence={self.confidence}: need at least 1 "
                             "resample and a confidence level strictly between 0 and 1 (e.g. 0.95)")

    def draws(self, videos: int) -> np.ndarray:
        """[resamples, videos]: the video indices each resample draws (with replacement)."""
        return np.random.default_rng(self.seed).integers(0, videos, size=(self.resamples, videos))

    def weights(self, videos: int) -> np.ndarray:
        """[resamples, videos]: how many times each resample drew each video."""
        draws = self.draws(videos)
        rows = draws + videos * np.arange(self.resamples)[:, None]
        return np.bincount(rows.ravel(), minlength=self.resamples * videos).reshape(self.resamples, videos)

    def interval(self, samples: np.ndarray) -> np.ndarray:
        """[2, ...]: the percentile interval of `samples` along its first axis, over the resamples where
        the value is defined (NaN where it never is)."""
        tail = 100 * (1 - self.confidence) / 2
        samples = np.asarray(samples, dtype=np.float64)
        defined = ~np.isnan(samples)
        if defined.all():
            return np.percentile(samples, [tail, 100 - tail], axis=0)
        result = np.full((2, *samples.shape[1:]), np.nan)
        columns = defined.any(axis=0)
        if columns.any():
            result[:, columns] = np.nanpercentile(samples[:, columns], [tail, 100 - tail], axis=0)
        return result

    def describe(self) -> dict[str, Any]:
        return {"unit": "video", "interval": "percentile", **asdict(self)}

    @classmethod
    def of(cls, described: Mapping[str, Any] | None) -> Bootstrap | None:
        """The settings a result recorded (`describe()`), or None when it recorded none."""
        if not described:
            return None
        return cls(int(described["resamples"]), float(described["confidence"]), int(described["seed"]))


@dataclass
class VideoCounts:
    """What a cell's metrics are made of, per video in dataset order: per class the true positives,
    ground-truth and predicted pixels ([V, C] each), and per VC window length the summed window
    ratios and the number of windows ([V] each)."""

    names: list[str]
    tp: np.ndarray
    gt: np.ndarray
    pred: np.ndarray
    vc_ratio: dict[int, np.ndarray]
    vc_windows: dict[int, np.ndarray]

    @classmethod
    def from_states(cls, names: Sequence[str], confusions: Sequence[np.ndarray],
                    vc_states: Sequence[Mapping[str, Any]]) -> VideoCounts:
        """From each video's confusion counts [C, C + 1] (last column: abstained) and VC state."""
        classes = confusions[0].shape[0] if len(confusions) else 0
        tp, gt, pred = (np.zeros((len(names), classes), dtype=np.int64) for _ in range(3))
        for v, counts in enumerate(confusions):
            tp[v], gt[v], pred[v] = np.diagonal(counts), counts.sum(axis=1), counts[:, :classes].sum(axis=0)
        lengths = [int(n) for n in vc_states[0]["windows"]] if len(vc_states) else []
        return cls(list(names), tp, gt, pred,
                   {n: np.array([float(s["ratio_sum"][str(n)]) for s in vc_states]) for n in lengths},
                   {n: np.array([int(s["windows"][str(n)]) for s in vc_states], dtype=np.int64) for n in lengths})

    def to_json(self) -> dict[str, Any]:
        """Compact: per (video, class) with any pixel, [video, class, tp, gt, pred]."""
        videos, classes = np.nonzero(self.gt + self.pred)
        rows = np.stack([videos, classes, self.tp[videos, classes], self.gt[videos, classes],
                         self.pred[videos, classes]], axis=1)
        return {"names": self.names, "classes": int(self.tp.shape[1]), "counts": rows.tolist(),
                "vc": {str(n): {"ratio_sum": self.vc_ratio[n].tolist(), "windows": self.vc_windows[n].tolist()}
                       for n in self.vc_ratio}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VideoCounts:
        shape = (len(data["names"]), int(data["classes"]))
        tp, gt, pred = (np.zeros(shape, dtype=np.int64) for _ in range(3))
        rows = np.asarray(data["counts"], dtype=np.int64).reshape(-1, 5)
        for target, column in ((tp, 2), (gt, 3), (pred, 4)):
            target[rows[:, 0], rows[:, 1]] = rows[:, column]
        vc = data.get("vc") or {}
        return cls(list(data["names"]), tp, gt, pred,
                   {int(n): np.asarray(v["ratio_sum"], dtype=np.float64) for n, v in vc.items()},
                   {int(n): np.asarray(v["windows"], dtype=np.int64) for n, v in vc.items()})


@dataclass
class Samples:
    """Every metric of a cell under each resample ([B] per metric; per-class IoU [B, C]), and the
    point values (all videos once)."""

    metrics: dict[str, np.ndarray]
    per_class_iou: np.ndarray
    points: dict[str, float]


def metric_values(counts: VideoCounts, weights: np.ndarray,
                  groups: Mapping[str, Sequence[int]] | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each metric (percent, NaN where undefined) for each row of video `weights` [B, V], from the
    weighted sums of the counts, by the definitions `ConfusionMatrix.compute` uses (`class_scores`)
    and VC's pooled ratio; and the per-class IoU [B, C]."""
    weights = np.asarray(weights, dtype=np.float64)  # sums of int64 pixel counts stay exact below 2**53
    values, iou, _ = class_scores(weights @ counts.tp, weights @ counts.gt, weights @ counts.pred, groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        for n in counts.vc_ratio:
            windows = weights @ counts.vc_windows[n]
            values[f"VC_{n}"] = np.where(windows > 0, 100 * (weights @ counts.vc_ratio[n]) / windows, np.nan)
    return values, 100 * iou


def samples(counts: VideoCounts, groups: Mapping[str, Sequence[int]] | None, bootstrap: Bootstrap) -> Samples:
    """The cell's metrics under each of the bootstrap's resamples, and at the point (every video once)."""
    resampled, per_class = metric_values(counts, bootstrap.weights(len(counts.names)), groups)
    point, _ = metric_values(counts, np.ones((1, len(counts.names))), groups)
    return Samples(resampled, per_class, {name: float(value[0]) for name, value in point.items()})


def cell_intervals(counts: VideoCounts, groups: Mapping[str, Sequence[int]] | None, class_names: Sequence[str],
                   bootstrap: Bootstrap) -> tuple[dict[str, list[float] | None], dict[str, list[float] | None]]:
    """({metric: [low, high]}, {class: [low, high]}) in percent; None where a value is never defined."""
    drawn = samples(counts, groups, bootstrap)
    metrics = {name: _pair(bootstrap.interval(values)) for name, values in drawn.metrics.items()}
    bounds = bootstrap.interval(drawn.per_class_iou)
    return metrics, {name: _pair(bounds[:, c]) for c, name in enumerate(class_names)}


def _pair(bounds: np.ndarray) -> list[float] | None:
    low, high = (float(v) for v in bounds)
    return None if math.isnan(low) else [low, high]


@dataclass
class Estimate:
    """A row's value of one metric: the mean over its seeds (one seed: the cell's value), the seeds'
    standard deviation (None for one seed), and the bootstrap interval of that mean over videos."""

    value: float | None
    low: float | None = None
    high: float | None = None
    std: float | None = None
    seeds: int = 1

    def contains(self, value: float) -> bool | None:
        return None if self.low is None else self.low <= value <= self.high


def estimate(group: Sequence[Samples], metric: str, bootstrap: Bootstrap) -> Estimate:
    """The estimate of `metric` for a configuration run with the seeds whose samples are `group`."""
    points = [s.points.get(metric) for s in group]
    if not group or any(p is None or math.isnan(p) for p in points):
        return Estimate(None, seeds=len(group))
    mean = np.mean([s.metrics[metric] for s in group], axis=0)
    bounds = _pair(bootstrap.interval(mean))
    std = float(np.std(points, ddof=1)) if len(points) > 1 else None
    return Estimate(float(np.mean(points)), *(bounds or (None, None)), std=std, seeds=len(points))


@dataclass
class Difference:
    """A - B of one metric on the same resampled videos: the point difference, its interval and the
    two-sided p-value of 'no difference'."""

    value: float
    low: float
    high: float
    p_value: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def paired_difference(a: Sequence[Samples], b: Sequence[Samples], metric: str,
                      bootstrap: Bootstrap) -> Difference | None:
    """The paired bootstrap of mean(A) - mean(B) over seeds (one seed each: the cells themselves).
    Both sides' samples must come from the same videos and bootstrap. The p-value is the share of
    resampled differences at least as far from the observed one as the observed one is from 0
    (the centred null), counted as (1 + hits) / (1 + resamples) so it is never 0."""
    points = [s.points.get(metric) for s in (*a, *b)]
    if not a or not b or any(p is None or math.isnan(p) for p in points):
        return None
    observed = float(np.mean([s.points[metric] for s in a]) - np.mean([s.points[metric] for s in b]))
    resampled = np.mean([s.metrics[metric] for s in a], axis=0) - np.mean([s.metrics[metric] for s in b], axis=0)
    resampled = resampled[~np.isnan(resampled)]
    if not resampled.size:
        return None
    low, high = bootstrap.interval(resampled)
    hits = int((np.abs(resampled - observed) >= abs(observed)).sum())
    return Difference(observed, float(low), float(high), (1 + hits) / (1 + resampled.size))

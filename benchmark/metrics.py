"""Segmentation metrics from one int64 confusion matrix, and video consistency (VC_n).

Both accumulators follow the same life cycle: `reset`, `update` per frame, `compute` at the end;
`state`/`from_state`/`merge` let shards and resumed runs add up partial counts exactly.

Definitions (all in percent; facts.md sections 4 and 7):
- IoU_c = TP / (GT + P - TP), where an ABSTAIN pixel counts in its class's GT and in no class's P.
- `mIoU`: mean IoU over classes with ground-truth pixels (VSPW's official evaluator, detectron2).
- `mIoU_mmseg`: nanmean over classes with GT or P; a class only predicted counts as 0.
- `fwIoU`: sum over classes with GT of GT_c / sum(GT) * IoU_c.  `mAcc`: mean TP/GT over classes
  with GT.  `pAcc`: sum TP / sum GT.
- For a class group (seen / unseen): `mIoU_<group>` over the group's classes with GT, and
  `hIoU` = harmonic mean of the seen and unseen mIoU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from benchmark.interface import ABSTAIN

#: Ground-truth value of pixels that are not evaluated.
IGNORE = 255


class PredictionError(ValueError):
    """A prediction with the wrong shape, type or labels."""


def as_label_map(prediction: Any) -> np.ndarray:
    """A label map a method yielded (a tensor, on any device) as a numpy array; PredictionError otherwise."""
    if hasattr(prediction, "detach"):
        prediction = prediction.detach().cpu().numpy()
    if not isinstance(prediction, np.ndarray):
        raise PredictionError(f"segment() yielded a {type(prediction).__name__}; expected an integer torch.Tensor [H, W]")
    return prediction


def check_prediction(prediction: np.ndarray, num_labels: int, shape: tuple[int, int]) -> None:
    """Raise PredictionError unless `prediction` is an integer map of `shape` with labels in
    [0, num_labels) or ABSTAIN."""
    if prediction.shape != tuple(shape):
        raise PredictionError(f"label map has shape {tuple(prediction.shape)}, expected {tuple(shape)} (H, W)")
    if not np.issubdtype(prediction.dtype, np.integer):
        raise PredictionError(f"label map has dtype {prediction.dtype}, expected an integer type")
    invalid = (prediction < 0) | ((prediction >= num_labels) & (prediction != ABSTAIN))
    if invalid.any():
        values = np.unique(prediction[invalid])
        raise PredictionError(
            f"label map has values {values[:10].tolist()} outside [0, {num_labels}) "
            f"(the vocabulary has {num_labels} names; use ABSTAIN={ABSTAIN} for 'none of these')")


class ConfusionMatrix:
    """Counts[gt, pred] over evaluated pixels; the last column counts ABSTAIN predictions."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.reset()

    def reset(self) -> None:
        self.counts = np.zeros((self.num_classes, self.num_classes + 1), dtype=np.int64)

    def update(self, ground_truth: np.ndarray, prediction: np.ndarray) -> None:
        """Add one frame: ground truth in [0, C) or IGNORE, prediction in [0, C) or ABSTAIN."""
        if ground_truth.shape != prediction.shape:
            raise PredictionError(f"prediction shape {prediction.shape} != ground truth shape {ground_truth.shape}")
        n = self.num_classes
        gt = ground_truth.astype(np.int64, copy=False).ravel()
        pred = prediction.astype(np.int64, copy=False).ravel()
        keep = gt != IGNORE
        gt, pred = gt[keep], pred[keep]
        if gt.size and (gt.min() < 0 or gt.max() >= n):
            raise ValueError(f"ground truth has labels outside [0, {n}) and != {IGNORE}: {np.unique(gt[gt >= n])[:10]}")
        pred = np.where(pred == ABSTAIN, n, pred)
        if pred.size and (pred.min() < 0 or pred.max() > n):
            raise PredictionError(f"prediction has labels outside [0, {n}): {np.unique(pred[(pred < 0) | (pred > n)])[:10]}")
        self.counts += np.bincount(gt * (n + 1) + pred, minlength=n * (n + 1)).reshape(n, n + 1)

    def merge(self, other: ConfusionMatrix) -> None:
        self.counts += other.counts

    def state(self) -> list[list[int]]:
        return self.counts.tolist()

    @classmethod
    def from_state(cls, state: Sequence[Sequence[int]]) -> ConfusionMatrix:
        counts = np.asarray(state, dtype=np.int64)
        matrix = cls(counts.shape[0])
        matrix.counts = counts
        return matrix

    def compute(self, class_names: Sequence[str],
                groups: Mapping[str, Sequence[int]] | None = None) -> tuple[dict[str, float | None], dict]:
        """(metrics, per_class) in percent; a metric with no defined value is None."""
        if len(class_names) != self.num_classes:
            raise ValueError(f"{len(class_names)} class names for {self.num_classes} classes")
        tp = np.diag(self.counts[:, : self.num_classes]).astype(np.float64)
        gt = self.counts.sum(axis=1).astype(np.float64)
        pred = self.counts[:, : self.num_classes].sum(axis=0).astype(np.float64)
        rows, iou, acc = class_scores(tp[None], gt[None], pred[None], groups)
        metrics = {name: _defined(values[0]) for name, values in rows.items()}
        per_class = {
            name: {"IoU": _defined(100 * iou[0, c]), "Acc": _defined(100 * acc[0, c]), "gt_pixels": int(gt[c]),
                   "pred_pixels": int(pred[c]), "abstained_pixels": int(self.counts[c, -1])}
            for c, name in enumerate(class_names)
        }
        return metrics, per_class


def class_scores(tp: np.ndarray, gt: np.ndarray, pred: np.ndarray, groups: Mapping[str, Sequence[int]] | None = None
                 ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The definitions above, for B sets of counts at once (true positive, ground-truth and predicted
    pixels per class, [B, C] each): ({metric: [B] in percent, NaN where undefined}, IoU [B, C] and
    Acc [B, C] as fractions). One cell's metrics are B = 1; its bootstrap resamples are B rows."""
    union = gt + pred - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(gt > 0, tp / gt, np.nan)
        present = gt > 0
        total = gt.sum(axis=1)
        rows = {
            "mIoU": _masked_mean(iou, present),
            "mIoU_mmseg": _masked_mean(iou, union > 0),
            "fwIoU": np.where(total > 0, 100 * np.where(present, gt * iou, 0).sum(axis=1) / total, np.nan),
            "mAcc": _masked_mean(acc, present),
            "pAcc": np.where(total > 0, 100 * tp.sum(axis=1) / total, np.nan),
        }
        for group, members in (groups or {}).items():
            members = np.asarray(members, dtype=np.int64)
            rows[f"mIoU_{group}"] = _masked_mean(iou[:, members], present[:, members])
        if groups and {"seen", "unseen"} <= set(groups):
            seen, unseen = rows["mIoU_seen"], rows["mIoU_unseen"]
            rows["hIoU"] = np.where(seen + unseen == 0, 0.0, 2 * seen * unseen / (seen + unseen))
    return rows, iou, acc


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """100 x the mean of each row's values where `mask` holds; NaN for a row where it never does."""
    count = mask.sum(axis=1)
    return np.where(count > 0, 100 * np.where(mask, values, 0).sum(axis=1) / np.maximum(count, 1), np.nan)


def _defined(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


#: Raw VSPW mask values that are no class: 0 ("others") and 255 (void).
VSPW_UNSCORED = np.isin(np.arange(256), (0, IGNORE))

#: Window rules for VC_n (facts.md section 4). `drop_last`: the official loop, range(len - n), never
#: takes the window that ends on the last frame. `min_frames`: videos with fewer annotated frames are
#: skipped. `merge_others`: ground-truth values that are no class ("others" and void) compare as equal.

VC_RULES: dict[str, dict[str, Any]] = {
    "vspw": {"drop_last": True, "min_frames": 0, "merge_others": False},
    "authors": {"drop_last": True, "min_frames": 17, "merge_others": True},
    "complete": {"drop_last": False, "min_frames": 0, "merge_others": False},
}


class VideoConsistency:
    """VC_n: over every window of n consecutive annotated frames, the share of pixels whose ground
    truth is constant in the window that also have a constant prediction; the mean over all windows
    of all videos (pooled).

    Per pixel it keeps how many consecutive frames ending now had the same value, so a window of n
    is constant at a pixel exactly when that run is at least n: O(1) work per frame for every n.
    Windows without a constant ground-truth pixel have no defined ratio and are counted apart.
    """

    def __init__(self, lengths: Sequence[int] = (8, 16), rule: str = "vspw"):
        if rule not in VC_RULES:
            raise ValueError(f"unknown VC window rule {rule!r}; choose one of {sorted(VC_RULES)}")
        self.lengths = tuple(lengths)
        self.rule = rule
        self.reset()

    def reset(self) -> None:
        self.ratio_sum = {n: 0.0 for n in self.lengths}
        self.windows = {n: 0 for n in self.lengths}
        self.empty_windows = {n: 0 for n in self.lengths}
        self._video_frames = 0

    def start_video(self, num_annotated: int) -> None:
        """Begin a video with this many annotated frames (fed next, in temporal order)."""
        self._video_frames = num_annotated
        self._position = 0
        self._skip = num_annotated < VC_RULES[self.rule]["min_frames"]
        self._previous = None

    def update(self, raw_ground_truth: np.ndarray, prediction: np.ndarray,
               unscored: np.ndarray | None = None) -> None:
        """Add the next annotated frame: the dataset's raw mask and the method's label map.
        `unscored` (bool[256]) marks the raw values that are no class; default VSPW's 0 and 255."""
        position, self._position = self._position, self._position + 1
        if self._skip:
            return
        rule = VC_RULES[self.rule]
        gt = raw_ground_truth
        if rule["merge_others"]:
            gt = np.where(VSPW_UNSCORED[gt] if unscored is None else unscored[gt], IGNORE, gt)
        if self._previous is None:
            gt_run = np.ones(gt.shape, dtype=np.int32)
            pred_run = np.ones(gt.shape, dtype=np.int32)
        else:
            prev_gt, prev_pred, gt_run, pred_run = self._previous
            if prev_gt.shape != gt.shape:
                raise ValueError(f"frame size changed within a video: {prev_gt.shape} -> {gt.shape}")
            gt_run = np.where(gt == prev_gt, gt_run + 1, 1)
            pred_run = np.where(prediction == prev_pred, pred_run + 1, 1)
        self._previous = (gt, prediction, gt_run, pred_run)
        last = self._video_frames - 1
        for n in self.lengths:
            if position < n - 1 or (rule["drop_last"] and position == last):
                continue
            constant_gt = gt_run >= n
            denominator = int(constant_gt.sum())
            if denominator == 0:
                self.empty_windows[n] += 1
                continue
            self.ratio_sum[n] += int((constant_gt & (pred_run >= n)).sum()) / denominator
            self.windows[n] += 1

    def merge(self, other: VideoConsistency) -> None:
        for n in self.lengths:
            self.ratio_sum[n] += other.ratio_sum[n]
            self.windows[n] += other.windows[n]
            self.empty_windows[n] += other.empty_windows[n]

    def state(self) -> dict[str, Any]:
        return {"rule": self.rule, "ratio_sum": {str(n): v for n, v in self.ratio_sum.items()},
                "windows": {str(n): v for n, v in self.windows.items()},
                "empty_windows": {str(n): v for n, v in self.empty_windows.items()}}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> VideoConsistency:
        lengths = [int(n) for n in state["windows"]]
        vc = cls(lengths, state["rule"])
        for n in lengths:
            vc.ratio_sum[n] = float(state["ratio_sum"][str(n)])
            vc.windows[n] = int(state["windows"][str(n)])
            vc.empty_windows[n] = int(state["empty_windows"][str(n)])
        return vc

    def compute(self) -> dict[str, float | None]:
        return {f"VC_{n}": (100 * self.ratio_sum[n] / self.windows[n] if self.windows[n] else None)
                for n in self.lengths}

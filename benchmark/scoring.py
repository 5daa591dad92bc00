"""Scoring a video frame by frame with little work on the thread that runs the method.

`benchmark.metrics` defines the counts (ConfusionMatrix, VideoConsistency); this module computes the
same integers faster, split where the work belongs:

- `GroundTruthReader` prepares each annotated frame's ground truth in the decoding threads, ahead of
  need: the mask is read, reduced to confusion-matrix rows by one table lookup that also marks values
  the format does not know (so checking costs a max() of the result, not a histogram of the mask), and
  the ground-truth side of the VC windows is advanced.
- `VideoScorer` adds the method's maps. A map that is a tensor on a device (a GPU) is counted there
  with torch, and only counts cross to the host, once per video. Any other map is checked and copied
  in the method's thread and counted with numpy in a scoring thread, while the method goes on.

Both paths count one histogram per frame over `row * 256 + label`: `row` is the pixel's scored class
(or one more row for pixels not scored), `label` the method's vocabulary label (ABSTAIN = 255); the
columns are folded into scored classes once per video. For VC, `run` is how many frames before this
one a pixel kept its value (capped at the longest window), so a window of n frames is constant where
run >= n - 1, for ground truth and prediction alike: where their minimum is.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.data.frames import decode_workers, read_ahead
from benchmark.data.records import DatasetError, MaskFormat, VideoRecord, read_mask, unknown_label_problem
from benchmark.interface import ABSTAIN
from benchmark.metrics import (
    IGNORE,
    VC_RULES,
    ConfusionMatrix,
    PredictionError,
    VideoConsistency,
    as_label_map,
    check_prediction,
)

#: Row code of a mask value its format does not know (no row ever reaches it: rows are < 256 * 256).
UNKNOWN = 0xFFFF


@dataclass(frozen=True)
class ScoringPlan:
    """What scoring a cell needs, fixed before its first frame."""

    label_map: np.ndarray        # card label -> scored class or IGNORE (the setting's)
    prediction_map: np.ndarray   # vocabulary label -> scored class, ABSTAIN kept (the setting's)
    classes: int
    vocabulary: int
    vc_rule: str = "vspw"
    lengths: tuple[int, ...] = (8, 16)

    def __post_init__(self):
        if not 0 < self.vocabulary <= ABSTAIN:
            raise ValueError(f"a vocabulary of {self.vocabulary} names: at most {ABSTAIN} fit beside ABSTAIN={ABSTAIN}")
        if self.vc_rule not in VC_RULES:
            raise ValueError(f"unknown VC window rule {self.vc_rule!r}; choose one of {sorted(VC_RULES)}")
        if max(self.lengths) > 255:
            raise ValueError(f"VC windows of at most 255 frames, not {max(self.lengths)}")

    @classmethod
    def for_setting(cls, setting, vc_rule: str = "vspw", lengths: Sequence[int] = (8, 16)) -> ScoringPlan:
        return cls(setting.label_map, setting.prediction_map, len(setting.class_names), len(setting.vocabulary),
                   vc_rule, tuple(lengths))

    @property
    def cap(self) -> int:
        return max(self.lengths) - 1

    def rows(self, mask_format: MaskFormat) -> np.ndarray:
        """uint16[256]: raw mask value -> 256 x its scored class (256 x classes: not scored), UNKNOWN."""
        scored = self.label_map[mask_format.lut].astype(np.uint16)
        rows = np.where(scored == IGNORE, self.classes, scored) * 256
        return np.where(mask_format.known, rows, UNKNOWN).astype(np.uint16)

    def skips(self, frames: int) -> bool:
        """Whether the VC rule leaves out a video of this many annotated frames."""
        return frames < VC_RULES[self.vc_rule]["min_frames"]

    def fold(self, counts: np.ndarray) -> np.ndarray:
        """Counts [classes + 1, 256] over (row, vocabulary label) -> the ConfusionMatrix's [classes, classes + 1]."""
        columns = np.where(self.prediction_map == ABSTAIN, self.classes, self.prediction_map).astype(np.intp)
        confusion = np.zeros((self.classes, self.classes + 1), dtype=np.int64)
        np.add.at(confusion.T, columns, counts[: self.classes].T)
        return confusion


@dataclass
class GroundTruth:
    """One annotated frame's ground truth, as scoring needs it."""

    path: Any                    # the mask file
    raw: np.ndarray              # uint8 [H, W], the file's values
    rows: np.ndarray             # uint16 [H, W], 256 x scored class (ScoringPlan.rows)
    run: np.ndarray | None       # uint8 [H, W], frames before this one with the same value (None: no VC)
    constant: dict[int, int]     # window length -> pixels whose ground truth is constant over it
    mask_format: MaskFormat
    raw_tensor: Any = None       # page-locked copies of raw and run, for a GPU (`pinned`)
    run_tensor: Any = None
    resized_from: tuple[int, int] | None = None  # the previous mask's size, when this one's differs

    def classes(self, plan: ScoringPlan) -> np.ndarray:
        """Scored classes or IGNORE (for pictures; scoring uses `rows`)."""
        return plan.label_map[self.mask_format.lut[self.raw]]

    def pinned(self) -> GroundTruth:
        """With page-locked tensors beside the arrays, so copies to a GPU do not wait on the host."""
        import torch

        self.raw_tensor = torch.from_numpy(self.raw).pin_memory()
        self.run_tensor = torch.from_numpy(self.run).pin_memory() if self.run is not None else None
        return self


class GroundTruthReader:
    """A video's annotated frames' ground truth, prepared in the decoding threads in order.

    Reading and the table lookup run in parallel; the VC step needs the previous frame's, so each
    frame takes its turn for it (a frame that fails still takes its turn, so none waits forever)."""

    def __init__(self, plan: ScoringPlan, record: VideoRecord, indices: Sequence[int], pin: bool = False):
        self.plan, self.record, self.indices, self.pin = plan, record, list(indices), pin
        self.rows = plan.rows(record.mask_format)
        self.vc = not plan.skips(len(self.indices))
        unscored = record.mask_format.unscored
        self.merge = np.where(unscored, IGNORE, np.arange(256)).astype(np.uint8) \
            if VC_RULES[plan.vc_rule]["merge_others"] else None
        self._turn = threading.Condition()
        self._next = 0
        self._previous: tuple[np.ndarray, np.ndarray] | None = None

    def __iter__(self) -> Iterator[GroundTruth]:
        return read_ahead(self._prepare, range(len(self.indices)))

    def _prepare(self, position: int) -> GroundTruth:
        truth = None
        try:
            truth = self._decode(self.record.masks[self.indices[position]])
        finally:
            with self._turn:
                self._turn.wait_for(lambda: self._next == position)
                try:
                    if truth is None:
                        self._previous = None
                    elif self.vc:
                        self._advance(truth)
                finally:
                    self._next += 1
                    self._turn.notify_all()
        return truth.pinned() if self.pin else truth

    def _decode(self, path) -> GroundTruth:
        raw = read_mask(path)
        rows = np.take(self.rows, raw)
        if rows.size and rows.max() == UNKNOWN:
            mask_format = self.record.mask_format
            raise DatasetError(str(unknown_label_problem(mask_format, mask_format.unknown_values(raw), path)))
        return GroundTruth(path, raw, rows, None, {}, self.record.mask_format)

    def _advance(self, truth: GroundTruth) -> None:
        values = truth.raw if self.merge is None else np.take(self.merge, truth.raw)
        if self._previous is None:
            run = np.zeros(values.shape, dtype=np.uint8)
        else:
            previous, run = self._previous
            if previous.shape != values.shape:  # an error once the map is checked against this mask (VideoScorer)
                truth.resized_from = previous.shape
                run = np.zeros(values.shape, dtype=np.uint8)
            else:
                run = advance_run(run, values == previous, self.plan.cap)
        self._previous = (values, run)
        truth.run = run
        truth.constant = {n: int(np.count_nonzero(run >= n - 1)) for n in self.plan.lengths}


def advance_run(run: np.ndarray, same: np.ndarray, cap: int) -> np.ndarray:
    """The next frame's runs: one more where the value stayed (at most `cap`), else 0 (a new array)."""
    following = np.minimum(run, cap - 1)
    following += 1
    following *= same.view(np.uint8)
    return following


class MapError(PredictionError):
    """A bad map found after its frame was handed on (counted in the background or on a device); the
    message names the frame."""


#: Frames handed to the scoring thread and not yet counted, at most (then the method's thread waits).
SCORING_AHEAD = 4

_scoring_pool: ThreadPoolExecutor | None = None
_scoring_lock = threading.Lock()


def scoring_pool() -> ThreadPoolExecutor | None:
    """The thread that counts host maps in order, behind the method (None when decoding is not done in
    the background either, $BENCHMARK_DECODE_WORKERS=0: then everything runs in the caller)."""
    global _scoring_pool
    if _scoring_pool is None and decode_workers() > 0:
        with _scoring_lock:
            if _scoring_pool is None:
                _scoring_pool = ThreadPoolExecutor(1, thread_name_prefix="scorer")
    return _scoring_pool


class VideoScorer:
    """One video's counts from its maps and prepared ground truth.

    A map that is a tensor on a device is counted there (`_DeviceCounts`). Any other is checked (shape,
    type, range) and copied to uint8 in the caller's thread, and counted by the scoring thread while the
    method goes on with the next frame (`_HostCounts`); its other checks fail as MapError."""

    def __init__(self, plan: ScoringPlan, frames: int):
        self.plan, self.frames = plan, frames
        self.position = 0
        self.counts: _HostCounts | _DeviceCounts | None = None
        self.consistency = VideoConsistency(plan.lengths, plan.vc_rule)
        self.consistency.start_video(frames)
        self.labels: list[str] = []
        self.windows_at: list[list[int]] = []
        self.pending: deque[Future] = deque()

    def add(self, truth: GroundTruth, prediction: Any, frame: str = "", device_counts: bool | None = None) -> None:
        """Count one annotated frame (in order). PredictionError for a map of the wrong shape, type or range;
        MapError, naming an earlier frame, for one found bad since. `device_counts` forces the torch path
        (True) or numpy (False); by default tensors on a device other than the CPU are counted there."""
        if hasattr(prediction, "shape"):
            _check_shape(prediction, truth)  # first: a mask of another size than its frame is told as that
        if truth.resized_from is not None:
            raise ValueError(f"frame size changed within a video: {truth.resized_from} -> {truth.raw.shape} "
                             f"at {truth.path}")
        if self.counts is None:
            on_device = _on_device(prediction) if device_counts is None else device_counts
            self.counts = _DeviceCounts(self.plan, prediction) if on_device else _HostCounts(self.plan)
        self.labels.append(frame)
        windows = self._windows()
        self.windows_at.append(windows)
        self.position += 1
        if isinstance(self.counts, _DeviceCounts):
            self.counts.add(truth, prediction, bool(windows))
            return
        labels = self.counts.checked(truth, prediction)
        pool = scoring_pool()
        if pool is None:
            self._count(truth, labels, windows, frame)
            return
        while self.pending and (self.pending[0].done() or len(self.pending) >= SCORING_AHEAD):
            self.pending.popleft().result()  # raises a MapError found meanwhile
        self.pending.append(pool.submit(self._count, truth, labels, windows, frame))

    def _count(self, truth: GroundTruth, labels: np.ndarray, windows: list[int], frame: str) -> None:
        try:
            numerators = self.counts.count(truth, labels, bool(windows))
        except PredictionError as error:
            raise MapError(f"{frame}: {error}") from error
        if numerators is not None:
            self._add_windows(truth.constant, windows, numerators)

    def _windows(self) -> list[int]:
        """The window lengths that end at this frame and count under the rule."""
        last = self.frames - 1
        drop_last = VC_RULES[self.plan.vc_rule]["drop_last"]
        return [n for n in self.plan.lengths if self.position >= n - 1 and not (drop_last and self.position == last)]

    def _add_windows(self, constant: dict[int, int], windows: list[int], numerators: Sequence[int]) -> None:
        """As VideoConsistency.update adds them: per window, a ratio, or one more window without any.
        `numerators`: per window length of the plan, the pixels constant in ground truth and prediction."""
        for n, numerator in zip(self.plan.lengths, numerators):
            if n not in windows:
                continue
            denominator = constant[n]
            if denominator == 0:
                self.consistency.empty_windows[n] += 1
                continue
            self.consistency.ratio_sum[n] += int(numerator) / denominator
            self.consistency.windows[n] += 1

    def finish(self) -> tuple[ConfusionMatrix, VideoConsistency]:
        """The video's confusion matrix and VC counts, once every frame is counted (MapError for a bad map)."""
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            for future in self.pending:
                future.cancel()
        confusion = ConfusionMatrix(self.plan.classes)
        if self.counts is not None:
            counts, invalid, pending = self.counts.finish()
            if invalid is not None:
                position, pixels = invalid
                raise MapError(f"{self.labels[position]}: label map has {pixels} pixels with values outside "
                               f"[0, {self.plan.vocabulary}) (the vocabulary has {self.plan.vocabulary} "
                               f"names; use ABSTAIN={ABSTAIN} for 'none of these')")
            for position, constant, numerators in pending:
                self._add_windows(constant, self.windows_at[position], numerators)
            confusion.counts = self.plan.fold(counts)
        return confusion, self.consistency


def _on_device(prediction: Any) -> bool:
    device = getattr(prediction, "device", None)
    return device is not None and getattr(device, "type", "cpu") != "cpu"


def _check_shape(prediction: Any, truth: GroundTruth) -> None:
    if tuple(prediction.shape) != truth.raw.shape:
        raise PredictionError(f"label map has shape {tuple(prediction.shape)}, expected {truth.raw.shape} (H, W)")


class _HostCounts:
    """numpy: a map checked and copied in the method's thread, then one histogram in the scoring thread."""

    def __init__(self, plan: ScoringPlan):
        self.plan = plan
        self.counts = np.zeros((plan.classes + 1) * 256, dtype=np.int64)
        self.previous: tuple[np.ndarray, np.ndarray] | None = None

    def checked(self, truth: GroundTruth, prediction: Any) -> np.ndarray:
        """The map as a uint8 copy (the method may reuse its array), or PredictionError."""
        labels = as_label_map(prediction)  # its shape was checked by VideoScorer.add
        if not np.issubdtype(labels.dtype, np.integer):
            check_prediction(labels, self.plan.vocabulary, truth.raw.shape)  # raises, naming the type
        if labels.dtype != np.uint8 and labels.size:
            low, high = labels.min(), labels.max()
            if low < 0 or high > 255:
                check_prediction(labels, self.plan.vocabulary, truth.raw.shape)  # raises, naming the values
        return labels.astype(np.uint8, copy=True)

    def count(self, truth: GroundTruth, labels: np.ndarray, windows: bool) -> list[int] | None:
        frame = np.bincount(np.bitwise_or(truth.rows, labels).ravel(), minlength=self.counts.size)
        if self.plan.vocabulary < ABSTAIN and frame.reshape(-1, 256)[:, self.plan.vocabulary:ABSTAIN].any():
            check_prediction(labels, self.plan.vocabulary, truth.raw.shape)  # raises, naming the values
        self.counts += frame
        if truth.run is None:
            return None
        if self.previous is None:
            run = np.zeros(labels.shape, dtype=np.uint8)
        else:
            previous, run = self.previous
            run = advance_run(run, labels == previous, self.plan.cap)
        self.previous = (labels, run)
        if not windows:
            return None
        both = np.minimum(run, truth.run)
        return [int(np.count_nonzero(both >= n - 1)) for n in self.plan.lengths]

    def finish(self):
        return self.counts.reshape(self.plan.classes + 1, 256), None, []


class _DeviceCounts:
    """torch, where the maps are: counts, invalid pixels and VC numerators stay on the device until the
    video finishes (no synchronisation per frame)."""

    def __init__(self, plan: ScoringPlan, prediction: Any):
        import torch

        self.torch, self.plan, self.device = torch, plan, prediction.device
        self.tables: dict[int, Any] = {}
        self.counts = torch.zeros((plan.classes + 1) * 256, dtype=torch.int64, device=self.device)
        self.invalid: list[Any] = []
        self.numerators: list[tuple[int, dict[int, int], Any]] = []  # position, GT-constant pixels, on device
        self.previous: tuple[Any, Any] | None = None

    def _rows(self, truth: GroundTruth):
        table = self.tables.get(id(truth.mask_format))
        if table is None:
            table = self.torch.from_numpy(self.plan.rows(truth.mask_format).astype(np.int64)).to(self.device)
            self.tables[id(truth.mask_format)] = table
        raw = getattr(truth, "raw_tensor", None)
        raw = self.torch.from_numpy(truth.raw) if raw is None else raw
        return table[raw.to(self.device, non_blocking=True).long()]

    def add(self, truth: GroundTruth, prediction: Any, windows: bool) -> None:
        torch = self.torch
        if not hasattr(prediction, "detach"):
            raise PredictionError(f"segment() yielded a {type(prediction).__name__}; expected an integer torch.Tensor [H, W]")
        labels = prediction.detach()  # its shape was checked by VideoScorer.add
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise PredictionError(f"label map has dtype {labels.dtype}, expected an integer type")
        labels = labels.to(self.device).long()
        vocabulary = self.plan.vocabulary
        self.invalid.append(((labels < 0) | ((labels >= vocabulary) & (labels != ABSTAIN))).sum())
        index = self._rows(truth) + labels.clamp(0, 255)
        self.counts.scatter_add_(0, index.view(-1), torch.ones(1, dtype=torch.int64, device=self.device).expand(index.numel()))
        if truth.run is None:
            return None
        if self.previous is None:
            run = torch.zeros(labels.shape, dtype=torch.uint8, device=self.device)
        else:
            previous, run = self.previous
            run = torch.where(labels == previous, run.clamp(max=self.plan.cap - 1) + 1, 0).to(torch.uint8)
        self.previous = (labels, run)
        if windows:
            truth_run = getattr(truth, "run_tensor", None)
            truth_run = torch.from_numpy(truth.run) if truth_run is None else truth_run
            both = torch.minimum(run, truth_run.to(self.device, non_blocking=True))
            self.numerators.append((len(self.invalid) - 1, truth.constant, torch.stack([(both >= n - 1).sum() for n in self.plan.lengths])))
        return None

    def finish(self):
        torch = self.torch
        counts = self.counts.cpu().numpy().reshape(self.plan.classes + 1, 256)
        invalid = torch.stack(self.invalid).cpu().numpy() if self.invalid else np.zeros(0, dtype=np.int64)
        bad = np.flatnonzero(invalid)
        if bad.size:
            return counts, (int(bad[0]), int(invalid[bad[0]])), []
        numerators = torch.stack([n for *_, n in self.numerators]).cpu().tolist() if self.numerators else []
        return counts, None, [(position, constant, values)
                              for (position, constant, _), values in zip(self.numerators, numerators)]

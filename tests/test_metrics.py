import math

import numpy as np
import pytest

from benchmark import ABSTAIN
from benchmark.metrics import IGNORE, ConfusionMatrix, PredictionError, VideoConsistency, check_prediction

NAMES = ["a", "b", "c", "d"]


def compute(gt, pred, groups=None, n=4):
    matrix = ConfusionMatrix(n)
    matrix.update(np.array(gt), np.array(pred))
    return matrix.compute(NAMES[:n], groups)


def test_hand_computed_matrix():
    # class a: GT 3, predicted 3, TP 2 -> IoU 2/4, Acc 2/3
    # class b: GT 2, predicted 3 (one of a's, one of c's, one right), TP 1 -> IoU 1/4, Acc 1/2
    # class c: GT 1, TP 0 -> IoU 0; class d: absent from GT and predictions -> excluded.
    # One IGNORE pixel predicted as a counts nowhere.
    gt = [[0, 0, 0, 1], [1, 2, IGNORE, IGNORE]]
    pred = [[0, 0, 1, 0], [1, 1, 0, 3]]
    metrics, per_class = compute(gt, pred)
    ious = [2 / 4, 1 / 4, 0.0]
    assert per_class["a"]["IoU"] == pytest.approx(50)
    assert per_class["b"]["IoU"] == pytest.approx(25)
    assert per_class["c"]["IoU"] == 0
    assert per_class["d"] == {"IoU": None, "Acc": None, "gt_pixels": 0, "pred_pixels": 0, "abstained_pixels": 0}
    assert metrics["mIoU"] == pytest.approx(100 * sum(ious) / 3)
    assert metrics["mIoU_mmseg"] == pytest.approx(100 * sum(ious) / 3)
    assert metrics["fwIoU"] == pytest.approx(100 * (3 * ious[0] + 2 * ious[1] + 1 * ious[2]) / 6)
    assert metrics["mAcc"] == pytest.approx(100 * (2 / 3 + 1 / 2 + 0) / 3)
    assert metrics["pAcc"] == pytest.approx(100 * 3 / 6)
    assert [per_class[c]["gt_pixels"] for c in NAMES] == [3, 2, 1, 0]


def test_class_only_predicted_counts_as_zero_only_under_mmseg_policy():
    gt = [[0, 0, 1, 1]]
    pred = [[0, 0, 1, 2]]  # c is predicted once but never in the ground truth
    metrics, per_class = compute(gt, pred)
    assert per_class["c"]["IoU"] == 0 and per_class["c"]["gt_pixels"] == 0
    assert metrics["mIoU"] == pytest.approx(100 * (1 + 1 / 2) / 2)      # over a, b
    assert metrics["mIoU_mmseg"] == pytest.approx(100 * (1 + 1 / 2 + 0) / 3)  # a, b, c
    assert metrics["mAcc"] == pytest.approx(100 * (1 + 1 / 2) / 2)


def test_abstain_is_a_miss_and_no_false_positive():
    gt = [[0, 0, 1, 1]]
    pred = [[0, ABSTAIN, 1, ABSTAIN]]
    metrics, per_class = compute(gt, pred)
    assert per_class["a"]["IoU"] == 50 and per_class["b"]["IoU"] == 50
    assert per_class["a"]["abstained_pixels"] == 1 and per_class["a"]["pred_pixels"] == 1
    assert metrics["pAcc"] == 50


def test_oracle_scores_100_and_ignore_pixels_do_not_count():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 4, (30, 40))
    pred = gt.copy()
    gt[:5] = IGNORE
    pred[:5] = 2  # whatever is predicted on ignored pixels does not count
    metrics, _ = compute(gt, pred)
    for key in ("mIoU", "mIoU_mmseg", "fwIoU", "mAcc", "pAcc"):
        assert metrics[key] == 100


def test_groups_and_harmonic_mean():
    gt = [[0, 1, 2, 3]]
    pred = [[0, 0, 2, 2]]  # a: 1/2, b: 0, c: 1/2, d: 0
    metrics, _ = compute(gt, pred, {"seen": [0, 1], "unseen": [2, 3]})
    assert metrics["mIoU_seen"] == pytest.approx(25)
    assert metrics["mIoU_unseen"] == pytest.approx(25)
    assert metrics["hIoU"] == pytest.approx(25)
    metrics, _ = compute([[0, 1, 2, 3]], [[0, 1, 0, 0]], {"seen": [0, 1], "unseen": [2, 3]})
    assert metrics["mIoU_unseen"] == 0 and metrics["hIoU"] == 0


def test_empty_ground_truth_gives_undefined_metrics():
    metrics, _ = compute([[IGNORE, IGNORE]], [[0, 1]])
    assert metrics["mIoU"] is None and metrics["pAcc"] is None and metrics["fwIoU"] is None


def test_merging_shards_equals_one_pass():
    rng = np.random.default_rng(1)
    frames = [(rng.integers(0, 4, (8, 8)), rng.integers(0, 4, (8, 8))) for _ in range(6)]
    whole, first, second = ConfusionMatrix(4), ConfusionMatrix(4), ConfusionMatrix(4)
    for k, (gt, pred) in enumerate(frames):
        whole.update(gt, pred)
        (first if k < 3 else second).update(gt, pred)
    first.merge(ConfusionMatrix.from_state(second.state()))
    assert (first.counts == whole.counts).all() and first.counts.dtype == np.int64
    whole.reset()
    assert whole.counts.sum() == 0


def test_out_of_range_predictions_raise_with_the_value():
    with pytest.raises(PredictionError, match=r"\[7\]"):
        check_prediction(np.array([[0, 7]]), 4, (1, 2))
    with pytest.raises(PredictionError, match=r"\[-1\]"):
        check_prediction(np.array([[0, -1]]), 4, (1, 2))
    with pytest.raises(PredictionError, match="shape"):
        check_prediction(np.zeros((2, 2), np.int64), 4, (1, 2))
    with pytest.raises(PredictionError, match="dtype"):
        check_prediction(np.zeros((1, 2), np.float32), 4, (1, 2))
    check_prediction(np.array([[3, ABSTAIN]]), 4, (1, 2))
    with pytest.raises(PredictionError):
        ConfusionMatrix(4).update(np.array([0]), np.array([9]))


def reference_vc(videos, n, drop_last=True, min_frames=0, merge_others=False):
    """VC_n written as the official loop reads: every window, pixels with constant ground truth."""
    ratios = []
    for gts, preds in videos:
        if len(gts) < min_frames:
            continue
        if merge_others:
            gts = [np.where(g == 0, IGNORE, g) for g in gts]
        last_start = len(gts) - n if drop_last else len(gts) - n + 1
        for start in range(last_start):
            gt_common = np.ones(gts[0].shape, bool)
            pred_common = np.ones(gts[0].shape, bool)
            for j in range(1, n):
                gt_common &= gts[start + j] == gts[start]
                pred_common &= preds[start + j] == preds[start]
            if gt_common.sum():
                ratios.append((gt_common & pred_common).sum() / gt_common.sum())
    return 100 * float(np.mean(ratios)) if ratios else None


def random_videos(rng, lengths):
    videos = []
    for length in lengths:
        # Few values, so runs of equal labels are common.
        gts = [rng.choice([0, 3, 255], size=(6, 7), p=[0.1, 0.85, 0.05]).astype(np.uint8) for _ in range(length)]
        preds = [rng.choice([1, 2], size=(6, 7), p=[0.9, 0.1]) for _ in range(length)]
        videos.append((gts, preds))
    return videos


@pytest.mark.parametrize("rule,params", [
    ("vspw", {"drop_last": True}),
    ("complete", {"drop_last": False}),
    ("authors", {"drop_last": True, "min_frames": 17, "merge_others": True}),
])
def test_video_consistency_matches_the_window_definition(rule, params):
    rng = np.random.default_rng(2)
    videos = random_videos(rng, [5, 12, 17, 20])
    vc = VideoConsistency((2, 4), rule)
    for gts, preds in videos:
        vc.start_video(len(gts))
        for gt, pred in zip(gts, preds):
            vc.update(gt, pred)
    result = vc.compute()
    for n in (2, 4):
        expected = reference_vc(videos, n, **params)
        assert result[f"VC_{n}"] == pytest.approx(expected), (rule, n)


def test_video_consistency_hand_example_and_merge():
    still = np.array([[1, 1]])
    # Ground truth constant in both pixels; the prediction flickers in the second pixel only.
    preds = [np.array([[0, 0]]), np.array([[0, 1]]), np.array([[0, 0]])]
    vc = VideoConsistency((2,), "complete")
    vc.start_video(3)
    for pred in preds:
        vc.update(still, pred)
    assert vc.compute()["VC_2"] == pytest.approx(50)   # two windows, each 1 of 2 pixels
    other = VideoConsistency.from_state(vc.state())
    other.merge(vc)
    assert other.compute()["VC_2"] == pytest.approx(50) and other.windows[2] == 4
    short = VideoConsistency((8,), "vspw")
    short.start_video(8)  # the official loop takes range(8 - 8): no window
    for _ in range(8):
        short.update(still, preds[0])
    assert short.compute()["VC_8"] is None and not math.isnan(short.ratio_sum[8])

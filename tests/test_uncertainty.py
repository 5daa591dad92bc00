"""Bootstrap intervals over videos, paired comparisons and seeds (`benchmark.uncertainty`), checked
against a slow reference written here from the definitions, and on real cells."""

import json
import shutil

import numpy as np
import pytest
from conftest import TEST_METHODS, run_cli
from dataset_fixtures import write_vspw

from benchmark import uncertainty
from benchmark.metrics import ConfusionMatrix, VideoConsistency

CLASSES = ["a", "b", "c", "d", "e", "f"]
GROUPS = {"seen": [0, 1, 2], "unseen": [3, 4, 5]}


def random_videos(rng, videos=7, frames=20, size=(6, 8)):
    """Per video: a confusion matrix and a VC state from random frames, with classes that some videos
    lack, abstained pixels, and ignored ones."""
    confusions, vc_states = [], []
    for v in range(videos):
        confusion, consistency = ConfusionMatrix(len(CLASSES)), VideoConsistency((2, 4))
        consistency.start_video(frames)
        present = rng.choice(len(CLASSES), size=rng.integers(1, 4), replace=False)
        for _ in range(frames):
            truth = rng.choice(np.append(present, 255), size=size).astype(np.uint8)
            prediction = np.where(rng.random(size) < 0.6, truth, rng.integers(0, len(CLASSES), size))
            prediction = np.where(rng.random(size) < 0.05, 255, prediction).astype(np.int64)
            confusion.update(truth, prediction)
            consistency.update(truth.astype(np.int64) + 1, prediction)
        confusions.append(confusion)
        vc_states.append(consistency.state())
    return confusions, vc_states


def counts_of(confusions, vc_states):
    return uncertainty.VideoCounts.from_states([f"video_{v}" for v in range(len(confusions))],
                                               [c.counts for c in confusions], vc_states)


def reference_values(confusions, vc_states, picks):
    """Every metric of the videos `picks` (repeats allowed), by summing their counts and computing the
    metrics with the harness's own single-cell definitions, one resample at a time."""
    total = ConfusionMatrix(len(CLASSES))
    consistency = VideoConsistency.from_state(vc_states[picks[0]])
    consistency.reset()
    for v in picks:
        total.merge(confusions[v])
        consistency.merge(VideoConsistency.from_state(vc_states[v]))
    metrics, per_class = total.compute(CLASSES, GROUPS)
    metrics.update(consistency.compute())
    return metrics, {name: scores["IoU"] for name, scores in per_class.items()}


def reference_interval(values, confidence=0.95):
    defined = [v for v in values if v is not None]
    tail = 100 * (1 - confidence) / 2
    return list(np.percentile(defined, [tail, 100 - tail])) if defined else None


def test_interval_equals_a_slow_resample_by_resample_reference():
    rng = np.random.default_rng(3)
    confusions, vc_states = random_videos(rng)
    bootstrap = uncertainty.Bootstrap(resamples=200, seed=11)
    intervals, class_intervals = uncertainty.cell_intervals(counts_of(confusions, vc_states), GROUPS, CLASSES,
                                                            bootstrap)
    draws = np.random.default_rng(11).integers(0, len(confusions), size=(200, len(confusions)))
    resampled = [reference_values(confusions, vc_states, list(picks)) for picks in draws]
    point, _ = reference_values(confusions, vc_states, list(range(len(confusions))))
    assert set(intervals) == set(point)
    for metric in point:
        expected = reference_interval([values[metric] for values, _ in resampled])
        assert intervals[metric] == pytest.approx(expected, rel=1e-12, abs=1e-12), metric
    for name in CLASSES:
        expected = reference_interval([per_class[name] for _, per_class in resampled])
        assert class_intervals[name] == (None if expected is None else pytest.approx(expected, rel=1e-12)), name
    assert intervals["mIoU"][0] < point["mIoU"] < intervals["mIoU"][1]  # random videos: a real spread


def test_samples_at_the_point_equal_the_metrics_definitions():
    confusions, vc_states = random_videos(np.random.default_rng(4))
    drawn = uncertainty.samples(counts_of(confusions, vc_states), GROUPS, uncertainty.Bootstrap(resamples=5))
    point, _ = reference_values(confusions, vc_states, list(range(len(confusions))))
    assert drawn.points == pytest.approx(point, rel=1e-12)


def test_counts_survive_their_json_form():
    confusions, vc_states = random_videos(np.random.default_rng(5))
    counts = counts_of(confusions, vc_states)
    again = uncertainty.VideoCounts.from_json(json.loads(json.dumps(counts.to_json())))
    for field in ("tp", "gt", "pred"):
        assert np.array_equal(getattr(again, field), getattr(counts, field))
    assert again.names == counts.names and again.vc_windows.keys() == counts.vc_windows.keys()
    for n in counts.vc_ratio:
        assert np.array_equal(again.vc_ratio[n], counts.vc_ratio[n])


def test_identical_videos_collapse_the_interval_to_the_point():
    confusions, vc_states = random_videos(np.random.default_rng(6), videos=1)
    counts = counts_of(confusions * 9, vc_states * 9)
    intervals, class_intervals = uncertainty.cell_intervals(counts, GROUPS, CLASSES, uncertainty.Bootstrap())
    point, per_class = reference_values(confusions, vc_states, [0])
    for metric, value in point.items():
        if value is None:
            assert intervals[metric] is None
        else:
            assert intervals[metric] == pytest.approx([value, value], rel=1e-12), metric
    for name, value in per_class.items():
        assert class_intervals[name] == (None if value is None else pytest.approx([value, value], rel=1e-12))


def test_cell_of_identical_videos_records_a_collapsed_interval(tmp_path):
    """A real cell on a VSPW-layout folder whose five videos are copies of one."""
    base = write_vspw(tmp_path / "data", splits={"val": ["video_0"], "train": ["video_train"]}, frames=4)
    for v in range(1, 5):
        shutil.copytree(base / "data" / "video_0", base / "data" / f"video_{v}")
    (base / "val.txt").write_text("".join(f"video_{v}\n" for v in range(5)))
    out = tmp_path / "run"
    run_cli("run", "--plugin", TEST_METHODS, "--methods", "test-constant", "--opt", "test-constant.label=4",  # ladder (raw 5): in the masks
            "--datasets", "vspw:all", "--data-root", tmp_path / "data", "--output", out, "--no-tracking", check=0)
    (result,) = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    assert result["bootstrap"]["resamples"] == uncertainty.RESAMPLES and result["bootstrap"]["unit"] == "video"
    assert len(result["per_video"]["names"]) == 5
    defined = {k: v for k, v in result["metrics"].items() if v is not None}
    assert {"mIoU", "pAcc", "mIoU_seen", "hIoU"} <= set(defined) and defined["mIoU_seen"] > 0 and defined["pAcc"] > 0
    for metric, value in defined.items():
        assert result["intervals"][metric] == pytest.approx([value, value], rel=1e-12, abs=1e-12), metric
    # a result written before cells kept per-video counts still reports, without an interval
    path = next((out / "cells").glob("*.json"))
    old = {k: v for k, v in result.items() if k not in ("per_video", "intervals", "bootstrap")}
    path.write_text(json.dumps(old))
    run_cli("report", out, check=0)
    generalized = (out / "tables" / "generalized.md").read_text()
    assert f"| {result['metrics']['mIoU_seen']:.2f} " in generalized and "[" not in generalized.split("\n")[4]


def test_paired_difference_equals_a_slow_reference_and_is_zero_against_itself():
    rng = np.random.default_rng(7)
    first, vc_first = random_videos(rng)
    second, vc_second = random_videos(rng)
    bootstrap = uncertainty.Bootstrap(resamples=300, seed=2)
    a = uncertainty.samples(counts_of(first, vc_first), GROUPS, bootstrap)
    b = uncertainty.samples(counts_of(second, vc_second), GROUPS, bootstrap)
    draws = np.random.default_rng(2).integers(0, len(first), size=(300, len(first)))
    for metric in ("mIoU", "pAcc", "VC_2"):
        difference = uncertainty.paired_difference([a], [b], metric, bootstrap)
        observed = (reference_values(first, vc_first, list(range(7)))[0][metric]
                    - reference_values(second, vc_second, list(range(7)))[0][metric])
        deltas = np.array([reference_values(first, vc_first, list(p))[0][metric]
                           - reference_values(second, vc_second, list(p))[0][metric] for p in draws])
        assert difference.value == pytest.approx(observed, rel=1e-12)
        assert [difference.low, difference.high] == pytest.approx(reference_interval(deltas), rel=1e-9)
        hits = (np.abs(deltas - observed) >= abs(observed) - 1e-9).sum()
        assert difference.p_value == pytest.approx((1 + hits) / 301)
    itself = uncertainty.paired_difference([a], [a], "mIoU", bootstrap)
    assert (itself.value, itself.low, itself.high, itself.p_value) == (0, 0, 0, 1)
    assert not itself.excludes_zero


def test_a_clearly_better_cell_differs_and_a_noisy_copy_does_not():
    rng = np.random.default_rng(8)
    good, vc_good = random_videos(rng, videos=30)
    perfect = []
    for confusion in good:  # the same ground truth, every pixel right
        better = ConfusionMatrix(len(CLASSES))
        better.counts[np.arange(len(CLASSES)), np.arange(len(CLASSES))] = confusion.counts.sum(axis=1)
        perfect.append(better)
    bootstrap = uncertainty.Bootstrap()
    a = uncertainty.samples(counts_of(perfect, vc_good), GROUPS, bootstrap)
    b = uncertainty.samples(counts_of(good, vc_good), GROUPS, bootstrap)
    difference = uncertainty.paired_difference([a], [b], "mIoU", bootstrap)
    assert difference.excludes_zero and difference.low > 0 and difference.p_value < 0.01


def test_seeds_give_mean_std_and_an_interval_of_the_mean():
    rng = np.random.default_rng(9)
    bootstrap = uncertainty.Bootstrap(resamples=400)
    seeds = [uncertainty.samples(counts_of(*random_videos(rng)), GROUPS, bootstrap) for _ in range(3)]
    estimate = uncertainty.estimate(seeds, "mIoU", bootstrap)
    points = [s.points["mIoU"] for s in seeds]
    assert estimate.value == pytest.approx(np.mean(points)) and estimate.std == pytest.approx(np.std(points, ddof=1))
    assert estimate.seeds == 3
    expected = reference_interval(np.mean([s.metrics["mIoU"] for s in seeds], axis=0))
    assert [estimate.low, estimate.high] == pytest.approx(expected)
    single = uncertainty.estimate(seeds[:1], "mIoU", bootstrap)
    assert single.std is None and single.value == points[0]


def test_bad_bootstrap_settings_say_what_is_expected():
    with pytest.raises(ValueError, match="confidence level strictly between 0 and 1"):
        uncertainty.Bootstrap(confidence=95)


def test_seeds_of_a_trained_configuration_are_one_row_with_mean_and_std(tmp_path):
    """`run --train --seeds 2` on a tiny trained method: two trainings, two cells, one table row whose
    value is the cells' mean, with their standard deviation; run again, nothing trains twice."""
    from test_reports import TINY_TRAINED

    opts = [a for k, v in TINY_TRAINED.items() for a in ("--opt", f"clip-cost-volume.{k}={v}")]
    command = ["run", "--methods", "clip-cost-volume", "--opt", "clip-cost-volume.variant=trained", *opts,
               "--datasets", "synthetic:unseen", "--dataset-opt", "synthetic.frames=8", "--train", "--seeds", "2",
               "--output", tmp_path / "run", "--no-tracking"]
    first = run_cli(*command, cwd=tmp_path, check=0)
    assert first.stderr.count("trains first") == 2 or first.stdout.count("trains first") == 2
    cells = [json.loads(p.read_text()) for p in sorted((tmp_path / "run" / "cells").glob("*.json"))]
    assert sorted(c["cell"]["seed"] for c in cells) == [0, 1] and len({c["cell"]["training"] for c in cells}) == 2
    values = [c["metrics"]["mIoU"] for c in cells]
    assert values[0] != values[1]  # different seeds, different weights
    import pandas as pd

    table = pd.read_csv(tmp_path / "run" / "tables" / "table1.csv")
    (row,) = table[table["Source"] == "reproduced"].to_dict("records")
    assert row["seeds"] == "0,1" and row["mIoU"] == pytest.approx(np.mean(values), abs=1e-4)
    assert row["mIoU_std"] == pytest.approx(np.std(values, ddof=1), abs=1e-4)
    assert row["mIoU_low"] <= row["mIoU"] <= row["mIoU_high"]
    assert f"{np.mean(values):.2f} ±{np.std(values, ddof=1):.2f} [" in (tmp_path / "run" / "tables" / "table1.md").read_text()
    again = run_cli(*command, cwd=tmp_path, check=0)
    assert "trains first" not in again.stdout + again.stderr and (again.stdout + again.stderr).count("trained already") == 2

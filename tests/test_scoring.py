"""The fast scoring paths (benchmark.scoring: numpy on the host, torch where the map lives) give exactly
the counts of the reference definitions (benchmark.metrics), on random and adversarial maps and every
VC rule; bad maps and masks are refused as the reference refuses them."""

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark import ABSTAIN
from benchmark.data import vspw
from benchmark.data.cards import load_card
from benchmark.data.records import DatasetError, VideoRecord
from benchmark.data.settings import make_setting
from benchmark.metrics import VC_RULES, ConfusionMatrix, PredictionError, VideoConsistency
from benchmark.scoring import GroundTruthReader, ScoringPlan, VideoScorer

CARD = load_card("vspw")
FORMAT = vspw.mask_format(CARD["classes"])
SIZE = (12, 17)
#: numpy on the host, torch on the CPU (the device path's code), and on a GPU where there is one
PATHS = [("numpy", "cpu"), ("torch", "cpu")] + ([("torch", "cuda")] if torch.cuda.is_available() else [])


def drifting(rng, values, frames, change=0.15):
    """Maps that change a little from frame to frame, so VC windows hold constant and changed pixels."""
    current = rng.choice(values, size=SIZE)
    out = []
    for _ in range(frames):
        flip = rng.random(SIZE) < change
        current = np.where(flip, rng.choice(values, size=SIZE), current)
        out.append(current.copy())
    return out


def write_video(folder, masks):
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for t, mask in enumerate(masks):
        paths[t] = folder / f"{t:08d}.png"
        Image.fromarray(mask.astype(np.uint8), mode="L").save(paths[t])
    return VideoRecord(folder.name, [folder / f"{t:08d}.jpg" for t in range(len(masks))], paths, FORMAT)


def reference(setting, rule, masks, predictions):
    confusion = ConfusionMatrix(len(setting.class_names))
    consistency = VideoConsistency(rule=rule)
    consistency.start_video(len(masks))
    for raw, prediction in zip(masks, predictions):
        truth = setting.ground_truth(FORMAT.decode(raw, None))
        confusion.update(truth, setting.score_labels(prediction))
        consistency.update(raw, prediction, FORMAT.unscored)
    return confusion, consistency


def fast(setting, rule, record, predictions, path, device):
    plan = ScoringPlan.for_setting(setting, rule)
    scorer = VideoScorer(plan, len(predictions))
    truths = GroundTruthReader(plan, record, sorted(record.masks))
    for t, (truth, prediction) in enumerate(zip(truths, predictions)):
        if path == "torch":
            prediction = torch.from_numpy(np.ascontiguousarray(prediction)).to(device)
        scorer.add(truth, prediction, f"frame {t}", device_counts=path == "torch")
    return scorer.finish()


def assert_same(expected, got):
    (confusion, consistency), (fast_confusion, fast_consistency) = expected, got
    assert np.array_equal(confusion.counts, fast_confusion.counts)
    assert fast_consistency.state() == consistency.state()  # exact: the float sums add the same ratios in order


def cases(rng, setting):
    """(name, masks, predictions): random and adversarial videos."""
    mask_values = [0, 255, *range(1, 125)]
    vocabulary = len(setting.vocabulary)
    labels = [*range(vocabulary), ABSTAIN]
    yield "random", drifting(rng, mask_values, 20), [p.astype(np.int64) for p in drifting(rng, labels, 20)]
    yield "uint8 maps", drifting(rng, mask_values, 9), [p.astype(np.uint8) for p in drifting(rng, labels, 9)]
    yield "int32 maps", drifting(rng, [0, 81, 82, 255], 18, 0.02), \
        [p.astype(np.int32) for p in drifting(rng, labels[:3], 18, 0.02)]
    constant = np.full(SIZE, 100, np.uint8)
    yield "constant for longer than every window", [constant] * 40, [np.zeros(SIZE, np.int64)] * 40
    yield "all abstained", drifting(rng, mask_values, 17), [np.full(SIZE, ABSTAIN, np.int64)] * 17
    yield "nothing scored", [np.where(m % 2, 0, 255).astype(np.uint8) for m in drifting(rng, mask_values, 17)], \
        drifting(rng, labels, 17)
    alternating = [np.full(SIZE, 5 if t % 2 else 124, np.uint8) for t in range(19)]
    yield "alternating every frame", alternating, [np.full(SIZE, t % 3, np.int64) for t in range(19)]
    yield "others and void changing under a constant class", \
        [np.where(np.arange(SIZE[1]) < 5, 0 if t % 2 else 255, 90).astype(np.uint8) * np.ones(SIZE, np.uint8)
         for t in range(18)], [np.full(SIZE, 1, np.int64)] * 18
    yield "shorter than a window", drifting(rng, mask_values, 5), drifting(rng, labels, 5)
    yield "one frame", drifting(rng, mask_values, 1), drifting(rng, labels, 1)


@pytest.mark.parametrize("rule", sorted(VC_RULES))
@pytest.mark.parametrize("setting_name", ["unseen", "all"])
@pytest.mark.parametrize("path,device", PATHS)
def test_fast_paths_count_exactly_what_the_definitions_count(tmp_path, rule, setting_name, path, device):
    setting = make_setting(CARD, setting_name)
    rng = np.random.default_rng(7)
    checked = 0
    for k, (name, masks, predictions) in enumerate(cases(rng, setting)):
        record = write_video(tmp_path / f"video_{k}", masks)
        expected = reference(setting, rule, masks, predictions)
        assert_same(expected, fast(setting, rule, record, predictions, path, device)), name
        checked += expected[1].windows[8] + expected[1].empty_windows[8]
    assert checked > 0  # VC windows were exercised, not only the confusion matrix


@pytest.mark.parametrize("path,device", PATHS)
@pytest.mark.parametrize("bad", [-1, 44, 254, 256, 10**6])
def test_labels_outside_the_vocabulary_are_refused(tmp_path, path, device, bad):
    setting = make_setting(CARD, "unseen")
    masks = [np.full(SIZE, 100, np.uint8)] * 3
    predictions = [np.zeros(SIZE, np.int64) for _ in masks]
    predictions[1][3, 4] = bad
    record = write_video(tmp_path / "video", masks)
    with pytest.raises(PredictionError, match="outside"):
        fast(setting, "vspw", record, predictions, path, device)


@pytest.mark.parametrize("path,device", PATHS)
def test_wrong_shape_and_type_are_refused_at_once(tmp_path, path, device):
    setting = make_setting(CARD, "unseen")
    record = write_video(tmp_path / "video", [np.full(SIZE, 100, np.uint8)])
    with pytest.raises(PredictionError, match="shape"):
        fast(setting, "vspw", record, [np.zeros((3, 4), np.int64)], path, device)
    with pytest.raises(PredictionError, match="dtype"):
        fast(setting, "vspw", record, [np.zeros(SIZE, np.float32)], path, device)


def test_an_unknown_mask_value_names_the_file(tmp_path):
    setting = make_setting(CARD, "unseen")
    mask = np.full(SIZE, 100, np.uint8)
    mask[0, 0] = 200  # VSPW has ids 0..124 and 255
    record = write_video(tmp_path / "video", [np.full(SIZE, 100, np.uint8), mask])
    with pytest.raises(DatasetError, match=r"00000001\.png.*200"):
        fast(setting, "vspw", record, [np.zeros(SIZE, np.int64)] * 2, "numpy", "cpu")


def test_ground_truth_is_prepared_off_the_main_thread(tmp_path, monkeypatch):
    import threading

    from benchmark import scoring

    threads = set()
    decode = scoring.GroundTruthReader._decode

    def recording(self, path):
        threads.add(threading.current_thread().name)
        return decode(self, path)

    monkeypatch.setattr(scoring.GroundTruthReader, "_decode", recording)
    monkeypatch.setenv("BENCHMARK_DECODE_WORKERS", "2")
    setting = make_setting(CARD, "unseen")
    record = write_video(tmp_path / "video", [np.full(SIZE, 100, np.uint8)] * 6)
    fast(setting, "vspw", record, [np.zeros(SIZE, np.int64)] * 6, "numpy", "cpu")
    assert threads and threading.main_thread().name not in threads


@pytest.mark.parametrize("path,device", PATHS)
def test_a_video_whose_frames_change_size_is_refused_as_the_reference_refuses_it(tmp_path, path, device):
    setting = make_setting(CARD, "unseen")
    masks = [np.full(SIZE, 100, np.uint8), np.full((SIZE[0] + 1, SIZE[1]), 100, np.uint8)]
    record = write_video(tmp_path / "video", masks)
    with pytest.raises(ValueError, match=r"frame size changed within a video: \(12, 17\) -> \(13, 17\)"):
        reference(setting, "vspw", masks, [np.zeros(m.shape, np.int64) for m in masks])
    with pytest.raises(ValueError, match=r"frame size changed within a video: \(12, 17\) -> \(13, 17\) at .*00000001"):
        fast(setting, "vspw", record, [np.zeros(m.shape, np.int64) for m in masks], path, device)

"""Plots of run folders, built by hand and by a real synthetic run: which PNGs are written, the palette,
and the strip's colours."""

import json
import logging

import numpy as np
import pytest
from PIL import Image

from benchmark import cli
from benchmark.reporting.colours import ABSTAINED_COLOUR, NOT_SCORED_COLOUR, class_colours, colour_of
from benchmark.reporting.plots import NOT_SCORED, display_labels, palette, per_class_iou, qualitative_strip, write_plots

CLASSES = ["sky", "road", "car", "person"]
SKY, ROAD, CAR, PERSON = range(4)
FRAMES = ["00000001", "00000006", "00000011"]
HEIGHT, WIDTH = 48, 64


def ground_truth():
    """Sky above, road below, an unscored row between; no car, no person."""
    truth = np.full((HEIGHT, WIDTH), SKY, np.uint8)
    truth[HEIGHT // 2:] = ROAD
    truth[HEIGHT // 2 - 1] = NOT_SCORED
    return truth


def cell_result(method, setting="unseen", status="done", class_names=CLASSES):
    cell = {"id": f"{method}__synthetic-{setting}__intended__{method[0] * 5}12345", "method": method,
            "dataset": "synthetic", "setting": setting, "protocol": "intended", "options": {}}
    if status != "done":
        return {"cell": cell, "status": status, "error": {"message": "it broke"}}
    per_class = {name: {"IoU": None if k % 7 == 3 else 10.0 + k % 90, "Acc": None, "gt_pixels": 0 if k % 7 == 3 else
                        1500 * (k + 1), "pred_pixels": 100} for k, name in enumerate(class_names)}
    return {"cell": cell, "status": status, "class_names": class_names, "per_class": per_class,
            "metrics": {"mIoU": 42.0}}


def write_cell(run, result):
    (run / "cells").mkdir(parents=True, exist_ok=True)
    (run / "cells" / f"{result['cell']['id']}.json").write_text(json.dumps(result))
    return result["cell"]["id"]


def write_showcase(run, cell_id, prediction, frames=FRAMES):
    """The runner's showcase format; `frames` are the ids whose prediction is written."""
    folder = run / "showcase" / cell_id
    folder.mkdir(parents=True)
    grey = np.linspace(60, 200, HEIGHT * WIDTH).reshape(HEIGHT, WIDTH).astype(np.uint8)
    for frame in FRAMES:
        Image.fromarray(np.stack([grey, grey, grey // 2], axis=-1)).save(folder / f"{frame}.jpg")  # never neutral grey
        Image.fromarray(ground_truth()).save(folder / f"{frame}.gt.png")
        if frame in frames:
            Image.fromarray(prediction).save(folder / f"{frame}.pred.png")
    (folder / "showcase.json").write_text(json.dumps({
        "video": "video_000", "frames": FRAMES, "class_names": CLASSES, "dataset": "synthetic",
        "setting": "unseen", "protocol": "intended"}))
    return folder


def pixels_near(image, colour, tolerance=3):
    return int((np.abs(image.astype(int) - np.asarray(colour, int)).max(axis=-1) <= tolerance).sum())


def test_write_plots_writes_one_chart_per_setting_and_a_strip_of_the_complete_showcases(tmp_path, caplog):
    run = tmp_path / "run"
    car_everywhere = np.full((HEIGHT, WIDTH), CAR, np.uint8)
    car_everywhere[:, -WIDTH // 4:] = NOT_SCORED
    person_everywhere = np.full((HEIGHT, WIDTH), PERSON, np.uint8)
    write_showcase(run, write_cell(run, cell_result("alpha")), np.full((HEIGHT, WIDTH), ROAD, np.uint8))
    write_showcase(run, write_cell(run, cell_result("beta")), car_everywhere)
    write_cell(run, cell_result("delta"))  # done, no showcase
    failed = write_cell(run, cell_result("gamma", status="failed"))
    write_showcase(run, failed, person_everywhere)
    incomplete = write_cell(run, cell_result("epsilon"))
    write_showcase(run, incomplete, person_everywhere, frames=FRAMES[:-1])
    write_cell(run, cell_result("alpha", setting="all"))

    with caplog.at_level(logging.WARNING, logger="benchmark.reporting.plots"):
        written = write_plots(run)

    plots = run / "plots"
    assert sorted(written) == sorted([plots / "per_class_iou__synthetic-unseen__intended.png",
                                      plots / "qualitative__synthetic-unseen__intended.png",
                                      plots / "per_class_iou__synthetic-all__intended.png"])
    for path in written:
        with Image.open(path) as image:
            assert image.format == "PNG" and 400 <= image.width <= 4000 and 300 <= image.height <= 4000, image.size
    assert incomplete in caplog.text and "incomplete" in caplog.text

    with Image.open(plots / "qualitative__synthetic-unseen__intended.png") as image:
        strip = np.asarray(image.convert("RGB"))
    colours = class_colours(CLASSES)
    frame_area = strip.shape[0] * strip.shape[1] / 4 / len(FRAMES) / 8  # far more than a legend patch
    assert pixels_near(strip, colours[SKY]) > frame_area      # the ground truth only
    assert pixels_near(strip, colours[ROAD]) > frame_area     # the ground truth and alpha's prediction
    assert pixels_near(strip, colours[CAR]) > frame_area      # beta's prediction
    assert pixels_near(strip, ABSTAINED_COLOUR) > frame_area  # beta's abstentions
    # the ground truth's unscored row (three frames, a row each) and its legend patch: grey, not black
    assert 3 * WIDTH <= pixels_near(strip, NOT_SCORED_COLOUR) < frame_area
    assert pixels_near(strip, colours[PERSON]) == 0           # only the failed and the incomplete cell predict it


def test_qualitative_strip_needs_one_complete_showcase(tmp_path):
    with pytest.raises(ValueError, match="none of the 1 showcase folders is complete"):
        qualitative_strip([("alpha", tmp_path / "missing")], tmp_path / "strip.png")


def test_palette_is_fixed_and_distinct():
    colours = palette(124)
    assert colours.dtype == np.uint8 and colours.shape == (124, 3)
    assert np.array_equal(colours, palette(124)) and np.array_equal(palette(7), colours[:7])
    first = colours[:20].astype(float)
    distances = np.linalg.norm(first[:, None] - first[None], axis=-1) + np.eye(20) * 1e9
    assert distances.min() > 20
    assert len({tuple(colour) for colour in colours}) == 124
    assert np.linalg.norm(colours.astype(float), axis=-1).min() > 60  # none passes for not scored (black)


def test_a_class_keeps_its_colour_by_name_and_a_colour_word_is_that_colour():
    assert np.array_equal(class_colours(["b", "a"]), class_colours(["a", "b"])[::-1])  # by name, not position
    red, blue = colour_of("plain red circle"), colour_of("striped blue square")
    assert red[0] > 150 and red[0] > 2 * max(red[1:]) and blue[2] > 150 and blue[2] > 2 * max(blue[:2])
    assert colour_of("plain red circle") != colour_of("striped red circle")  # two red classes still differ
    assert NOT_SCORED_COLOUR != ABSTAINED_COLOUR


def test_the_legend_of_nine_methods_with_long_names_fits_the_chart(tmp_path):
    results = [cell_result(method) for method in "abcdefghi"]
    labels = {r["cell"]["id"]: f"CLIP cost volume (trained) [variant=method-{k}] (ResNet-101) (stand-in)"
              for k, r in enumerate(results)}
    path = per_class_iou(results, labels, tmp_path / "iou.png")
    with Image.open(path) as image:
        chart = np.asarray(image.convert("RGB"))
    legend = chart[: chart.shape[0] // 3]
    ink = np.nonzero((legend < 200).any(axis=-1).any(axis=0))[0]  # columns with anything drawn
    assert ink.min() > 0 and ink.max() < chart.shape[1] - 1, (ink.min(), ink.max(), chart.shape)
    swatches = [pixels_near(legend, colour) for colour in palette(9)]
    assert all(count > 20 for count in swatches), swatches  # every method's entry is in the picture


def test_a_label_two_cells_share_gets_their_id_endings():
    first, second, third = cell_result("alpha"), cell_result("beta"), cell_result("delta")
    labels = display_labels([first, second, third], {first["cell"]["id"]: "OV2VSS", second["cell"]["id"]: "OV2VSS"})
    assert labels == {first["cell"]["id"]: "OV2VSS [a12345]", second["cell"]["id"]: "OV2VSS [b12345]",
                      third["cell"]["id"]: "delta"}


def test_124_classes_get_a_tall_enough_chart(tmp_path):
    class_names = [f"class {k}" for k in range(124)]
    results = [cell_result(method, class_names=class_names) for method in ("alpha", "beta")]
    path = per_class_iou(results, {}, tmp_path / "iou.png")
    with Image.open(path) as image:
        assert image.height >= 124 * 20 and image.height > 2 * image.width, image.size


def test_a_real_run_plots_its_showcase_with_the_ground_truth_in_palette_colours(tmp_path):
    run = tmp_path / "run"
    assert cli.main(["run", "--methods", "chance", "--datasets", "synthetic:unseen", "--output", str(run),
                     "--no-tracking"]) == 0
    assert sorted(p.name for p in (run / "plots").glob("*.png")) == [
        "per_class_iou__synthetic-unseen__intended.png", "qualitative__synthetic-unseen__intended.png"]
    (folder,) = (run / "showcase").iterdir()
    meta = json.loads((folder / "showcase.json").read_text())
    truth = np.asarray(Image.open(folder / f"{meta['frames'][0]}.gt.png"))
    in_truth = [int(k) for k in np.unique(truth) if k != NOT_SCORED]
    with Image.open(run / "plots" / "qualitative__synthetic-unseen__intended.png") as image:
        strip = np.asarray(image.convert("RGB"))
    colours = class_colours(meta["class_names"])
    assert in_truth and all(pixels_near(strip, colours[k]) > 200 for k in in_truth)

"""PNG figures of a finished run folder, like the paper's: per-class IoU bars and qualitative strips.

    DIR/plots/per_class_iou__<dataset>-<setting>__<protocol>.png   one per dataset setting and protocol
    DIR/plots/qualitative__<dataset>-<setting>__<protocol>.png     when its cells have showcase folders

A cell's showcase folder, DIR/showcase/<cell-id>/, written by the runner for the first video of the
cell's dataset, holds showcase.json ({"video", "frames", "class_names", "dataset", "setting",
"protocol"}) and for each frame id F: F.jpg (the frame), F.gt.png and F.pred.png (8-bit scored class
indices; 255 is "not scored" in F.gt.png and "abstained" in F.pred.png). Classes take their colours
by name (`benchmark.reporting.colours`), as `predict` does. matplotlib is imported inside the functions that draw, so
importing this module (and the CLI) stays fast.
"""

from __future__ import annotations

import colorsys
import logging
import math
import pathlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.reporting.colours import ABSTAINED_COLOUR, NOT_SCORED_COLOUR, class_colours
from benchmark.store import RunStore, read_json, writing

log = logging.getLogger(__name__)

NOT_SCORED = 255  # in a ground-truth image: no scored class; in a prediction image: abstained
#: matplotlib's tab20 in the order classes take it: its ten strong hues, then their light partners,
#: so neighbouring class indices never share a hue.
TAB20_ORDER = (0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19)
GOLDEN_RATIO = (math.sqrt(5) - 1) / 2

BAR_DPI = 100
BAR_WIDTH_IN = 10.0
MAX_BAR_HEIGHT_IN = 80.0  # 124 classes x 5 methods still fit; beyond that the bars thin out

STRIP_DPI = 150
STRIP_WIDTH_IN = 15.0     # the frames share this width...
MAX_FRAME_WIDTH_IN = 2.4  # ...up to this much each, so a short strip is not blown up
GAP_IN = 0.04
#: A predicted class not in the ground truth is in the strip's legend when it covers this share of
#: some frame; scattered pixels of dozens of classes would otherwise bury the legend.
MIN_LEGEND_SHARE = 0.002


def palette(n: int) -> np.ndarray:
    """n distinguishable colours, uint8 [n, 3]; colour k depends on k only, so class k looks the same
    in every plot. The first 20 are tab20's; later ones step the hue by the golden ratio."""
    from matplotlib import colormaps

    tab20 = np.asarray(colormaps["tab20"].colors)[list(TAB20_ORDER)]
    colours = []
    for k in range(n):
        if k < len(tab20):
            colours.append(tab20[k])
        else:
            hue = (k - len(tab20)) * GOLDEN_RATIO % 1.0
            colours.append(colorsys.hsv_to_rgb(hue, (0.85, 0.55)[k % 2], (0.95, 0.75, 0.6)[k % 3]))
    return np.round(np.asarray(colours, dtype=np.float64).reshape(n, 3) * 255).astype(np.uint8)


def colourise(label_map: np.ndarray, colours: np.ndarray, missing: tuple[int, int, int]) -> np.ndarray:
    """Class indices -> RGB: index k in colours[k]; NOT_SCORED and classes without a colour in `missing`."""
    lookup = np.tile(np.asarray(missing, dtype=np.uint8), (256, 1))
    lookup[: len(colours)] = colours[:256]
    return lookup[label_map]


def display_labels(results: Sequence[dict[str, Any]], labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """Cell id -> legend label: labels[id], else the cell's method; a label that two cells share gets
    the last 6 characters of each cell's id, so the two can be told apart."""
    labels = labels or {}
    chosen = {r["cell"]["id"]: labels.get(r["cell"]["id"], r["cell"]["method"]) for r in results}
    counts: dict[str, int] = {}
    for label in chosen.values():
        counts[label] = counts.get(label, 0) + 1
    return {cell_id: f"{label} [{cell_id[-6:]}]" if counts[label] > 1 else label for cell_id, label in chosen.items()}


def pixels_text(count: float) -> str:
    """1234567 -> '1.2M': a pixel count short enough for a tick label."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= scale:
            return f"{count / scale:.1f}{suffix}"
    return str(int(count))


def group_key(result: dict[str, Any]) -> tuple[str, str, str]:
    cell = result["cell"]
    return cell["dataset"], cell["setting"], cell["protocol"]


def per_class_iou(results: Sequence[dict[str, Any]], labels: Mapping[str, str] | None,
                  path: pathlib.Path | str) -> pathlib.Path:
    """Grouped horizontal bars of the per-class IoU of the done cells of one (dataset, setting,
    protocol), one colour per cell, classes in class_names order with their ground-truth pixels in the
    tick label. A class without ground-truth pixels keeps its row, greyed and without bars: its IoU is
    0 or undefined and the mIoU leaves it out. Whiskers: each IoU's bootstrap interval over videos."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    results = [r for r in results if r.get("status") == "done"]
    if not results:
        raise ValueError("per_class_iou: no done cells to plot")
    groups = sorted({group_key(r) for r in results})
    if len(groups) > 1:
        raise ValueError(f"per_class_iou plots one (dataset, setting, protocol); these cells span {groups}")
    (dataset, setting, protocol), = groups
    names = display_labels(results, labels)
    class_names = list(dict.fromkeys(name for r in results for name in r["class_names"]))
    gt_pixels = [[r["per_class"][name]["gt_pixels"] for r in results if name in r["per_class"]]
                 for name in class_names]
    has_gt = [max(counts, default=0) > 0 for counts in gt_pixels]

    methods, rows = len(results), len(class_names)
    legends = [names[r["cell"]["id"]] + (f" (mIoU {m:.1f})" if (m := (r.get("metrics") or {}).get("mIoU")) is not None
                                         else "") for r in results]
    # As many columns as the longest entry allows across the figure (about 0.075 in per character at
    # 9 pt, plus the swatch), so any number of methods fits: more rows, never wider than the figure.
    entry_in = 0.5 + 0.075 * max(len(text) for text in legends)
    legend_columns = max(1, min(methods, 3, int(BAR_WIDTH_IN / entry_in)))
    header_in = 0.9 + 0.25 * math.ceil(methods / legend_columns)
    height_in = min(MAX_BAR_HEIGHT_IN, max(3.5, header_in + 0.8 + rows * (0.1 + 0.1 * methods)))
    figure = Figure(figsize=(BAR_WIDTH_IN, height_in), dpi=BAR_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    bar_height = 0.8 / methods
    colours = palette(methods) / 255
    for j, result in enumerate(results):
        rows_drawn, values, whiskers = [], [], []
        for i, name in enumerate(class_names):
            scores = result["per_class"].get(name, {})
            if has_gt[i] and scores.get("IoU") is not None:
                rows_drawn.append(i - 0.4 + bar_height * (j + 0.5))
                values.append(scores["IoU"])
                low, high = scores.get("IoU_interval") or (scores["IoU"], scores["IoU"])
                whiskers.append((scores["IoU"] - low, high - scores["IoU"]))
        bars = axes.barh(rows_drawn, values, height=bar_height, color=colours[j], label=legends[j],
                         xerr=np.array(whiskers).T if whiskers else None,
                         error_kw={"elinewidth": 0.6, "capsize": 1.5, "ecolor": "0.25"})
        axes.bar_label(bars, fmt="%.1f", padding=2, fontsize=6, color="0.3")

    tick_labels = []
    for name, counts, present in zip(class_names, gt_pixels, has_gt):
        if not present:
            tick_labels.append(f"{name} (no gt px)")
        elif min(counts) == max(counts):
            tick_labels.append(f"{name} ({pixels_text(counts[0])} px)")
        else:  # cells with different dataset options counted different pixels
            tick_labels.append(f"{name} ({pixels_text(min(counts))}-{pixels_text(max(counts))} px)")
    axes.set_yticks(range(rows), tick_labels, fontsize=8)
    for label, present in zip(axes.get_yticklabels(), has_gt):
        if not present:
            label.set_color("0.6")
    axes.set_ylim(rows - 0.5, -0.5)  # first class on top
    axes.set_xlim(0, 105)
    axes.set_xticks(range(0, 101, 10))
    axes.grid(axis="x", alpha=0.3)
    axes.set_axisbelow(True)
    axes.tick_params(axis="x", labeltop=rows > 30, top=rows > 30)  # a tall chart gets its scale at both ends
    note = "\nGrey classes have no ground-truth pixels: no bars, not in the mIoU." if not all(has_gt) else ""
    axes.set_xlabel("IoU (%)" + note, fontsize=9)
    # The title heads the legend, above the bars (a suptitle and an outside legend would overlap).
    figure.legend(loc="outside upper center", ncols=legend_columns, fontsize=9, frameon=False,
                  title=f"Per-class IoU (%): {dataset}:{setting}, {protocol} protocol", title_fontsize=12)
    path = pathlib.Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path)
    return path


@dataclass(frozen=True)
class Showcase:
    """One cell's showcase: a few frames of a video, their ground truth and the cell's predictions."""

    video: str
    frame_ids: list[str]
    class_names: list[str]
    dataset: str
    setting: str
    protocol: str
    frames: list[np.ndarray]        # RGB [H, W, 3]
    ground_truth: list[np.ndarray]  # scored class indices [H, W], 255 not scored
    predictions: list[np.ndarray]   # same, 255 abstained or not a scored class


def read_label_map(path: pathlib.Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        label_map = np.asarray(image)
    if label_map.ndim != 2 or label_map.dtype != np.uint8:
        raise ValueError(f"{path} is not an 8-bit single-channel PNG (shape {label_map.shape}, {label_map.dtype})")
    return label_map


def load_showcase(folder: pathlib.Path | str) -> Showcase | None:
    """The showcase in `folder`; None (with a warning) when it is incomplete, as a runner killed while
    writing it leaves it."""
    from PIL import Image

    folder = pathlib.Path(folder)
    try:
        meta = read_json(folder / "showcase.json")
        frame_ids = [str(frame) for frame in meta["frames"]]
        if not frame_ids:
            raise ValueError("it lists no frames")
        frames = []
        for frame in frame_ids:
            with Image.open(folder / f"{frame}.jpg") as image:
                frames.append(np.asarray(image.convert("RGB")))
        ground_truth = [read_label_map(folder / f"{frame}.gt.png") for frame in frame_ids]
        predictions = [read_label_map(folder / f"{frame}.pred.png") for frame in frame_ids]
        for frame, truth, prediction in zip(frame_ids, ground_truth, predictions):
            if truth.shape != prediction.shape:
                raise ValueError(f"frame {frame}: ground truth {truth.shape} but prediction {prediction.shape}")
        return Showcase(meta["video"], frame_ids, list(meta["class_names"]), meta["dataset"], meta["setting"],
                        meta["protocol"], frames, ground_truth, predictions)
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("showcase %s is incomplete and left out of the strip: %s: %s", folder, type(error).__name__, error)
        return None


def same_scene(a: Showcase, b: Showcase) -> bool:
    """Whether two showcases show the same frames with the same ground truth (cells whose dataset
    options differ may not)."""
    return ((a.video, a.frame_ids, a.class_names) == (b.video, b.frame_ids, b.class_names)
            and all(np.array_equal(x, y) for x, y in zip(a.ground_truth, b.ground_truth)))


def load_panels(panels: Sequence[tuple[str, pathlib.Path | str]]) -> list[tuple[str, Showcase]]:
    """The complete showcases of `panels`, as (label, showcase), keeping those that show the same
    frames as the first complete one."""
    kept: list[tuple[str, Showcase]] = []
    for label, folder in panels:
        showcase = load_showcase(folder)
        if showcase is None:
            continue
        if kept and not same_scene(showcase, kept[0][1]):
            log.warning("showcase of %s shows other frames or ground truth than %s's; left out of the strip",
                        label, kept[0][0])
            continue
        kept.append((label, showcase))
    return kept


def qualitative_strip(panels: Sequence[tuple[str, pathlib.Path | str]], path: pathlib.Path | str,
                      title: str | None = None) -> pathlib.Path:
    """Frames, each panel's prediction and the ground truth of one (dataset, setting, protocol), as in
    the paper's Figures 2 and 6; panels are (label, showcase folder). Incomplete showcases are left out."""
    rows = load_panels(panels)
    if not rows:
        raise ValueError(f"qualitative_strip: none of the {len(panels)} showcase folders is complete")
    return draw_strip(rows, pathlib.Path(path), title)


def draw_strip(rows: list[tuple[str, Showcase]], path: pathlib.Path, title: str | None) -> pathlib.Path:
    """Draw loaded showcases (see qualitative_strip): a frames row, one row per showcase, a ground-truth
    row, and a legend of the classes in the ground truth or covering MIN_LEGEND_SHARE of a prediction."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import Patch

    scene = rows[0][1]
    colours = class_colours(scene.class_names)
    grid = [("frames", scene.frames), *[(label, showcase.predictions) for label, showcase in rows],
            ("ground truth", scene.ground_truth)]
    classes = len(scene.class_names)
    in_truth = np.zeros(256, bool)
    for truth in scene.ground_truth:
        in_truth |= np.bincount(truth.ravel(), minlength=256) > 0
    largest_share = np.zeros(256)  # of any one prediction
    for _, showcase in rows:
        for prediction in showcase.predictions:
            largest_share = np.maximum(largest_share, np.bincount(prediction.ravel(), minlength=256) / prediction.size)
    listed = [k for k in range(classes) if in_truth[k] or largest_share[k] >= MIN_LEGEND_SHARE]
    unlisted = sum(1 for k in range(classes) if not in_truth[k] and 0 < largest_share[k] < MIN_LEGEND_SHARE)

    columns = len(scene.frame_ids)
    height_px, width_px = scene.ground_truth[0].shape
    frame_width_in = min(MAX_FRAME_WIDTH_IN, STRIP_WIDTH_IN / columns)
    frame_height_in = frame_width_in * height_px / width_px
    # Laid out by hand, in inches: frames keep their aspect and sit GAP_IN apart, with no layout slack.
    figure = Figure(dpi=STRIP_DPI)
    FigureCanvasAgg(figure)
    font = FontProperties(size=9)
    renderer = figure.canvas.get_renderer()
    label_width_in = max(renderer.get_text_width_height_descent(label, font, ismath=False)[0]
                         for label, _ in grid) / STRIP_DPI + 0.2
    grid_width_in = columns * frame_width_in + (columns - 1) * GAP_IN
    grid_height_in = len(grid) * frame_height_in + (len(grid) - 1) * GAP_IN
    entry_width_in = 0.45 + 0.07 * max(len(scene.class_names[k]) for k in listed) if listed else 0.0
    legend_columns = max(1, min(len(listed) + 3, int(grid_width_in / max(entry_width_in, 1.9))))
    legend_in = 0.25 + 0.2 * math.ceil((len(listed) + 3) / legend_columns)  # at most; the excess is trimmed
    title_in = 0.6
    width_in, height_in = label_width_in + grid_width_in + 0.1, title_in + grid_height_in + legend_in
    figure.set_size_inches(width_in, height_in)
    for r, (label, images) in enumerate(grid):
        bottom_in = legend_in + grid_height_in - (r + 1) * frame_height_in - r * GAP_IN
        for c, image in enumerate(images):
            left_in = label_width_in + c * (frame_width_in + GAP_IN)
            cell = figure.add_axes((left_in / width_in, bottom_in / height_in,
                                    frame_width_in / width_in, frame_height_in / height_in))
            missing = NOT_SCORED_COLOUR if r == len(grid) - 1 else ABSTAINED_COLOUR  # the last row: ground truth
            cell.imshow(image if image.ndim == 3 else colourise(image, colours, missing), interpolation="nearest")
            cell.set_xticks([])
            cell.set_yticks([])
            if r == 0:
                cell.set_title(scene.frame_ids[c], fontsize=8, pad=3)
            if c == 0:
                cell.set_ylabel(label, rotation=0, ha="right", va="center", fontproperties=font)

    handles = [Patch(facecolor=colours[k] / 255, edgecolor="0.4", linewidth=0.5, label=scene.class_names[k])
               for k in listed]
    if any((truth == NOT_SCORED).any() for truth in scene.ground_truth):
        handles.append(Patch(facecolor=np.asarray(NOT_SCORED_COLOUR) / 255, label="not scored (ground truth)"))
    if any((prediction == NOT_SCORED).any() for _, showcase in rows for prediction in showcase.predictions):
        handles.append(Patch(facecolor=np.asarray(ABSTAINED_COLOUR) / 255, label="abstained (prediction)"))
    if unlisted:
        handles.append(Patch(facecolor="none", edgecolor="none",
                             label=f"+{unlisted} predicted classes under {MIN_LEGEND_SHARE:.1%} of every frame"))
    figure.legend(handles=handles, loc="upper center", ncols=legend_columns, fontsize=8, frameon=False,
                  bbox_to_anchor=((label_width_in + grid_width_in / 2) / width_in, (legend_in - 0.1) / height_in))
    figure.suptitle(title or f"{scene.dataset}:{scene.setting}, {scene.protocol} protocol: video {scene.video}",
                    fontsize=11, y=1 - 0.1 / height_in, va="top")
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, bbox_inches="tight", pad_inches=0.08)  # trims what the legend estimate left over
    return path


def write_plots(output: pathlib.Path | str, labels: Mapping[str, str] | None = None,
                rows: Sequence[dict[str, Any]] | None = None) -> list[pathlib.Path]:
    """Write the plots of every (dataset, setting, protocol) with done cells under DIR/plots/ and return
    their paths. `labels` maps cell id -> display label; its order is the order of bars and rows.
    `rows`: the results to draw (a report's rows: seeds of one configuration as one), default every
    cell of the folder. Failed cells are ignored; cells without a complete showcase are left out of the strip."""
    store = RunStore(output)
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for result in store.results() if rows is None else rows:
        if result.get("status") == "done":
            groups.setdefault(group_key(result), []).append(result)
    order = {cell_id: position for position, cell_id in enumerate(labels or {})}
    written = []
    for (dataset, setting, protocol), results in sorted(groups.items()):
        results.sort(key=lambda r: order.get(r["cell"]["id"], len(order)))
        names = display_labels(results, labels)
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{dataset}-{setting}__{protocol}")
        written.append(per_class_iou(results, names, store.root / "plots" / f"per_class_iou__{stem}.png"))
        folders = [(names[r["cell"]["id"]], store.showcase_dir(r["cell"]["id"])) for r in results]
        rows = load_panels([(label, folder) for label, folder in folders if folder.is_dir()])
        if rows:
            written.append(draw_strip(rows, store.root / "plots" / f"qualitative__{stem}.png", None))
    return written

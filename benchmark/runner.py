"""Run one cell: data -> method -> metrics -> result file.

Every video's counts are saved as soon as the video is done, so a killed cell resumes where it
stopped; the final numbers are merged from the per-video states in dataset order, so a resumed (or
sharded) cell gives exactly the numbers of an uninterrupted one. The result keeps each video's counts
(`per_video`), from which every metric gets its bootstrap interval over videos (`benchmark.uncertainty`)
and tables compare cells on the same resampled videos. A failing method fails its cell,
with a message naming the method, the video and the frame, and never stops other cells.
"""

from __future__ import annotations

import logging
import pathlib
import time
import traceback
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmark import registry, saved_predictions, uncertainty
from benchmark.code_identity import changed_files, method_code
from benchmark.data import catalog
from benchmark.data.loading import PREFETCH_FRAMES, prefetched_videos
from benchmark.data.records import MASK_SIZE_FIX, DatasetError, VideoRecord
from benchmark.interface import Video
from benchmark.metrics import ConfusionMatrix, PredictionError, VideoConsistency, as_label_map, check_prediction
from benchmark.plan import Cell
from benchmark.progress import Progress
from benchmark.runtime import resolve_device, seed_everything, set_threads
from benchmark.scoring import GroundTruthReader, MapError, ScoringPlan, VideoScorer
from benchmark.store import RunStore, StoreError, now, provenance

log = logging.getLogger(__name__)

#: Annotated frames of a cell's first video kept as images for the qualitative plot (evenly spaced).
SHOWCASE_FRAMES = 4


@dataclass
class RunContext:
    """What every cell of a run shares (and what a separate process needs to run one)."""

    output: str
    plugins: list[str] = field(default_factory=list)
    data_root: str | None = None
    device: str = "auto"
    save_predictions: bool = False  # every annotated frame's map, in the dataset's own ids (saved_predictions)
    reuse_stale: bool = False  # take finished cells as done even when their method's code changed since
    sharing: int = 1  # cells running at once on this machine's CPUs (local --workers): each takes its share


class CellFailure(Exception):
    """A failure attributed to the method or the data, with where it happened."""


def run_cell(cell_data: dict[str, Any], context: RunContext, shard: int = 0, shards: int = 1) -> dict[str, Any]:
    """Run a cell (given as `Cell.to_dict()`, so it crosses process boundaries), or one of `shards`
    parts of it split by video, and return the cell's result, which is also written to the store.

    A shard evaluates every `shards`-th video starting at `shard` and saves its summary; whichever shard
    finds all summaries saved merges the per-video states into the cell result (a shard that is not
    last returns a result with status "shard-done", which it does not write).

    Nothing but an interrupt escapes: a fault of the store itself (disk full, a folder removed or made
    unwritable) fails this cell with a message naming the path, and the run goes on to the next."""
    cell = Cell.from_dict(cell_data)
    store = RunStore(context.output)
    try:
        return _run_cell(cell, context, store, shard, shards)
    except Exception as error:
        result = {"cell": cell.to_dict(), "status": "failed", "provenance": {"end_time": now()},
                  "error": {"message": _message(error), "traceback": traceback.format_exc()}}
        log.error("cell %s failed: %s", cell.id, result["error"]["message"])
        try:
            store.write_result(result)
        except OSError:  # the store cannot take even this; the driver reports the returned result
            pass
        return result


def _run_cell(cell: Cell, context: RunContext, store: RunStore, shard: int, shards: int) -> dict[str, Any]:
    load_plugins(context)
    code = method_code(registry.get(cell.method))
    previous = store.read_result(cell.id)
    if previous is not None and previous.get("status") == "done":
        changed = not context.reuse_stale and stale(previous, code)
        if not changed and (not context.save_predictions or saved_predictions.complete(store, cell.id)):
            return previous
        log.info("cell %s: %s; computing it again", cell.id, f"its method's code changed since it finished "
                 f"({', '.join(changed_files(previous['provenance']['method_code'], code)[:5])})" if changed
                 else "finished without saved predictions")
    store.clear_shard(cell.id, shard, shards)  # this attempt's outcome replaces an earlier one's
    result: dict[str, Any] = {"cell": cell.to_dict(), "status": "running", "provenance": provenance(cell.seed)}
    result["provenance"].update({"device": context.device, "data_root": context.data_root, "plugins": context.plugins,
                                 "method_code": code})
    if shards > 1:
        result["provenance"]["shard"] = f"{shard} of {shards}"
    try:
        evaluation = open_evaluation(cell, context, result)
        if context.save_predictions:
            if not evaluation.label_formats:
                raise CellFailure(f"{cell.dataset} declares no id space to save predictions in; run without "
                                  "--save-predictions")
            result["predictions"] = saved_predictions.describe(store, cell.id, evaluation.label_formats,
                                                               evaluation.setting)
        _evaluate_videos(cell, context, store, evaluation, result, evaluation.videos[shard::shards])
        result["status"] = "done"
        if shards == 1:
            _merge_states(cell, store, evaluation, result)
    except Exception as error:  # recorded in the cell's result; other cells go on
        result["status"] = "failed"
        result["error"] = {"message": _message(error), "traceback": traceback.format_exc()}
        if shards > 1:
            result["error"]["message"] = f"shard {shard} of {shards}: {result['error']['message']}"
        log.error("cell %s failed: %s", cell.id, result["error"]["message"])
    result["provenance"]["end_time"] = now()
    if shards > 1:
        store.save_shard(cell.id, shard, shards, result)
        if result["status"] == "failed":
            store.write_result(result)  # the cell shows as failed at once; the other shards' videos stay saved
            return result
        return merge_shards(cell.to_dict(), context, shards) or {**result, "status": "shard-done"}
    _publish(cell, store, result)
    return result


def _message(error: Exception) -> str:
    return str(error) if isinstance(error, (CellFailure, StoreError)) else f"{type(error).__name__}: {error}"


def merge_shards(cell_data: dict[str, Any], context: RunContext, shards: int) -> dict[str, Any] | None:
    """The cell result merged from its shards once all of them have finished (None before that):
    the same numbers an unsharded run gives, with each shard's provenance and timing kept."""
    cell = Cell.from_dict(cell_data)
    store = RunStore(context.output)
    parts = store.load_shards(cell.id, shards)
    if len(parts) < shards or any(part["status"] != "done" for part in parts):
        return None
    result = {key: value for key, value in parts[0].items() if key not in ("timing", "provenance")}
    result["provenance"] = {**parts[0]["provenance"], "shard": None, "end_time": max(
        part["provenance"]["end_time"] for part in parts), "shards": [part["provenance"] for part in parts]}
    result["timing"] = merged_timing([part["timing"] for part in parts])
    try:
        _merge_states(cell, store, open_evaluation(cell, context, {}), result)
    except Exception as error:  # a video state went missing or bad since its shard saved it
        merged = store.read_result(cell.id)
        if merged is not None and merged.get("status") == "done":  # another shard merged first
            return merged
        result.update(status="failed", error={"message": f"merging the {shards} shards failed: {_message(error)}",
                                              "traceback": traceback.format_exc()})
    _publish(cell, store, result)
    return result


def merged_timing(shards: list[dict[str, Any]]) -> dict[str, Any]:
    """A sharded cell's timing: frames per second of wall-clock time, from the first shard's first frame
    to the last shard's last (the shards ran side by side), with each shard's own timing kept."""
    frames = sum(part["frames"] for part in shards)
    segment_s = sum(part["segment_s"] for part in shards)
    if all("started" in part and "ended" in part for part in shards):
        wall_s = max(part["ended"] for part in shards) - min(part["started"] for part in shards)
    else:  # shards saved before their start and end were recorded
        wall_s = segment_s
    return {"setup_s": max(part["setup_s"] for part in shards), "segment_s": segment_s, "wall_s": wall_s,
            "frames": frames, "frames_per_s": frames / wall_s if wall_s else None, "shards": shards}


def load_plugins(context: RunContext) -> None:
    for plugin in context.plugins:
        registry.load_plugin(plugin)


def stale(result: dict[str, Any], code: dict[str, Any]) -> bool:
    """Whether a result (or a video's state) was computed by other code than `code` (a result from before
    the harness recorded it cannot tell, and is taken as it is)."""
    recorded = (result.get("provenance") or {}).get("method_code") or result.get("method_code")
    return recorded is not None and recorded["sha256"] != code["sha256"]


def open_evaluation(cell: Cell, context: RunContext, result: dict[str, Any]):
    load_plugins(context)
    data_root = pathlib.Path(context.data_root) if context.data_root else None
    evaluation = catalog.open_evaluation(cell.dataset, cell.setting, cell.protocol, data_root, cell.dataset_options)
    setting = evaluation.setting
    result.update(vocabulary=setting.vocabulary, class_names=setting.class_names, groups=setting.groups,
                  data={"root": str(evaluation.root), "split": evaluation.split, "videos": len(evaluation.videos),
                        "mask_formats": sorted({r.mask_format.name for r in evaluation.videos}),
                        "notes": evaluation.notes})
    return evaluation


def _evaluate_videos(cell: Cell, context: RunContext, store: RunStore, evaluation, result: dict[str, Any],
                     records: list[VideoRecord]) -> None:
    """Segment and score the given videos that have no saved state yet, saving each one's state."""
    setting = evaluation.setting
    for note in evaluation.notes:
        log.warning("cell %s: %s", cell.id, note)
    result["provenance"]["threads"] = set_threads(context.sharing)
    seed_everything(cell.seed)
    device = resolve_device(context.device)
    method = registry.create(cell.method, **cell.options)
    if cell.checkpoint or cell.training:
        method.load(pathlib.Path(cell.checkpoint) if cell.checkpoint else trained_checkpoint(cell.training))
    started = time.perf_counter()
    method.setup(list(setting.vocabulary), device)
    timing = {"setup_s": time.perf_counter() - started, "segment_s": 0.0}
    result["provenance"]["method"] = method.provenance()
    for warning in result["provenance"]["method"].get("warnings", []):
        log.warning("cell %s: %s", cell.id, warning)

    files = saved_predictions.PredictionFiles(store, cell.id, evaluation.label_formats) \
        if context.save_predictions else None
    done = {name for name in store.saved_videos(cell.id) if files is None or files.saved(name)}
    code = result["provenance"]["method_code"]
    outdated = {name for name, state in store.load_video_states(cell.id).items() if stale(state, code)} if done else set()
    if outdated:
        log.info("cell %s: %d saved videos were computed by other code of the method; computing them again",
                 cell.id, len(outdated))
        done -= outdated
    todo = [record for record in records if record.name not in done]
    if len(todo) < len(records):  # this shard's own videos: other shards' saved ones are theirs to count
        part = f" (shard {result['provenance']['shard']})" if "shard" in result["provenance"] else ""
        log.info("cell %s%s: resuming, %d of %d videos already done", cell.id, part, len(records) - len(todo),
                 len(records))
    todo_frames = sum(len(r.annotated) for r in todo)
    progress = Progress(todo_frames, cell.id)
    plan = ScoringPlan.for_setting(setting, cell.vc_rule)
    videos = prefetched_videos(todo, PREFETCH_FRAMES, ahead="all" if method.video else "annotated")
    first = evaluation.videos[0].name
    timing["started"] = time.time()
    for record, video in zip(todo, videos):
        seed_everything(cell.seed ^ zlib.crc32(record.name.encode()))
        started = time.perf_counter()
        showcase = Showcase(store.showcase_dir(cell.id), cell, setting, video) if record.name == first else None
        state = {**_evaluate_video(method, cell, setting, record, video, progress, plan, showcase, files,
                                   pin=device.type == "cuda"), "method_code": code}
        timing["segment_s"] += time.perf_counter() - started
        store.save_video_state(cell.id, record.name, state)
    progress.close()
    timing["ended"] = time.time()
    # Only this process's frames were timed; a resumed cell's earlier videos were not.
    timing["frames"] = todo_frames
    timing["frames_per_s"] = todo_frames / timing["segment_s"] if timing["segment_s"] else None
    result["timing"] = timing


def _merge_states(cell: Cell, store: RunStore, evaluation, result: dict[str, Any]) -> None:
    """Merge every video's saved state, in dataset order, into the cell's metrics."""
    setting = evaluation.setting
    states = store.load_video_states(cell.id)
    missing = [record.name for record in evaluation.videos if record.name not in states]
    if missing:
        raise CellFailure(f"cell {cell.id}: no saved state for videos {missing[:5]} ({len(missing)} in all) in "
                          f"{store.partial_dir(cell.id)} (removed while the cell ran?); run the same command "
                          "again to recompute them")
    confusion = ConfusionMatrix(len(setting.class_names))
    consistency = VideoConsistency(rule=cell.vc_rule)
    frames = 0
    method_counts: dict[str, int] = {}
    per_video = []
    for record in evaluation.videos:  # dataset order, whatever order the states were computed in
        state = states[record.name]
        per_video.append(_sparse_to_confusion(state["confusion"], confusion.num_classes))
        confusion.merge(per_video[-1])
        consistency.merge(VideoConsistency.from_state(state["vc"]))
        frames += state["frames"]
        for event, amount in state.get("method_counts", {}).items():
            method_counts[event] = method_counts.get(event, 0) + amount
    metrics, per_class = confusion.compute(setting.class_names, setting.groups)
    metrics.update(consistency.compute())
    videos = uncertainty.VideoCounts.from_states([r.name for r in evaluation.videos], [c.counts for c in per_video],
                                                 [states[r.name]["vc"] for r in evaluation.videos])
    started = time.perf_counter()
    bootstrap = uncertainty.Bootstrap()
    intervals, class_intervals = uncertainty.cell_intervals(videos, setting.groups, setting.class_names, bootstrap)
    for name, bounds in class_intervals.items():
        per_class[name]["IoU_interval"] = bounds
    result.update(metrics=metrics, intervals={k: v for k, v in intervals.items() if metrics.get(k) is not None},
                  bootstrap={**bootstrap.describe(), "seconds": round(time.perf_counter() - started, 4)},
                  per_class=per_class, confusion=confusion.state(), vc=consistency.state(),
                  counts={"videos": len(evaluation.videos), "frames": frames,
                          "scored_pixels": int(confusion.counts.sum())},
                  method_counts=method_counts, per_video=videos.to_json())


def _publish(cell: Cell, store: RunStore, result: dict[str, Any]) -> None:
    """Write the cell's result; once it is finished, its per-video states are no longer needed."""
    store.write_result(result)
    if result["status"] == "done":
        if "predictions" in result:  # after the result: a kill between the two finishes from the partial state
            saved_predictions.publish(store, result)
        store.clear_partial(cell.id)


def trained_checkpoint(training: str) -> pathlib.Path:
    """The checkpoint a finished training run (`benchmark.execution.training`) recorded in its folder."""
    from benchmark.execution.training import read_trained

    return read_trained(pathlib.Path(training))


def _evaluate_video(method, cell: Cell, setting, record: VideoRecord, video: Video, progress, plan: ScoringPlan,
                    showcase: Showcase | None = None, files: saved_predictions.PredictionFiles | None = None,
                    pin: bool = False) -> dict[str, Any]:
    scorer = VideoScorer(plan, len(video.annotated))
    truths = iter(GroundTruthReader(plan, record, video.annotated, pin))
    where = f"method {cell.method}, video {record.name}"
    method.take_counts()  # what setup or an earlier, failed attempt counted is not this video's
    if files is not None:
        files.start(record.name)
    try:
        maps = iter(method.segment(video))
    except Exception as error:
        raise CellFailure(f"{where}: segment() raised {type(error).__name__}: {error}") from error
    for index in video.annotated:
        frame = f"{where}, frame {index} ({video.frame_id(index)})"
        try:
            prediction = next(maps)
        except StopIteration:
            raise CellFailure(f"{frame}: segment() stopped after fewer label maps than the "
                              f"{len(video.annotated)} annotated frames; yield one per annotated frame") from None
        except Exception as error:
            raise CellFailure(f"{frame}: segment() raised {type(error).__name__}: {error}") from error
        try:
            truth = next(truths)
        except DatasetError as error:
            raise CellFailure(f"{frame}: {error}") from error
        try:
            scorer.add(truth, prediction, frame)
            wanted = showcase is not None and showcase.wants(index)
            if wanted or files is not None:  # pictures and files need the map here, checked
                labels = as_label_map(prediction)
                check_prediction(labels, len(setting.vocabulary), truth.raw.shape)
        except MapError as error:  # an earlier frame's, found in the background: it names the frame
            raise CellFailure(str(error)) from error
        except PredictionError as error:
            image_shape = tuple(video.frame(index).shape[1:])
            if image_shape != truth.raw.shape:
                raise CellFailure(f"{frame}: the dataset is inconsistent: mask {record.masks[index]} is "
                                  f"{truth.raw.shape} but frame {video.path(index)} is {image_shape} (H, W); "
                                  f"{MASK_SIZE_FIX}") from error
            raise CellFailure(f"{frame}: {error}") from error
        if wanted:
            showcase.keep(index, truth.classes(plan), setting.score_labels(labels))
        if files is not None:
            files.write(record.name, video.frame_id(index), setting.card_labels(labels))
        progress.update(1)
    if next(maps, None) is not None:
        raise CellFailure(f"{where}: segment() yielded more label maps than the {len(video.annotated)} annotated frames")
    try:
        confusion, consistency = scorer.finish()
    except MapError as error:
        raise CellFailure(str(error)) from error
    if showcase is not None:
        showcase.save()
    if files is not None:
        files.finish(record.name)
    return {"video": record.name, "frames": len(video.annotated),
            "confusion": _confusion_to_sparse(confusion), "vc": consistency.state(),
            "method_counts": method.take_counts()}


class Showcase:
    """A few annotated frames of one video with their ground truth and prediction, as scored classes
    (255 = not scored), written as images for the qualitative plot: DIR/showcase/<cell-id>/."""

    def __init__(self, folder: pathlib.Path, cell: Cell, setting, video: Video):
        annotated = video.annotated
        count = min(SHOWCASE_FRAMES, len(annotated))
        picks = np.linspace(0, len(annotated) - 1, count).round().astype(int) if count else []
        self.folder, self.video, self.indices = folder, video, {annotated[k] for k in picks}
        self.meta = {"video": video.name, "frames": [video.frame_id(annotated[k]) for k in sorted(set(picks))],
                     "class_names": list(setting.class_names), "dataset": cell.dataset, "setting": cell.setting,
                     "protocol": cell.protocol}
        self.images: dict[str, np.ndarray] = {}

    def wants(self, index: int) -> bool:
        return index in self.indices

    def keep(self, index: int, truth: np.ndarray, scored: np.ndarray) -> None:
        if self.wants(index):
            frame_id = self.video.frame_id(index)
            self.images[f"{frame_id}.jpg"] = self.video.frame(index).permute(1, 2, 0).numpy()
            self.images[f"{frame_id}.gt.png"] = _class_image(truth)
            self.images[f"{frame_id}.pred.png"] = _class_image(scored)

    def save(self) -> None:
        from PIL import Image

        from benchmark.store import atomic_write_json, writing

        for name, array in self.images.items():
            with writing(self.folder / name):
                self.folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(self.folder / name, quality=90)
        atomic_write_json(self.folder / "showcase.json", self.meta)  # last: its presence means complete


def _class_image(classes: np.ndarray) -> np.ndarray:
    """Scored classes (IGNORE or any value above 254 = not scored) as an 8-bit image, 255 = not scored."""
    return np.where((classes >= 0) & (classes < 255), classes, 255).astype(np.uint8)


def _confusion_to_sparse(confusion: ConfusionMatrix) -> list[list[int]]:
    rows, cols = np.nonzero(confusion.counts)
    return [[int(r), int(c), int(confusion.counts[r, c])] for r, c in zip(rows, cols)]


def _sparse_to_confusion(entries: list[list[int]], num_classes: int) -> ConfusionMatrix:
    confusion = ConfusionMatrix(num_classes)
    if entries:
        rows, cols, counts = np.asarray(entries, dtype=np.int64).T
        np.add.at(confusion.counts, (rows, cols), counts)
    return confusion

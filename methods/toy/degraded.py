"""Scores on the synthetic world's degraded frames alone: where one frame is ambiguous (faded colour,
noise, blur, an occluder) and a method that reads the neighbouring frames should win.

`python -m methods.toy.degraded` prints OV2VSS against its no-temporal baseline, the trained image-only
cost volume (OV2VSS without its video modules, same backbone, recipe and toy CLIP), both with their
shipped weights, on the degraded and on the clean frames of one evaluation.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Mapping
from typing import Any

import torch

from benchmark.interface import Method

#: The comparison the miniature world is built to show: method -> options (shipped weights load by default).
TEMPORAL = "ov2vss"
NO_TEMPORAL = ("clip-cost-volume", {"variant": "trained"})


def split_scores(methods: Mapping[str, Method], setting: str = "unseen",
                 dataset_options: Mapping[str, Any] | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """{name: {"degraded": metrics, "clean": metrics}}: each method (loaded, not yet set up) run over
    the synthetic val videos once, its frames scored separately by whether the world degraded them."""
    from benchmark.data import catalog, synthetic
    from benchmark.data.loading import prefetched_videos
    from benchmark.data.records import read_mask
    from benchmark.metrics import ConfusionMatrix

    evaluation = catalog.open_evaluation("synthetic", setting, options=dataset_options)
    degraded = synthetic.degraded_frames(evaluation.root)
    names = evaluation.setting.class_names
    scores = {}
    for name, method in methods.items():
        method.setup(list(evaluation.setting.vocabulary), torch.device("cpu"))
        confusion = {"degraded": ConfusionMatrix(len(names)), "clean": ConfusionMatrix(len(names))}
        for record, video in zip(evaluation.videos, prefetched_videos(evaluation.videos)):
            marked = degraded.get(record.name, {})
            for index, prediction in zip(video.annotated, method.segment(video)):
                path = record.masks[index]
                truth = evaluation.setting.ground_truth(record.mask_format.decode(read_mask(path), path))
                kind = "degraded" if video.frame_id(index) in marked else "clean"
                confusion[kind].update(truth, evaluation.setting.score_labels(prediction.numpy()))
        scores[name] = {kind: matrix.compute(names, evaluation.setting.groups)[0] for kind, matrix in confusion.items()}
    return scores


def shipped_pair() -> dict[str, Method]:
    """OV2VSS and its no-temporal baseline, each with its shipped checkpoint."""
    from benchmark import plan, registry

    pair = {}
    for method, options in ((TEMPORAL, {}), NO_TEMPORAL):
        resolved = plan.resolve_options(method, {method: options})
        checkpoint = registry.get(method).default_checkpoint(resolved)
        if checkpoint is None:
            raise FileNotFoundError(f"no shipped {method} checkpoint fits {options or 'the defaults'}; rebuild "
                                    "weights/toy/ with `python -m methods.toy.regenerate`")
        pair[method] = registry.create(method, **resolved)
        pair[method].load(pathlib.Path(checkpoint))
    return pair


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m methods.toy.degraded", description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", default="unseen", choices=("unseen", "seen", "all"))
    args = parser.parse_args(argv)
    scores = split_scores(shipped_pair(), args.setting)
    print(f"synthetic:{args.setting}, mIoU (pAcc) on the degraded and the clean frames of the val split")
    for name, parts in scores.items():
        print(f"{name:>18}: " + ", ".join(f"{kind} {m['mIoU']:.1f} ({m['pAcc']:.1f})" for kind, m in parts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The SAM + CLIP region classifier: the paper's training-free region baseline ("SAM" rows of Tables I, II).

SAM's automatic mask generator proposes regions on each frame; each region is named by CLIP: the
frame cropped to the region's box (widened by `context`), pixels outside the mask blanked, padded
to a square and classified against the vocabulary's text embeddings (mean over the prompt set's
templates). All crops of a frame go through CLIP in batches. The regions are painted in order of
decreasing area, so a smaller region inside a larger one keeps its own name (as
Semantic-Segment-Anything does); pixels no region covers are filled by `fill`:

- `dense`: the training-free dense CLIP prediction (`clip-cost-volume`'s) at those pixels;
- `nearest`: the name of the nearest covered pixel;
- `abstain`: ABSTAIN ("none of these").

A frame on which SAM finds no region at all (a blank frame; untrained weights) is filled entirely,
and counted in the cell's result (`method_counts.frames_without_masks`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.interface import ABSTAIN, ImageMethod, TableLabel
from benchmark.options import Range
from benchmark.speeds import DEV_CPU, Speed
from methods import clip as clip_module
from methods import sam as sam_module

FILLS = ("dense", "nearest", "abstain")
#: Painted maps mark pixels no region covers with this value until they are filled.
UNCOVERED = -1
_FRACTIONS = ("pred_iou_thresh", "stability_score_thresh", "box_nms_thresh", "crop_nms_thresh", "crop_overlap_ratio")
_COUNTS = ("points_per_side", "points_per_batch", "crop_n_points_downscale_factor")


def region_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Boolean masks [N, H, W] (none empty) -> boxes [N, 4] as (top, left, bottom, right), ends exclusive."""
    rows, cols = masks.any(2), masks.any(1)
    height, width = masks.shape[1:]
    top = rows.float().argmax(1)
    bottom = height - rows.flip(1).float().argmax(1)
    left = cols.float().argmax(1)
    right = width - cols.flip(1).float().argmax(1)
    return torch.stack([top, left, bottom, right], 1)


def crop_window(box: Sequence[int], context: float, height: int, width: int) -> tuple[int, int, int, int]:
    """The box (top, left, bottom, right) scaled by `context` about its centre, clipped to the frame."""
    top, left, bottom, right = (int(v) for v in box)
    centre_y, centre_x = (top + bottom) / 2, (left + right) / 2
    half_h, half_w = (bottom - top) * context / 2, (right - left) * context / 2
    # Rounding outwards keeps context=1 exact (the mask's own box) and never cuts the mask.
    return (max(0, math.floor(centre_y - half_h)), max(0, math.floor(centre_x - half_w)),
            min(height, math.ceil(centre_y + half_h)), min(width, math.ceil(centre_x + half_w)))


def region_crop(image: torch.Tensor, mask: torch.Tensor, box: Sequence[int], context: float, size: int) -> torch.Tensor:
    """CLIP's view of one region: the frame [3, H, W] cropped to the widened box, pixels outside the
    mask set to 0, zero-padded to a centred square and resized to `size` -> float [3, size, size] on 0-255."""
    top, left, bottom, right = crop_window(box, context, *image.shape[1:])
    crop = image[:, top:bottom, left:right].float() * mask[top:bottom, left:right]
    height, width = crop.shape[1:]
    side = max(height, width)
    pad_x, pad_y = side - width, side - height
    square = F.pad(crop, (pad_x // 2, pad_x - pad_x // 2, pad_y // 2, pad_y - pad_y // 2))
    return F.interpolate(square[None], size=(size, size), mode="bilinear", align_corners=False,
                         antialias=side > size)[0]


def paint(masks: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """One map from overlapping regions: masks [N, H, W] painted with their labels [N] in order of
    decreasing area, so smaller regions win; UNCOVERED where no mask is."""
    painted = torch.full(masks.shape[1:], UNCOVERED, dtype=torch.int64, device=masks.device)
    areas = masks.flatten(1).sum(1)
    for index in torch.argsort(areas, descending=True, stable=True).tolist():
        painted[masks[index]] = labels[index]
    return painted


def fill_nearest(painted: torch.Tensor) -> torch.Tensor:
    """Each UNCOVERED pixel takes the label of the nearest covered pixel (ABSTAIN if none is covered)."""
    from scipy import ndimage

    uncovered = (painted == UNCOVERED).cpu().numpy()
    if uncovered.all():
        return torch.full_like(painted, ABSTAIN)
    # The Euclidean distance transform of the uncovered set points every pixel at its nearest covered one.
    rows, cols = ndimage.distance_transform_edt(uncovered, return_distances=False, return_indices=True)
    source = torch.as_tensor(np.stack([rows, cols]), device=painted.device)
    return painted[source[0], source[1]]


class SamClip(ImageMethod):
    """SAM proposes regions, CLIP names each region (crops batched); overlaps painted smallest on top."""

    name = "sam-clip"
    speeds = (
        Speed("cpu", DEV_CPU, "python benchmarks/sam_clip_speed.py (SAM ViT-B, CLIP ViT-B/16)", seconds_per_frame=170,
              when={"sam_model": ("auto", "vit_b")}),
        Speed("cpu", DEV_CPU, "python benchmarks/sam_clip_speed.py (tiny SAM and CLIP)", seconds_per_frame=14,
              when={"sam_model": "tiny"}),
    )

    @classmethod
    def table_label(cls, options: dict[str, Any], loaded: dict[str, Any]) -> TableLabel:
        sam = (loaded.get("sam") or {}).get("model") or options.get("sam_model")
        backbone, stand_in = sam_module.TABLE_LABELS.get(sam, (str(sam), False))
        small_clip = (loaded.get("clip") or {}).get("model") in (clip_module.TINY_MODEL, clip_module.TOY_MODEL)
        return TableLabel("SAM (+CLIP)", backbone, stand_in or small_clip)

    def __init__(self, sam_model: str = "auto", sam_checkpoint: str = "auto",
                 points_per_side: Annotated[int, Range(1)] = 32, points_per_batch: Annotated[int, Range(1)] = 64,
                 pred_iou_thresh: Annotated[float, Range(0, 1)] = 0.88,
                 stability_score_thresh: Annotated[float, Range(0, 1)] = 0.95, stability_score_offset: float = 1.0,
                 box_nms_thresh: Annotated[float, Range(0, 1)] = 0.7, crop_n_layers: Annotated[int, Range(0)] = 0,
                 crop_nms_thresh: Annotated[float, Range(0, 1)] = 0.7,
                 crop_overlap_ratio: Annotated[float, Range(0, 1, high_open=True)] = 512 / 1500,
                 crop_n_points_downscale_factor: Annotated[int, Range(1)] = 1,
                 min_mask_region_area: Annotated[int, Range(0)] = 0, clip_model: str = "auto",
                 clip_pretrained: str = "auto", prompts: str = "imagenet", context: float = 1.0,
                 crop_batch_size: Annotated[int, Range(1)] = 32, fill: str = "dense",
                 amp: bool = True):
        super().__init__()
        if sam_model != "auto" and sam_model not in sam_module.SAM_CONFIGS:
            raise ValueError(f"sam-clip sam_model={sam_model!r}: choose one of {', '.join(sam_module.SAM_CONFIGS)} "
                             "or auto (the type of the checkpoint)")
        self.generator_options = {"points_per_side": points_per_side, "points_per_batch": points_per_batch,
                                  "pred_iou_thresh": pred_iou_thresh, "stability_score_thresh": stability_score_thresh,
                                  "stability_score_offset": stability_score_offset, "box_nms_thresh": box_nms_thresh,
                                  "crop_n_layers": crop_n_layers, "crop_nms_thresh": crop_nms_thresh,
                                  "crop_overlap_ratio": crop_overlap_ratio,
                                  "crop_n_points_downscale_factor": crop_n_points_downscale_factor,
                                  "min_mask_region_area": min_mask_region_area}
        bad = [f"{k}={v}" for k, v in self.generator_options.items()
               if (k in _FRACTIONS and not 0 <= v <= 1) or (k in _COUNTS and v < 1)
               or (k in ("crop_n_layers", "min_mask_region_area") and v < 0)]
        if bad:
            raise ValueError(f"sam-clip {', '.join(bad)}: thresholds and ratios lie in [0, 1], point counts are "
                             "at least 1, crop_n_layers and min_mask_region_area at least 0")
        if fill not in FILLS:
            raise ValueError(f"sam-clip fill={fill!r}: choose one of {', '.join(FILLS)}")
        if prompts not in clip_module.PROMPT_SETS:
            raise ValueError(f"sam-clip prompts={prompts!r}: choose one of {', '.join(clip_module.PROMPT_SETS)}")
        if context < 1 or crop_batch_size < 1:
            raise ValueError(f"sam-clip context={context}, crop_batch_size={crop_batch_size}: context scales the "
                             "region's box (1 = the box itself, 1.2 or 1.6 add surroundings) and must be >= 1; "
                             "the batch size must be >= 1")
        self.sam_model, self.sam_checkpoint = sam_model, sam_checkpoint
        self.clip_model, self.clip_pretrained, self.prompts, self.amp = clip_model, clip_pretrained, prompts, amp
        self.context, self.crop_batch_size, self.fill = context, crop_batch_size, fill

    def setup(self, vocabulary: list[str], device: torch.device) -> None:
        if not vocabulary:
            raise ValueError("sam-clip: the vocabulary is empty, so there is nothing to name a region with; "
                             "check the dataset setting's class list")
        self.device = device
        self.sam = sam_module.load_sam(self.sam_model, self.sam_checkpoint, device)
        self.generator = sam_module.mask_generator(self.sam, **self.generator_options)
        self.clip = clip_module.load_clip(self.clip_model, self.clip_pretrained, device, self.amp)
        self.classes = clip_module.class_embeddings(self.clip.text_embeddings(list(vocabulary), self.prompts))
        self.dense = None
        if self.fill == "dense":
            from methods.clip_cost_volume import ClipCostVolume

            # The same CLIP (load_clip keeps it per process) and prompts, so the text is computed once.
            self.dense = ClipCostVolume(clip_model=self.clip.name, clip_pretrained=self.clip.weights,
                                        prompts=self.prompts, amp=self.amp)
            self.dense.setup(list(vocabulary), device)

    def segment_frame(self, image: torch.Tensor) -> torch.Tensor:
        records = self.generator.generate(np.ascontiguousarray(image.permute(1, 2, 0).cpu().numpy()))
        return self.label_regions(image, [record["segmentation"] for record in records])

    def label_regions(self, image: torch.Tensor, masks: Sequence[Any]) -> torch.Tensor:
        """A label map [H, W] for a frame [3, H, W] from its region masks (boolean [H, W] each, in
        any order, overlapping or not): each region named by CLIP, painted, the rest filled."""
        height, width = image.shape[1:]
        image = image.to(self.device)
        stacked = torch.stack([torch.as_tensor(m, dtype=torch.bool) for m in masks]).to(self.device) if len(masks) \
            else torch.zeros((0, height, width), dtype=torch.bool, device=self.device)
        stacked = stacked[stacked.flatten(1).any(1)]  # an empty mask has no box to crop
        self.count("masks", len(stacked))
        if not len(stacked):
            self.count("frames_without_masks")
        painted = paint(stacked, self.name_regions(image, stacked))
        uncovered = painted == UNCOVERED
        self.count("pixels", height * width)
        self.count("filled_pixels", int(uncovered.sum()))
        if not uncovered.any():
            return painted
        if self.fill == "abstain":
            return painted.masked_fill(uncovered, ABSTAIN)
        if self.fill == "nearest":
            return fill_nearest(painted)
        dense = self.dense.segment_frame(image).to(painted.device)
        return torch.where(uncovered, dense, painted)

    def name_regions(self, image: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """The vocabulary index CLIP gives each region [N]; crops go through CLIP `crop_batch_size` at a time."""
        labels = torch.zeros(len(masks), dtype=torch.int64, device=masks.device)
        boxes = region_boxes(masks).tolist() if len(masks) else []
        size = self.clip.image_size
        for start in range(0, len(masks), self.crop_batch_size):
            batch = range(start, min(start + self.crop_batch_size, len(masks)))
            crops = torch.stack([region_crop(image, masks[i], boxes[i], self.context, size) for i in batch])
            embeddings = self.clip.image_embeddings(clip_module.normalize(crops))
            labels[start: start + len(batch)] = (embeddings @ self.classes.T).argmax(1).to(labels.device)
        return labels

    def provenance(self) -> dict[str, Any]:
        warnings = []
        if self.sam.weights == "random":
            warnings.append(f"SAM {self.sam.name} has random weights (none found): its regions say nothing, and under "
                            "the default quality thresholds it finds none, so every frame is filled; pass --opt "
                            "sam-clip.sam_checkpoint=PATH to sam_vit_b_01ec64.pth")
        clip_warning = clip_module.random_weights_warning(self.clip, self.name)
        if clip_warning:
            warnings.append(clip_warning)
        return {"sam": {"model": self.sam.name, "weights": self.sam.weights, **self.generator_options},
                "clip": {"model": self.clip.name, "weights": self.clip.weights, "prompts": self.prompts,
                         "crop_size": self.clip.image_size},
                "regions": {"context": self.context, "crop_batch_size": self.crop_batch_size, "fill": self.fill},
                "warnings": warnings}

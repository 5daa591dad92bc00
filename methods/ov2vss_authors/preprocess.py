"""The authors' test-time input and output geometry (their `vspw_repeat2.py` test pipeline and
`segformer_voca.py` / `encoder_decoder.py` post-processing), reproduced operation by operation.

Input: mmcv's keep-ratio rescale into 1024x1024 (480x853 -> 576x1024), then a resize to the next
multiple of 32 (a no-op for 16:9 frames), both by OpenCV's bilinear resize on uint8, as mmcv does
it; then ImageNet normalisation. The backbone and CLIP both read this tensor.

Output: per-class sigmoid maps on a square 120x120 grid, bilinearly resized to 480x480 (hard-coded
in their head), then to the input size, then to the frame size; softmax over classes; argmax.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from methods.windows import keep_ratio_size

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
SCALE = (1024, 1024)      # their MultiScaleFlipAug img_scale
SIZE_DIVISOR = 32         # their AlignedResize_clips
HEAD_RESIZE = (480, 480)  # their sem_seg_postprocess(outputs, ..., 480, 480)


def input_size(height: int, width: int, scale: tuple[int, int] = SCALE,
               divisor: int = SIZE_DIVISOR) -> tuple[tuple[int, int], tuple[int, int]]:
    """(rescaled (h, w), aligned (h, w)) for a frame of height x width, as mmcv computes them:
    factor = min(long / max(h, w), short / min(h, w)), sizes int(x * factor + 0.5), then each side
    rounded up to a multiple of `divisor`."""
    rescaled = keep_ratio_size(height, width, max(scale), min(scale))
    aligned = tuple(int(np.ceil(side / divisor)) * divisor for side in rescaled)
    return rescaled, aligned


def resize_frame(frame: torch.Tensor, scale: tuple[int, int] = SCALE, divisor: int = SIZE_DIVISOR) -> np.ndarray:
    """uint8 RGB [3, H, W] -> uint8 RGB [h, w, 3] at the model's input size (two OpenCV resizes)."""
    import cv2

    image = np.ascontiguousarray(frame.permute(1, 2, 0).numpy())
    rescaled, aligned = input_size(image.shape[0], image.shape[1], scale, divisor)
    for height, width in (rescaled, aligned):
        if image.shape[:2] != (height, width):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return image


def normalize(image: np.ndarray) -> torch.Tensor:
    """uint8 RGB [h, w, 3] -> float32 [1, 3, h, w] in ImageNet units."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)
    std_inverse = torch.tensor([1 / s for s in IMAGENET_STD], dtype=torch.float64).float()
    tensor = torch.from_numpy(image).float()
    return ((tensor - mean) * std_inverse).permute(2, 0, 1).unsqueeze(0).contiguous()


def prepare(frame: torch.Tensor, scale: int = SCALE[0]) -> torch.Tensor:
    """A frame as the model reads it: uint8 RGB [3, H, W] -> normalised float32 [1, 3, h, w]."""
    return normalize(resize_frame(frame, (scale, scale)))


def probabilities(logits: torch.Tensor, input_hw: tuple[int, int], frame_hw: tuple[int, int],
                  head_resize: int = HEAD_RESIZE[0]) -> torch.Tensor:
    """Head logits [K, g, g] -> class probabilities [K, H, W] at the frame's size: sigmoid, the crop
    to the input size and three bilinear resizes (480x480, input, frame), then softmax."""
    maps = logits.float().sigmoid()[None, :, : input_hw[0], : input_hw[1]]
    for size in ((head_resize, head_resize), input_hw, frame_hw):
        maps = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
    return maps[0].softmax(dim=0)

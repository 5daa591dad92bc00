"""Training-free CLIP segmenters that change how CLIP's last block attends: SCLIP, ClearCLIP, NACLIP.

All three follow one recipe, as their released code evaluates ADE20K-like scene parsing (the closest
of their benchmarks to VSPW):
1. the frame is resized so its short side is `short_side` (mmseg's keep-ratio rescale, the long
   side at most 2048), bilinearly, and normalised as CLIP was trained;
2. square windows of `window` pixels every `stride` pixels go through CLIP with the last block
   replaced (`methods.clip.LAST_BLOCKS`); each patch token is compared by cosine with every class's
   text embedding (80 ImageNet templates averaged); window scores are bilinearly upsampled, and
   averaged where windows overlap;
3. the scores are resized back to the frame, optionally refined by PAMR on the normalised frame
   (`methods.pamr`), and turned into probabilities by softmax(logit_scale * scores); a pixel whose
   best probability is below `prob_threshold` abstains (0 never does).

Where the three differ is data: the last block and the defaults of each subclass below.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import torch
import torch.nn.functional as F

from benchmark.interface import ABSTAIN, ImageMethod, TableLabel
from benchmark.options import Range
from benchmark.speeds import DEV_CPU, Speed
from methods import clip as clip_module
from methods import pamr
from methods.windows import WindowedInference, keep_ratio_size

#: mmseg's Resize(scale=(2048, short_side), keep_ratio=True): the long side is capped here.
LONG_SIDE_CAP = 2048
SPEED = "python benchmarks/attention_clip_speed.py --configs full (ViT-B/16, defaults)"


def _speed(seconds: float) -> tuple[Speed, ...]:
    """A figure at the method's defaults with OpenAI's ViT-B/16 (auto resolves to it on real data)."""
    return (Speed("cpu", DEV_CPU, SPEED, seconds_per_frame=seconds, when={"clip_model": ("auto", clip_module.PAPER_MODEL)}),)


class AttentionClip(ImageMethod):
    """The shared recipe; subclasses set `last_block`, `label` and their defaults."""

    last_block: ClassVar[str]
    label: ClassVar[str]
    option_help = {
        "clip_model": "open_clip model name; auto: ViT-B/16 with OpenAI weights when found, else the toy CLIP",
        "clip_pretrained": "weights: auto, a local file (OpenAI .pt or open_clip state dict), or random",
        "prompts": "text templates averaged per class (imagenet: CLIP's 80)",
        "short_side": "the frame is resized so its short side is this many pixels (long side at most 2048)",
        "window": "sliding-window size in pixels (square)",
        "stride": "sliding-window step in pixels",
        "logit_scale": "softmax temperature applied to the cosine scores",
        "pamr_steps": "PAMR refinement iterations (0: none)",
        "pamr_dilations": "PAMR neighbourhood dilations",
        "prob_threshold": "a pixel whose best class probability is below this abstains (0: never)",
        "amp": "half precision on CUDA",
    }

    def __init__(self, clip_model: str = "auto", clip_pretrained: str = "auto", prompts: str = "imagenet",
                 short_side: Annotated[int, Range(16)] = 336, window: Annotated[int, Range(16)] = 224,
                 stride: Annotated[int, Range(1)] = 112, logit_scale: float = 40.0,
                 pamr_steps: Annotated[int, Range(0)] = 0, pamr_dilations: tuple[int, ...] = (8, 16),
                 prob_threshold: Annotated[float, Range(0, 1)] = 0.0, amp: bool = True):
        super().__init__()
        if prompts not in clip_module.PROMPT_SETS:
            raise ValueError(f"{self.name} prompts={prompts!r}: choose one of {', '.join(clip_module.PROMPT_SETS)}")
        if stride > window:
            raise ValueError(f"{self.name} stride={stride} > window={window}: windows would leave gaps")
        self.clip_model, self.clip_pretrained, self.prompts, self.amp = clip_model, clip_pretrained, prompts, amp
        self.short_side, self.logit_scale, self.prob_threshold = short_side, logit_scale, prob_threshold
        self.pamr_steps, self.pamr_dilations = pamr_steps, tuple(pamr_dilations)
        self.windows = WindowedInference("slide", window, 1 - stride / window, batch_size=1)

    @classmethod
    def table_label(cls, options: dict[str, Any], loaded: dict[str, Any]) -> TableLabel:
        clip = (loaded.get("clip") or {}).get("model") or options.get("clip_model")
        return TableLabel(cls.label, f"CLIP {clip}", clip in (clip_module.TINY_MODEL, clip_module.TOY_MODEL))

    def setup(self, vocabulary: list[str], device: torch.device) -> None:
        self.device = device
        self.clip = clip_module.load_clip(self.clip_model, self.clip_pretrained, device, self.amp)
        self.text = clip_module.class_embeddings(self.clip.text_embeddings(vocabulary, self.prompts))

    def segment_frame(self, image: torch.Tensor) -> torch.Tensor:
        probabilities = self.segment_frame_scores(image)
        best, labels = probabilities.max(0)
        if self.prob_threshold > 0:
            labels[best < self.prob_threshold] = ABSTAIN
        return labels

    def segment_frame_scores(self, image: torch.Tensor) -> torch.Tensor:
        """Class probabilities [C, H, W] at the frame's size."""
        height, width = image.shape[-2:]
        resized = self._resized(image.to(self.device))
        scores = self.windows(resized, self._window_scores)
        scores = F.interpolate(scores[None], size=(height, width), mode="bilinear", align_corners=False)
        if self.pamr_steps:
            frame = F.interpolate(clip_module.normalize(resized[None].float()), size=(height, width),
                                  mode="bilinear", align_corners=False)
            scores = pamr.refine(frame, scores, self.pamr_steps, self.pamr_dilations)
        return (scores[0] * self.logit_scale).softmax(0)

    def _resized(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        size = keep_ratio_size(height, width, LONG_SIDE_CAP, self.short_side)
        if size == (height, width):
            return image
        resized = F.interpolate(image[None].float(), size=size, mode="bilinear", align_corners=False)
        return resized[0].round().clamp(0, 255).to(torch.uint8)  # an 8-bit image, as OpenCV's resize gives

    def _window_scores(self, crops: torch.Tensor) -> torch.Tensor:
        """uint8 windows [B, 3, S, S] -> cosine scores [B, C, S/patch, S/patch]."""
        dense = self.clip.dense_features(clip_module.normalize(crops.float()), self.last_block, "scale",
                                         **self._block_options())
        return torch.einsum("bdhw,cd->bchw", F.normalize(dense, dim=1), self.text)

    def _block_options(self) -> dict[str, Any]:
        return {}

    def provenance(self) -> dict[str, Any]:
        return {"clip": {"model": self.clip.name, "weights": self.clip.weights, "prompts": self.prompts,
                         "last_block": self.last_block},
                "inference": {"short_side": self.short_side, "window": self.windows.size,
                              "stride": round(self.windows.size * (1 - self.windows.overlap))},
                "warnings": [w for w in [clip_module.random_weights_warning(self.clip, self.name)] if w]}


class SCLIP(AttentionClip):
    """SCLIP (Wang et al., ECCV 2024): correlative self-attention, softmax(qq) + softmax(kk), in CLIP's
    last block, its residual and FFN kept. Defaults: their ADE20K setting (short side 336, 224 windows
    every 112, logit scale 40, no PAMR)."""

    name = "sclip"
    label = "SCLIP"
    last_block = "csa"
    speeds = _speed(2.55)


class ClearCLIP(AttentionClip):
    """ClearCLIP (Lan et al., ECCV 2024): q-q attention in CLIP's last block, without its residual and
    FFN. Defaults: their ADE20K setting (short side 448, 448 windows every 224, logit scale 50). Their
    released base config names model_type='vanilla' (plain CLIP); this is the method of their paper."""

    name = "clearclip"
    label = "ClearCLIP"
    last_block = "clearclip"
    speeds = _speed(3.19)

    def __init__(self, clip_model: str = "auto", clip_pretrained: str = "auto", prompts: str = "imagenet",
                 short_side: Annotated[int, Range(16)] = 448, window: Annotated[int, Range(16)] = 448,
                 stride: Annotated[int, Range(1)] = 224, logit_scale: float = 50.0,
                 pamr_steps: Annotated[int, Range(0)] = 0, pamr_dilations: tuple[int, ...] = (8, 16),
                 prob_threshold: Annotated[float, Range(0, 1)] = 0.0, amp: bool = True):
        super().__init__(clip_model, clip_pretrained, prompts, short_side, window, stride, logit_scale, pamr_steps,
                         pamr_dilations, prob_threshold, amp)


class NACLIP(AttentionClip):
    """NACLIP (Hajimiri et al., WACV 2025): k-k attention plus a Gaussian neighbourhood bias (std in
    patches) in CLIP's last block, without its residual and FFN ("reduced"), then PAMR. Defaults:
    their main results (short side 336, 224 windows every 112, logit scale 40, std 5, PAMR 10 steps
    at dilations 8 and 16)."""

    name = "naclip"
    label = "NACLIP"
    last_block = "naclip"
    speeds = _speed(4.21)
    option_help = {**AttentionClip.option_help, "gaussian_std": "std of the neighbourhood bias, in patches"}

    def __init__(self, clip_model: str = "auto", clip_pretrained: str = "auto", prompts: str = "imagenet",
                 short_side: Annotated[int, Range(16)] = 336, window: Annotated[int, Range(16)] = 224,
                 stride: Annotated[int, Range(1)] = 112, logit_scale: float = 40.0,
                 pamr_steps: Annotated[int, Range(0)] = 10, pamr_dilations: tuple[int, ...] = (8, 16),
                 prob_threshold: Annotated[float, Range(0, 1)] = 0.0, amp: bool = True,
                 gaussian_std: Annotated[float, Range(0.01)] = 5.0):
        super().__init__(clip_model, clip_pretrained, prompts, short_side, window, stride, logit_scale, pamr_steps,
                         pamr_dilations, prob_threshold, amp)
        self.gaussian_std = gaussian_std

    def _block_options(self) -> dict[str, Any]:
        return {"gaussian_std": self.gaussian_std}

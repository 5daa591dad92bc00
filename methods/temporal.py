"""`temporal`: any image method as a video method. Each labelled frame takes the weighted mean of the
base method's per-pixel class scores (the optional hook `segment_frame_scores`) over a window of frames
around it, optionally aligned to it by optical flow, and labels each pixel with the best class.

    --methods temporal --opt temporal.base=sclip --opt temporal.window=5 --opt temporal.logit_scale=50

Options other than the wrapper's own go to the base method. Each frame's base scores are computed
once and kept while a later window still needs them. Windows are cut at the video's ends.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated, Any

import torch
import torch.nn.functional as F

from benchmark import options as typed_options
from benchmark.interface import ImageMethod, Method, TableLabel, Video
from benchmark.options import Range
from methods import checkpoints

PLACEMENTS = ("centred", "causal")
WEIGHTS = ("uniform", "triangular")
FLOW_MODELS = ("raft_small", "raft_large")
#: RAFT's correlation pyramid needs feature maps of 16 cells, so inputs of 128 pixels a side.
RAFT_MIN_SIDE = 128


class Temporal(Method):
    """The base method's scores averaged over neighbouring frames (see the module's doc)."""

    name = "temporal"
    video = True
    option_help = {
        "base": "the image method whose per-pixel scores are combined (it must define segment_frame_scores)",
        "window": "frames combined per labelled frame, itself included",
        "placement": "centred: the frames around it; causal: it and the frames before it (no look-ahead)",
        "weights": "uniform, or triangular (a frame d frames from the labelled one weighs window - |d|)",
        "flow": "a local file of torchvision RAFT weights: neighbours' scores are warped onto the frame by "
                "optical flow; none: taken as they are",
        "flow_model": "the RAFT variant the flow weights are for",
    }

    def __init__(self, base: str = "sclip", window: Annotated[int, Range(1)] = 3, placement: str = "centred",
                 weights: str = "uniform", flow: str | None = None, flow_model: str = "raft_small", **base_options: Any):
        super().__init__()
        from benchmark import registry

        for key, value, allowed in (("placement", placement, PLACEMENTS), ("weights", weights, WEIGHTS),
                                    ("flow_model", flow_model, FLOW_MODELS)):
            if value not in allowed:
                raise ValueError(f"temporal {key}={value!r}: choose one of {', '.join(allowed)}")
        base_class = registry.get(base)
        if not (issubclass(base_class, ImageMethod) and base_class.gives_scores()):
            raise ValueError(f"temporal base={base!r}: {base} gives no per-pixel class scores "
                             "(no segment_frame_scores), so its frames cannot be combined; bases that do: "
                             f"{', '.join(scoring_methods()) or 'none'}")
        declared, open_ended = typed_options.method_types(base_class)
        unknown = sorted(set(base_options) - set(declared)) if not open_ended else []
        if unknown:
            raise ValueError(f"temporal: {unknown} are neither temporal's options nor {base}'s "
                             f"({', '.join(declared)})")
        checked = {k: typed_options.check(f"--opt temporal ({base})", k, v, declared.get(k, Any))
                   for k, v in base_options.items()}
        self.base_name, self.base = base, base_class(**checked)
        self.window, self.placement, self.weighting = window, placement, weights
        self.flow_path, self.flow_model = flow, flow_model

    @classmethod
    def table_label(cls, options: dict[str, Any], loaded: dict[str, Any]) -> TableLabel:
        from benchmark import registry

        own = cls.default_options()  # the wrapper's options; the rest are its base's
        chosen = {**own, **options}
        base_class = registry.get(chosen["base"])
        base_options = {**base_class.default_options(), **{k: v for k, v in options.items() if k not in own}}
        label = base_class.table_label(base_options, loaded.get("base") or {})
        return label._replace(method=f"{label.method} + temporal ({chosen['window']} frames)")

    def setup(self, vocabulary: list[str], device: torch.device) -> None:
        self.device = device
        self.base.setup(vocabulary, device)
        self.flow = _load_raft(self.flow_path, self.flow_model, device) if self.flow_path else None

    def offsets(self) -> list[int]:
        if self.placement == "causal":
            return list(range(-(self.window - 1), 1))
        half = self.window // 2
        return list(range(-half, self.window - half))

    def segment(self, video: Video) -> Iterator[torch.Tensor]:
        scores: dict[int, torch.Tensor] = {}
        last = len(video) - 1
        annotated = list(video.annotated)
        for position, index in enumerate(annotated):
            needed = [index + d for d in self.offsets() if 0 <= index + d <= last]
            for i in needed:
                if i not in scores:
                    scores[i] = self.base.segment_frame_scores(video.frame(i)).float()
                    self.count("base_frames")
            combined = sum(self._weight(i - index) * self._aligned(video, scores[i], i, index) for i in needed)
            yield combined.argmax(0)
            # keep only what a later window needs
            upcoming = annotated[position + 1] + min(self.offsets()) if position + 1 < len(annotated) else last + 1
            for i in [i for i in scores if i < upcoming]:
                del scores[i]

    def _weight(self, distance: int) -> float:
        return 1.0 if self.weighting == "uniform" else float(self.window - abs(distance))

    def _aligned(self, video: Video, scores: torch.Tensor, source: int, target: int) -> torch.Tensor:
        if self.flow is None or source == target:
            return scores
        flow = _raft_flow(self.flow, video.frame(target), video.frame(source), self.device)
        return warp(scores, flow)

    def provenance(self) -> dict[str, Any]:
        base = self.base.provenance()
        return {"base": {"method": self.base_name, **base},
                "temporal": {"offsets": self.offsets(), "weights": self.weighting,
                             "flow": self.flow_path and {"model": self.flow_model, "weights": self.flow_path}},
                "warnings": list(base.get("warnings", []))}


def scoring_methods() -> list[str]:
    """Registered image methods that give per-pixel scores (built-ins imported to find out)."""
    from benchmark import registry

    found = []
    for name in registry.available():
        try:
            cls = registry.get(name)
        except Exception:  # a method whose module cannot load here is simply not listed
            continue
        if isinstance(cls, type) and issubclass(cls, ImageMethod) and cls.gives_scores():
            found.append(name)
    return found


def warp(scores: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Scores [C, H, W] of a neighbour sampled at each pixel p + flow(p) (flow [2, H, W] in pixels,
    x then y, from the labelled frame to the neighbour): the neighbour's scores on the frame's grid.
    Pixels whose match falls outside the neighbour take its nearest border value."""
    height, width = scores.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(height, device=flow.device), torch.arange(width, device=flow.device),
                            indexing="ij")
    x = (xs + flow[0]) / max(width - 1, 1) * 2 - 1
    y = (ys + flow[1]) / max(height - 1, 1) * 2 - 1
    grid = torch.stack([x, y], dim=-1)[None].to(scores)
    return F.grid_sample(scores[None], grid, mode="bilinear", padding_mode="border", align_corners=True)[0]


def _load_raft(path: str, variant: str, device: torch.device):
    from torchvision.models import optical_flow

    state = checkpoints.read_state_dict(path, f"torchvision's {variant} weights (e.g. {variant}_C_T_V2 from "
                                              "torchvision.models.optical_flow) as a local file")
    model = getattr(optical_flow, variant)(weights=None)
    try:
        model.load_state_dict(state)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"temporal flow={path}: not {variant} weights ({str(error)[:300]}); set "
                         "--opt temporal.flow_model to the variant they are for") from error
    return model.eval().requires_grad_(False).to(device)


def _raft_flow(model, target: torch.Tensor, source: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Flow [2, H, W] in pixels from uint8 frame `target` to `source` by RAFT. RAFT takes sides that are
    multiples of 8 and at least 128: smaller frames are scaled up for it and the flow scaled back."""
    height, width = target.shape[-2:]
    scale = max(1.0, RAFT_MIN_SIDE / min(height, width))
    size = (math.ceil(height * scale / 8) * 8, math.ceil(width * scale / 8) * 8)
    frames = [F.interpolate(frame[None].float().to(device), size=size, mode="bilinear", align_corners=False)
              / 127.5 - 1 for frame in (target, source)]
    with torch.no_grad():
        flow = model(*frames)[-1]
    flow = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False)[0]
    return flow * torch.tensor([width / size[1], height / size[0]], device=flow.device).view(2, 1, 1)

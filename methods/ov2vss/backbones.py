"""Multi-scale image backbones of OV2VSS: a timm ResNet and the SAM ViT image encoder.

Every backbone maps normalised images [B, 3, H, W] to four feature maps at strides 4, 8, 16 and 32
(shallow to deep), each projected to the same number of channels.
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from methods import checkpoints

# Pixel statistics on the 0-255 scale; both ImageNet ResNets and SAM are trained with these.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

STRIDES = (4, 8, 16, 32)
SAM_CHECKPOINT = "a SAM checkpoint such as sam_vit_b_01ec64.pth"
RESNET_CHECKPOINT = "a ResNet state dict"


@dataclass(frozen=True)
class BackboneConfig:
    """A backbone as data. `kind` picks which of the fields below are used."""

    kind: str  # "resnet" or "sam-vit"
    channels: int = 256  # channels of every output scale after the 1x1 projections
    # resnet: a timm model name and extra keyword arguments for timm.create_model (pairs, to stay hashable)
    model_name: str = ""
    model_kwargs: tuple[tuple[str, Any], ...] = ()
    # sam-vit: the arguments of segment_anything's ImageEncoderViT
    img_size: int = 1024
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    window_size: int = 14
    global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)
    out_chans: int = 256

    def __post_init__(self):
        if self.kind not in ("resnet", "sam-vit"):
            raise ValueError(f"unknown backbone kind {self.kind!r}; expected 'resnet' or 'sam-vit'")
        if self.kind == "resnet" and not self.model_name:
            raise ValueError("a resnet BackboneConfig needs a timm model_name")
        # The pyramid taps the four global-attention blocks, and the encoder's neck was trained on the last block.
        if self.kind == "sam-vit" and (len(self.global_attn_indexes) != 4
                                       or list(self.global_attn_indexes) != sorted(self.global_attn_indexes)
                                       or self.global_attn_indexes[-1] != self.depth - 1):
            raise ValueError(f"global_attn_indexes must be 4 increasing block indexes ending at depth - 1 = "
                             f"{self.depth - 1}; got {self.global_attn_indexes}")


BACKBONES: dict[str, BackboneConfig] = {
    "resnet101": BackboneConfig(kind="resnet", model_name="resnet101"),
    "resnet-tiny": BackboneConfig(kind="resnet", model_name="resnet10t", channels=32,
                                  model_kwargs=(("stem_width", 16), ("channels", (16, 32, 64, 128)))),
    # The authors' config: SAM ViT-B.
    "sam-vit-b": BackboneConfig(kind="sam-vit"),
    # Depth 8 rather than 4, since the pyramid taps four global-attention blocks and window blocks should be tested.
    "sam-vit-tiny": BackboneConfig(kind="sam-vit", channels=32, embed_dim=64, depth=8, num_heads=2, window_size=4,
                                   global_attn_indexes=(1, 3, 5, 7), out_chans=32),
}

#: How the paper's tables name each backbone, and whether ours only stands in for it (a tiny model).
TABLE_LABELS: dict[str, tuple[str, bool]] = {"resnet101": ("ResNet-101", False), "resnet-tiny": ("ResNet-101", True),
                                             "sam-vit-b": ("ViT-B2", False), "sam-vit-tiny": ("ViT-B2", True)}


def normalize(images: Tensor) -> Tensor:
    """(images - IMAGENET_MEAN) / IMAGENET_STD as float32; images [..., 3, H, W] are uint8 or float on 0-255."""
    if images.ndim < 3 or images.shape[-3] != 3:
        raise ValueError(f"normalize expects images [..., 3, H, W]; got shape {tuple(images.shape)}")
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(3, 1, 1)
    return (images.float() - mean) / std


class Backbone(nn.Module):
    """Base of the backbones: forward(images) returns one map per stride in `strides`, with `channels` channels."""

    def __init__(self, config: BackboneConfig, name: str = "custom"):
        super().__init__()
        self.config = config
        self.name = name
        self.strides: tuple[int, ...] = STRIDES
        self.channels: tuple[int, ...] = (config.channels,) * len(STRIDES)


class ResNetBackbone(Backbone):
    """A timm ResNet's four stages (strides 4-32), each followed by a 1x1 conv to `config.channels`."""

    def __init__(self, config: BackboneConfig, name: str = "custom", imagenet: bool = False):
        super().__init__(config, name)
        import timm

        create = functools.partial(timm.create_model, config.model_name, features_only=True, out_indices=(1, 2, 3, 4),
                                   **dict(config.model_kwargs))
        if not imagenet:
            self.body = create(pretrained=False)
        else:
            try:
                self.body = create(pretrained=True)
            except Exception as error:  # the Hugging Face hub raises many kinds when offline or without a cache
                raise RuntimeError(f"{name}: no cached timm ImageNet weights were found for {config.model_name!r} "
                                   f"({type(error).__name__}: {error}); pass a local checkpoint path "
                                   "instead") from error
        self.proj = nn.ModuleList(nn.Conv2d(c, config.channels, 1) for c in self.body.feature_info.channels())

    def forward(self, images: Tensor) -> list[Tensor]:
        # ResNet's stride-2 convs and pooling already give ceil(size / stride), so there is nothing to pad or crop.
        return [proj(f) for proj, f in zip(self.proj, self.body(images))]

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Load a timm/torchvision ResNet state dict into the trunk; the classifier (fc.*) is ignored."""
        state = checkpoints.read_state_dict(path, RESNET_CHECKPOINT)
        # timm's FeatureListNet keeps the plain ResNet's key names, so only the classifier has to go.
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        checkpoints.load_strict(self.body, state, path, f"backbone {self.name!r}",
                                f"{RESNET_CHECKPOINT} for {self.name}")


class SamViTBackbone(Backbone):
    """SAM's ViT image encoder with a simple feature pyramid over its four global-attention blocks."""

    def __init__(self, config: BackboneConfig, name: str = "custom"):
        super().__init__(config, name)
        from segment_anything.modeling import ImageEncoderViT
        from segment_anything.modeling.common import LayerNorm2d

        # As segment_anything's build_sam builds the encoder.
        self.encoder = ImageEncoderViT(
            img_size=config.img_size, patch_size=config.patch_size, embed_dim=config.embed_dim, depth=config.depth,
            num_heads=config.num_heads, mlp_ratio=4.0, out_chans=config.out_chans, qkv_bias=True,
            norm_layer=functools.partial(nn.LayerNorm, eps=1e-6), act_layer=nn.GELU, use_abs_pos=True,
            use_rel_pos=True, rel_pos_zero_init=True, window_size=config.window_size,
            global_attn_indexes=config.global_attn_indexes)
        # The pyramid is our choice (the paper does not give one), after ViTDet's simple feature pyramid:
        # block a upsampled x4 (stride 4), block b x2 (stride 8), block c as is (stride 16), and the last block
        # through SAM's own neck, then max-pooled (stride 32).
        dim = config.embed_dim
        self.up4 = nn.Sequential(nn.ConvTranspose2d(dim, dim // 2, 2, stride=2), LayerNorm2d(dim // 2), nn.GELU(),
                                 nn.ConvTranspose2d(dim // 2, dim // 4, 2, stride=2))
        self.up2 = nn.ConvTranspose2d(dim, dim // 2, 2, stride=2)
        self.proj = nn.ModuleList(nn.Conv2d(c, config.channels, 1)
                                  for c in (dim // 4, dim // 2, dim, config.out_chans))

    def _pos_embed(self, grid_h: int, grid_w: int) -> Tensor:
        """The absolute position embedding resized to the token grid of the input, [1, grid_h, grid_w, C]."""
        pos = self.encoder.pos_embed
        if pos.shape[1:3] == (grid_h, grid_w):
            return pos
        pos = F.interpolate(pos.permute(0, 3, 1, 2), size=(grid_h, grid_w), mode="bicubic", align_corners=False)
        return pos.permute(0, 2, 3, 1)

    def forward(self, images: Tensor) -> list[Tensor]:
        height, width = images.shape[-2:]
        patch = self.config.patch_size
        # Zero is the mean colour after normalisation, which is also how SAM pads its inputs.
        x = F.pad(images, (0, -width % patch, 0, -height % patch))
        # ImageEncoderViT.forward only takes img_size inputs (it adds pos_embed as is), so run its parts here.
        x = self.encoder.patch_embed(x)
        x = x + self._pos_embed(x.shape[1], x.shape[2])
        taps = []
        for index, block in enumerate(self.encoder.blocks):
            # Window blocks pad to whole windows themselves; global blocks interpolate rel_pos to the grid.
            x = block(x)
            if index in self.config.global_attn_indexes:
                taps.append(x.permute(0, 3, 1, 2))
        a, b, c, d = taps
        # ceil_mode keeps ceil(grid / 2) = ceil(size / 32) cells on odd token grids.
        maps = [self.up4(a), self.up2(b), c, F.max_pool2d(self.encoder.neck(d), 2, ceil_mode=True)]
        # Drop the cells that only cover padding.
        maps = [m[..., :math.ceil(height / s), :math.ceil(width / s)] for m, s in zip(maps, self.strides)]
        return [proj(m) for proj, m in zip(self.proj, maps)]

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Load a full SAM checkpoint (image_encoder.* keys; the prompt encoder and mask decoder are ignored)
        or an encoder-only state dict into the encoder; the pyramid stays as initialised."""
        state = checkpoints.read_state_dict(path, SAM_CHECKPOINT)
        prefix = "image_encoder."
        if any(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        else:
            prefix = ""
        checkpoints.load_strict(self.encoder, state, path, f"backbone {self.name!r}",
                                f"{SAM_CHECKPOINT} for {self.name}", key_prefix=prefix)


def create_backbone(name: str, pretrained: str | os.PathLike | None = None) -> Backbone:
    """Build a backbone from BACKBONES.

    pretrained: None (random init), a local checkpoint path (.pth/.pt/.bin, or .safetensors), or for ResNets
    "imagenet" (timm's own weights, which must already be in the Hugging Face cache).
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known backbones: {', '.join(BACKBONES)}")
    config = BACKBONES[name]
    imagenet = isinstance(pretrained, str) and pretrained == "imagenet"
    if config.kind == "resnet":
        backbone: Backbone = ResNetBackbone(config, name, imagenet=imagenet)
    elif imagenet:
        raise ValueError(f"{name}: 'imagenet' weights exist only for ResNets; pass the path of {SAM_CHECKPOINT}")
    else:
        backbone = SamViTBackbone(config, name)
    if pretrained is not None and not imagenet:
        backbone.load_checkpoint(pretrained)
    return backbone

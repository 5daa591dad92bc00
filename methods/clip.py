"""The CLIP module every method shares: loading, dense image features, prompt templates, text embeddings.

Built on open_clip. The paper's setting (facts.md section 2) is OpenAI's ViT-B/16, frozen, with
frames resized to 384x384 (24x24 dense tokens); dense tokens come from a last block whose attention
keeps only the value path (each token attends to itself), then `ln_post` and `proj` on every token,
as CAT-Seg and the authors' code do. Text: one embedding per (class, template), L2-normalised and
not averaged, so the cost volume keeps a template axis.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pathlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from methods import checkpoints

log = logging.getLogger(__name__)

#: CLIP's pixel normalisation on a 0-255 scale (OpenAI's dataset mean and std).
CLIP_MEAN = (122.77, 116.75, 104.09)
CLIP_STD = (68.50, 66.63, 70.32)

#: The paper's CLIP. The quickgelu config is OpenAI's architecture, so a local copy of OpenAI's
#: weights loads into it exactly (plain "ViT-B-16" would silently use the wrong activation).
PAPER_MODEL, PAPER_PRETRAINED, PAPER_INPUT_SIZE = "ViT-B-16-quickgelu", "openai", 384
#: Our tiny config (registered with open_clip from `clip_configs/`): tests and CPU smoke runs.
TINY_MODEL = "ovvss-tiny-clip"
#: Our toy CLIP, pretrained on the synthetic world (`methods/toy/clip_pretrain.py`); its weights ship.
TOY_MODEL = "ovvss-toy-clip"
CONFIG_DIR = pathlib.Path(__file__).parent / "clip_configs"
#: Input sizes other than the model's native one that the reference code uses.
INPUT_SIZES = {"ViT-B-16": 384, "ViT-B-16-quickgelu": 384}
#: Random weights are drawn from this seed, so every process builds the same random CLIP.
RANDOM_WEIGHTS_SEED = 0
#: Environment variable naming a local checkpoint that `pretrained="auto"` uses.
CHECKPOINT_ENV = "BENCHMARK_CLIP_CHECKPOINT"

PROMPT_SETS = ("single", "imagenet_select", "imagenet")
#: How the last block attends: `value` (MaskCLIP: each token its own value), `plain` (CLIP's own),
#: `csa` (SCLIP: q-q plus k-k attention, residual and FFN kept), `clearclip` (q-q attention, no
#: residual, no FFN), `naclip` (k-k attention plus a Gaussian neighbourhood, no residual, no FFN).
LAST_BLOCKS = ("value", "plain", "csa", "clearclip", "naclip")
#: How the positional embedding is resized to a token grid: to the grid's size (`size`), or by the
#: scale factor (grid + 0.1) / trained grid that SCLIP, ClearCLIP and NACLIP pass to interpolate.
POSITIONS = ("size", "scale")
# CAT-Seg's single prompt, and CoOp's 7 selected ImageNet templates plus the plain one (8).
_SINGLE = ("A photo of a {} in the scene",)
_SELECT = ("itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
           "a {} in a video game.", "art of the {}.", "a photo of the small {}.", "a photo of a {}.")


def prompt_templates(prompts: str) -> tuple[str, ...]:
    """The templates of a prompt set: 'single' (1), 'imagenet_select' (8) or 'imagenet' (CLIP's 80)."""
    if prompts == "single":
        return _SINGLE
    if prompts == "imagenet_select":
        return _SELECT
    if prompts == "imagenet":
        from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

        return tuple(template("{}") for template in OPENAI_IMAGENET_TEMPLATES)
    raise ValueError(f"unknown prompt set {prompts!r}; choose one of {', '.join(PROMPT_SETS)}")


def register_configs() -> None:
    """Make our model configs (the tiny CLIP) known to open_clip by name."""
    import open_clip

    if TINY_MODEL not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_DIR)


def embed_dim(model: str) -> int:
    """The width of a CLIP model's joint embedding, from its config (nothing is loaded): what modules
    that take CLIP features are built for."""
    import open_clip

    register_configs()
    config = open_clip.get_model_config(model)
    if config is None:
        raise ValueError(f"unknown CLIP model {model!r}; open_clip knows {', '.join(open_clip.list_models()[:8])}, ...")
    return int(config["embed_dim"])


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (or 0-255 float) RGB [B, 3, H, W] -> CLIP-normalised float32."""
    mean = torch.tensor(CLIP_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() - mean) / std


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None


@dataclass
class DenseClip:
    """A loaded, frozen open_clip model with the dense and text paths the methods need."""

    model: Any                      # open_clip.CLIP, eval mode, on `device`
    tokenizer: Any
    name: str
    weights: str                    # what was loaded: a tag, a path, or "random"
    device: torch.device
    amp: bool = False               # mixed precision (CUDA only)
    cache_size: int = 32
    text_cache: OrderedDict = field(default_factory=OrderedDict)
    cache_stats: CacheStats = field(default_factory=CacheStats)
    _positions: dict = field(default_factory=dict)

    @property
    def embed_dim(self) -> int:
        return int(self.model.visual.proj.shape[1])

    @property
    def patch_size(self) -> int:
        return int(self.model.visual.conv1.kernel_size[0])

    @property
    def input_size(self) -> int:
        """The square input the reference code feeds this model (384 for ViT-B/16), else its own size."""
        return INPUT_SIZES.get(self.name, int(self.model.visual.image_size[0]))

    @property
    def image_size(self) -> int:
        """The square input the model was trained on (224 for ViT-B/16): what whole-image embeddings take."""
        size = self.model.visual.image_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    def autocast(self):
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    # -- image path ------------------------------------------------------------------------------

    def tokens(self, images: torch.Tensor, last_block: str = "value", positions: str = "size",
               gaussian_std: float = 5.0) -> torch.Tensor:
        """CLIP-normalised images [B, 3, H, W] (H, W multiples of the patch size) -> every token after
        `ln_post` and `proj`, [B, 1 + h*w, D]; token 0 is the class token. `last_block` and
        `positions`: see LAST_BLOCKS and POSITIONS; `gaussian_std` (in patches) is NACLIP's."""
        if last_block not in LAST_BLOCKS or positions not in POSITIONS:
            raise ValueError(f"last_block={last_block!r}, positions={positions!r}: choose last_block from "
                             f"{', '.join(LAST_BLOCKS)} and positions from {', '.join(POSITIONS)}")
        visual = self.model.visual
        with torch.no_grad(), self.autocast():
            x = visual.conv1(images.to(self.device))
            grid = tuple(x.shape[-2:])
            x = x.flatten(2).transpose(1, 2)
            cls = visual.class_embedding.view(1, 1, -1).expand(x.shape[0], -1, -1).to(x.dtype)
            x = torch.cat([cls, x], dim=1) + self._positional_embedding(grid, positions).to(x.dtype)
            x = visual.ln_pre(x)
            blocks = visual.transformer.resblocks
            for block in blocks[:-1]:
                x = block(x)
            last = blocks[-1]
            if last_block == "plain":
                x = last(x)
            elif last_block == "value":
                x = value_path(last, x)
            elif last_block == "csa":
                x = x + last.ls_1(self_attention(last, last.ln_1(x), "csa"))
                x = x + last.ls_2(last.mlp(last.ln_2(x)))
            else:  # ClearCLIP and NACLIP keep the attention output alone
                bias = neighbourhood(grid, gaussian_std).to(x) if last_block == "naclip" else None
                x = self_attention(last, last.ln_1(x), last_block, bias)
            x = visual.ln_post(x) @ visual.proj
        return x.float()

    def image_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        """CLIP-normalised images [B, 3, S, S] (S = `image_size`) -> L2-normalised embeddings [B, D]."""
        with torch.no_grad(), self.autocast():
            return F.normalize(self.model.encode_image(images.to(self.device)).float(), dim=-1)

    def dense_features(self, images: torch.Tensor, last_block: str = "value", positions: str = "size",
                       gaussian_std: float = 5.0) -> torch.Tensor:
        """CLIP-normalised images [B, 3, H, W] -> dense features [B, D, H/patch, W/patch] (not normalised)."""
        height, width = images.shape[-2:]
        patch = self.patch_size
        if height % patch or width % patch:
            raise ValueError(f"CLIP input {height}x{width} is not a multiple of the patch size {patch}; resize first")
        tokens = self.tokens(images, last_block, positions, gaussian_std)[:, 1:]
        return tokens.transpose(1, 2).reshape(images.shape[0], -1, height // patch, width // patch)

    def _positional_embedding(self, grid: tuple[int, int], positions: str = "size") -> torch.Tensor:
        """The positional embedding for a token grid, bicubically resized from the trained one (cached)."""
        key = (tuple(grid), positions)
        if key not in self._positions:
            stored = self.model.visual.positional_embedding
            side = math.isqrt(stored.shape[0] - 1)
            if tuple(grid) == (side, side):
                self._positions[key] = stored
            else:
                patches = stored[1:].reshape(1, side, side, -1).permute(0, 3, 1, 2).float()
                if positions == "size":
                    resized = F.interpolate(patches, size=grid, mode="bicubic", align_corners=False)
                else:  # the scale factor the reference code passes (its +0.1 makes the output size exact)
                    factors = ((grid[0] + 0.1) / side, (grid[1] + 0.1) / side)
                    resized = F.interpolate(patches, scale_factor=factors, mode="bicubic", align_corners=False)
                resized = resized.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1).to(stored.dtype)
                self._positions[key] = torch.cat([stored[:1], resized])
        return self._positions[key]

    # -- text path -------------------------------------------------------------------------------

    def text_embeddings(self, vocabulary: list[str], prompts: str = "imagenet", batch_size: int = 256) -> torch.Tensor:
        """L2-normalised text embeddings [templates, classes, D], one per (class, template); cached
        per (vocabulary, prompt set), because every cell of a run asks for the same few."""
        if not vocabulary:
            raise ValueError("the vocabulary is empty: CLIP needs at least one class name")
        key = (tuple(vocabulary), prompts)
        if key in self.text_cache:
            self.cache_stats.hits += 1
            self.text_cache.move_to_end(key)
            return self.text_cache[key]
        self.cache_stats.misses += 1
        templates = prompt_templates(prompts)
        texts = [template.format(name) for template in templates for name in vocabulary]
        chunks = []
        with torch.no_grad(), self.autocast():
            for start in range(0, len(texts), batch_size):
                tokens = self.tokenizer(texts[start: start + batch_size]).to(self.device)
                chunks.append(self.model.encode_text(tokens).float())
        embeddings = F.normalize(torch.cat(chunks), dim=-1).reshape(len(templates), len(vocabulary), -1)
        self.text_cache[key] = embeddings
        if len(self.text_cache) > self.cache_size:
            self.text_cache.popitem(last=False)
        return embeddings


def value_path(block: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A residual attention block whose attention keeps only the value path: q and k are ignored,
    so each token's attention output is its own projected value (attention restricted to itself)."""
    attn = block.attn
    width = x.shape[-1]
    values = F.linear(block.ln_1(x), attn.in_proj_weight[2 * width:], attn.in_proj_bias[2 * width:])
    x = x + block.ls_1(attn.out_proj(values))
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def self_attention(block: torch.nn.Module, x: torch.Tensor, kind: str, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The last block's attention output (after out_proj) with its weights made from the tokens
    themselves: `csa` softmax(q q^T) + softmax(k k^T); `clearclip` softmax(q q^T); `naclip`
    softmax(k k^T + bias), per head, scaled by head_dim^-0.5. x: [B, L, D]."""
    attn = block.attn
    heads, (batch, length, width) = attn.num_heads, x.shape
    q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.reshape(batch, length, heads, width // heads).transpose(1, 2) for t in (q, k, v))
    scale = (width // heads) ** -0.5
    if kind == "csa":
        weights = (q @ q.transpose(-2, -1) * scale).softmax(-1) + (k @ k.transpose(-2, -1) * scale).softmax(-1)
    elif kind == "clearclip":
        weights = (q @ q.transpose(-2, -1) * scale).softmax(-1)
    else:
        weights = (k @ k.transpose(-2, -1) * scale + bias).softmax(-1)
    out = (weights @ v).transpose(1, 2).reshape(batch, length, width)
    return attn.out_proj(out)


def neighbourhood(grid: tuple[int, int], std: float) -> torch.Tensor:
    """NACLIP's attention bias: between patches i and j, exp(-|p_i - p_j|^2 / (2 std^2)) (positions
    in patches); 0 to and from the class token. [1 + h*w, 1 + h*w]."""
    rows, cols = torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing="ij")
    points = torch.stack([rows.flatten(), cols.flatten()], dim=1).float()
    bias = torch.exp(-(points[:, None] - points[None]).square().sum(-1) / (2 * std ** 2))
    return F.pad(bias, (1, 0, 1, 0))


def random_weights_warning(clip: DenseClip, method: str) -> str | None:
    """What a method's result says when its CLIP has random weights (None when it has real ones)."""
    if clip.weights != "random":
        return None
    return (f"CLIP {clip.name} has random weights (none found): the numbers say nothing about the method; "
            f"pass --opt {method}.clip_pretrained=PATH to the paper's OpenAI ViT-B/16 weights")


def class_embeddings(text: torch.Tensor) -> torch.Tensor:
    """Text embeddings [T, C, D] -> one L2-normalised embedding per class [C, D], the mean over
    templates (CLIP's zero-shot classifier)."""
    return F.normalize(F.normalize(text.float(), dim=-1).mean(0), dim=-1)


def cost_volume(dense: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of dense image features [B, D, H, W] with text embeddings [T, C, D] (or
    per image, [B, T, C, D]): the cost volume [B, T, C, H, W] (Eq. 12, with CAT-Seg's template axis)."""
    image = F.normalize(dense.float(), dim=1)
    equation = "bdhw,btcd->btchw" if text.ndim == 4 else "bdhw,tcd->btchw"
    return torch.einsum(equation, image, F.normalize(text.float(), dim=-1))


_LOADED: OrderedDict[tuple, DenseClip] = OrderedDict()


def load_clip(model: str = "auto", pretrained: str | os.PathLike | None = "auto",
              device: torch.device | str = "cpu", amp: bool = True) -> DenseClip:
    """An open_clip model by name with weights from `pretrained`, frozen, in eval mode.

    `pretrained`: a local checkpoint path (an open_clip state dict: .pt/.pth/.bin/.safetensors); a
    tag open_clip knows for the model (e.g. 'openai'; open_clip downloads it or reads its cache);
    'random' for random weights; or 'auto': ${CHECKPOINT_ENV} when set, else the model's OpenAI
    weights when already in the Hugging Face cache, else random weights with a warning.
    `model="auto"` is the paper's model when 'auto' finds weights for it, else the toy CLIP with its
    shipped weights (`weights/toy/`, pretrained on the synthetic world), else the tiny model with
    random weights (meaningless at any size; the tiny one runs in seconds on a laptop). Loaded models
    are kept per process, so the cells of a run share one copy and its text-embedding cache.
    """
    register_configs()
    import open_clip

    device = torch.device(device)
    if model == "auto" and str(pretrained) == "auto":
        model = auto_model()
    elif model == "auto":
        model = PAPER_MODEL
    if model not in open_clip.list_models():
        close = [m for m in open_clip.list_models() if model.lower()[:5] in m.lower()][:8]
        raise ValueError(f"unknown CLIP model {model!r}; open_clip knows e.g. {close or open_clip.list_models()[:8]} "
                         f"(the paper's is {PAPER_MODEL}, the tiny test model {TINY_MODEL})")
    weights = _resolve_weights(model, pretrained)
    key = (model, weights, str(device), amp)
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    with _quiet_root_logger():  # open_clip logs every step of model creation on the root logger
        clip_model = _create(open_clip, model, weights)
    visual = clip_model.visual
    if getattr(visual, "attn_pool", None) is not None or not hasattr(visual, "class_embedding"):
        raise ValueError(f"CLIP model {model} is not a plain ViT with a class token; dense features need one")
    clip_model.eval().requires_grad_(False).to(device)
    loaded = DenseClip(clip_model, open_clip.get_tokenizer(model), model, weights, device, amp)
    _LOADED[key] = loaded
    while len(_LOADED) > 2:  # a run uses one or two CLIPs; drop older ones rather than hold GPU memory
        _LOADED.popitem(last=False)
    return loaded


def clip_from_openai_state_dict(state: dict[str, torch.Tensor], weights: str,
                                device: torch.device | str = "cpu", model: str | None = None) -> DenseClip:
    """A frozen DenseClip from a ViT CLIP state dict in OpenAI's layout (as stored inside other
    checkpoints), architecture read off the tensors' shapes (or, given `model`, open_clip's config of
    that name, for models whose head counts the shapes do not tell), values kept in float32 as stored
    (open_clip's own builder would round them to float16). `weights` says where they came from."""
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    state = {k: v for k, v in state.items() if k not in ("input_resolution", "context_length", "vocab_size")}
    if model is not None:
        register_configs()
        if model not in open_clip.list_models():
            raise ValueError(f"CLIP weights {weights} name model {model!r}, which open_clip does not know")
        with _quiet_root_logger():
            named = open_clip.create_model(model, pretrained=None)
        try:
            named.load_state_dict({k: v.float() for k, v in state.items()})
        except RuntimeError as error:
            raise ValueError(f"CLIP weights {weights} do not fit model {model}: {str(error)[:400]}") from error
        named.eval().requires_grad_(False).to(device)
        return DenseClip(named, open_clip.get_tokenizer(model), model, weights, torch.device(device), amp=False)
    if "visual.proj" not in state:
        raise ValueError(f"CLIP weights {weights} are not a ViT CLIP in OpenAI's layout (no visual.proj)")
    patch = state["visual.conv1.weight"].shape[-1]
    layers = sum(1 for k in state if k.startswith("visual.") and k.endswith(".attn.in_proj_weight"))
    vision = CLIPVisionCfg(layers=layers,
                           width=state["visual.conv1.weight"].shape[0], patch_size=patch,
                           image_size=patch * math.isqrt(state["visual.positional_embedding"].shape[0] - 1))
    width = state["ln_final.weight"].shape[0]
    text = CLIPTextCfg(context_length=state["positional_embedding"].shape[0],
                       vocab_size=state["token_embedding.weight"].shape[0], width=width, heads=width // 64,
                       layers=len({k.split(".")[2] for k in state if k.startswith("transformer.resblocks")}))
    model = CLIP(state["text_projection"].shape[1], vision_cfg=vision, text_cfg=text, quick_gelu=True)
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as error:  # a missing, extra or mis-shaped tensor
        raise ValueError(f"CLIP weights {weights} do not make a CLIP in OpenAI's layout: {str(error)[:400]}") from error
    model.eval().requires_grad_(False).to(device)
    register_configs()
    paper = open_clip.get_model_config(PAPER_MODEL)
    name = PAPER_MODEL if (vision.width, vision.layers, vision.patch_size, width) == (
        paper["vision_cfg"]["width"], paper["vision_cfg"]["layers"], paper["vision_cfg"]["patch_size"],
        paper["text_cfg"]["width"]) else f"openai-layout-vit-{vision.width}-{vision.layers}-p{patch}"
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=text.context_length)
    return DenseClip(model, tokenizer, name, weights, torch.device(device), amp=False)


@contextlib.contextmanager
def _quiet_root_logger():
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


def _resolve_weights(model: str, pretrained: str | os.PathLike | None) -> str:
    """`pretrained` -> a checked file path, a tag, or 'random'."""
    import open_clip

    value = "random" if pretrained is None else str(pretrained)
    if value.lower() in checkpoints.RANDOM:
        return "random"
    if value == "auto":
        found = _auto_weights(model)
        if found:
            return found
        log.warning("CLIP %s: no checkpoint given (set $%s or the method's clip_pretrained option) and no "
                    "cached OpenAI weights found; using RANDOM weights, so results are meaningless", model,
                    CHECKPOINT_ENV)
        return "random"
    tags = open_clip.list_pretrained_tags_by_model(model)
    if value in tags:
        return value
    looks_like_path = os.sep in value or pathlib.Path(value).suffix in (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
    if looks_like_path or pathlib.Path(value).exists():
        return _checked_path(model, value)
    raise ValueError(f"CLIP pretrained={value!r} is neither a file nor a tag open_clip knows for {model} "
                     f"({', '.join(tags) or 'none'}); pass a checkpoint path, a tag, 'auto' or 'random'")


def auto_model() -> str:
    """The model `model="auto"` with `pretrained="auto"` loads: the paper's when its weights are found,
    else the toy CLIP when its shipped weights are there, else the tiny one (random weights)."""
    if _auto_weights(PAPER_MODEL):
        return PAPER_MODEL
    return TOY_MODEL if _auto_weights(TOY_MODEL) else TINY_MODEL


def _auto_weights(model: str) -> str | None:
    """What `pretrained='auto'` finds for `model`: the shipped weights of the toy CLIP; for other
    models ${CHECKPOINT_ENV}, else cached OpenAI weights."""
    if model == TOY_MODEL:
        from methods.toy import shipped

        found = shipped.path(shipped.CLIP)
        return str(found.resolve()) if found else None
    if os.environ.get(CHECKPOINT_ENV):
        return _checked_path(model, os.environ[CHECKPOINT_ENV])
    return _cached_openai_weights(model)


def _checked_path(model: str, value: str) -> str:
    path = pathlib.Path(value).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"CLIP checkpoint {path} does not exist; expected an open_clip state dict "
                                f"(.pt, .pth, .bin or .safetensors) for the model {model}")
    return str(path.resolve())


def _cached_openai_weights(model: str) -> str | None:
    """OpenAI's weights for `model` when the Hugging Face cache already holds them (no download)."""
    from huggingface_hub import try_to_load_from_cache
    from open_clip.pretrained import get_pretrained_cfg

    repo = (get_pretrained_cfg(model, "openai") or {}).get("hf_hub", "").strip("/")
    for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename) if repo else None
        if isinstance(found, str):
            return found
    return None


def _create(open_clip, model: str, weights: str):
    if weights == "random":
        # The same random weights in every process, so a model trained against random CLIP (the
        # laptop demo) meets the same CLIP when it is evaluated, and nothing else's random draws shift.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_WEIGHTS_SEED)
            return open_clip.create_model(model, pretrained=None)
    is_file = pathlib.Path(weights).is_file()
    try:
        return open_clip.create_model(model, pretrained=weights)
    except Exception as error:  # open_clip raises many types for a bad file; say what was expected
        if is_file:
            raise ValueError(f"cannot load CLIP checkpoint {weights} into {model}: {type(error).__name__}: "
                             f"{str(error)[:500]}. Expected an open_clip state dict for {model} (for OpenAI's "
                             f"ViT-B/16: open_clip_pytorch_model.bin from timm/vit_base_patch16_clip_224.openai); "
                             "the file may be corrupt or for another model") from error
        raise FileNotFoundError(f"CLIP weights {model}/{weights} are not in the local cache and could not be "
                                f"downloaded ({type(error).__name__}: {str(error)[:300]}); pass a local checkpoint "
                                "path instead") from error

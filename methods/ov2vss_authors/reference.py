"""The reference fixtures made by running the authors' own code (`../shared/reference/authors-ov2vss/`
is one): weights made by a stated rule, a short video, and their outputs per target frame. This
module rebuilds the weights by the rule, writes them as an mmcv checkpoint, reads the folder, and
compares what this method recorded with what their code output, within the folder's tolerances.

The weight rule (the folder's README): every key of their state dict gets
`torch.randn(shape, generator=torch.Generator().manual_seed(zlib.crc32((salt + key).encode())))` (one
draw of the full shape, a fresh generator per key), scaled by its rule R0-R10 in float32; R1-R3 are
BatchNorm's zeros / ones / int64 zeros; R4 buffers and the 0-d R5 keep their constructed values
(none reaches the test output: we write zeros, and 1.0 for R5's logit_scale).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import pathlib
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from benchmark.verify import Comparison, FixtureError, ReferenceRun
from methods.ov2vss_authors.checkpoint import write as write_checkpoint

#: Rules with an explicit scale (R0), from the fixture's README.
R0_SCALES = {"decode_head.predictor.corr.conv1.weight": 1.0, "decode_head.dsn_head.4.weight": 0.5,
             "decode_head.hypercorre_module.pooling_proj_linear.weight": 0.00390625}
FILES = ("keys.tsv", "weights_sha256.json", "vocabulary.json", "tolerances.json", "frames.json", "clips.json")

#: Every `RECORD_STRIDE`-th row and column of the final probabilities is recorded (their fixture's grid).
RECORD_STRIDE = 16


@dataclass(frozen=True)
class KeySpec:
    key: str
    shape: tuple[int, ...]
    dtype: str
    kind: str
    rule: str
    sha256: str


def read_keys(path: pathlib.Path) -> list[KeySpec]:
    """keys.tsv: key, shape (sizes joined by x), dtype, kind, rule, sha256_float32."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        specs = [KeySpec(row["key"], tuple(int(s) for s in row["shape"].split("x") if s), row["dtype"], row["kind"],
                         row["rule"], row["sha256_float32"]) for row in rows]
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise FixtureError(f"{path}: not a key table with columns key, shape, dtype, kind, rule, sha256_float32 "
                           f"({type(error).__name__}: {error})") from error
    if not specs:
        raise FixtureError(f"{path} lists no keys")
    unknown = sorted({s.rule for s in specs} - {f"R{k}" for k in range(11)})
    if unknown:
        raise FixtureError(f"{path}: unknown rules {unknown}; the rule has R0..R10")
    return specs


def rule_tensor(spec: KeySpec, salt: str) -> torch.Tensor:
    """The rule-made value of one key (float32, except R3's int64 zeros)."""
    rule, shape = spec.rule, spec.shape
    if rule == "R1":
        return torch.zeros(shape)
    if rule == "R2":
        return torch.ones(shape)
    if rule == "R3":
        return torch.zeros(shape, dtype=torch.int64)
    if rule == "R4":
        return torch.zeros(shape, dtype=getattr(torch, spec.dtype.removeprefix("torch.")))
    if rule == "R5":
        return torch.ones(shape)
    generator = torch.Generator().manual_seed(zlib.crc32((salt + spec.key).encode("utf-8")))
    x = torch.randn(shape, generator=generator, dtype=torch.float32)
    if rule == "R0":
        if spec.key not in R0_SCALES:
            raise FixtureError(f"key {spec.key} has rule R0, but the rule gives a scale only for {sorted(R0_SCALES)}")
        return x.mul(R0_SCALES[spec.key])
    if rule == "R6" or rule == "R9":
        return x.mul(0.02)
    if rule == "R7":
        return x.mul(0.1).add(1.0)
    if rule == "R8":
        return x.mul(0.0004).add(0.002)
    return x.div(math.sqrt(math.prod(shape) // shape[0]))  # R10


class RuleWeights(NamedTuple):
    state: OrderedDict            # every key's rule-made tensor, in the table's order
    wrong: list[str]              # keys whose sha256 differs from the table's (R4 excluded: it hashes
                                  # their constructed values)
    checksum: str                 # sha256 over all but R4's float32 bytes, as weights_sha256.json gives it


def rule_state_dict(specs: list[KeySpec], salt: str) -> RuleWeights:
    """The rule-made weights, each key's bytes hashed once for its own sha256 and the overall one."""
    state, wrong, overall = OrderedDict(), [], hashlib.sha256()
    for spec in specs:
        tensor = rule_tensor(spec, salt)
        if spec.rule != "R4":
            data = tensor.to(torch.float32).contiguous().numpy()
            overall.update(data)
            if hashlib.sha256(data).hexdigest() != spec.sha256:
                wrong.append(spec.key)
        state[spec.key] = tensor
    return RuleWeights(state, wrong, overall.hexdigest())


def _sha(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array)).hexdigest()


def _load_json(path: pathlib.Path):
    if not path.is_file():
        raise FixtureError(f"{path} is missing; a reference folder holds {', '.join(FILES)} and the folders "
                           "frames/, sigmoid_maps/, final_probs/, labels/ (see its README)")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise FixtureError(f"{path} is not valid JSON ({error})") from error


def _array(path: pathlib.Path, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """An array of the folder (.npy memory-mapped, .png decoded), checked against `shape`."""
    if not path.is_file():
        raise FixtureError(f"{path} is missing")
    try:
        if path.suffix == ".npy":
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        else:
            from PIL import Image

            with Image.open(path) as image:
                array = np.array(image)
    except (OSError, ValueError) as error:
        raise FixtureError(f"{path} cannot be read ({error})") from error
    if shape is not None and array.shape != shape:
        raise FixtureError(f"{path} has shape {array.shape}; expected {shape}")
    return array


class AuthorsFixture:
    """A folder of the authors' outputs (layout: the README of ../shared/reference/authors-ov2vss)."""

    VIDEO = "reference"

    def __init__(self, folder: pathlib.Path, text: str = "encode"):
        if text not in ("encode", "stored"):
            raise ValueError(f"text={text!r}: 'encode' the prompts with the rule-made CLIP, or use the folder's "
                             "'stored' text_features_test.npy")
        self.folder, self.text = pathlib.Path(folder), text
        if not self.folder.is_dir():
            raise FixtureError(f"reference folder {self.folder} does not exist")
        self.specs = read_keys(self.folder / "keys.tsv")
        sums = _load_json(self.folder / "weights_sha256.json")
        vocabulary = _load_json(self.folder / "vocabulary.json")
        tolerances = _load_json(self.folder / "tolerances.json")
        frames, clip_table = _load_json(self.folder / "frames.json"), _load_json(self.folder / "clips.json")
        try:
            self.salt, self.checksum = str(sums["salt"]), sums["sha256_all_keys_except_R4"]
            self.names = [str(n) for n in vocabulary["names"]]
            self.tolerance = {"sigmoid": float(tolerances["sigmoid_maps"]["max_abs"]),
                              "probabilities": float(tolerances["final_probs"]["max_abs"]),
                              "margin": float(tolerances["labels"]["margin_M"])}
            strict = tolerances["strict"]
            self.strict = {"sigmoid": float(strict["sigmoid_max_abs"]),
                           "probabilities": float(strict["final_probs_max_abs"]),
                           "margin": float(strict["labels_margin_M"])}
            self.frames = [dict(f) for f in frames["frames"]]
            self.files = [str(f["file"]) for f in self.frames]
            self.clips = {int(entry["target"]): [int(i) for i in entry["clip_indices"]]
                          for entry in clip_table["targets"]}
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise FixtureError(f"{self.folder}: a JSON file lacks an expected field ({type(error).__name__}: "
                               f"{error}); see the folder's README for the layout") from error
        if not self.clips or not set(self.clips) <= set(range(len(self.files))):
            raise FixtureError(f"{self.folder / 'clips.json'} names targets {sorted(self.clips)} outside the "
                               f"video's {len(self.files)} frames")
        first = _array(self.folder / "frames" / self.files[0])
        self.frame_hw = first.shape[:2]
        classes = len(self.names)
        grid = _array(self.folder / "sigmoid_maps" / f"t{min(self.clips):02d}.npy").shape[1:]
        for t in self.clips:
            _array(self.folder / "sigmoid_maps" / f"t{t:02d}.npy", (classes, *grid))
            _array(self.folder / "final_probs" / f"t{t:02d}.npy", (classes, *self._strided(self.frame_hw)))
            _array(self.folder / "labels" / f"t{t:02d}.png", self.frame_hw)
        if text == "stored":
            _array(self.folder / "text_features_test.npy")

    @staticmethod
    def _strided(frame_hw: tuple[int, int]) -> tuple[int, int]:
        return tuple(-(-side // RECORD_STRIDE) for side in frame_hw)

    def prepare(self, workdir: pathlib.Path) -> ReferenceRun:
        """Build the weights by the rule into an mmcv checkpoint and lay the video out as VSPW."""
        from PIL import Image

        state, wrong, checksum = rule_state_dict(self.specs, self.salt)
        if wrong or checksum != self.checksum:
            raise FixtureError(f"{self.folder}: the weight rule does not reproduce the folder's checksums ("
                               f"{len(wrong)} keys differ, e.g. {wrong[:3]}); keys.tsv or weights_sha256.json "
                               "does not belong to this rule")
        weights = write_checkpoint(state, workdir / "rule-made.pth",
                                   {"salt": self.salt, "made_by": "the fixture's weight rule"})
        del state
        root = workdir / "data" / "VSPW_480p"
        video = root / "data" / self.VIDEO
        (video / "origin").mkdir(parents=True, exist_ok=True)
        (video / "mask").mkdir(parents=True, exist_ok=True)
        (root / "val.txt").write_text(self.VIDEO + "\n")
        blank = np.zeros(self.frame_hw, dtype=np.uint8)  # "others" everywhere: nothing is scored
        for index, name in enumerate(self.files):  # named by index: the reader's order is frames.json's
            target = video / "origin" / f"{index:08d}{pathlib.Path(name).suffix}"
            if not target.exists():
                target.symlink_to((self.folder / "frames" / name).resolve())
            Image.fromarray(blank).save(video / "mask" / f"{index:08d}.png")
        options = {"record": str(workdir / "record")}
        if self.text == "stored":
            options["text_features"] = str((self.folder / "text_features_test.npy").resolve())
        return ReferenceRun("vspw:unseen", "official", workdir / "data", options, weights, list(self.names),
                            workdir / "record")

    def _check_inputs(self) -> tuple[int, int]:
        """How many frames decode to the folder's hashes (their code read them with OpenCV; Pillow
        decodes PNG and JPEG to the same pixels), and how many this method's resize turns into their
        resized frames."""
        from benchmark.data.frames import read_frame
        from methods.ov2vss_authors.preprocess import resize_frame

        decoded = resized = 0
        for entry in self.frames:
            frame = read_frame(self.folder / "frames" / entry["file"])
            decoded += _sha(frame.permute(1, 2, 0).numpy()) == entry.get("rgb_uint8_sha256")
            wanted = [v for k, v in entry.items() if k.startswith("resized_") and k.endswith("_rgb_uint8_sha256")]
            resized += bool(wanted) and _sha(resize_frame(frame)) == wanted[0]
        return decoded, resized

    def compare(self, record: pathlib.Path) -> Comparison:
        """Each target's recorded outputs against the folder's, at the default and strict levels."""
        rows, failed = [], []
        for t, clip in sorted(self.clips.items()):
            path = record / self.VIDEO / f"{t:08d}.npz"
            if not path.is_file():
                rows.append({"t": t, "within": False, "note": f"no output recorded ({path})"})
                failed.append(f"t{t:02d}")
                continue
            with np.load(path) as saved:
                mine = {key: saved[key] for key in saved.files}
            theirs = {"sigmoid": np.load(self.folder / "sigmoid_maps" / f"t{t:02d}.npy").astype(np.float32),
                      "probabilities": np.load(self.folder / "final_probs" / f"t{t:02d}.npy"),
                      "labels": _array(self.folder / "labels" / f"t{t:02d}.png")}
            differ = mine["labels"] != theirs["labels"]
            used = [int(i) for i in mine["clip"]]
            row = {"t": t, "clip": ",".join(map(str, used)),
                   "sigmoid_max_diff": float(np.abs(mine["sigmoid"] - theirs["sigmoid"]).max()),
                   "prob_max_diff": float(np.abs(mine["probabilities"] - theirs["probabilities"]).max()),
                   "label_px_differ": int(differ.sum()),
                   "label_px_beyond_margin": int((differ & (mine["margin"] > self.tolerance["margin"])).sum())}
            row["within"] = self._within(row, differ, mine["margin"], self.tolerance) and used == clip
            row["strict"] = self._within(row, differ, mine["margin"], self.strict)
            if used != clip:
                row["note"] = f"clip {clip} expected"
            rows.append(row)
            if not row["within"]:
                failed.append(f"t{t:02d}")
        levels = ("default", sum(r["within"] for r in rows)), ("strict", sum(bool(r.get("strict")) for r in rows))
        notes = [f"tolerances ({self.folder / 'tolerances.json'}): default sigmoid <= {self.tolerance['sigmoid']}, "
                 f"probabilities <= {self.tolerance['probabilities']}, labels equal where margin > "
                 f"{self.tolerance['margin']}; strict {self.strict['sigmoid']}, {self.strict['probabilities']}, "
                 f"{self.strict['margin']}",
                 "; ".join(f"{level}: {count} of {len(rows)} frames within" for level, count in levels),
                 "text features: " + ("encoded with the rule-made CLIP" if self.text == "encode" else
                                      "the folder's (stored as float16)")]
        decoded, resized = self._check_inputs()
        frames = len(self.frames)
        notes.append(f"input pipeline: {decoded} of {frames} frames decode and {resized} of {frames} resize to the "
                     "folder's hashes")
        if (decoded, resized) != (frames, frames):
            failed.append("input pipeline")
        return Comparison(rows, failed, notes)

    @staticmethod
    def _within(row: dict, differ: np.ndarray, margin: np.ndarray, level: dict) -> bool:
        return (row["sigmoid_max_diff"] <= level["sigmoid"] and row["prob_max_diff"] <= level["probabilities"]
                and not (differ & (margin > level["margin"])).any())

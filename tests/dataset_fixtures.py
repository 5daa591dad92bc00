"""Miniature copies of VSPW and Cityscapes in their exact on-disk layouts, with real JPEG/PNG files."""

import json

import numpy as np
from PIL import Image

from benchmark.data.cards import load_card

#: Raw VSPW values the miniature masks use: others, seen (5 ladder, 80 bag_or_package), unseen
#: (81 trash_can, 100 refrigerator, 124 train), void.
VSPW_VALUES = [0, 5, 80, 81, 100, 124, 255]
#: Cityscapes label ids the miniature masks use: unlabeled, road, sidewalk, fence, traffic light,
#: rider, car, train, bicycle, and ids that are no evaluation class (1, 4, 9, 29).
CITYSCAPES_IDS = [0, 1, 4, 7, 8, 9, 13, 19, 25, 26, 29, 31, 33]
CITYSCAPES_LABEL_IDS = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]


def _image(rng, height, width):
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


def write_vspw(root, splits=None, sizes=((24, 32), (24, 32)), frames=3, class_list=True, folder="VSPW_480p"):
    """VSPW_480p/{train,val}.txt, label_num_dic_final.json, data/<video>/{origin,mask}/<8 digits>."""
    base = root / folder
    splits = splits or {"val": [f"video_{v}" for v in range(len(sizes))], "train": ["video_train"]}
    base.mkdir(parents=True)
    if class_list:
        ids = {"others": 0, **{name: k for k, name in enumerate(load_card("vspw")["classes"], start=1)}}
        (base / "label_num_dic_final.json").write_text(json.dumps(ids))
    rng = np.random.default_rng(0)
    for split, names in splits.items():
        (base / f"{split}.txt").write_text("".join(n + "\n" for n in names))
        for v, name in enumerate(names):
            height, width = sizes[v % len(sizes)]
            for sub in ("origin", "mask"):
                (base / "data" / name / sub).mkdir(parents=True, exist_ok=True)
            for t in range(frames):
                stem = f"{t * 3 + 1:08d}"
                _image(rng, 24, 32).save(base / "data" / name / "origin" / f"{stem}.jpg")
                mask = rng.choice(VSPW_VALUES, size=(height, width)).astype(np.uint8)
                Image.fromarray(mask, mode="L").save(base / "data" / name / "mask" / f"{stem}.png")
    return base


def train_ids(label_ids):
    table = np.full(256, 255, dtype=np.uint8)
    table[CITYSCAPES_LABEL_IDS] = np.arange(19, dtype=np.uint8)
    return table[label_ids]


#: (split, city, sequence, annotated frame number, ground-truth files written)
CITYSCAPES_SNIPPETS = [
    ("val", "frankfurt", 0, 294, ("labelIds", "labelTrainIds")),
    ("val", "lindau", 1, 19, ("labelIds",)),
    ("train", "aachen", 0, 19, ("labelIds", "labelTrainIds")),
]


def write_cityscapes(root, layout="sequence", size=(16, 24), snippets=CITYSCAPES_SNIPPETS):
    """cityscapes/leftImg8bit_sequence (30 frames per snippet) or leftImg8bit (annotated frames), and
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png (+ _labelTrainIds.png)."""
    base = root / "cityscapes"
    rng = np.random.default_rng(1)
    for split, city, seq, frame, kinds in snippets:
        key = f"{city}_{seq:06d}_{frame:06d}"
        gt = base / "gtFine" / split / city
        gt.mkdir(parents=True, exist_ok=True)
        label_ids = rng.choice(CITYSCAPES_IDS, size=size).astype(np.uint8)
        if "labelIds" in kinds:
            Image.fromarray(label_ids, mode="L").save(gt / f"{key}_gtFine_labelIds.png")
        if "labelTrainIds" in kinds:
            Image.fromarray(train_ids(label_ids), mode="L").save(gt / f"{key}_gtFine_labelTrainIds.png")
        folder = base / ("leftImg8bit_sequence" if layout == "sequence" else "leftImg8bit") / split / city
        folder.mkdir(parents=True, exist_ok=True)
        numbers = range(frame - 19, frame + 11) if layout == "sequence" else [frame]
        for number in numbers:
            _image(rng, *size).save(folder / f"{city}_{seq:06d}_{number:06d}_leftImg8bit.png")
    return base

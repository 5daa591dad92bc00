"""Methods used by the test suite, loaded through --plugin exactly as a user's file would be."""

import os
import pathlib
import time

import numpy as np
import torch
from PIL import Image

from benchmark import ABSTAIN, ImageMethod, Method, TrainableMethod
from benchmark.data.cards import load_card
from benchmark.data.settings import display_name

#: Cityscapes label id of each train id 0..18 (facts.md section 5), written out independently of the card.
CITYSCAPES_LABEL_IDS = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]


def _read_truth(frame_path: pathlib.Path) -> np.ndarray:
    """The class index (in the dataset card) of every pixel of an annotated frame, 255 where none."""
    if frame_path.name.endswith("_leftImg8bit.png"):
        # Cityscapes: ROOT/leftImg8bit[_sequence]/<split>/<city>/<key>_leftImg8bit.png -> ROOT/gtFine/...
        key = frame_path.name[: -len("_leftImg8bit.png")]
        gt = frame_path.parents[3] / "gtFine" / frame_path.parents[1].name / frame_path.parent.name
        train_ids = gt / f"{key}_gtFine_labelTrainIds.png"
        if train_ids.is_file():
            return np.asarray(Image.open(train_ids))
        table = np.full(256, 255, dtype=np.uint8)
        table[CITYSCAPES_LABEL_IDS] = np.arange(19)
        return table[np.asarray(Image.open(gt / f"{key}_gtFine_labelIds.png"))]
    # VSPW layout: data/<video>/origin/<id>.jpg -> data/<video>/mask/<id>.png; raw k is class k-1
    raw = np.asarray(Image.open(frame_path.parent.parent / "mask" / f"{frame_path.stem}.png"))
    return np.where((raw == 0) | (raw == 255), 255, raw.astype(np.int64) - 1).astype(np.uint8)


class Oracle(Method):
    """Reads the ground truth from disk: 100 on every setting (a harness check, not a method)."""

    name = "test-oracle"
    option_help = {"noise": "share of pixels given a random label", "abstain": "share of pixels left unnamed"}

    def __init__(self, dataset: str = "synthetic", delay: float = 0.0, noise: float = 0.0, abstain: float = 0.0):
        super().__init__()
        self.dataset, self.delay, self.noise, self.abstain = dataset, delay, noise, abstain

    def setup(self, vocabulary, device):
        self.lookup = np.full(256, ABSTAIN, dtype=np.int64)
        for index, name in enumerate(load_card(self.dataset)["classes"]):
            for spelling in (name, display_name(name)):
                if spelling in vocabulary:
                    self.lookup[index] = vocabulary.index(spelling)
        self.num_labels = len(vocabulary)

    def segment(self, video):
        for i in video.annotated:
            time.sleep(self.delay)
            labels = torch.from_numpy(self.lookup[_read_truth(video.path(i))])
            if self.noise:  # from the global generator: the runner seeds it per video
                flip = torch.rand(labels.shape) < self.noise
                labels[flip] = torch.randint(self.num_labels, (int(flip.sum()),))
                self.count("noisy_pixels", int(flip.sum()))
            if self.abstain:  # "none of these" on a share of pixels, scored ones included
                labels[torch.rand(labels.shape) < self.abstain] = ABSTAIN
            yield labels


class Constant(ImageMethod):
    """Labels every pixel with one vocabulary index."""

    name = "test-constant"

    def __init__(self, label: int = 0):
        super().__init__()
        self.label = label

    def setup(self, vocabulary, device):
        pass

    def segment_frame(self, image):
        return torch.full(image.shape[1:], self.label, dtype=torch.int64)


class Abstain(ImageMethod):
    """Says "none of these" everywhere."""

    name = "test-abstain"

    def setup(self, vocabulary, device):
        pass

    def segment_frame(self, image):
        return torch.full(image.shape[1:], ABSTAIN, dtype=torch.uint8)


class Broken(ImageMethod):
    """Fails in one of several ways on the third frame of the second video."""

    name = "test-broken"

    def __init__(self, mode: str = "shape"):
        super().__init__()
        self.mode = mode

    def setup(self, vocabulary, device):
        self.calls = 0
        self.vocabulary = vocabulary

    def segment(self, video):
        if video.name.endswith("_001") and self.mode == "short":
            yield from list(super().segment(video))[:-1]
            return
        yield from super().segment(video)

    def segment_frame(self, image):
        self.calls += 1
        height, width = image.shape[1:]
        if self.calls == 20 + 3:  # 20 frames per video by default
            if self.mode == "shape":
                return torch.zeros(height, width + 1, dtype=torch.int64)
            if self.mode == "range":
                return torch.full((height, width), len(self.vocabulary) + 3, dtype=torch.int64)
            if self.mode == "raise":
                raise RuntimeError("out of memory (simulated)")
            if self.mode == "float":
                return torch.zeros(height, width)
        return torch.zeros(height, width, dtype=torch.int64)


class Crashing(Method):
    """Kills its own process, as a segfault or the OOM killer would."""

    name = "test-crash"

    def setup(self, vocabulary, device):
        pass

    def segment(self, video):
        os._exit(3)
        yield


class Trainable(TrainableMethod, ImageMethod):
    """Learns one label: the most frequent one it is shown; its checkpoint holds that label."""

    name = "test-trainable"

    def __init__(self, fail: bool = False):
        super().__init__()
        self.fail = fail

    @classmethod
    def needs_checkpoint(cls, options):
        return True  # it has no label to give before it is trained

    def fit(self, train, vocabulary, run_dir):
        if self.fail:
            raise RuntimeError("the loss went to NaN (simulated)")
        target, _ = train.labels(0, train.videos[0].annotated[0])
        labels, counts = np.unique(target[target < len(vocabulary)], return_counts=True)
        path = run_dir / "label.pt"
        torch.save({"label": torch.tensor(int(labels[counts.argmax()]))}, path)
        return path

    def load(self, checkpoint):
        self.label = int(torch.load(checkpoint, weights_only=True)["label"])

    def setup(self, vocabulary, device):
        pass

    def segment_frame(self, image):
        return torch.full(image.shape[1:], self.label, dtype=torch.int64)

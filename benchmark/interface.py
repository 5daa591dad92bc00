"""The contract between the harness and the methods it evaluates.

A method sees videos (frames only, never ground truth) and a vocabulary of class names, and yields
one integer label map per annotated frame. Defining a subclass of `Method` with a `name` registers it.
"""

from __future__ import annotations

import abc
import bisect
import inspect
import pathlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from benchmark.data.frames import decode_pool, read_frame
from benchmark.speeds import Speed

if TYPE_CHECKING:  # torch loads when a frame does, so `list` and `--help` stay fast
    import torch

#: The label a method returns for "none of these names": a miss for the pixel's class, and no
#: class's false positive.
ABSTAIN = 255


class Video:
    """One video: frames load lazily from their files, in temporal order.

    `annotated` lists the frame indices that have ground truth; `segment` yields one map for each,
    in that order. The last few decoded frames are kept, because video methods revisit neighbours.
    With `prefetch` > 0, reading frame i starts decoding the next `prefetch` frames in background
    threads: the following annotated frames (`ahead="annotated"`, what an image method reads next)
    or the following frames (`ahead="all"`, a video method).
    """

    def __init__(self, name: str, frame_paths: Sequence[pathlib.Path], annotated: Sequence[int],
                 cache_size: int = 16, prefetch: int = 0, ahead: str = "annotated"):
        self.name = name
        self._paths = [pathlib.Path(p) for p in frame_paths]
        self.annotated = list(annotated)
        bad = [i for i in self.annotated if not 0 <= i < len(self._paths)]
        if bad:
            raise ValueError(f"video {name}: annotated frame indices {bad} are outside 0..{len(self._paths) - 1}")
        if ahead not in ("annotated", "all"):
            raise ValueError(f"ahead={ahead!r}: choose 'annotated' or 'all'")
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._cache_size = cache_size
        self._prefetch = min(prefetch, cache_size)
        self._order = self.annotated if ahead == "annotated" else list(range(len(self._paths)))
        self._pending: dict[int, Future] = {}

    def __len__(self) -> int:
        return len(self._paths)

    def __repr__(self) -> str:
        return f"Video({self.name!r}, frames={len(self)}, annotated={len(self.annotated)})"

    def path(self, i: int) -> pathlib.Path:
        """The source file of frame i."""
        return self._paths[i]

    def frame_id(self, i: int) -> str:
        """The frame's id as the dataset names it (the file name without extension)."""
        return self._paths[i].stem

    def frame(self, i: int) -> torch.Tensor:
        """Frame i as uint8 RGB, shape [3, H, W]."""
        if i in self._cache:
            self._cache.move_to_end(i)
            tensor = self._cache[i]
        else:
            pending = self._pending.pop(i, None)
            try:
                tensor = pending.result() if pending is not None else read_frame(self._paths[i])
            except OSError as error:
                raise OSError(f"video {self.name}, frame {i}: {error}") from error
            self._cache[i] = tensor
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._read_ahead(i)
        return tensor

    def start_prefetch(self) -> None:
        """Begin decoding the first frames in the background (e.g. while the previous video ends)."""
        if self._order:
            self._schedule(self._order[: self._prefetch])

    def _read_ahead(self, i: int) -> None:
        if not self._prefetch:
            return
        position = bisect.bisect_right(self._order, i)
        self._schedule(self._order[position: position + self._prefetch])

    def _schedule(self, indices: Sequence[int]) -> None:
        pool = decode_pool() if self._prefetch else None
        if pool is None:
            return
        for j in indices:
            if j not in self._cache and j not in self._pending:
                self._pending[j] = pool.submit(read_frame, self._paths[j])
        while len(self._pending) > self._cache_size:  # frames the method skipped: let them go
            self._pending.pop(next(iter(self._pending))).cancel()


class TableLabel(NamedTuple):
    """How the tables name a method's cell: the paper's Method and Backbone columns. A cell whose
    label equals a row of a published table is shown beside it with the difference; `stand_in` marks
    a scaled-down model in place of that backbone (the tiny test models): still put beside the
    paper's row, with a note that the difference is not comparable. `reproduces` names the published
    Method a differently named row reproduces (e.g. "OV2VSS (authors' code)" under "OV2VSS").
    `variant` names a variant of the method's model other than the model itself (an ablation, e.g.
    "baseline"): such cells are left out of comparison tables and fill the rows of ablation tables."""

    method: str
    backbone: str = "-"
    stand_in: bool = False
    reproduces: str | None = None
    variant: str | None = None

    @property
    def row(self) -> tuple[str, str]:
        """The (Method, Backbone) of the published row this cell sits under."""
        return self.reproduces or self.method, self.backbone


class Method(abc.ABC):
    """A segmentation method under evaluation.

    Subclasses take their options as keyword arguments of `__init__` (the CLI passes
    `--opt NAME.KEY=VALUE`), build their model in `setup`, and yield label maps from `segment`.
    """

    name: ClassVar[str]
    #: True when the method uses frames other than the one it labels.
    video: ClassVar[bool] = False
    #: A line of help per option, shown by `python -m benchmark list options NAME`.
    option_help: ClassVar[dict[str, str]] = {}
    #: Measured speeds (seconds per frame, per training iteration) that `run --dry-run` estimates from.
    speeds: ClassVar[tuple[Speed, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            from benchmark import registry

            registry.register(cls)

    def __init__(self, **options: Any) -> None:
        if options:
            raise TypeError(
                f"method {type(self).__name__} takes no options but got {sorted(options)}; "
                "declare them as keyword arguments of its __init__")

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """The keyword arguments of `__init__` with their defaults (recorded with every result)."""
        signature = inspect.signature(cls.__init__)
        return {k: p.default for k, p in signature.parameters.items()
                if k != "self" and p.default is not inspect.Parameter.empty
                and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}

    @abc.abstractmethod
    def setup(self, vocabulary: list[str], device: torch.device) -> None:
        """Prepare for segmenting with these class names on this device."""

    @abc.abstractmethod
    def segment(self, video: Video) -> Iterator[torch.Tensor]:
        """Yield one integer map [H, W] per annotated frame, in order.

        Values index the vocabulary, or are ABSTAIN for "none of these".
        """

    @classmethod
    def table_label(cls, options: dict[str, Any], loaded: dict[str, Any]) -> TableLabel:
        """The label of a cell run with `options`, given what the method reported loading (its
        `provenance()`, empty when the cell failed before setup). Override it to name your method as
        a paper would, e.g. TableLabel("OV2VSS", "ViT-B2")."""
        return TableLabel(cls.name)

    @classmethod
    def reference_check(cls, folder: pathlib.Path, **choices: Any):
        """How `python -m benchmark verify NAME --fixture DIR` checks this method against outputs its
        reference code recorded in `folder`: an object with `prepare(workdir) -> benchmark.verify.
        ReferenceRun` and `compare(record_dir) -> benchmark.verify.Comparison`. Raise
        `benchmark.verify.FixtureError` for a malformed folder."""
        raise ValueError(f"method {cls.name} has no reference fixture format to verify against")

    def count(self, event: str, amount: int = 1) -> None:
        """Add to a tally of `event` (e.g. frames on which a fallback was used). The runner collects
        the tallies after each video and reports their sums in the cell's result under
        `method_counts`, so a resumed or sharded cell reports the same totals."""
        tallies = self.__dict__.setdefault("_tallies", {})
        tallies[event] = tallies.get(event, 0) + int(amount)

    def take_counts(self) -> dict[str, int]:
        """The tallies since the last call, which starts them afresh (the runner calls this)."""
        return self.__dict__.pop("_tallies", {})

    def provenance(self) -> dict[str, Any]:
        """What the method loaded (weights and their paths, effective settings), recorded with each
        result after `setup`. A list under "warnings" is also logged and shown with the result."""
        return {}


class ImageMethod(Method):
    """A method that labels each frame on its own."""

    def segment(self, video: Video) -> Iterator[torch.Tensor]:
        for i in video.annotated:
            yield self.segment_frame(video.frame(i))

    @abc.abstractmethod
    def segment_frame(self, image: torch.Tensor) -> torch.Tensor:
        """Label one uint8 RGB frame [3, H, W]; return an integer map [H, W]."""

    @classmethod
    def gives_scores(cls) -> bool:
        """Whether the method defines the optional hook `segment_frame_scores(image)`: per-pixel class
        scores of one frame, float [C, H, W] over the vocabulary (higher means more likely; the map is
        their argmax). Wrappers that combine frames (`temporal`) need it."""
        return callable(getattr(cls, "segment_frame_scores", None))


class TrainableMethod(Method):
    """A method that learns on the seen classes before it is evaluated.

    `python -m benchmark train` calls `setup(train.vocabulary, device)`, then `fit`; `run` calls
    `load(checkpoint)` before `setup` when given `--checkpoint NAME=PATH`.
    """

    #: False for a method that only loads weights it is given (a released checkpoint): `train` and
    #: `run --train` leave it alone, and `run` asks for `--checkpoint`.
    trains: ClassVar[bool] = True

    @classmethod
    def needs_checkpoint(cls, options: dict[str, Any]) -> bool:
        """Whether the method, with these options, only runs with trained weights (`--checkpoint`):
        `run --methods all` leaves such a method out, and naming it without weights is an input error."""
        return False

    @classmethod
    def check_checkpoint(cls, path: pathlib.Path, options: dict[str, Any]) -> None:
        """Raise ValueError (naming the file and what is wrong) when `path` cannot be weights for
        these options. `run` calls it for every --checkpoint before any cell starts, so a wrong file
        is an input error; the default checks nothing (`load` reports problems in the cell)."""

    @classmethod
    def default_checkpoint(cls, options: dict[str, Any]) -> str | None:
        """Weights that fit these options (those given; the rest at their defaults) and load when none are
        given (`--checkpoint`, `--train`), such as ones shipped with the method; None: it must be trained
        or given weights."""
        return None

    @abc.abstractmethod
    def fit(self, train: Any, vocabulary: list[str], run_dir: pathlib.Path) -> pathlib.Path:
        """Train on `train` (a `benchmark.data.training.TrainingSet`) with the seen `vocabulary`,
        writing into `run_dir` (resume from what is there); return the checkpoint's path."""

    @abc.abstractmethod
    def load(self, checkpoint: pathlib.Path) -> None:
        """Load trained weights (with `torch.load(..., weights_only=True)`)."""

    def planned_training(self) -> dict[str, Any]:
        """The recipe `fit` would follow with these options, every setting resolved, `iterations`
        among them (for `run --dry-run`'s estimates); empty when the method cannot say."""
        return {}

    def training_summary(self) -> dict[str, Any]:
        """After `fit`: how much training it was (iterations, optimiser steps, accumulation), recorded
        in the run's `trained.json` beside the checkpoint; empty by default."""
        return {}

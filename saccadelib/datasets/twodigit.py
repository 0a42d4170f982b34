"""The two-digit benchmarks of the paper (docs/tasks.md), generated on the fly from real MNIST.

- ``sum``: two digits on a black canvas, label a+b (19 classes), no clutter.
- ``identification``: 8 clutter fragments (8×8 crops of random digits), then two digits;
  label = the unordered pair {a, b} (55 classes, ``pair_index``).

Digits are pasted unscaled at uniform positions, pixel values added and clipped. Rendering is done in
integers (uint8 pixels summed in int32, clipped at 255) so the bytes do not depend on summation order or
thread count; the float canvas is that /255. A split uses only its own MNIST digits:
train = MNIST-train[0:50000], val = MNIST-train[50000:60000], test = MNIST-test.

Everything random comes from ``numpy.random.SeedSequence([seed..., task, split, canvas])``, so a
(task, split, n, seed, canvas) tuple always gives identical bytes. Validation and test sets are fixed
(10,000 canvases from ``EVAL_SEEDS``); training canvases are drawn fresh for every epoch and batch by
``TwoDigitStream``.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import IterableDataset, get_worker_info

from ..paths import REPO_ROOT, atomic_path, csv_text, write_text_atomic
from ..sources import UpsampledSource
from ..window_stats import hit_matrix
from . import cards as cards_module
from . import mnist
from .sparse import SparseImages

DIGIT = 28
CLUTTER_SIZE = 8
CLUTTER_COUNT = 8


@dataclass(frozen=True)
class TaskSpec:
    name: str
    n_classes: int
    clutter: int
    code: int  # enters the seed, so two tasks never share a random stream


TASKS = {
    "sum": TaskSpec("sum", n_classes=19, clutter=0, code=1),
    "identification": TaskSpec("identification", n_classes=55, clutter=CLUTTER_COUNT, code=2),
}
SPLITS = {"train": 1, "val": 2, "test": 3}
EVAL_SIZE = 10_000
EVAL_SEEDS = {"val": 20_181, "test": 20_182}


def task_spec(task: str) -> TaskSpec:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[task]


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    return split


# ---------------------------------------------------------------------------------------- labels

def pair_index(a, b):
    """55-way label of the unordered pair {a, b}: pairs (lo ≤ hi) in lexicographic order.

    (0,0)→0, (0,1)→1, …, (0,9)→9, (1,1)→10, …, (9,9)→54. Works on ints and integer tensors/arrays.
    """
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        lo, hi = torch.minimum(torch.as_tensor(a), torch.as_tensor(b)), torch.maximum(torch.as_tensor(a), torch.as_tensor(b))
    else:
        lo, hi = np.minimum(a, b), np.maximum(a, b)
    if np.any(np.asarray(lo) < 0) or np.any(np.asarray(hi) > 9):
        raise ValueError("pair_index takes digit classes in 0..9")
    return lo * 10 - lo * (lo - 1) // 2 + (hi - lo)


def pair_from_index(k: int) -> tuple[int, int]:
    """Inverse of ``pair_index`` for one label."""
    for lo in range(10):
        width = 10 - lo
        if k < width:
            return lo, lo + k
        k -= width
    raise ValueError("pair label must be in 0..54")


def class_names(task: str) -> list[str]:
    if task_spec(task).name == "sum":
        return [str(s) for s in range(19)]
    return ["{}{}".format(*pair_from_index(k)) for k in range(55)]


# ---------------------------------------------------------------------------------- digit pools

@lru_cache(maxsize=None)
def _mnist_arrays(train: bool, root: str) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import MNIST  # noqa: PLC0415 (start-up: importing torchvision.datasets takes seconds; only reading MNIST needs it)

    mnist.check_raw_folder(root)
    ds = MNIST(root, train=train, download=False)
    return ds.data.contiguous(), ds.targets.to(torch.int64)


def digit_pool(split: str, root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The (uint8 images [N,28,28], int64 labels [N]) a split may draw from."""
    check_split(split)
    root = str(root or mnist.data_dir())
    if split == "test":
        return _mnist_arrays(False, root)
    images, labels = _mnist_arrays(True, root)
    cut = slice(0, 50_000) if split == "train" else slice(50_000, 60_000)
    return images[cut], labels[cut]


# -------------------------------------------------------------------------------------- rendering

@dataclass
class TwoDigitSet:
    """Canvases kept as uint8 (a quarter of float memory); ``as_dict`` gives the public float form."""
    task: str
    split: str
    seed: tuple
    canvases: "torch.Tensor | SparseImages"  # uint8 [n, C, C]; above DENSE_LIMIT, their nonzero pixels
    label: torch.Tensor  # int64 [n]
    digits: torch.Tensor  # int64 [n, 2]
    boxes: torch.Tensor  # float32 [n, 2, 4] x0, y0, x1, y1 (x1 = x0 + 28, exclusive)
    source: torch.Tensor  # int64 [n, 2] index of each digit in the split's pool
    image_side: int | None = None  # None: the canvas itself; N: ``image`` is its lazy N×N upsample

    def __len__(self) -> int:
        return len(self.label)

    @property
    def canvas(self) -> int:
        return self.canvases.side if isinstance(self.canvases, SparseImages) else self.canvases.shape[-1]

    def as_dict(self, start: int = 0, stop: int | None = None) -> dict:
        part = slice(start, stop)
        if isinstance(self.canvases, SparseImages):
            image = self.canvases[part].source()
        else:
            image = _read_as(self.canvases[part].unsqueeze(1).to(torch.float32).div_(255.0), self.image_side)
        return {
            "image": image,
            "label": self.label[part],
            "digits": self.digits[part],
            "boxes": self.boxes[part],
            "regions": self.boxes[part] / self.canvas * 2 - 1,  # the boxes in [-1, 1] (the oracle's windows)
        }

    def batches(self, batch_size: int) -> Iterator[dict]:
        """Float batches in order; the last one may be short (nothing is dropped)."""
        for start in range(0, len(self), batch_size):
            yield self.as_dict(start, start + batch_size)

    def describe(self) -> dict:
        card = describe(self)
        return card if self.image_side is None else {**card, "image_side": self.image_side}

    def glimpse_hits(self, windows: torch.Tensor, batch: dict) -> torch.Tensor:
        """[N, T, 2] bool: glimpse t's window holds most of digit d's box (the hit rate's definition)."""
        return hit_matrix(windows, batch["boxes"], self.canvas)

    def object_boxes(self, batch: dict) -> tuple[torch.Tensor, int]:
        """The batch's digit boxes [N, 2, 4] and the side of the canvas pixels they are in."""
        return batch["boxes"], self.canvas

    def sha256(self) -> str:
        """Content hash of what a model sees and is scored on (the float image is canvases / 255)."""
        digest = hashlib.sha256()
        if isinstance(self.canvases, SparseImages):
            self.canvases.digest(digest)
        else:
            digest.update(self.canvases.contiguous().numpy().tobytes())
        for tensor in (self.label, self.digits, self.boxes):
            digest.update(tensor.contiguous().numpy().tobytes())
        return digest.hexdigest()


def _read_as(images: torch.Tensor, image_side: int | None):
    """The float canvases, or their lazy ``image_side``² upsample (the paper's large variant)."""
    if image_side is None:
        return images
    return UpsampledSource(images, image_side)


def digit_overlap(boxes: torch.Tensor) -> torch.Tensor:
    """[N]: the share of the smaller of two objects' boxes (boxes [N, 2, 4], x0 y0 x1 y1) that the other
    covers: 0 for digits apart, 1 for one on top of the other (MNIST digits are all 28², so either way)."""
    a, b = boxes[:, 0].float(), boxes[:, 1].float()
    inter = (torch.minimum(a[:, 2:], b[:, 2:]) - torch.maximum(a[:, :2], b[:, :2])).clamp(min=0).prod(-1)
    return inter / torch.minimum((a[:, 2:] - a[:, :2]).prod(-1), (b[:, 2:] - b[:, :2]).prod(-1))


def _rng(task: TaskSpec, split: str, seed, canvas: int) -> np.random.Generator:
    seed = [int(s) for s in (seed if isinstance(seed, Sequence) else (seed,))]
    if any(s < 0 for s in seed):
        raise ValueError("seeds must be non-negative integers")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([*seed, task.code, SPLITS[split], canvas])))


def _patch_indices(x0: torch.Tensor, y0: torch.Tensor, size: int, canvas: int) -> torch.Tensor:
    """Flat canvas indices of size×size patches whose top-left corners are (x0, y0): [..., size*size]."""
    offsets = (torch.arange(size).view(size, 1) * canvas + torch.arange(size).view(1, size)).view(-1)
    return (y0 * canvas + x0).unsqueeze(-1) + offsets


def generate(task: str, split: str, n: int, seed: int | Sequence[int], canvas: int = 100,
             root: str | Path | None = None) -> TwoDigitSet:
    """Render ``n`` canvases; vectorized (one scatter-add for all patches of all canvases)."""
    spec = task_spec(task)
    check_split(split)
    if canvas < DIGIT:
        raise ValueError(f"canvas must be at least {DIGIT} pixels to hold a digit, got {canvas}")
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    images, labels = digit_pool(split, root)
    rng = _rng(spec, split, seed, canvas)

    source = torch.from_numpy(rng.integers(0, len(images), size=(n, 2)))
    corner = torch.from_numpy(rng.integers(0, canvas - DIGIT + 1, size=(n, 2, 2)))  # (x, y)
    index = [_patch_indices(corner[..., 0], corner[..., 1], DIGIT, canvas).view(n, -1)]
    values = [images[source].view(n, -1)]
    if spec.clutter:
        c_src = torch.from_numpy(rng.integers(0, len(images), size=(n, spec.clutter)))
        c_off = torch.from_numpy(rng.integers(0, DIGIT - CLUTTER_SIZE + 1, size=(n, spec.clutter, 2)))
        c_pos = torch.from_numpy(rng.integers(0, canvas - CLUTTER_SIZE + 1, size=(n, spec.clutter, 2)))
        ramp = torch.arange(CLUTTER_SIZE)
        rows = (c_off[..., 1:2] + ramp).unsqueeze(-1)  # [n, k, 8, 1]
        cols = (c_off[..., 0:1] + ramp).unsqueeze(-2)  # [n, k, 1, 8]
        fragments = images[c_src.unsqueeze(-1).unsqueeze(-1), rows, cols]  # [n, k, 8, 8]
        index.insert(0, _patch_indices(c_pos[..., 0], c_pos[..., 1], CLUTTER_SIZE, canvas).view(n, -1))
        values.insert(0, fragments.reshape(n, -1))

    canvases = _render(torch.cat(index, 1), torch.cat(values, 1), canvas)

    digits = labels[source]
    if spec.name == "sum":
        label = digits[:, 0] + digits[:, 1]
    else:
        label = pair_index(digits[:, 0], digits[:, 1])
    boxes = torch.cat([corner, corner + DIGIT], dim=-1).to(torch.float32)
    return TwoDigitSet(task, split, tuple(np.atleast_1d(seed).tolist()), canvases, label, digits, boxes, source)


DENSE_LIMIT = 256  # canvases above this side are kept as their nonzero pixels (the same pixels)


def _render(index: torch.Tensor, values: torch.Tensor, canvas: int):
    """Patches [n, P] (flat positions, uint8 values) summed per pixel and clipped at 255: dense uint8
    [n, C, C] canvases, or above ``DENSE_LIMIT`` the same pixels as ``SparseImages``."""
    n = index.shape[0]
    if canvas <= DENSE_LIMIT:
        flat = torch.zeros(n, canvas * canvas, dtype=torch.int32)
        flat.scatter_add_(1, index, values.to(torch.int32))
        return flat.clamp_(max=255).to(torch.uint8).view(n, canvas, canvas)
    keyed = (torch.arange(n).unsqueeze(1) * canvas * canvas + index).view(-1).numpy()
    pixels, where = np.unique(keyed, return_inverse=True)
    summed = np.minimum(np.bincount(where, weights=values.reshape(-1).numpy()), 255).astype(np.uint8)
    image, position = np.divmod(pixels, canvas * canvas)
    cuts = np.searchsorted(image, np.arange(1, n))
    return SparseImages.from_pixels(list(zip(np.split(position, cuts), np.split(summed, cuts))), canvas)


def make_two_digit(task: str, split: str, n: int, seed: int, canvas: int = 100) -> dict:
    """Public contract: dict of ``image`` float32 [n,1,C,C] in [0,1], ``label`` int64 [n],
    ``digits`` int64 [n,2], ``boxes`` float32 [n,2,4] (x0, y0, x1, y1 canvas pixels of each pasted digit)."""
    return generate(task, split, n, seed, canvas).as_dict()


def eval_set(task: str, split: str, canvas: int = 100, root: str | None = None,
             image_side: int | None = None) -> TwoDigitSet:
    """The fixed 10k validation or test set of a task (generated once per process), its images read at
    ``image_side`` when given."""
    return dataclasses.replace(_fixed_set(task, split, canvas, root), image_side=image_side)


@lru_cache(maxsize=8)
def _fixed_set(task: str, split: str, canvas: int, root: str | None) -> TwoDigitSet:
    if split not in EVAL_SEEDS:
        raise ValueError(f"fixed sets exist for splits {', '.join(EVAL_SEEDS)}, not {split!r}")
    return generate(task, split, EVAL_SIZE, EVAL_SEEDS[split], canvas, root)


def export_png(task: str, split: str, out_dir: str | Path, limit: int = 16) -> Path:
    """The first ``limit`` canvases of a fixed validation or test set as 8-bit PNG files (``00000.png``, …)
    with ``labels.csv`` (``file,label``, the label a class name): images to try ``predict`` and
    ``evaluate`` on. Returns the labels file."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    images = eval_set(task, split).as_dict(0, limit)
    names = class_names(task)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (image, label) in enumerate(zip(images["image"], images["label"].tolist())):
        with atomic_path(out_dir / f"{i:05d}.png") as tmp:
            Image.fromarray((image[0] * 255).round().byte().numpy(), mode="L").save(tmp, format="PNG")
        rows.append({"file": f"{i:05d}.png", "label": names[label]})
    write_text_atomic(out_dir / "labels.csv", csv_text(rows))
    return out_dir / "labels.csv"


SET_CARDS = REPO_ROOT / "reference" / "two_digit_sets.json"


def record_cards(cards: list[dict], path: Path = SET_CARDS) -> None:
    cards_module.record_cards(cards, path)


def verify_cards(cards: list[dict], path: Path = SET_CARDS) -> None:
    """Raise naming the first set whose card (content hash, histograms) differs from the recorded one."""
    cards_module.check_cards(cards, path, ("task", "split"), "python -m saccadelib data two-digit --record",
                             "MNIST under data/ or the generator changed; delete data/MNIST and rerun "
                             "`python -m saccadelib data mnist`")


def describe(data: TwoDigitSet) -> dict:
    """The card recorded beside every result: what the set is and its content hash."""
    spec = task_spec(data.task)
    return {
        "task": data.task,
        "split": data.split,
        "n": len(data),
        "seed": list(data.seed),
        "canvas": data.canvas,
        "n_classes": spec.n_classes,
        "sha256": data.sha256(),
        "label_histogram": torch.bincount(data.label, minlength=spec.n_classes).tolist(),
        "digit_histogram": torch.bincount(data.digits.view(-1), minlength=10).tolist(),
    }


# ------------------------------------------------------------------------------------- training

class TwoDigitStream(IterableDataset):
    """Fresh training canvases every epoch, generated a batch at a time.

    Batch b of epoch e is ``generate(task, split, batch, seed=(seed, e, b))``: the stream is a pure
    function of (seed, epoch), so a resumed run sees exactly the canvases an uninterrupted one would,
    and DataLoader workers split batches without coordination. Use ``DataLoader(stream, batch_size=None)``
    and call ``set_epoch`` before each epoch.
    """

    def __init__(self, task: str, n_per_epoch: int, batch_size: int, seed: int = 0, canvas: int = 100,
                 split: str = "train", root: str | Path | None = None, image_side: int | None = None,
                 rank: int = 0):
        task_spec(task)
        check_split(split)
        if n_per_epoch <= 0 or batch_size <= 0:
            raise ValueError("n_per_epoch and batch_size must be positive")
        self.task, self.split, self.canvas, self.root, self.image_side = task, split, canvas, root, image_side
        self.rank = rank  # process rank in a multi-process run: each draws its own canvases
        self.n_per_epoch, self.batch_size, self.seed = n_per_epoch, batch_size, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.n_per_epoch // self.batch_size)

    def batch(self, b: int) -> dict:
        size = min(self.batch_size, self.n_per_epoch - b * self.batch_size)
        seed = (self.seed, self.epoch, b) + ((self.rank,) if self.rank else ())  # rank 0: the one-process stream
        canvases = generate(self.task, self.split, size, seed, self.canvas, self.root)
        return dataclasses.replace(canvases, image_side=self.image_side).as_dict()

    def __iter__(self) -> Iterator[dict]:
        worker = get_worker_info()
        first, step = (worker.id, worker.num_workers) if worker else (0, 1)
        for b in range(first, len(self), step):
            yield self.batch(b)

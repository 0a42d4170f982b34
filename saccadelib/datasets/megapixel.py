"""Megapixel MNIST (docs/tasks.md): five native-size MNIST digits and fifty noise strokes on a 1500²
canvas, the field's test of whether a model needs the full resolution (a 28-px digit is under 1 px in a
32² proxy and about 3 px in a 180² one).

One canvas: the majority class t is uniform over 0-9; three digits of class t and two of other classes
(drawn with replacement), each pasted whole at a uniform position where its box overlaps no other
digit's; fifty 28² noise patterns from the split's bank of 50, each the union of two straight strokes.
Every paste overwrites its whole 28² window, black included; the noise is pasted first by default, so
digits stay intact (``order="digits_first"`` pastes them first, as attention sampling's generator did).
Labels: ``majority`` (t), ``max`` (largest digit), ``top`` (the digit with the smallest row), ``multi``
(the classes present, 10 × 0/1).

Sets are fixed (train 5,000 canvases from MNIST-train[0:50000], val 1,000 from MNIST-train[50000:],
test 1,000 from MNIST-test), stored sparse under ``data/megapixel_mnist/`` by
``python -m saccadelib data megapixel`` and checked against ``reference/megapixel_sets.json``. The decoy
variants (``decoys="blobs"`` or ``"lookalikes"``: megapixel_decoys.py) add five shapes that are not digits
to each canvas; ``data megapixel --decoys KIND`` stores them beside, checked against
``reference/megapixel_decoy_sets.json``.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..paths import REPO_ROOT, atomic_path, data_dir
from ..window_stats import hit_matrix
from . import megapixel_decoys, twodigit
from .cards import check_cards, record_cards
from .sparse import SparseImages

SIDE = 1500
DIGIT = twodigit.DIGIT
DIGITS, MAJORITY = 5, 3
BANK, STROKES = 50, 50  # noise patterns per split, noise placements per canvas
STROKE_SAMPLES = 56
MIRROR_P = 0.44  # chance that a pattern's second stroke is mirrored left-right
LABELS = ("majority", "max", "top")  # the single labels (one class per canvas)
TASK_LABELS = (*LABELS, "multi")  # and the set of classes present: each a task (``multi``: ten 0/1 flags)
ORDERS = ("noise_first", "digits_first")
SIZES = {"train": 5_000, "val": 1_000, "test": 1_000}
SEEDS = {"train": 1_500_001, "val": 1_500_002, "test": 1_500_003}
CODE = 3  # enters the seed, beside the two-digit tasks' codes


@dataclass(frozen=True)
class MegapixelConfig:
    """What a set is made of: the published definition by default."""
    side: int = SIDE
    order: str = "noise_first"
    decoys: str = "none"  # megapixel_decoys.KINDS

    def __post_init__(self):
        megapixel_decoys.check_kind(self.decoys)
        if self.order not in ORDERS:
            raise ValueError(f"unknown paste order {self.order!r}; valid: {', '.join(ORDERS)}")
        if self.side < 4 * DIGIT:
            raise ValueError(f"side must be at least {4 * DIGIT} to hold the digits and strokes, got {self.side}")


def _rng(split: str, seed: int, part: int, *stream: int) -> np.random.Generator:
    """Part 0: the split's noise bank; part i + 1: canvas i; ``stream`` (the decoys'): another stream of it."""
    entropy = [seed, CODE, twodigit.SPLITS[split], part, *stream]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def stroke(angle: float) -> np.ndarray:
    """bool [28, 28]: a straight stroke from the block's top-left corner at ``angle`` from the row axis,
    rasterised from evenly spaced samples along it until it leaves the block."""
    r = np.linspace(0, DIGIT * math.sqrt(2), STROKE_SAMPLES)
    cols, rows = np.round(r * math.cos(angle)).astype(int), np.round(r * math.sin(angle)).astype(int)
    inside = (rows < DIGIT) & (cols < DIGIT)
    block = np.zeros((DIGIT, DIGIT), dtype=bool)
    block[rows[inside], cols[inside]] = True
    return block


def noise_bank(rng: np.random.Generator) -> np.ndarray:
    """uint8 [BANK, 28, 28]: each pattern the union of its own stroke and another pattern's stroke
    (mirrored left-right at random), at 80-100% intensity: shapes like V, Λ, X or /."""
    first = np.stack([stroke(u * math.pi / 2.5) for u in rng.random(BANK)])
    second = first[rng.permutation(BANK)]
    mirror = rng.random(BANK) < MIRROR_P
    second[mirror] = second[mirror][:, :, ::-1]
    intensity = np.round(255 * rng.uniform(0.8, 1.0, size=BANK)).astype(np.uint8)
    return (first | second).astype(np.uint8) * intensity[:, None, None]


def digit_corners(rng: np.random.Generator, side: int) -> np.ndarray:
    """int [5, 2] (x, y) top-left corners, redrawn until no two digit boxes overlap."""
    corners: list[np.ndarray] = []
    while len(corners) < DIGITS:
        corner = rng.integers(0, side - DIGIT + 1, size=2)
        if all(np.any(np.abs(corner - c) >= DIGIT) for c in corners):
            corners.append(corner)
    return np.stack(corners)


@dataclass
class MegapixelSet:
    """A fixed split: sparse canvases, the four labels, and where each digit is."""
    split: str
    images: SparseImages
    labels: dict[str, torch.Tensor]  # majority, max, top: int64 [n]; multi: uint8 [n, 10]
    digits: torch.Tensor  # int64 [n, 5] the digits' classes, in a random order (three are the majority class)
    boxes: torch.Tensor  # float32 [n, 5, 4] x0, y0, x1, y1 canvas pixels
    source: torch.Tensor  # int64 [n, 5] each digit's index in the split's MNIST pool
    config: MegapixelConfig = MegapixelConfig()
    label: str = "majority"  # which label ``as_dict`` gives as "label"
    decoy_boxes: torch.Tensor | None = None  # float32 [n, 5, 4] the decoys' boxes, in a decoy set

    def __len__(self) -> int:
        return len(self.images)

    def with_label(self, label: str) -> "MegapixelSet":
        if label not in TASK_LABELS:
            raise ValueError(f"unknown Megapixel MNIST label {label!r}; valid: {', '.join(TASK_LABELS)}")
        return replace(self, label=label)

    def as_dict(self, start: int = 0, stop: int | None = None, order: list[int] | None = None) -> dict:
        part = slice(start, stop) if order is None else torch.as_tensor(order[start:stop], dtype=torch.long)
        boxes = self.boxes[part]
        batch = {"image": self.images[part].source(), "label": self.labels[self.label][part],
                 "digits": self.digits[part], "boxes": boxes, "regions": boxes / self.config.side * 2 - 1}
        if self.decoy_boxes is not None:
            batch["decoy_boxes"] = self.decoy_boxes[part]
        return batch

    def glimpse_hits(self, windows: torch.Tensor, batch: dict) -> torch.Tensor:
        """[N, T, 5] bool: glimpse t's window holds most of digit d's box."""
        return hit_matrix(windows, batch["boxes"], self.config.side)

    def object_boxes(self, batch: dict) -> tuple[torch.Tensor, int]:
        """The batch's digit boxes [N, 5, 4] and the side of the canvas pixels they are in."""
        return batch["boxes"], self.config.side

    def decoys(self, batch: dict) -> torch.Tensor | None:
        """The batch's decoy boxes [N, 5, 4] (in the pixels of ``object_boxes``), or None in a plain set."""
        return batch.get("decoy_boxes")

    def sha256(self) -> str:
        digest = hashlib.sha256()
        self.images.digest(digest)
        for name in ("majority", "max", "top", "multi"):
            digest.update(self.labels[name].contiguous().numpy().tobytes())
        for tensor in (self.digits, self.boxes) + (() if self.decoy_boxes is None else (self.decoy_boxes,)):
            digest.update(tensor.contiguous().numpy().tobytes())
        return digest.hexdigest()

    def label_histogram(self) -> list[int]:
        """Canvases per class of the label (for ``multi``: canvases where each class is present)."""
        label = self.labels[self.label]
        return (label.sum(0) if label.dim() == 2 else torch.bincount(label, minlength=10)).tolist()

    def describe(self) -> dict:
        decoys = self.config.decoys
        card = {"task": task_name(self.label, decoys), "split": self.split, "n": len(self),
                "side": self.config.side, "order": self.config.order, "sha256": self.sha256(),
                "label_histogram": self.label_histogram(),
                "nonzero_pixels_mean": round(float((self.images.index < self.config.side ** 2).sum(1)
                                                   .double().mean()), 1)}
        return card if decoys == "none" else {**card, "decoys": decoys}


def task_name(label: str, decoys: str = "none") -> str:
    """``megapixel_LABEL``, or ``megapixel_DECOYS_LABEL`` for a decoy set."""
    return f"megapixel_{label}" if decoys == "none" else f"megapixel_{decoys}_{label}"


def generate(split: str, n: int | None = None, seed: int | None = None, config: MegapixelConfig = MegapixelConfig(),
             root: str | Path | None = None, chunk: int = 100) -> MegapixelSet:
    """Render a split (``n`` canvases, default its published size) deterministically from ``seed``."""
    n = SIZES[twodigit.check_split(split)] if n is None else n
    seed = SEEDS[split] if seed is None else seed
    images, classes = (t.numpy() for t in twodigit.digit_pool(split, root))
    by_class = [np.flatnonzero(classes == c) for c in range(10)]
    other = [np.flatnonzero(classes != c) for c in range(10)]
    bank = noise_bank(_rng(split, seed, 0))
    glyphs = images[np.isin(classes, megapixel_decoys.LOOKALIKE_CLASSES)]
    ramp = np.arange(DIGIT)
    offsets = (ramp[:, None] * config.side + ramp[None, :]).ravel()

    pixels, sources, corners = [], np.zeros((n, DIGITS), dtype=np.int64), np.zeros((n, DIGITS, 2), dtype=np.int64)
    decoy_corners = np.zeros((n, megapixel_decoys.COUNT, 2), dtype=np.int64)
    for i in range(n):
        rng = _rng(split, seed, i + 1)  # one stream per canvas: canvas i does not depend on n
        t = rng.integers(10)
        sources[i] = np.concatenate([rng.choice(by_class[t], MAJORITY), rng.choice(other[t], DIGITS - MAJORITY)])
        corners[i] = digit_corners(rng, config.side)
        noise = rng.integers(0, BANK, size=STROKES)
        noise_at = rng.integers(DIGIT, config.side - 2 * DIGIT + DIGIT, size=(STROKES, 2))
        listed = rng.permutation(DIGITS)  # the digits are listed in a random order: the order says nothing
        sources[i], corners[i] = sources[i][listed], corners[i][listed]  # of the label (the oracle reads it)
        patches = [(bank[noise], noise_at), (images[sources[i]], corners[i].copy())]
        if config.decoys != "none":
            decoys, decoy_corners[i] = megapixel_decoys.draw(config.decoys, _rng(split, seed, i + 1, megapixel_decoys.STREAM),
                                                             config.side, corners[i], glyphs)
            patches.insert(1, (decoys, decoy_corners[i].copy()))
        if config.order == "digits_first":
            patches.reverse()
        pixels.append(_paste(patches, offsets, config.side))
    digits = torch.from_numpy(classes[sources])
    corners_t = torch.from_numpy(corners).to(torch.float32)
    return MegapixelSet(split, SparseImages.from_pixels(pixels, config.side), _labels(digits, corners_t),
                        digits, _boxes(corners), torch.from_numpy(sources), config,
                        decoy_boxes=None if config.decoys == "none" else _boxes(decoy_corners))


def _boxes(corners: np.ndarray) -> torch.Tensor:
    """float32 [n, k, 4] x0, y0, x1, y1 of the 28² boxes whose top-left corners are ``corners`` [n, k, 2]."""
    at = torch.from_numpy(corners).to(torch.float32)
    return torch.cat([at, at + DIGIT], -1)


def _paste(patches: list[tuple[np.ndarray, np.ndarray]], offsets: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Each 28² patch overwrites its window in the order given: the last paste of a pixel wins."""
    index = np.concatenate([(c[:, 1] * side + c[:, 0])[:, None] + offsets for _, c in patches]).ravel()
    values = np.concatenate([p.reshape(len(p), -1) for p, _ in patches]).ravel()
    unique, last = np.unique(index[::-1], return_index=True)
    return unique, values[::-1][last]


def _labels(digits: torch.Tensor, corners: torch.Tensor) -> dict[str, torch.Tensor]:
    top = torch.argmin(corners[..., 1], dim=1)  # smallest row; ties go to the first listed
    counts = torch.zeros(len(digits), 10, dtype=torch.long).scatter_add_(1, digits, torch.ones_like(digits))
    return {"majority": counts.argmax(1), "max": digits.max(1).values,
            "top": digits.gather(1, top[:, None]).squeeze(1), "multi": (counts > 0).to(torch.uint8)}


# ------------------------------------------------------------------------------------ storage

def set_path(split: str, root: str | Path | None = None) -> Path:
    return Path(root or default_root()) / f"{split}.npz"


def save(data: MegapixelSet, path: Path) -> None:
    """One compressed file per split, written atomically."""
    used = (data.images.index < data.config.side ** 2)
    counts = used.sum(1)
    arrays = {"index": data.images.index[used].to(torch.int32).numpy(), "values": data.images.values[used].numpy(),
              "counts": counts.numpy(), "digits": data.digits.numpy(), "boxes": data.boxes.numpy(),
              "source": data.source.numpy(), "multi": data.labels["multi"].numpy(),
              "side": np.int64(data.config.side), "order": np.array(data.config.order),
              "decoys": np.array(data.config.decoys)}
    if data.decoy_boxes is not None:
        arrays["decoy_boxes"] = data.decoy_boxes.numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)


def load(split: str, root: str | Path | None = None) -> MegapixelSet:
    path = set_path(twodigit.check_split(split), root)
    if not path.exists():
        raise FileNotFoundError(f"no Megapixel MNIST {split} set at {path}; make it with "
                                "`python -m saccadelib data megapixel` (a decoy set: with --decoys blobs or lookalikes)")
    with np.load(path) as f:
        counts, side = f["counts"], int(f["side"])
        ends = np.cumsum(counts)
        pixels = list(zip(np.split(f["index"], ends[:-1]), np.split(f["values"], ends[:-1])))
        digits, boxes = torch.from_numpy(f["digits"]), torch.from_numpy(f["boxes"])
        # sets stored before the decoys existed have no "decoys" entry: they are plain
        config = MegapixelConfig(side=side, order=str(f["order"]), decoys=str(f["decoys"]) if "decoys" in f else "none")
        source = torch.from_numpy(f["source"])
        decoy_boxes = torch.from_numpy(f["decoy_boxes"]) if "decoy_boxes" in f else None
    images = SparseImages.from_pixels(pixels, side)
    return MegapixelSet(split, images, _labels(digits, boxes[..., :2]), digits, boxes, source, config,
                        decoy_boxes=decoy_boxes)


@lru_cache(maxsize=6)
def stored_set(split: str, root: str | Path | None = None) -> MegapixelSet:
    """A stored split, read once per process."""
    return load(split, root)


SET_CARDS = REPO_ROOT / "reference" / "megapixel_sets.json"
DECOY_CARDS = REPO_ROOT / "reference" / "megapixel_decoy_sets.json"


def default_root(config: MegapixelConfig = MegapixelConfig()) -> Path:
    """``data/megapixel_mnist``, with ``_SIDE_ORDER`` for another side or order and ``_DECOYS`` for a decoy set."""
    plain = replace(config, decoys="none") == MegapixelConfig()
    suffix = ("" if plain else f"_{config.side}_{config.order}") + ("" if config.decoys == "none" else f"_{config.decoys}")
    return data_dir() / f"megapixel_mnist{suffix}"


def _card_file(config: MegapixelConfig) -> tuple[Path, tuple[str, ...]] | None:
    """Where the recorded cards of ``config``'s sets are, and what tells them apart: the published
    definition and its decoy variants (at the published side and order) have them."""
    if replace(config, decoys="none") != MegapixelConfig():
        return None
    return (SET_CARDS, ("split",)) if config.decoys == "none" else (DECOY_CARDS, ("task", "split"))


def prepare(root: str | Path | None = None, config: MegapixelConfig = MegapixelConfig(), record: bool = False,
            cards_path: Path | None = None) -> list[dict]:
    """Generate the splits missing under ``root`` and check every split's card against the recorded ones
    (the published definition and its decoy variants: ``_card_file``, or ``cards_path``); ``record``
    rewrites them instead, keeping the other sets' cards the file holds. Returns the cards."""
    root = Path(root or default_root(config))
    cards = []
    for split in SIZES:
        path = set_path(split, root)
        if not path.exists():
            save(generate(split, config=config), path)
        data = load(split, root)
        if data.config != config:
            raise ValueError(f"{path} holds a {_described(data.config)} set, not the {_described(config)} one asked "
                             f"for; give another --root or delete {root}")
        cards.append(data.describe())
    checked = _card_file(config)
    if checked is None:
        return cards
    path, key = checked
    path = cards_path or path
    command = "python -m saccadelib data megapixel" + ("" if config.decoys == "none" else f" --decoys {config.decoys}")
    if record:
        fresh = {tuple(card[k] for k in key) for card in cards}
        kept = [] if not path.exists() else \
            [c for c in json.loads(path.read_text())["sets"] if tuple(c.get(k) for k in key) not in fresh]
        record_cards(kept + cards, path)
        return cards
    check_cards(cards, path, key, f"{command} --record",
                f"Megapixel MNIST under {root} changed; delete {root} and rerun `{command}`")
    return cards


def _described(config: MegapixelConfig) -> str:
    return f"{config.side}² {config.order}" + ("" if config.decoys == "none" else f" {config.decoys}")


# ------------------------------------------------------------------------------------ training

class MegapixelStream:
    """The fixed training split in a fresh seeded order each epoch (a pure function of (seed, epoch));
    process ``rank`` of ``world`` takes every world-th canvas of that order."""

    def __init__(self, data: MegapixelSet, batch_size: int, seed: int = 0, rank: int = 0, world: int = 1,
                 train_size: int | None = None):
        self.data, self.batch_size, self.seed, self.rank, self.world = data, batch_size, seed, rank, world
        self.size = min(train_size or len(data), len(data))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-(self.size // self.world) // self.batch_size)

    def __iter__(self) -> Iterator[dict]:
        order = np.random.default_rng((self.seed, self.epoch)).permutation(len(self.data))[:self.size].tolist()
        mine = order[self.rank::self.world][:self.size // self.world]
        for start in range(0, len(mine), self.batch_size):
            yield self.data.as_dict(start, start + self.batch_size, mine)

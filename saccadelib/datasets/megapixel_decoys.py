"""Decoys for Megapixel MNIST (docs/tasks.md): shapes that are not digits, placed as digits are, so that
looking where the ink is no longer finds the digits.

- ``blobs``: solid discs and squares 20-28 px across at 80-100% intensity, several times a digit's ink
  (records/megapixel_decoys/proxy.md): an ink prior ranks them above digits, while a 128² proxy shows them as brighter, fuller spots
  than digits, so a policy that reads the proxy can learn to pass them by.
- ``lookalikes``: handwritten 3s, 4s and 7s of the split, mirrored left to right or turned half round
  (at even odds): glyphs that are no digit (Ɛ, a mirrored 4, L), written with a digit's strokes, ink and
  height. A 128² proxy of a 1500² canvas averages 11.7 × 11.7 canvas pixels into each of its pixels, so a
  glyph is a blob of 2-3 proxy pixels there, as a digit is: the proxy cannot tell them from digits, the
  reader can in the crops. (Digits shuffled within small blocks, the other way to keep a digit's ink, are
  dimmer in the proxy: their ink spreads over the blocks.)

A decoy set holds the plain set's canvases with decoys added: its digits, noise and labels are the plain
set's, canvas by canvas, since the decoys are drawn from a random stream of their own. They overlap no
digit and no other decoy, and are pasted after the noise and before the digits.
"""
from __future__ import annotations

import numpy as np

from .twodigit import DIGIT

KINDS = ("none", "blobs", "lookalikes")
COUNT = 5  # decoys per canvas: as many as digits, so an ink prior's first five cells can all be decoys
LOOKALIKE_CLASSES = (3, 4, 7)  # digits whose mirror image and half turn are no digit (0, 1, 8 are their own; 6 ↔ 9)
BLOB_SIDES = (20, 28)  # blobs: the smallest and largest side, inclusive
STREAM = 11  # enters the decoys' seed beside a canvas's: their own stream


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown Megapixel MNIST decoys {kind!r}; valid: {', '.join(KINDS)}")
    return kind


def blobs(rng: np.random.Generator, n: int) -> np.ndarray:
    """uint8 [n, 28, 28]: solid discs or squares (one or the other at even odds) of a side drawn from
    BLOB_SIDES, centred in the block, at 80-100% intensity."""
    sides = rng.integers(BLOB_SIDES[0], BLOB_SIDES[1] + 1, size=n)
    discs = rng.random(n) < 0.5
    intensity = np.round(255 * rng.uniform(0.8, 1.0, size=n)).astype(np.uint8)
    centre = np.arange(DIGIT) + 0.5 - DIGIT / 2  # pixel centres about the block's centre
    rows, cols = np.meshgrid(centre, centre, indexing="ij")
    half = sides[:, None, None] / 2
    inside = np.where(discs[:, None, None], rows ** 2 + cols ** 2 <= half ** 2,
                      (np.abs(rows) <= half) & (np.abs(cols) <= half))
    return inside.astype(np.uint8) * intensity[:, None, None]


def lookalikes(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 [n, 28, 28]: each digit mirrored left to right or turned half round, at even odds."""
    turned = rng.random(len(digits)) < 0.5
    return np.where(turned[:, None, None], digits[:, ::-1, ::-1], digits[:, :, ::-1])


def corners(rng: np.random.Generator, side: int, taken: np.ndarray) -> np.ndarray:
    """int [COUNT, 2] (x, y) top-left corners of decoys, redrawn until no box overlaps a box in ``taken``
    ([k, 2], the digits') or another decoy's."""
    placed: list[np.ndarray] = []
    while len(placed) < COUNT:
        corner = rng.integers(0, side - DIGIT + 1, size=2)
        if all(np.any(np.abs(corner - c) >= DIGIT) for c in [*taken, *placed]):
            placed.append(corner)
    return np.stack(placed)


def draw(kind: str, rng: np.random.Generator, side: int, digit_corners: np.ndarray,
         glyphs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One canvas's decoys: (uint8 [COUNT, 28, 28] patches, int [COUNT, 2] corners). ``glyphs``: the
    split's MNIST images of LOOKALIKE_CLASSES [M, 28, 28], whence lookalikes are made."""
    at = corners(rng, side, digit_corners)
    if kind == "blobs":
        return blobs(rng, COUNT), at
    return lookalikes(glyphs[rng.integers(0, len(glyphs), size=COUNT)], rng), at

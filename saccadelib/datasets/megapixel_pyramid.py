"""Megapixel MNIST at scale: the stored 1500² canvases written as tiled pyramidal TIFFs of side 1500·f
(f a power of two: 6,000², 24,000², 96,000² for f = 4, 16, 64), tile by tile, never a whole large canvas
in memory.

Every canvas pixel becomes an f×f block, so the digits and strokes grow with the canvas (a digit is
28·f pixels wide) and the task is the same at every side: only the file grows. The pyramid's levels are
the canvas at f, f/2, …, 1 pixels per canvas pixel (level log2 f *is* the 1500² canvas) and then its box
reductions down to 256² or less: exact box reductions of level 0 all the way, the case in which the
pyramid reader matches the image in memory (docs/your_images.md). Tiles that are all black are left out
of the file (TIFF's sparse tiles read as zeros), so a 96,000² canvas takes a few MB.

``python -m saccadelib data megapixel-pyramid --side S --split test --limit N`` writes
``data/megapixel_pyramid/<S>/<split>/00000.tif …`` with ``labels.csv`` (``file,label`` and every label),
the files ``evaluate`` and ``predict`` read; ``--split all`` writes every split and a ``manifest.csv``
(``file,label,split``) that ``train --images DIR --manifest DIR/manifest.csv`` trains on.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Iterator

import numpy as np
import tifffile

from ..datasets.pyramids import box_reduce
from ..paths import csv_text, data_dir, write_text_atomic
from . import megapixel

SCALED_SIDES = (6_000, 24_000, 96_000)
TILE = 256
SMALLEST = 256  # the pyramid goes down to the first level whose side is at most this


def factor_for(side: int, canvas_side: int = megapixel.SIDE) -> int:
    """The pixels per canvas pixel of a scaled side: a power of two, ``side = canvas_side · factor``."""
    factor = side // canvas_side
    if factor * canvas_side != side or factor < 1 or factor & (factor - 1):
        sides = ", ".join(f"{canvas_side * 2 ** k:,}" for k in range(0, 7))
        raise ValueError(f"side {side} is not the {canvas_side}² canvas times a power of two; valid: {sides}")
    return factor


def _replicated_tiles(canvas: np.ndarray, scale: int, tile: int) -> Iterator[np.ndarray | None]:
    """The tiles, row by row, of ``canvas`` with each pixel an ``scale``×``scale`` block (``tile`` a multiple
    of ``scale``); None for an all-black tile (left out of the file)."""
    per_tile = tile // scale  # canvas pixels per tile side
    side = canvas.shape[0] * scale
    count = math.ceil(side / tile)
    first = True
    for ty in range(count):
        for tx in range(count):
            block = canvas[ty * per_tile:(ty + 1) * per_tile, tx * per_tile:(tx + 1) * per_tile]
            if not block.any() and not first:  # tifffile reads the first tile's shape: always give it
                yield None
                continue
            first = False
            out = np.zeros((tile, tile), dtype=np.uint8)
            grown = np.repeat(np.repeat(block, scale, 0), scale, 1)
            out[:grown.shape[0], :grown.shape[1]] = grown
            yield out


def _array_tiles(level: np.ndarray, tile: int) -> Iterator[np.ndarray | None]:
    """The tiles, row by row, of a level held in memory (the small ones), padded at the edges."""
    rows, cols = math.ceil(level.shape[0] / tile), math.ceil(level.shape[1] / tile)
    for ty in range(rows):
        for tx in range(cols):
            out = np.zeros((tile, tile), dtype=np.uint8)
            part = level[ty * tile:(ty + 1) * tile, tx * tile:(tx + 1) * tile]
            out[:part.shape[0], :part.shape[1]] = part
            yield out


def write_scaled_canvas(canvas: np.ndarray, path: str | Path, factor: int, tile: int = TILE) -> Path:
    """Write ``canvas`` (uint8 [s, s]) as a pyramidal BigTIFF of side s·``factor``, tile by tile."""
    if tile % factor and factor % tile:
        raise ValueError(f"tile {tile} and factor {factor} must divide one another")
    levels: list[tuple[int, int, object]] = []  # (height, width, tile source) from level 0 down
    scale = factor
    while scale >= 1:
        levels.append((canvas.shape[0] * scale, canvas.shape[1] * scale, ("replicate", scale)))
        if canvas.shape[0] * scale <= SMALLEST:
            break
        scale //= 2
    reduced = canvas
    while levels[-1][0] > SMALLEST:
        reduced = box_reduce(reduced)
        levels.append((reduced.shape[0], reduced.shape[1], ("array", reduced)))

    def tiles(kind):
        how, value = kind
        return _replicated_tiles(canvas, value, tile) if how == "replicate" else _array_tiles(value, tile)

    tmp = Path(path).with_name(f".{Path(path).name}.partial")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    options = {"dtype": np.uint8, "tile": (tile, tile), "compression": "zlib", "photometric": "minisblack"}
    with tifffile.TiffWriter(tmp, bigtiff=True) as tif:  # successive pages: what tifffile and OpenSlide read
        for k, (height, width, kind) in enumerate(levels):
            tif.write(tiles(kind), shape=(height, width), subfiletype=1 if k else 0, **options)
    tmp.replace(path)  # whole or absent: a stopped export resumes
    return Path(path)


def export(side: int, split: str, out_dir: str | Path | None = None, limit: int | None = None,
           label: str = "majority", root: str | Path | None = None, log=print) -> Path:
    """Write the first ``limit`` canvases of a stored split at ``side`` (files already written are kept)
    with ``labels.csv``; returns the labels file."""
    if label not in megapixel.LABELS:
        raise ValueError(f"unknown Megapixel MNIST label {label!r}; valid: {', '.join(megapixel.LABELS)}")
    data = megapixel.stored_set(split, root)
    factor = factor_for(side, data.config.side)
    out = Path(out_dir) if out_dir else data_dir() / "megapixel_pyramid" / str(side) / split
    out.mkdir(parents=True, exist_ok=True)
    count = len(data) if limit is None else min(limit, len(data))
    rows = []
    for i in range(count):
        name = f"{i:05d}.tif"
        if not (out / name).exists():
            write_scaled_canvas(data.images[i:i + 1].dense()[0].numpy(), out / name, factor)
            if log and (i + 1) % max(1, count // 10) == 0:
                log(f"megapixel-pyramid {side}² {split}: {i + 1}/{count}")
        rows.append({"file": name, "label": int(data.labels[label][i]),
                     **{k: int(data.labels[k][i]) for k in megapixel.LABELS}})
    write_text_atomic(out / "labels.csv", csv_text(rows))
    return out / "labels.csv"


def export_manifest(side: int, out_dir: str | Path | None = None, limit: int | None = None,
                    label: str = "majority", root: str | Path | None = None, log=print) -> Path:
    """Every split at ``side`` under ``out_dir/{train,val,test}/`` and one ``manifest.csv``
    (``file,label,split``, the label a class name "0"-"9"); returns the manifest."""
    out = Path(out_dir) if out_dir else data_dir() / "megapixel_pyramid" / str(side)
    rows = []
    for split in ("train", "val", "test"):
        labels = export(side, split, out / split, limit, label, root, log)
        with open(labels, newline="") as handle:
            rows += [{"file": f"{split}/{row['file']}", "label": row["label"], "split": split}
                     for row in csv.DictReader(handle)]
    write_text_atomic(out / "manifest.csv", csv_text(rows))
    return out / "manifest.csv"

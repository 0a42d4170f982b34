"""Writing tiled pyramidal TIFFs (BigTIFF) from images in memory: the files the pyramid source reads."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile


def box_reduce(image, factor: int = 2):
    """``image`` [H, W] or [H, W, C] (uint8 or uint16) reduced by ``factor`` on each side by averaging
    factor×factor blocks (rounded; a ragged edge is dropped): one pyramid level from the one above it."""
    h, w = image.shape[0] // factor, image.shape[1] // factor
    blocks = image[:h * factor, :w * factor].reshape(h, factor, w, factor, *image.shape[2:])
    return np.rint(blocks.mean(axis=(1, 3))).astype(image.dtype)


def write_pyramid(path: str | Path, image, tile: int = 256, smallest: int = 256, compression: str = "zlib",
                  mpp: float | None = None) -> Path:
    """Write ``image`` (a numpy array [H, W] or [H, W, 3], uint8 or uint16) as a tiled pyramidal BigTIFF:
    level 0 and box reductions by 2, 4, … down to the first level whose longest side is at most
    ``smallest``, each in ``tile``² tiles; ``mpp``: level 0's microns per pixel, in the resolution tags
    (each level's scaled by its reduction). For images that fit in memory; ``datasets.megapixel_pyramid``
    writes larger ones tile by tile."""
    levels = [image]
    while max(levels[-1].shape[:2]) > smallest and min(levels[-1].shape[:2]) >= 2:
        levels.append(box_reduce(levels[-1]))
    photometric = "rgb" if image.ndim == 3 else "minisblack"
    path = Path(path)
    with tifffile.TiffWriter(path, bigtiff=True) as tif:  # the levels as successive pages, reduced ones
        for k, level in enumerate(levels):                 # marked so: what tifffile and OpenSlide read
            resolution = {} if mpp is None else {"resolution": (1e4 / (mpp * 2 ** k),) * 2, "resolutionunit": "CENTIMETER"}
            tif.write(level, tile=(tile, tile), subfiletype=1 if k else 0, compression=compression,
                      photometric=photometric, **resolution)
    return path

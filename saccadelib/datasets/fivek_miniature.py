"""A FiveK-shaped folder of synthetic photos, for checking the FiveK pipeline without the 50 GB download."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from ..paths import atomic_path, write_text_atomic
from .fivek import EXPERTS, SUBJECTS, FiveKError


def write_miniature(dest: str | Path, per_class: int = 12, size: tuple[int, int] = (3000, 2000), seed: int = 0,
                    photos: str = "c") -> Path:
    """A FiveK-shaped folder for pipeline checks: ``categories.txt``, ``filesAdobe.txt`` and synthetic
    photos, ``per_class`` per subject: expert ``photos``' 16-bit TIFF renditions (``tiff16_<x>/<id>.tif``),
    or with ``photos="raw"`` raw DNGs (an RGGB mosaic, ``raw_photos/HQa1to700/photos/<id>.dng``) that
    LibRaw demosaics like a camera's.

    Each class has its own small texture (stripes at a class angle) somewhere on a smooth random
    background, visible at full resolution and barely in the proxy. Not a result: a pipeline check.
    Files already written are kept (the miniature is a pure function of its arguments).
    """
    if photos != "raw" and photos not in EXPERTS:
        raise FiveKError(f"unknown photos {photos!r}; valid: raw, {', '.join(EXPERTS)}")
    dest = Path(dest)
    folder = dest / ("raw_photos/HQa1to700/photos" if photos == "raw" else f"tiff16_{photos}")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines, ids = [], []
    width, height = size
    for k in range(per_class * len(SUBJECTS)):
        subject = SUBJECTS[k % len(SUBJECTS)]
        photo = f"a{k + 1:04d}"
        ids.append(photo)
        lines.append(f"{photo},outdoor,day,sun_sky,{subject}")
        background = rng.integers(40, 215, size=(height // 250, width // 250, 3), dtype=np.uint8)
        patch_side = min(width, height) // 8
        x0, y0 = rng.integers(0, width - patch_side), rng.integers(0, height - patch_side)
        path = folder / f"{photo}.{'dng' if photos == 'raw' else 'tif'}"
        if path.exists():
            continue
        image = np.asarray(Image.fromarray(background).resize((width, height), Image.BILINEAR)).copy()
        yy, xx = np.mgrid[0:patch_side, 0:patch_side]
        angle = np.pi * SUBJECTS.index(subject) / len(SUBJECTS)
        stripes = (np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / 12) > 0) * 255
        image[y0:y0 + patch_side, x0:x0 + patch_side] = stripes[..., None].astype(np.uint8)
        with atomic_path(path) as tmp:
            (_write_dng if photos == "raw" else _write_tiff16)(tmp, image)
    write_text_atomic(dest / "categories.txt", "\n".join(lines) + "\n")
    write_text_atomic(dest / "filesAdobe.txt", "\n".join(ids) + "\n")
    return dest


def _write_tiff16(path: Path, image: np.ndarray) -> None:
    tifffile.imwrite(path, image.astype(np.uint16) * 257, photometric="rgb", compression="zlib",
                     compressionargs={"level": 1})


def _write_dng(path: Path, image: np.ndarray) -> None:
    """A minimal DNG 1.4: the RGGB mosaic of ``image`` (12-bit), identity colour matrix, neutral white
    balance. Enough for LibRaw (rawpy) to demosaic it as it does a camera's DNG."""
    mosaic = np.empty(image.shape[:2], np.uint16)
    linear = image.astype(np.uint16) * 16  # 8-bit values into a 12-bit range
    mosaic[0::2, 0::2], mosaic[1::2, 1::2] = linear[0::2, 0::2, 0], linear[1::2, 1::2, 2]
    mosaic[0::2, 1::2], mosaic[1::2, 0::2] = linear[0::2, 1::2, 1], linear[1::2, 0::2, 1]
    tags = [(33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
            (33422, "B", 4, (0, 1, 1, 2), True),  # CFAPattern: R G / G B
            (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
            (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
            (50708, "s", 0, "saccade synthetic miniature", True),  # UniqueCameraModel
            (50717, "H", 1, 4095, True),  # WhiteLevel
            (50721, "2i", 9, (1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1), True),  # ColorMatrix1
            (50728, "2I", 3, (1, 1, 1, 1, 1, 1), True),  # AsShotNeutral
            (50778, "H", 1, 21, True)]  # CalibrationIlluminant1: D65
    tifffile.imwrite(path, mosaic, photometric=32803, subfiletype=0, extratags=tags)

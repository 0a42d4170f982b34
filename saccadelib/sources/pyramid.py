"""Pyramidal image files as sources: tiled TIFF and BigTIFF read lazily through tifffile,
a few tiles at a time, so that an image of tens of gigapixels costs what its proxy and its crops need.

A pyramid stores the image at its full size (level 0) and at reductions by 2, 4, 8… (levels 1, 2, …), each
cut into tiles. The proxy is made from the smallest level that still has ``PROXY_OVERSAMPLE`` pixels per
proxy pixel, and each crop from the smallest level that still has ``CROP_OVERSAMPLE`` pixels per crop
pixel across the window, reading only the tiles the window touches (plus a margin of a few crop pixels,
room for the gradient). On a pyramid whose levels are box reductions of level 0, the proxy and the crops
are close to those of the same image held in memory (``TensorSource``): docs/your_images.md states the
tolerance the tests hold them to.

Every read is counted: ``tiles_read`` and ``bytes_read`` (compressed bytes of those tiles in the file)
beside ``file_bytes``, and ``decoded_pixels``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import tifffile
import torch
import torch.nn.functional as F
from PIL import Image

from ..names import MAX_PIXELS
from ..sampler import supersample_factor, window_to_box
from .base import HOW_TO_PYRAMID, MIN_SIDE, ImageFileError, ImageSource
from .levels import TIFF_SUFFIXES, Counts, SlideLevels, TiffLevels
from .patches import sample_patches


def is_tiled_tiff(path: str | Path) -> bool:
    """Whether ``path`` is a TIFF whose full-size image is stored in tiles (readable region by region)."""
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        return False

    try:  # the first page's header only: cheaper than listing the file's series
        with tifffile.TiffFile(path) as tif:
            return len(tif.pages) > 0 and tif.pages.first.is_tiled
    except (tifffile.TiffFileError, OSError, ValueError, IndexError):
        return False


class PyramidSource(ImageSource):
    """One tiled (usually pyramidal) TIFF on disk, read tile by tile: ``proxy`` and differentiable
    ``crop`` as for an image in memory, with memory set by the proxy and the crops, not the image.

    ``max_pixels`` bounds what one read decodes (the proxy's level, or one window's patch), not the
    image's nominal size: a 100,000² pyramid is fine, a 100,000² TIFF with one level is refused when its
    proxy would need the whole of it.
    """
    PROXY_OVERSAMPLE = 4  # level pixels per proxy pixel, at least (then an anti-aliased resize)
    CROP_OVERSAMPLE = 2  # level pixels per crop pixel across a window, at least
    PATCH_MARGIN = 2  # crop pixels of context read on each side of a window
    READER = TiffLevels  # how the levels are read (``levels``): tifffile here, OpenSlide for a SlideSource

    def __init__(self, path: str | Path, channels: int = 3, max_pixels: int | None = MAX_PIXELS, convert: bool = False):
        if channels not in (1, 3):
            raise ImageFileError(f"channels must be 1 or 3, got {channels}")
        self.path = Path(path)
        self.channels, self.count, self.convert = channels, 1, convert
        self.max_pixels = max_pixels  # None: no limit, as for every source
        if not self.path.exists():
            raise ImageFileError(f"image file not found: {self.path}")
        self.levels = self.READER(self.path)
        samples, self.sizes, self.dtype_max = self.levels.samples, self.levels.sizes, self.levels.dtype_max
        self.height, self.width = self.sizes[0]
        self.detail_px = max(self.height, self.width)
        if min(self.height, self.width) < MIN_SIDE:
            raise ImageFileError(f"{self.path} is {self.width} × {self.height}: images must be at least {MIN_SIDE} "
                                 "pixels on each side")
        if samples not in (1, 3):
            raise ImageFileError(f"{self.path} has {samples} samples per pixel; grey (1) or RGB (3) is read here: "
                                 "drop the alpha or extra channels and save it again")
        self._grey = samples == 1
        if self._grey != (channels == 1) and not convert:
            kind, want = ("greyscale", "3 channels") if self._grey else ("colour", "1 channel")
            raise ImageFileError(f"{self.path} is {kind} but the model takes {want}: use a model trained on "
                                 f"{kind} images, or --train convert_channels=true when training on a folder")
        self.file_bytes = self.path.stat().st_size
        self.tiles_read = self.bytes_read = self.decoded_pixels = 0
        self.last_levels: list[int] = []  # the level each crop of the last call was read from
        self.proxy_level: int | None = None

    # ----------------------------------------------------------------------------- reading
    def factor(self, level: int) -> tuple[float, float]:
        """Level-0 pixels per pixel of ``level``, along x and y."""
        h, w = self.sizes[level]
        return self.width / w, self.height / h

    def _region(self, level: int, y0: int, y1: int, x0: int, x1: int):
        """The stored pixels [y0:y1, x0:x1] of ``level`` as a numpy array [h, w] or [h, w, 3], through the
        level reader, its cost counted."""
        counts = Counts()
        try:
            return self.levels.region(level, y0, y1, x0, x1, counts)
        finally:
            self.tiles_read += counts.tiles
            self.bytes_read += counts.bytes
            self.decoded_pixels += counts.pixels

    def read(self, level: int, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        """Pixels [C, y1 - y0, x1 - x0] of ``level`` as floats in [0, 1], reading only the tiles they touch."""
        area = (y1 - y0) * (x1 - x0)
        if self.max_pixels is not None and area > self.max_pixels:
            h, w = self.sizes[level]
            raise ImageFileError(f"{self.path}: reading {x1 - x0} × {y1 - y0} pixels of its {w} × {h} level "
                                 f"{level} is above the limit of {self.max_pixels:,} decoded pixels "
                                 f"(--max-pixels): it has no level small enough; {HOW_TO_PYRAMID}")

        try:
            array = self._region(level, y0, y1, x0, x1)
        except ImageFileError:
            raise
        except Exception as err:  # a truncated or corrupt tile shows only when it is decoded (zlib, JPEG, OpenSlide)
            why = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise ImageFileError(f"cannot decode {self.path} (level {level}, a corrupt or truncated tile: {why}); "
                                 "check the file, or write it again") from None
        pixels = torch.from_numpy(array.astype(np.float32) / self.dtype_max)
        pixels = pixels.unsqueeze(0) if pixels.dim() == 2 else pixels.permute(2, 0, 1)
        if self._grey and self.channels == 3:
            pixels = pixels.expand(3, -1, -1)
        elif not self._grey and self.channels == 1:  # luma, with PIL's weights ("L")
            pixels = (0.299 * pixels[0] + 0.587 * pixels[1] + 0.114 * pixels[2]).unsqueeze(0)
        return pixels.contiguous()

    def level_for(self, pixels_per_output: float, oversample: float) -> int:
        """The smallest level (highest index) that keeps ``oversample`` level pixels per output pixel, when
        an output pixel spans ``pixels_per_output`` level-0 pixels; level 0 when none does."""
        best = 0
        for level in range(len(self.sizes)):
            if max(self.factor(level)) * oversample <= pixels_per_output * (1 + 1e-9):
                best = level
        return best

    # ------------------------------------------------------------------------ the interface
    def proxy(self, size: int) -> torch.Tensor:
        level = self.level_for(min(self.height, self.width) / size, self.PROXY_OVERSAMPLE)
        self.proxy_level = level
        h, w = self.sizes[level]
        pixels = self.read(level, 0, h, 0, w)
        return F.interpolate(pixels.unsqueeze(0), size=(size, size), mode="bilinear", antialias=True,
                             align_corners=False)

    def crop(self, windows: torch.Tensor, size: int, supersample: int | None = None) -> torch.Tensor:
        """Crops [1, T, C, size, size], differentiable in the windows: each read from the level that keeps
        CROP_OVERSAMPLE pixels per crop pixel, as a patch around the window, and sampled there at the
        window's (differentiable) points, with a box prefilter of as many samples per crop pixel as the
        most detailed window's level has pixels per crop pixel (as the in-memory path takes its largest
        window's)."""
        if windows.shape[0] != 1:
            raise ValueError("a PyramidSource holds one image: windows must be [1, T, 3]")
        sample_boxes = window_to_box(windows[0].cpu().to(torch.float64), self.height, self.width)  # keeps the gradient
        patches, patch_boxes, factors, self.last_levels = [], [], [], []
        for box in sample_boxes.detach().tolist():
            x0, y0, x1, y1 = box
            level = self.level_for(max(x1 - x0, y1 - y0) / size, self.CROP_OVERSAMPLE)
            patch, patch_box, fx, fy = self._patch(level, box, size)
            patches.append(patch)
            patch_boxes.append(patch_box)
            factors.append(supersample_factor(max((x1 - x0) / fx, (y1 - y0) / fy), size))
            self.last_levels.append(level)
        crops = sample_patches(patches, patch_boxes, sample_boxes, size, supersample or max(factors))
        return crops.unsqueeze(0).to(device=windows.device, dtype=windows.dtype)

    def _patch(self, level: int, box, size: int):
        """The window's box widened by PATCH_MARGIN crop pixels, in whole pixels of ``level`` (clipped to
        the image); returns (patch [C, h, w], its box in level-0 pixels, the level's factors)."""
        x0, y0, x1, y1 = box
        fx, fy = self.factor(level)
        mx, my = self.PATCH_MARGIN * (x1 - x0) / size, self.PATCH_MARGIN * (y1 - y0) / size
        h, w = self.sizes[level]
        # a window off the image still reads one edge pixel (its crop is then the zero padding around it)
        lx0 = min(max(0, math.floor((x0 - mx) / fx)), w - 1)
        ly0 = min(max(0, math.floor((y0 - my) / fy)), h - 1)
        lx1, ly1 = min(w, math.ceil((x1 + mx) / fx)), min(h, math.ceil((y1 + my) / fy))
        lx1, ly1 = max(lx1, lx0 + 1), max(ly1, ly0 + 1)
        patch = self.read(level, ly0, ly1, lx0, lx1)
        return patch, (lx0 * fx, ly0 * fy, lx1 * fx, ly1 * fy), fx, fy

    def overview(self, longest: int = 2048) -> torch.Tensor:
        """The whole image at the smallest level whose longest side is at least ``longest`` (or the
        largest level under it), [C, h, w]: what an overlay is drawn on."""
        level = 0
        for k, (h, w) in enumerate(self.sizes):
            if max(h, w) >= longest:
                level = k
        h, w = self.sizes[level]
        return self.read(level, 0, h, 0, w)

    # ------------------------------------------------------------- OpenSlide's conventions
    # What slide users already know (OpenSlide, tiffslide): sizes as (width, height), regions at a level-0
    # (x, y) and a (w, h) in the level's pixels, level downsamples, a thumbnail, and microns per pixel.

    @property
    def dimensions(self) -> tuple[int, int]:
        """Level 0's (width, height)."""
        return self.width, self.height

    @property
    def level_count(self) -> int:
        return len(self.sizes)

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        """Each level's (width, height), level 0 first."""
        return tuple((w, h) for h, w in self.sizes)

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        """Each level's downsample from level 0, as OpenSlide gives it (the mean of the two axes' factors)."""
        return tuple((self.width / w + self.height / h) / 2 for h, w in self.sizes)

    def get_best_level_for_downsample(self, downsample: float) -> int:
        """The level with the largest downsample at most ``downsample`` (level 0 below 1)."""
        fits = [k for k, d in enumerate(self.level_downsamples) if d <= downsample * (1 + 1e-9)]
        return fits[-1] if fits else 0

    @property
    def mpp(self) -> tuple[float, float] | None:
        """Level 0's microns per pixel along x and y, from the file's metadata (a TIFF's resolution tags, a
        slide's ``openslide.mpp-x``/``-y``); None where it says nothing."""
        return self.levels.mpp()

    @property
    def properties(self) -> dict[str, str]:
        """The file's metadata under OpenSlide's names where they apply (``openslide.mpp-x``, ``-y``,
        ``openslide.level-count``, ``openslide.level[k].width``…), as strings."""
        props = {**self.levels.properties(), "openslide.level-count": str(self.level_count),
                 "saccade.reader": type(self.levels).__name__}
        for k, ((w, h), d) in enumerate(zip(self.level_dimensions, self.level_downsamples)):
            props.update({f"openslide.level[{k}].width": str(w), f"openslide.level[{k}].height": str(h),
                          f"openslide.level[{k}].downsample": repr(d)})
        if self.mpp is not None:
            props.update({"openslide.mpp-x": repr(self.mpp[0]), "openslide.mpp-y": repr(self.mpp[1])})
        return props

    def read_region(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> torch.Tensor:
        """Pixels [C, h, w] in [0, 1] of ``level``: ``location`` is the region's top-left corner in level-0
        (x, y) and ``size`` its (w, h) in the level's pixels, as ``OpenSlide.read_region`` takes them. What
        lies outside the image reads 0 (OpenSlide's is transparent)."""
        if not 0 <= level < self.level_count:
            raise ValueError(f"level must be 0..{self.level_count - 1}, got {level}")
        (x, y), (w, h) = location, size
        if w <= 0 or h <= 0:
            raise ValueError(f"a region's size is (w, h) in positive pixels, got {size}")
        fx, fy = self.factor(level)
        lx0, ly0 = math.floor(x / fx), math.floor(y / fy)
        lh, lw = self.sizes[level]
        out = torch.zeros(self.channels, h, w)
        x0, y0, x1, y1 = max(lx0, 0), max(ly0, 0), min(lx0 + w, lw), min(ly0 + h, lh)
        if x1 > x0 and y1 > y0:
            out[:, y0 - ly0:y1 - ly0, x0 - lx0:x1 - lx0] = self.read(level, y0, y1, x0, x1)
        return out

    def get_thumbnail(self, size: tuple[int, int]):
        """The whole image as a PIL image fitting in ``size`` (w, h), its aspect kept, from the smallest
        level that still has the pixels."""
        scale = min(size[0] / self.width, size[1] / self.height)
        target = (max(1, round(self.width * scale)), max(1, round(self.height * scale)))
        pixels = self.overview(max(target))
        array = (pixels.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
        return image.resize(target, Image.BILINEAR)

    def reads(self) -> dict:
        """What was read so far: tiles, their bytes in the file, the file's size and decoded pixels."""
        return {"tiles_read": self.tiles_read, "bytes_read": self.bytes_read, "file_bytes": self.file_bytes,
                "decoded_pixels": self.decoded_pixels}

    def close(self) -> None:
        levels = getattr(self, "levels", None)
        if levels is not None:
            levels.close()

    def __del__(self):
        self.close()


class SlideSource(PyramidSource):
    """A whole-slide image in one of OpenSlide's formats (SVS, NDPI, MRXS, SCN, …): the pyramid source with
    its levels read through OpenSlide (``levels.SlideLevels``)."""
    READER = SlideLevels

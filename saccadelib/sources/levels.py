"""The two ways a pyramid's levels are read, behind one small interface that ``PyramidSource`` uses:
``TiffLevels`` (a tiled TIFF through tifffile, tile by tile) and ``SlideLevels`` (a slide through
OpenSlide). Each lists its levels' sizes, reads a region of a level as stored pixels, says the file's
microns per pixel and properties, and lets go of its file; a reader is opened again after being sent to
another process (a DataLoader worker's batch)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import tifffile

from .base import ImageFileError

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8")
SLIDE_SUFFIXES = (".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide")
HOW_TO_SLIDES = "pip install 'saccadelib[slides]' (openslide-python with openslide-bin: wheels, no system library)"


class NotTiled(ImageFileError):
    """A file the tiled reader cannot take (not a TIFF tifffile reads, or one stored in strips): the
    whole-file reader may."""


class Counts:
    """What a read cost: tiles, their compressed bytes in the file, pixels decoded."""

    def __init__(self):
        self.tiles = self.bytes = self.pixels = 0


class TiffLevels:
    """A tiled (usually pyramidal) TIFF's levels through tifffile. ``sizes``: (h, w) per level, level 0
    first; ``samples``: per pixel; ``dtype_max``: the stored range."""

    def __init__(self, path: Path):
        self.path = path
        self._tif = self._levels = None
        self._open()

    def _open(self) -> None:
        """Open the file and list its levels."""
        try:
            self._tif = tifffile.TiffFile(self.path)
        except (tifffile.TiffFileError, OSError, ValueError) as err:
            raise NotTiled(f"cannot read image {self.path} as a tiled TIFF: {err}") from None
        if not self._tif.series or not self._tif.series[0].keyframe.is_tiled:
            self.close()
            raise NotTiled(f"{self.path} is not stored in tiles: it can only be decoded whole")
        series = self._tif.series[0]
        if series.axes not in ("YX", "YXS", "SYX"):
            raise ImageFileError(f"{self.path} holds an image with axes {series.axes}; a pyramid of one plane, "
                                 "YX (grey) or YXS / SYX (colour, its samples together or apart), is read here")
        self._levels, self._apart = list(series.levels), series.axes == "SYX"
        self.sizes = [tuple(level.shape[-2:] if self._apart else level.shape[:2]) for level in self._levels]
        dtype = self._levels[0].dtype
        if dtype.kind != "u" or dtype.itemsize > 2:
            raise ImageFileError(f"{self.path} stores {dtype} pixels; 8- or 16-bit unsigned integers are read here")
        self.dtype_max = 65535.0 if dtype.itemsize == 2 else 255.0
        self.samples = {"YX": 1, "YXS": self._levels[0].shape[-1], "SYX": self._levels[0].shape[0]}[series.axes]

    def _tiles(self, level: int, y0: int, y1: int, x0: int, x1: int):
        """The tiles a read of [y0:y1, x0:x1] at ``level`` touches: (the level's page, its tile rows and
        columns, their indices in the page's tile list, one run per colour plane stored apart)."""
        page = self._levels[level].pages[0]
        th, tw = page.tilelength, page.tilewidth
        across, down = math.ceil(self.sizes[level][1] / tw), math.ceil(self.sizes[level][0] / th)
        planes = len(page.databytecounts) // (across * down)  # 1, or one per colour stored apart
        rows, cols = range(y0 // th, (y1 - 1) // th + 1), range(x0 // tw, (x1 - 1) // tw + 1)
        return page, rows, cols, [p * across * down + r * across + c for p in range(planes) for r in rows for c in cols]

    def region(self, level: int, y0: int, y1: int, x0: int, x1: int, counts: Counts):
        """The stored pixels [y0:y1, x0:x1] of ``level``, a numpy array [h, w] or [h, w, 3].

        A whole level (the proxy's) is decoded by tifffile at once. A part of one is read tile by tile
        with tifffile's segment reader and decoder, which cost less per read than its zarr store and need
        no store opened per file (docs/your_images.md says what was measured when this reader was chosen)."""
        self._reopen()
        page, rows, cols, tiles = self._tiles(level, y0, y1, x0, x1)
        th, tw = page.tilelength, page.tilewidth
        counts.tiles += len(tiles)
        counts.bytes += sum(int(page.databytecounts[t]) for t in tiles)
        counts.pixels += len(rows) * th * len(cols) * tw
        if (y0, x0) == (0, 0) and (y1, x1) == self.sizes[level]:
            whole = self._levels[level].asarray()
            return whole.transpose(1, 2, 0) if self._apart else whole
        planes = len(tiles) // (len(rows) * len(cols))
        # tifffile's normalised layout: [planes stored apart, rows, columns, samples stored together]
        out = np.full((planes, len(rows) * th, len(cols) * tw, page.samplesperpixel // planes), page.nodata,
                      dtype=page.dtype)
        offsets = [page.dataoffsets[t] for t in tiles]
        counts = [page.databytecounts[t] for t in tiles]
        for data, index in self._tif.filehandle.read_segments(offsets, counts, tiles, sort=True):
            tile, (plane, _, y, x, _), _ = page.decode(data, index, jpegtables=page.jpegtables)
            if tile is not None:  # None: a tile the writer left out (all fill)
                y, x = y - rows[0] * th, x - cols[0] * tw
                out[plane, y:y + th, x:x + tw] = tile.reshape(th, tw, -1)
        out = out[:, y0 - rows[0] * th:y1 - rows[0] * th, x0 - cols[0] * tw:x1 - cols[0] * tw]
        out = out[0] if planes == 1 else out[..., 0].transpose(1, 2, 0)  # [h, w, samples]
        return out[..., 0] if out.shape[-1] == 1 else out

    def mpp(self) -> tuple[float, float] | None:
        """A TIFF's resolution tags (XResolution, YResolution in pixels per ResolutionUnit, centimetre or inch)."""
        self._reopen()
        tags = self._levels[0].pages[0].tags
        unit = tags.get("ResolutionUnit")
        microns = {2: 25_400.0, 3: 10_000.0}.get(int(unit.value) if unit is not None else 2)
        values = []
        for name in ("XResolution", "YResolution"):
            tag = tags.get(name)
            if tag is None or microns is None:
                return None
            num, den = tag.value if isinstance(tag.value, tuple) else (tag.value, 1)
            if not num or not den:
                return None
            values.append(microns * den / num)
        if unit is None or values[0] >= microns:  # no unit, or 1 pixel per inch: the writer's default, not a resolution
            return None
        return values[0], values[1]

    def properties(self) -> dict[str, str]:
        """The TIFF's own metadata beyond what the pyramid source says itself: none."""
        return {}

    def close(self) -> None:
        handle = self._tif
        if handle is not None:
            handle.close()
            # tifffile's objects point back at themselves (the file at its own file table, a series at
            # its list of levels, which holds it): cycles that would keep a file's tile tables (about 22
            # bytes a tile: 3 MiB for a 96,000² file) until Python's cyclic collector runs, many files later.
            # Emptying them frees the tables now.
            for held in [handle, *(self._levels or [])]:
                if type(held).__module__.startswith("tifffile"):
                    vars(held).clear()
            self._tif = self._levels = None

    def _reopen(self) -> None:
        if self._tif is None:
            self._open()

    # sent to another process as its path, opened again at the first read there
    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_tif", "_levels")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._tif = self._levels = None


class SlideLevels:
    """A whole-slide image's levels through OpenSlide (SVS, NDPI, MRXS, SCN, …, and tiled TIFF). OpenSlide
    does not say which tiles a read decodes: a read counts no tiles or bytes, only the pixels asked for.
    Areas a scanner left empty read as white (the slide's background)."""
    samples, dtype_max = 3, 255.0

    def __init__(self, path: Path):
        self.path = path
        self._slide = None
        self._open()
        self.sizes = [(h, w) for w, h in self._slide.level_dimensions]

    def _open(self) -> None:
        try:
            import openslide  # noqa: PLC0415 (the slides extra)
        except ImportError:
            raise ImageFileError(f"{self.path} is a slide: reading it needs OpenSlide, {HOW_TO_SLIDES}") from None
        try:
            self._slide = openslide.OpenSlide(str(self.path))
        except (openslide.OpenSlideError, OSError) as err:
            raise ImageFileError(f"cannot read slide {self.path}: {err}") from None

    def region(self, level: int, y0: int, y1: int, x0: int, x1: int, counts: Counts):
        self._reopen()
        h, w = self.sizes[level]
        fx, fy = self.sizes[0][1] / w, self.sizes[0][0] / h
        region = self._slide.read_region((round(x0 * fx), round(y0 * fy)), level, (x1 - x0, y1 - y0))
        rgba = np.asarray(region, dtype=np.float32)
        alpha = rgba[..., 3:] / 255.0  # OpenSlide's RGBA is premultiplied: composite on white
        counts.pixels += (y1 - y0) * (x1 - x0)
        return rgba[..., :3] + 255.0 * (1.0 - alpha)

    def mpp(self) -> tuple[float, float] | None:
        try:
            props = self.properties()
            return float(props["openslide.mpp-x"]), float(props["openslide.mpp-y"])
        except (KeyError, ValueError):
            return None

    def properties(self) -> dict[str, str]:
        """OpenSlide's own properties of the slide (vendor metadata included)."""
        self._reopen()
        return dict(self._slide.properties)

    def close(self) -> None:
        if self._slide is not None:
            self._slide.close()
            self._slide = None

    def _reopen(self) -> None:
        if self._slide is None:
            self._open()

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_slide"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._slide = None

"""Whole-slide images in OpenSlide's formats (SVS, NDPI, MRXS, SCN, …) as pyramid sources: the same
pyramid, its levels read through OpenSlide instead of tifffile."""
from __future__ import annotations

from .base import ImageFileError
from .pyramid import PyramidSource

SLIDE_SUFFIXES = (".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide")
HOW_TO_SLIDES = "pip install 'saccadelib[slides]' (openslide-python with openslide-bin: wheels, no system library)"


class SlideSource(PyramidSource):
    """A whole-slide image in one of OpenSlide's formats (SVS, NDPI, MRXS, SCN, …, and tiled TIFF), read
    through OpenSlide level by level as ``PyramidSource`` reads a TIFF. OpenSlide does not say which tiles
    a read decodes: ``tiles_read`` and ``bytes_read`` stay 0 and ``decoded_pixels`` counts the pixels
    asked for. Areas a scanner left empty read as white (the slide's background)."""

    def _open(self) -> int:
        try:
            import openslide
        except ImportError:
            raise ImageFileError(f"{self.path} is a slide: reading it needs OpenSlide, {HOW_TO_SLIDES}") from None
        try:
            self._tif = openslide.OpenSlide(str(self.path))
        except (openslide.OpenSlideError, OSError) as err:
            raise ImageFileError(f"cannot read slide {self.path}: {err}") from None
        self.sizes = [(h, w) for w, h in self._tif.level_dimensions]
        self.dtype_max = 255.0
        return 3

    def _mpp(self) -> tuple[float, float] | None:
        self._reopen()
        props = self._tif.properties
        try:
            return float(props["openslide.mpp-x"]), float(props["openslide.mpp-y"])
        except (KeyError, ValueError):
            return None

    @property
    def properties(self) -> dict[str, str]:
        """OpenSlide's own properties of the slide (vendor metadata included)."""
        self._reopen()
        return {**dict(self._tif.properties), "saccade.reader": type(self).__name__}

    def _region(self, level: int, y0: int, y1: int, x0: int, x1: int):
        import numpy as np

        self._reopen()
        fx, fy = self.factor(level)
        region = self._tif.read_region((round(x0 * fx), round(y0 * fy)), level, (x1 - x0, y1 - y0))
        rgba = np.asarray(region, dtype=np.float32)
        alpha = rgba[..., 3:] / 255.0  # OpenSlide's RGBA is premultiplied: composite on white
        self.decoded_pixels += (y1 - y0) * (x1 - x0)
        return rgba[..., :3] + 255.0 * (1.0 - alpha)

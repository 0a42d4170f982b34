"""The one place that picks a reader for a file: a slide (OpenSlide's formats) or a tiled TIFF goes to the
pyramid source, read a few tiles at a time; any other image to the photo source, decoded whole (or
reduced, for JPEG). ``FileBatchSource`` holds a batch of files for training and scoring on folders."""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from ..names import MAX_PIXELS
from .base import ImageFileError, ImageSource
from .levels import SLIDE_SUFFIXES, TIFF_SUFFIXES, NotTiled
from .photo import FileSource, pillow_limit_lifted
from .pyramid import PyramidSource, SlideSource


def open_image(path: str | Path, channels: int = 3, max_pixels: int | None = MAX_PIXELS, convert: bool = False,
               keep_full: bool = True) -> FileSource | PyramidSource:
    """The source that reads ``path``: a slide in OpenSlide's formats (the ``slides`` extra) or a tiled
    TIFF (pyramidal or not) tile by tile, whatever its size (``max_pixels`` then bounds what one read
    decodes); any other image whole, refused above ``max_pixels``."""
    if Path(path).suffix.lower() in SLIDE_SUFFIXES:
        return SlideSource(path, channels, max_pixels=max_pixels, convert=convert)
    if Path(path).suffix.lower() in TIFF_SUFFIXES:  # opened once: the tiled reader, or the whole-file one
        try:
            return PyramidSource(path, channels, max_pixels=max_pixels, convert=convert)
        except NotTiled:
            pass
    return FileSource(path, channels, max_pixels=max_pixels, convert=convert, keep_full=keep_full)


def unreadable(path: str | Path) -> str | None:
    """None when ``path`` is an image its reader (the one ``open_image`` picks) identifies, else why not:
    a slide opened by OpenSlide; a tiled TIFF with its smallest level decoded when that level is within
    ``MAX_PIXELS`` (where a truncated file shows first; a larger one is refused when its proxy is read);
    any other file by its header alone (what decoding it will cost is checked when it is read)."""
    path = Path(path)
    try:
        if path.suffix.lower() in SLIDE_SUFFIXES:
            SlideSource(path, channels=3, convert=True).close()
            return None
        if path.suffix.lower() in TIFF_SUFFIXES:
            try:
                source = PyramidSource(path, channels=3, max_pixels=None, convert=True)
            except NotTiled:
                source = None
            if source is not None:
                try:
                    smallest = source.level_count - 1
                    height, width = source.sizes[smallest]
                    if height * width <= MAX_PIXELS:
                        source.read(smallest, 0, height, 0, width)
                finally:
                    source.close()
                return None
        with pillow_limit_lifted(), Image.open(path):  # parses the header: enough to know what the file is
            return None
    except (UnidentifiedImageError, OSError, SyntaxError, ImageFileError) as err:
        return str(err) or type(err).__name__


class FileBatchSource(ImageSource):
    """N image files as one batch (training on large photos, e.g. FiveK): the proxies can come from
    stored files (``proxies`` [N, C, s, s]) and the crops are read file by file (``open_image``),
    so memory depends on the crops, not on the image size. Images may differ in size."""

    def __init__(self, paths, channels: int = 3, proxies: torch.Tensor | None = None, convert: bool = False):
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ValueError("FileBatchSource needs at least one file")
        if proxies is not None and len(proxies) != len(self.paths):
            raise ValueError(f"{len(proxies)} proxies for {len(self.paths)} files")
        self.channels, self.count, self.stored_proxies = channels, len(self.paths), proxies
        # each opened and verified once; full-size decodes of large files are not held across the batch
        self.sources = [open_image(p, channels, convert=convert, keep_full=False) for p in self.paths]
        first = self.sources[0]
        self.height, self.width, self.detail_px = first.height, first.width, first.detail_px

    def proxy(self, size: int) -> torch.Tensor:
        if self.stored_proxies is not None and self.stored_proxies.shape[-1] == size:
            return self.stored_proxies
        return torch.cat([s.proxy(size) for s in self.sources])

    def read_proxies(self, size: int) -> None:
        """Build and hold the size² proxies now (a DataLoader worker reading ahead); each file keeps its
        decode for the crops (``FileSource.KEEP_PIXELS``)."""
        self.stored_proxies = self.proxy(size)

    def crop(self, windows, size, supersample=None):
        if windows.shape[0] != self.count:
            raise ValueError(f"windows for {windows.shape[0]} images, the batch has {self.count}")
        return torch.cat([s.crop(windows[i:i + 1], size) for i, s in enumerate(self.sources)])

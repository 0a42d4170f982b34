"""What every image source is: a batch of images seen through a ``proxy`` (the whole image, downsampled
with anti-aliasing) and ``crop`` (windows read at full resolution, differentiable in the windows), with
what a user of a large file also asks of it (``overview`` for thumbnails and overlays, ``reads``,
``properties``, microns per pixel, ``close``). The checks every file source shares live here once."""
from __future__ import annotations

from pathlib import Path

import torch

from ..sampler import supersample_factor


class ImageFileError(ValueError):
    """An image file that cannot be used: unreadable, corrupt, too large or too small, or with channels the
    model cannot take."""


MIN_SIDE = 16  # an image smaller than this on either side is refused: there is nothing to look at
# How to make an image too large to decode whole readable a few tiles at a time (said in the errors).
HOW_TO_PYRAMID = ("convert it to a tiled pyramidal TIFF, which is read a few tiles at a time: "
                  "`vips tiffsave IN OUT.tif --tile --pyramid --compression deflate`, or "
                  "saccadelib.datasets.pyramids.write_pyramid (docs/your_images.md)")


def check_channels(channels: int) -> int:
    """The channel counts a file source gives: grey (1) or RGB (3)."""
    if channels not in (1, 3):
        raise ImageFileError(f"channels must be 1 or 3, got {channels}")
    return channels


def check_size(path: Path, width: int, height: int) -> None:
    """Refuse an image too small to look at (under ``MIN_SIDE`` on a side)."""
    if min(width, height) < MIN_SIDE:
        raise ImageFileError(f"{path} is {width} × {height}: images must be at least {MIN_SIDE} pixels on each side")


class ImageSource:
    """Interface: a batch of N images seen through ``proxy`` and ``crop``."""
    channels: int
    height: int
    width: int
    detail_px: int  # pixels of real detail per side (decides the crop prefilter)
    count: int  # N, the images in the batch
    dtype: torch.dtype = torch.float32
    device: torch.device = torch.device("cpu")  # where proxies and crops are computed
    mpp: tuple[float, float] | None = None  # microns per pixel (x, y), where the file says (slides, tagged TIFFs)

    def proxy(self, size: int) -> torch.Tensor:
        raise NotImplementedError

    def crop(self, windows: torch.Tensor, size: int, supersample: int | None = None) -> torch.Tensor:
        raise NotImplementedError

    def overview(self, longest: int = 2048) -> torch.Tensor:
        """The first image whole, [C, h, w], with its longest side about ``longest`` or more (what thumbnails
        and overlays are drawn from): its anti-aliased downsample unless a source has a cheaper view."""
        return self.proxy(longest)[0]

    def reads(self) -> dict | None:
        """What was read of a file so far (tiles, bytes), for sources that count it; None otherwise."""
        return None

    @property
    def properties(self) -> dict[str, str]:
        """The file's metadata, under OpenSlide's names where they apply; empty for images in memory."""
        return {}

    def close(self) -> None:
        """Let go of an open file (file sources); nothing to do for images in memory."""

    def to(self, device, non_blocking: bool = False) -> "ImageSource":
        """The same images with proxies and crops computed on ``device`` (file sources read on the CPU)."""
        return self

    def auto_supersample(self, windows: torch.Tensor, size: int) -> int:
        largest = float(windows[..., 0].detach().abs().max()) if windows.numel() else 0.0
        return supersample_factor(largest * self.detail_px, size)

"""Large, mostly black canvases held as their nonzero pixels (Megapixel MNIST, native-size digits on
large canvases): stored as ``SparseImages`` and read through ``SparseSource``, the sampler's
``proxy``/``crop`` interface. The full canvas is never built: a 1500² Megapixel canvas has about 4,000
nonzero pixels (0.2%), and the proxy and every crop are computed from those alone, equal to what the
dense canvas gives (tested against ``TensorSource`` on the materialized canvas).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ..sources import ImageSource
from ..sampler import crop_tensor


@dataclass
class SparseImages:
    """``n`` single-channel uint8 images of side ``side``, each as its nonzero pixels: ``index`` [n, K]
    flat positions (y · side + x; int32 where they fit) in increasing order, padded at the end with ``side²`` (past every
    pixel), and ``values`` [n, K] uint8 (0 in the padding). K is the largest count in the set."""
    index: torch.Tensor
    values: torch.Tensor
    side: int

    def __post_init__(self):
        if self.index.shape != self.values.shape or self.index.dim() != 2:
            raise ValueError(f"index and values must both be [n, K], got {tuple(self.index.shape)} and "
                             f"{tuple(self.values.shape)}")

    def __len__(self) -> int:
        return self.index.shape[0]

    def __getitem__(self, part) -> "SparseImages":
        index, values = self.index[part], self.values[part]
        used = int((index < self.side ** 2).sum(1).max()) if len(index) else 0  # drop shared padding
        return SparseImages(index[:, :used].contiguous(), values[:, :used].contiguous(), self.side)

    @classmethod
    def from_pixels(cls, per_image: list[tuple[np.ndarray, np.ndarray]], side: int) -> "SparseImages":
        """From each image's (flat positions, uint8 values): zeros dropped, positions sorted and unique."""
        kept = []
        for index, values in per_image:
            index, values = np.asarray(index, dtype=np.int64), np.asarray(values, dtype=np.uint8)
            if len(np.unique(index)) != len(index):
                raise ValueError("each pixel may appear once per image; resolve overlaps before storing")
            order = np.argsort(index, kind="stable")
            nonzero = values[order] > 0
            kept.append((index[order][nonzero], values[order][nonzero]))
        width = max((len(i) for i, _ in kept), default=0)
        index = np.full((len(kept), width), side * side, dtype=np.int32 if side * side < 2 ** 31 else np.int64)
        values = np.zeros((len(kept), width), dtype=np.uint8)
        for row, (i, v) in enumerate(kept):
            index[row, :len(i)], values[row, :len(v)] = i, v
        return cls(torch.from_numpy(index), torch.from_numpy(values), side)

    @classmethod
    def from_dense(cls, images: torch.Tensor) -> "SparseImages":
        """From uint8 images [n, side, side] (tests and small canvases)."""
        n, side = images.shape[0], images.shape[-1]
        flat = images.reshape(n, -1).numpy()
        return cls.from_pixels([(np.flatnonzero(row), row[np.flatnonzero(row)]) for row in flat], side)

    def dense(self) -> torch.Tensor:
        """uint8 [n, side, side]: the images themselves (tests and small sides only)."""
        flat = torch.zeros(len(self), self.side * self.side + 1, dtype=torch.uint8)
        flat.scatter_(1, self.index.long(), self.values)
        return flat[:, :-1].view(len(self), self.side, self.side)

    def source(self) -> "SparseSource":
        """The images as the models read them: floats in [0, 1], never materialized."""
        return SparseSource(self.index, self.values.to(torch.float32).div_(255.0), self.side)

    def digest(self, digest: "hashlib._Hash") -> None:
        """Feed the content into a hash: each image's pixels, independent of the padding width."""
        for index, values in zip(self.index, self.values):
            used = index < self.side ** 2
            digest.update(index[used].to(torch.int64).numpy().tobytes())
            digest.update(values[used].numpy().tobytes())


TILE_BUDGET = 32 * 2 ** 20  # floats of dense tiles built at once by SparseSource.crop (128 MiB)


@lru_cache(maxsize=16)
def _proxy_taps(side: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each canvas row (or column) of ``side``: the proxy rows it feeds and with what weight, as
    ``F.interpolate(bilinear, antialias=True)`` downsamples ``side → size``: (rows [side, J], weights
    [side, J]), padded with weight 0."""
    eye = torch.eye(side, dtype=torch.float64).view(1, side, 1, side)
    matrix = F.interpolate(eye, size=(1, size), mode="bilinear", antialias=True, align_corners=False)[0, :, 0]
    taps = int((matrix != 0).sum(1).max())  # matrix is [side, size]: row i = where canvas pixel i goes
    weights, rows = matrix.topk(taps, dim=1)
    return rows.contiguous(), weights.to(torch.float32).contiguous()


class SparseSource(ImageSource):
    """Images given by their nonzero pixels (``SparseImages``' layout, float values in [0, 1]).

    ``proxy`` is the anti-aliased bilinear downsample the dense ``TensorSource`` computes: a linear map,
    so every nonzero pixel adds its value times the few proxy pixels it feeds. ``crop`` is bilinear
    sampling with the same box prefilter (``sampler.crop_tensor``) from a small dense tile per glimpse that
    holds its window, so a crop costs what the window's pixels do, not the canvas's.
    """
    channels = 1

    def __init__(self, index: torch.Tensor, values: torch.Tensor, side: int):
        self.index, self.values, self.side = index, values, side
        self.count, self.dtype, self.device = index.shape[0], values.dtype, values.device
        self.height = self.width = self.detail_px = side

    def dense(self) -> torch.Tensor:
        """float [n, 1, side, side]: the images themselves (tests and the export of a few canvases only)."""
        flat = torch.zeros(self.count, self.side * self.side + 1, dtype=self.dtype, device=self.device)
        flat.scatter_(1, self.index.long(), self.values)
        return flat[:, :-1].view(self.count, 1, self.side, self.side)

    def to(self, device, non_blocking: bool = False) -> "SparseSource":
        return SparseSource(self.index.to(device, non_blocking=non_blocking),
                            self.values.to(device, non_blocking=non_blocking), self.side)

    def proxy(self, size: int) -> torch.Tensor:
        rows, weights = (t.to(self.device) for t in _proxy_taps(self.side, size))
        pixel = self.index.clamp(max=self.side * self.side - 1)  # the padding has value 0
        y, x = pixel // self.side, pixel % self.side
        target = (rows[y].unsqueeze(-1) * size + rows[x].unsqueeze(-2)).flatten(1)  # [n, K·J·J]
        amount = (self.values.unsqueeze(-1).unsqueeze(-1) * weights[y].unsqueeze(-1)
                  * weights[x].unsqueeze(-2)).flatten(1)
        out = torch.zeros(self.count, size * size, dtype=self.dtype, device=self.device)
        out.scatter_add_(1, target, amount.to(self.dtype))
        return out.view(self.count, 1, size, size)

    def crop(self, windows: torch.Tensor, size: int, supersample: int | None = None) -> torch.Tensor:
        k = supersample or self.auto_supersample(windows, size)
        n, t = windows.shape[:2]
        flat = windows.reshape(n * t, 3)
        # Each glimpse reads a dense tile just large enough for its window's samples and their bilinear
        # neighbours, filled from the image's nonzero pixels; the window, re-expressed in the tile's
        # coordinates (an affine map, so the gradient flows), is then sampled exactly as from a dense image.
        tile = math.ceil(float(flat[:, 0].detach().abs().max()) * self.side) + 3 if len(flat) else 3
        origin = torch.floor(((flat[:, 1:].detach() - flat[:, :1].detach().abs() + 1) * self.side - 1) / 2).long()
        shift = (self.side - 2 * origin.to(flat.dtype)) / tile - 1  # tile coordinate of image coordinate 0
        in_tile = torch.cat([flat[:, :1] * self.side / tile, flat[:, 1:] * self.side / tile + shift], 1)
        owner = torch.arange(n, device=flat.device).repeat_interleave(t)  # the image each glimpse reads
        # large windows make large tiles: a few glimpses at a time keeps the tiles under TILE_BUDGET floats
        step = max(1, TILE_BUDGET // (tile * tile))
        crops = [crop_tensor(self._tiles(origin[a:a + step], tile, owner[a:a + step]), in_tile[a:a + step].unsqueeze(1),
                             size, k) for a in range(0, n * t, step)]
        return torch.cat(crops).view(n, t, 1, size, size)

    def _tiles(self, origin: torch.Tensor, tile: int, owner: torch.Tensor) -> torch.Tensor:
        """[g, 1, tile, tile]: pixels (x, y) in [origin, origin + tile) of image ``owner`` for g glimpses."""
        pixel = self.index[owner].long()
        x, y = pixel % self.side, pixel // self.side
        dx, dy = x - origin[:, :1], y - origin[:, 1:]
        # the padding reads as pixel (0, side): outside the image, where the value is 0 anyway
        inside = (dx >= 0) & (dx < tile) & (dy >= 0) & (dy < tile)
        local = torch.where(inside, dy * tile + dx, tile * tile)
        tiles = torch.zeros(len(origin), tile * tile + 1, dtype=self.dtype, device=self.device)
        tiles.scatter_(1, local, self.values[owner])
        return tiles[:, :-1].view(len(origin), 1, tile, tile)

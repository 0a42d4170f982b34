"""Images already in memory: a batch of tensors (``TensorSource``), and the bilinear upsample of small
images to a large side that is never materialized (``UpsampledSource``, the paper's 2528² canvases)."""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from ..sampler import _axis_sampling_matrix, crop_tensor
from .base import ImageSource


class TensorSource(ImageSource):
    """Images already in memory: [N, C, H, W] float."""

    def __init__(self, images: torch.Tensor):
        if images.dim() != 4:
            raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
        self.images = images
        self.count, self.dtype, self.device = images.shape[0], images.dtype, images.device
        self.channels, self.height, self.width = images.shape[1:]
        self.detail_px = max(self.height, self.width)

    def to(self, device, non_blocking: bool = False) -> "TensorSource":
        return TensorSource(self.images.to(device, non_blocking=non_blocking))

    def proxy(self, size: int) -> torch.Tensor:
        return F.interpolate(self.images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)

    def overview(self, longest: int = 2048) -> torch.Tensor:
        return self.images[0]  # drawn as it is

    def crop(self, windows, size, supersample=None):
        k = supersample or self.auto_supersample(windows, size)
        return crop_tensor(self.images, windows, size, k)


def _upsample_rows(base_len: int, large_len: int) -> torch.Tensor:
    """[large_len, base_len] float64: row i = how F.interpolate(bilinear, align_corners=False) builds pixel i."""
    eye = torch.eye(base_len, dtype=torch.float64).view(1, base_len, 1, base_len)
    return F.interpolate(eye, size=(1, large_len), mode="bilinear", align_corners=False)[0, :, 0].T.contiguous()


@lru_cache(maxsize=32)
def _proxy_rows(base_len: int, large_len: int, size: int, device, dtype) -> torch.Tensor:
    """[size, base_len]: anti-aliased bilinear downsample to ``size`` of the upsample to ``large_len``.
    Built once per shape on the CPU (a transient [large_len, base_len] matrix); only the result is kept."""
    columns = _upsample_rows(base_len, large_len).T.reshape(1, base_len, 1, large_len)
    rows = F.interpolate(columns, size=(1, size), mode="bilinear", antialias=True, align_corners=False)[0, :, 0].T
    return rows.to(device=device, dtype=dtype).contiguous()


class UpsampledSource(ImageSource):
    """The bilinear upsample of small images to (height, width), never materialized.

    The paper's 2528² two-digit images are exactly this (an upsampled 100² canvas). Upsampling,
    anti-aliased downsampling and window sampling are all separable linear maps, so the proxy and every
    crop are ``M_y · base · M_xᵀ`` with small M [size, base side]: memory and time do not depend on
    (height, width), and results equal the materialized image's to float precision.
    """

    def __init__(self, base: torch.Tensor, height: int, width: int | None = None):
        if base.dim() != 4:
            raise ValueError(f"base images must be [N, C, h, w], got shape {tuple(base.shape)}")
        self.base = base
        self.count, self.dtype, self.device = base.shape[0], base.dtype, base.device
        self.channels = base.shape[1]
        self.height, self.width = height, width or height
        self.detail_px = max(base.shape[2], base.shape[3])

    def to(self, device, non_blocking: bool = False) -> "UpsampledSource":
        return UpsampledSource(self.base.to(device, non_blocking=non_blocking), self.height, self.width)

    def materialize(self) -> torch.Tensor:
        """The large images themselves (for tests and small sizes only)."""
        return F.interpolate(self.base, size=(self.height, self.width), mode="bilinear", align_corners=False)

    def proxy(self, size: int) -> torch.Tensor:
        h, w = self.base.shape[2:]
        py = _proxy_rows(h, self.height, size, self.base.device, self.base.dtype)
        px = _proxy_rows(w, self.width, size, self.base.device, self.base.dtype)
        return py @ self.base @ px.T

    def crop(self, windows, size, supersample=None):
        k = supersample or self.auto_supersample(windows, size)
        n, t = windows.shape[:2]
        flat = windows.reshape(n * t, 3)
        h, w = self.base.shape[2:]
        my = _axis_sampling_matrix(flat[:, 2], flat[:, 0], h, self.height, size, k, self.dtype)  # [N*T, S, h]
        mx = _axis_sampling_matrix(flat[:, 1], flat[:, 0], w, self.width, size, k, self.dtype)  # [N*T, S, w]
        base = self.base.unsqueeze(1).expand(n, t, *self.base.shape[1:]).reshape(n * t, *self.base.shape[1:])
        crops = my.unsqueeze(1) @ base @ mx.unsqueeze(1).transpose(-1, -2)
        return crops.view(n, t, self.channels, size, size)

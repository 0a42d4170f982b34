"""Where to look and what is seen: z → window → crop, from any image source.

Geometry (paper Eq. 2, spatial-transformer convention, ``align_corners=False``): image coordinates are
normalized to [-1, 1] on each axis; a window is (scale, cx, cy) and covers
``[cx - scale, cx + scale] × [cy - scale, cy + scale]``, so ``scale`` is the window's side as a fraction of
the image side. The affine map of Eq. 2 is ``theta = [[scale, 0, cx], [0, scale, cy]]``.

Crops are bilinear samples of the image (the paper's sampling kernel, zero outside the image) averaged
over a k×k supersampling grid per output pixel: a box prefilter, so a 758-px window read into 64² does not
alias. k follows the detail the source actually holds (``detail_px``), not its nominal size: a 2528² image
that is an upsampled 100² canvas needs no prefilter for a 64² crop of a 30% window.

Sources share one interface: ``proxy(size)`` (anti-aliased downsample of the whole image) and
``crop(windows, size)`` (windows [N, T, 3] → crops [N, T, C, size, size], differentiable in the windows).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F

MAX_SUPERSAMPLE = 16


# ------------------------------------------------------------------------------------ z → window

@dataclass(frozen=True)
class WindowConfig:
    """How z = (s, x, y) becomes a window.

    - ``learnt``: scale = min + (max - min)·sigmoid(s), a gradient for every scale; the centre is
      tanh(x)·(1 - scale) so the window always lies inside the image.
    - ``fixed``: scale = ``fixed_scale`` (the original's effective 30%), centre bounded as above.
    - ``original``: the authors' code: scale = 1 / max(|s|, 1/0.3) (so no gradient and 30% whenever
      |s| < 3.33) and an unbounded centre (x, y). For parity runs only; see docs/deviations.md.
    """
    mode: str = "learnt"
    min_scale: float = 0.2
    max_scale: float = 1.0
    fixed_scale: float = 0.3

    def __post_init__(self):
        if self.mode not in ("learnt", "fixed", "original"):
            raise ValueError(f"unknown window mode {self.mode!r}; valid: learnt, fixed, original")
        if not 0 < self.min_scale <= self.max_scale <= 1:
            raise ValueError("window scales must satisfy 0 < min_scale <= max_scale <= 1")


def window_from_z(z: torch.Tensor, config: WindowConfig = WindowConfig()) -> torch.Tensor:
    """z [..., 3] → window [..., 3] = (scale, cx, cy) in normalized image coordinates."""
    if z.shape[-1] != 3:
        raise ValueError(f"z must end in 3 values (scale, x, y), got shape {tuple(z.shape)}")
    s, x, y = z.unbind(-1)
    if config.mode == "original":
        scale = 1.0 / torch.clamp(s.abs(), min=1.0 / config.fixed_scale)
        return torch.stack([scale, x, y], -1)
    if config.mode == "fixed":
        scale = torch.full_like(s, config.fixed_scale)
    else:
        scale = config.min_scale + (config.max_scale - config.min_scale) * torch.sigmoid(s)
    room = 1.0 - scale
    return torch.stack([scale, torch.tanh(x) * room, torch.tanh(y) * room], -1)


def window_to_box(window: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """window [..., 3] → pixel box [..., 4] = (x0, y0, x1, y1) in the image's pixel coordinates."""
    scale, cx, cy = window.unbind(-1)
    return torch.stack([(cx - scale + 1) / 2 * width, (cy - scale + 1) / 2 * height,
                        (cx + scale + 1) / 2 * width, (cy + scale + 1) / 2 * height], -1)


def box_contains(box: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """box [..., 4], points [..., 2] (x, y) → bool [...]: the point lies inside the box."""
    x, y = points.unbind(-1)
    return (box[..., 0] <= x) & (x <= box[..., 2]) & (box[..., 1] <= y) & (y <= box[..., 3])


def supersample_factor(window_px: float, size: int, limit: int = MAX_SUPERSAMPLE) -> int:
    """Samples per output pixel and axis so that sample spacing ≤ one source pixel (capped)."""
    return int(min(max(math.ceil(window_px / size - 1e-6), 1), limit))


# ------------------------------------------------------------------------------------------ crops

def crop_tensor(images: torch.Tensor, windows: torch.Tensor, size: int, supersample: int = 1) -> torch.Tensor:
    """Bilinear crops with a k×k box prefilter: images [N,C,H,W], windows [N,T,3] → [N,T,C,size,size]."""
    n, t = windows.shape[:2]
    c = images.shape[1]
    k = supersample
    theta = windows.new_zeros(n * t, 2, 3)
    flat = windows.reshape(n * t, 3)
    theta[:, 0, 0] = flat[:, 0]
    theta[:, 1, 1] = flat[:, 0]
    theta[:, 0, 2] = flat[:, 1]
    theta[:, 1, 2] = flat[:, 2]
    grid = F.affine_grid(theta, [n * t, c, size * k, size * k], align_corners=False)
    # Sample every glimpse of image i from image i without copying it T times.
    grid = grid.view(n, t * size * k, size * k, 2)
    samples = F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="zeros",
                            align_corners=False)  # [N, C, T*S*k, S*k]
    samples = samples.view(n, c, t, size * k, size * k).transpose(1, 2).reshape(n * t, c, size * k, size * k)
    if k > 1:
        samples = F.avg_pool2d(samples, k)
    return samples.view(n, t, c, size, size)


def upsample_row_weights(index: torch.Tensor, base_len: int, large_len: int, dtype) -> torch.Tensor:
    """Rows of the bilinear upsample ``base_len → large_len`` (``F.interpolate``, align_corners=False)
    for the large-image pixels ``index`` (any shape, integer): [..., base_len], two weights per row,
    all-zero rows outside [0, large_len) (grid_sample's zero padding). Only the rows asked for are
    built, so the cost does not depend on ``large_len``."""
    source = ((index.double() + 0.5) * (base_len / large_len) - 0.5).clamp(min=0)  # as torch computes it
    lo = source.floor().long()
    hi = torch.where(lo < base_len - 1, lo + 1, lo)
    frac = source - lo
    inside = ((index >= 0) & (index < large_len)).double()
    rows = torch.zeros(*index.shape, base_len, dtype=torch.float64, device=index.device)
    rows.scatter_add_(-1, lo.clamp(0, base_len - 1).unsqueeze(-1), ((1 - frac) * inside).unsqueeze(-1))
    rows.scatter_add_(-1, hi.clamp(0, base_len - 1).unsqueeze(-1), (frac * inside).unsqueeze(-1))
    return rows.to(dtype)


def _axis_sampling_matrix(centre: torch.Tensor, scale: torch.Tensor, base_len: int, large_len: int,
                          size: int, k: int, dtype):
    """Per-window operator mapping one axis of the (never built) large image to ``size`` crop samples.

    Each large-image pixel is a combination of the ``base_len`` base pixels (the upsample); the result
    [M, size, base_len] = box-average over k of bilinear sampling of those rows: differentiable in
    centre and scale through the fractional weights, exactly like grid_sample.
    """
    # Positions in float64: at 10,000 px a float32 coordinate is off by ~1e-3 px; the weights go back
    # to the images' dtype once they are fractions in [0, 1).
    steps = (torch.arange(size * k, device=centre.device, dtype=torch.float64) * 2 + 1) / (size * k) - 1
    g = centre.double().unsqueeze(-1) + scale.double().unsqueeze(-1) * steps  # [M, S*k] normalized positions
    p = ((g + 1) * large_len - 1) / 2  # continuous pixel coordinates (align_corners=False)
    i0 = torch.floor(p).detach()
    frac = (p - i0).to(dtype)
    i0 = i0.long()
    lo = upsample_row_weights(i0, base_len, large_len, dtype)  # [M, S*k, W]
    hi = upsample_row_weights(i0 + 1, base_len, large_len, dtype)
    matrix = (1 - frac).unsqueeze(-1) * lo + frac.unsqueeze(-1) * hi
    return matrix.view(-1, size, k, base_len).mean(2)


# ---------------------------------------------------------------------------------------- noisy proxy

def noisy_proxy(proxy: torch.Tensor, sigma: float = 0.0, keep: float = 1.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """The proxy ablation's two knobs (docs/tasks.md, paper Fig. 5), applied to the proxy only:
    additive Gaussian noise of std ``sigma`` clipped to [0, 1], then pixel dropout keeping a fraction
    ``keep`` of the pixels (the rest read 0; one mask per pixel, shared by the channels)."""
    if sigma < 0 or not 0 < keep <= 1:
        raise ValueError(f"proxy noise needs sigma >= 0 and 0 < keep <= 1, got sigma={sigma}, keep={keep}")
    out = proxy
    if sigma > 0:
        noise = torch.randn(proxy.shape, generator=generator, device=proxy.device, dtype=proxy.dtype)
        out = (out + sigma * noise).clamp(0, 1)
    if keep < 1:
        n, _, h, w = proxy.shape
        mask = torch.rand((n, 1, h, w), generator=generator, device=proxy.device, dtype=proxy.dtype) < keep
        out = out * mask
    return out


# ---------------------------------------------------------------------------------------- sources

class ImageSource:
    """Interface: a batch of N images seen through ``proxy`` and ``crop``."""
    channels: int
    height: int
    width: int
    detail_px: int  # pixels of real detail per side (decides the crop prefilter)
    count: int  # N, the images in the batch
    dtype: torch.dtype = torch.float32
    device: torch.device = torch.device("cpu")  # where proxies and crops are computed

    def proxy(self, size: int) -> torch.Tensor:
        raise NotImplementedError

    def crop(self, windows: torch.Tensor, size: int, supersample: int | None = None) -> torch.Tensor:
        raise NotImplementedError

    def to(self, device, non_blocking: bool = False) -> "ImageSource":
        """The same images with proxies and crops computed on ``device`` (file sources read on the CPU)."""
        return self

    def auto_supersample(self, windows: torch.Tensor, size: int) -> int:
        largest = float(windows[..., 0].detach().abs().max()) if windows.numel() else 0.0
        return supersample_factor(largest * self.detail_px, size)


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


class ImageFileError(ValueError):
    """An image file that cannot be used: unreadable, corrupt, or with the wrong number of channels."""


class FileSource(ImageSource):
    """One large photo on disk (JPEG, PNG, TIFF…), for inference (crops are not differentiable).

    Neither the proxy nor the crops need the full-resolution decode of a JPEG: its DCT-domain reduction
    (PIL ``draft``) decodes at 1/2, 1/4 or 1/8 of the side directly, and a crop only needs as much
    resolution as its window has pixels per crop pixel. So the proxy is read at ≥ 4 pixels per proxy
    pixel and the crops at ≥ ``CROP_OVERSAMPLE`` source pixels per crop pixel (then anti-aliased by PIL's
    filter). Other formats are decoded in full. ``last_decode`` records the size the crops were read at.
    """
    CROP_OVERSAMPLE = 2

    def __init__(self, path: str | Path, channels: int = 3):
        from PIL import Image, UnidentifiedImageError

        if channels not in (1, 3):
            raise ImageFileError(f"channels must be 1 or 3, got {channels}")
        self.path = Path(path)
        self.channels, self.count = channels, 1
        self._mode = "L" if channels == 1 else "RGB"
        try:
            with Image.open(self.path) as probe:
                probe.verify()  # catches truncated and corrupt files before any work
            with Image.open(self.path) as img:
                self.width, self.height = img.size
                mode = img.mode
        except FileNotFoundError:
            raise ImageFileError(f"image file not found: {self.path}") from None
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            raise ImageFileError(f"cannot read image {self.path}: {err}") from None
        grey = mode in ("1", "L", "LA", "I", "I;16", "F")
        if grey and channels == 3:
            raise ImageFileError(f"{self.path} is greyscale (mode {mode}) but the model expects 3 channels")
        if not grey and channels == 1:
            raise ImageFileError(f"{self.path} is colour (mode {mode}) but the model expects 1 channel")
        self.detail_px = max(self.height, self.width)
        self.last_decode: tuple[int, int] | None = None

    def _open(self):
        from PIL import Image

        return Image.open(self.path)

    def _decoded(self, img):
        try:
            return img.convert(self._mode)
        except OSError as err:  # truncated or corrupt data shows only when pixels are decoded
            raise ImageFileError(f"cannot decode image {self.path}: {err}") from None

    @staticmethod
    def _to_tensor(img) -> torch.Tensor:
        import numpy as np

        array = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)
        return array.unsqueeze(0) if array.dim() == 2 else array.permute(2, 0, 1)

    def decode(self) -> torch.Tensor:
        """The whole image at full resolution, [1, C, H, W] float in [0, 1] (what a tile model needs)."""
        with self._open() as img:
            return self._to_tensor(self._decoded(img)).unsqueeze(0)

    def proxy(self, size: int) -> torch.Tensor:
        from PIL import Image

        with self._open() as img:
            img.draft(self._mode, (size * 4, size * 4))  # JPEG: decode at 1/2..1/8 scale directly
            small = self._decoded(img).resize((size, size), Image.BILINEAR, reducing_gap=2.0)
        return self._to_tensor(small).unsqueeze(0)

    def crop(self, windows, size, supersample=None):
        """Crops [1, T, C, size, size], differentiable in the windows.

        Each window is read from the decode by PIL (anti-aliased) into a patch a few crop pixels wider
        than the window, at the crop's pixel density, and the crop is bilinearly sampled from the patch
        at the window's (differentiable) sample points: at the window itself these are the patch's
        pixel centres, so the values are PIL's, and the gradient is the patch's local image gradient.
        Memory is a few crops per window whatever the image size.
        """
        if windows.shape[0] != 1:
            raise ValueError("a FileSource holds one image: windows must be [1, T, 3]")
        boxes = window_to_box(windows.detach().double().cpu(), self.height, self.width)[0]
        # The most demanding window decides how far the decode may be reduced (JPEG only; 1 elsewhere).
        smallest_px = float((boxes[:, 2:] - boxes[:, :2]).min()) if len(boxes) else float(size)
        request = max(1, math.ceil(max(self.width, self.height) * self.CROP_OVERSAMPLE * size / max(smallest_px, 1e-6)))
        sample_box = window_to_box(windows[0].cpu().to(torch.float64), self.height, self.width)  # keeps the gradient
        crops = []
        with self._open() as img:
            img.draft(self._mode, (max(1, request * self.width // max(self.width, self.height)),
                                   max(1, request * self.height // max(self.width, self.height))))
            img = self._decoded(img)
            self.last_decode = (img.width, img.height)
            for box, differentiable in zip(boxes.tolist(), sample_box):
                patch, patch_box = self._patch(img, box, size)
                crops.append(_sample_patch(patch, patch_box, differentiable, size))
        return torch.stack(crops).unsqueeze(0).to(device=windows.device, dtype=windows.dtype)

    PATCH_MARGIN = 2  # crop pixels of context on each side: room for the gradient and small moves

    def _patch(self, img, box, size):
        """The window's box widened by PATCH_MARGIN crop pixels (clipped to the image), read by PIL at
        the crop's density; returns (patch [C, h, w], its box in full-resolution pixels)."""
        from PIL import Image

        x0, y0, x1, y1 = box
        px, py = (x1 - x0) / size, (y1 - y0) / size  # full-resolution pixels per crop pixel
        m = self.PATCH_MARGIN
        bx0, by0 = max(0.0, x0 - m * px), max(0.0, y0 - m * py)
        bx1, by1 = min(float(self.width), x1 + m * px), min(float(self.height), y1 + m * py)
        w = max(1, round((bx1 - bx0) / max(px, 1e-9)))
        h = max(1, round((by1 - by0) / max(py, 1e-9)))
        sx, sy = img.width / self.width, img.height / self.height  # 1 unless the decode was reduced
        patch = img.resize((w, h), Image.BILINEAR, box=(bx0 * sx, by0 * sy, bx1 * sx, by1 * sy))
        return self._to_tensor(patch), (bx0, by0, bx1, by1)


def _sample_patch(patch: torch.Tensor, patch_box, window_box: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear samples of ``patch`` (covering ``patch_box`` in image pixels) at the size×size pixel
    centres of ``window_box`` [4] (image pixels, may carry a gradient) → [C, size, size]."""
    bx0, by0, bx1, by1 = patch_box
    centres = (torch.arange(size, dtype=window_box.dtype) + 0.5) / size
    xs = window_box[0] + centres * (window_box[2] - window_box[0])
    ys = window_box[1] + centres * (window_box[3] - window_box[1])
    gx = 2 * (xs - bx0) / max(bx1 - bx0, 1e-9) - 1  # align_corners=False: patch pixel j sits at (2j+1)/w - 1
    gy = 2 * (ys - by0) / max(by1 - by0, 1e-9) - 1
    grid = torch.stack(torch.broadcast_tensors(gx.view(1, size), gy.view(size, 1)), -1)
    out = F.grid_sample(patch.unsqueeze(0).to(grid.dtype), grid.unsqueeze(0), mode="bilinear",
                        padding_mode="border", align_corners=False)
    return out[0]


class FileBatchSource(ImageSource):
    """N image files as one batch (training on large photos, e.g. FiveK): the proxies can come from
    stored files (``proxies`` [N, C, s, s]) and the crops are read file by file through ``FileSource``,
    so memory depends on the crops, not on the image size. Images may differ in size."""

    def __init__(self, paths, channels: int = 3, proxies: torch.Tensor | None = None):
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ValueError("FileBatchSource needs at least one file")
        if proxies is not None and len(proxies) != len(self.paths):
            raise ValueError(f"{len(proxies)} proxies for {len(self.paths)} files")
        self.channels, self.count, self.stored_proxies = channels, len(self.paths), proxies
        self.sources = [FileSource(p, channels) for p in self.paths]  # each opened and verified once
        first = self.sources[0]
        self.height, self.width, self.detail_px = first.height, first.width, first.detail_px

    def proxy(self, size: int) -> torch.Tensor:
        if self.stored_proxies is not None and self.stored_proxies.shape[-1] == size:
            return self.stored_proxies
        return torch.cat([s.proxy(size) for s in self.sources])

    def crop(self, windows, size, supersample=None):
        if windows.shape[0] != self.count:
            raise ValueError(f"windows for {windows.shape[0]} images, the batch has {self.count}")
        return torch.cat([s.crop(windows[i:i + 1], size) for i, s in enumerate(self.sources)])

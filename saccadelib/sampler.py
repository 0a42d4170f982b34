"""Where to look and how a window is read: z → window → crop geometry (the sources, in ``saccadelib.sources``,
read crops with it).

Geometry (paper Eq. 2, spatial-transformer convention, ``align_corners=False``): image coordinates are
normalized to [-1, 1] on each axis; a window is (scale, cx, cy) and covers
``[cx - scale, cx + scale] × [cy - scale, cy + scale]``, so ``scale`` is the window's side as a fraction of
the image side. The affine map of Eq. 2 is ``theta = [[scale, 0, cx], [0, scale, cy]]``.

Crops are bilinear samples of the image (the paper's sampling kernel, zero outside the image) averaged
over a k×k supersampling grid per output pixel: a box prefilter, so a 758-px window read into 64² does not
alias. k follows the detail the source actually holds (``detail_px``), not its nominal size: a 2528² image
that is an upsampled 100² canvas needs no prefilter for a 64² crop of a 30% window.

Image sources share one interface (``saccadelib.sources.ImageSource``): ``proxy(size)`` (anti-aliased
downsample of the whole image) and ``crop(windows, size)`` (windows [N, T, 3] → crops [N, T, C, size, size],
differentiable in the windows).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from .draws import FRESH

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
    # Learnt mode: the largest window narrows linearly from max_scale to narrow_to over the first
    # narrow_epochs epochs of training, then stays (None: it stays at max_scale). Wide windows find the
    # digits early; narrow ones read them sharply later.
    narrow_to: float | None = None
    narrow_epochs: int = 10
    # In training only, every window's centre moves by a uniform offset of up to ``jitter`` × its half-side
    # in x and in y (staying inside the image): the crops of a stored training set differ every epoch, so
    # the reader cannot memorise them (``jitter_windows``). 0: the windows as placed.
    jitter: float = 0.0

    def __post_init__(self):
        if self.mode not in ("learnt", "fixed", "original"):
            raise ValueError(f"unknown window mode {self.mode!r}; valid: learnt, fixed, original")
        if not 0 < self.min_scale <= self.max_scale <= 1:
            raise ValueError("window scales must satisfy 0 < min_scale <= max_scale <= 1")
        if self.narrow_to is not None and (self.mode != "learnt" or not self.min_scale <= self.narrow_to <= self.max_scale):
            raise ValueError(f"window.narrow_to narrows a learnt window's cap: it needs window.mode=learnt and "
                             f"min_scale <= narrow_to <= max_scale, got {self.narrow_to}")
        if self.narrow_epochs < 1:
            raise ValueError(f"window.narrow_epochs must be at least 1, got {self.narrow_epochs}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"window.jitter is a share of the window's half-side, from 0 to 1, got {self.jitter}")

    def cap(self, epoch: int) -> float:
        """The largest window training may learn at ``epoch`` (counted from 0): ``max_scale``, or on its way
        to ``narrow_to``."""
        if self.narrow_to is None:
            return self.max_scale
        done = min(epoch / self.narrow_epochs, 1.0)
        return self.max_scale + (self.narrow_to - self.max_scale) * done

    @property
    def final_cap(self) -> float:
        return self.max_scale if self.narrow_to is None else self.narrow_to


def jitter_windows(windows: torch.Tensor, jitter: float, u: torch.Tensor) -> torch.Tensor:
    """windows [..., 3] (scale, cx, cy) with each centre moved by (2u - 1)·jitter·scale (u [..., 2] uniform
    in [0, 1)), then held inside the image; the scale is kept."""
    scale = windows[..., :1]
    room = (1 - scale).clamp(min=0)
    centre = windows[..., 1:] + (2 * u - 1) * jitter * scale
    return torch.cat([scale, torch.maximum(torch.minimum(centre, room), -room)], -1)


def window_from_z(z: torch.Tensor, config: WindowConfig = WindowConfig(), cap=None) -> torch.Tensor:
    """z [..., 3] → window [..., 3] = (scale, cx, cy) in normalized image coordinates. ``cap``: the largest
    learnt window now, where it narrows (``WindowConfig.narrow_to``); default ``max_scale``."""
    if z.shape[-1] != 3:
        raise ValueError(f"z must end in 3 values (scale, x, y), got shape {tuple(z.shape)}")
    s, x, y = z.unbind(-1)
    if config.mode == "original":
        scale = 1.0 / torch.clamp(s.abs(), min=1.0 / config.fixed_scale)
        return torch.stack([scale, x, y], -1)
    if config.mode == "fixed":
        scale = torch.full_like(s, config.fixed_scale)
    else:
        top = config.max_scale if cap is None else cap
        scale = config.min_scale + (top - config.min_scale) * torch.sigmoid(s)
    room = 1.0 - scale
    return torch.stack([scale, torch.tanh(x) * room, torch.tanh(y) * room], -1)


def window_to_box(window: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """window [..., 3] → pixel box [..., 4] = (x0, y0, x1, y1) in the image's pixel coordinates."""
    scale, cx, cy = window.unbind(-1)
    return torch.stack([(cx - scale + 1) / 2 * width, (cy - scale + 1) / 2 * height,
                        (cx + scale + 1) / 2 * width, (cy + scale + 1) / 2 * height], -1)


def supersample_factor(window_px: float, size: int, limit: int = MAX_SUPERSAMPLE) -> int:
    """Samples per output pixel and axis so that sample spacing ≤ one source pixel (capped)."""
    return int(min(max(math.ceil(window_px / size - 1e-6), 1), limit))


# ------------------------------------------------------------------------------------------ crops

def crop_tensor(images: torch.Tensor, windows: torch.Tensor, size: int, supersample: int = 1) -> torch.Tensor:
    """Bilinear crops with a k×k box prefilter: images [N,C,H,W], windows [N,T,3] → [N,T,C,size,size]."""
    n, t = windows.shape[:2]
    c = images.shape[1]
    k = supersample
    # The sampling grid of an axis-aligned window, as F.affine_grid(align_corners=False) builds it but
    # without its [N·T, m², 3] × [3, 2] batched matmul: pixel centres of an m-sample side, scaled and shifted.
    m = size * k
    flat = windows.reshape(n * t, 3, 1)
    base = (2 * torch.arange(m, device=windows.device, dtype=windows.dtype) + 1) / m - 1
    gx = (flat[:, 0] * base + flat[:, 1]).unsqueeze(1).expand(n * t, m, m)
    gy = (flat[:, 0] * base + flat[:, 2]).unsqueeze(2).expand(n * t, m, m)
    grid = torch.stack([gx, gy], -1)
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
    # positions in float64 (exact for any side); the weights, fractions in [0, 1], in the images' dtype
    frac = (source - lo).to(dtype)
    inside = ((index >= 0) & (index < large_len)).to(dtype)
    rows = torch.zeros(*index.shape, base_len, dtype=dtype, device=index.device)
    rows.scatter_add_(-1, lo.clamp(0, base_len - 1).unsqueeze(-1), ((1 - frac) * inside).unsqueeze(-1))
    rows.scatter_add_(-1, hi.clamp(0, base_len - 1).unsqueeze(-1), (frac * inside).unsqueeze(-1))
    return rows


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

def noisy_proxy(proxy: torch.Tensor, sigma: float = 0.0, keep: float = 1.0, draws=None) -> torch.Tensor:
    """The proxy ablation's two knobs (docs/tasks.md, paper Fig. 5), applied to the proxy only:
    additive Gaussian noise of std ``sigma`` clipped to [0, 1], then pixel dropout keeping a fraction
    ``keep`` of the pixels (the rest read 0; one mask per pixel, shared by the channels). ``draws``: where
    the noise comes from (``saccadelib.draws``; default torch's global generator)."""
    draws = draws or FRESH
    if sigma < 0 or not 0 < keep <= 1:
        raise ValueError(f"proxy noise needs sigma >= 0 and 0 < keep <= 1, got sigma={sigma}, keep={keep}")
    out = proxy
    if sigma > 0:
        noise = draws.normal(proxy.shape, proxy, "proxy_noise")
        out = (out + sigma * noise).clamp(0, 1)
    if keep < 1:
        n, _, h, w = proxy.shape
        mask = draws.uniform((n, 1, h, w), proxy, "proxy_mask") < keep
        out = out * mask
    return out

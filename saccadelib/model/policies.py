"""Which windows the crops are read from: the learnt policy, or one of its controls, chosen once per model.

Every policy maps (the posterior's learnt windows [N, T, 3], the proxy, the objects' boxes or None, and
where its random numbers come from: ``saccadelib.draws``) to the windows [N, T, 3] the classifier reads (scale, cx, cy; sampler.py's coordinates):
- ``LearntWindows``: the posterior's own (the model);
- ``RandomWindows``, ``GridWindows``, ``SalientWindows``, ``OracleWindows``: the controls with the same
  classifier (chance windows, a fixed grid, where the proxy's ink is without learning, and the objects'
  boxes: the ceiling for any policy). The recurrence still runs under a control, so its loss is the same.

``GlimpseStart`` is where the glimpses start: all at the centre, or on a grid (``init_layout``).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..draws import FRESH
from .cells import cell_ink, draw_cells
from .config import ModelConfig


def grid_windows(glimpses: int) -> torch.Tensor:
    """[T, 3] fixed windows: the image cut into g×g cells (g = ⌈√T⌉, window side 1/g), T of them taken
    evenly spread in row-major order (T = 4: the four quadrants; T = 2: the two diagonal cells)."""
    g = math.ceil(math.sqrt(glimpses))
    cells = torch.linspace(0, g * g - 1, glimpses).round().long()
    centres = (2 * torch.arange(g, dtype=torch.float64) + 1) / g - 1
    return torch.stack([torch.full((glimpses,), 1 / g, dtype=torch.float64),
                        centres[cells % g], centres[cells // g]], -1).float()


def oracle_windows(regions: torch.Tensor, glimpses: int, min_scale: float) -> torch.Tensor:
    """[N, T, 3] windows on the objects (regions [N, D, 4], x0, y0, x1, y1 in [-1, 1]): the smallest square
    holding glimpse t's object (t mod D), at least ``min_scale``. With fewer glimpses than objects, every
    glimpse holds them all (one window over the union of the boxes)."""
    n, d = regions.shape[:2]
    if glimpses >= d:
        boxes = regions[:, torch.arange(glimpses, device=regions.device) % d]
    else:
        union = torch.cat([regions[..., :2].amin(1), regions[..., 2:].amax(1)], -1)
        boxes = union.unsqueeze(1).expand(n, glimpses, 4)
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    half = ((boxes[..., 2:] - boxes[..., :2]) / 2).amax(-1, keepdim=True)  # the window's scale is its half-side
    return torch.cat([half.clamp(min=min_scale), centre], -1)


def salient_windows(proxy: torch.Tensor, glimpses: int, scale: float, ink_power: float = 1.0, reach: int = 0,
                    sample: bool = True, draws=FRESH) -> torch.Tensor:
    """[N, T, 3] windows of side ``scale`` on T cells of a grid of cells about a window wide, chosen by the
    cells' ink (the sum of p**ink_power over their proxy pixels p) as the cells posterior's prior chooses
    them (``draw_cells``: drawn with probability proportional to the ink, or the most inked with ``sample``
    False, each taking the cells within ``reach`` out of later choices), each centred on its cell's ink
    centroid: where the ink is, without any learning."""
    m = proxy.shape[-1]
    ink = proxy.clamp(min=0) ** ink_power
    mass, centroid = cell_ink(ink, max(1, min(m, round(m * scale))))  # cells about a window wide
    n, g = mass.shape[:2]
    chosen, _ = draw_cells((mass.flatten(1) + 1e-8).log().log_softmax(-1), glimpses, g, reach, sample, draws, "windows")
    room = 1.0 - scale
    centre = centroid.flatten(1, 2).gather(1, chosen.unsqueeze(-1).expand(-1, -1, 2)).clamp(-room, room)
    return torch.cat([torch.full((n, glimpses, 1), scale, device=proxy.device, dtype=proxy.dtype), centre], -1)


class LearntWindows(nn.Module):
    """The model's windows: where the posterior placed them."""

    def forward(self, learnt: torch.Tensor, proxy: torch.Tensor, regions: torch.Tensor | None, draws=FRESH) -> torch.Tensor:
        return learnt


class RandomWindows(nn.Module):
    """Uniform windows (scale in the allowed range, centre anywhere inside): the learnt policy's control."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.glimpses, w = cfg.glimpses, cfg.window
        self.low, self.high = (w.fixed_scale, w.fixed_scale) if w.mode != "learnt" else (w.min_scale, w.max_scale)

    def forward(self, learnt: torch.Tensor, proxy: torch.Tensor, regions: torch.Tensor | None, draws=FRESH) -> torch.Tensor:
        u = draws.uniform((len(proxy), self.glimpses, 3), proxy, "windows")
        scale = self.low + (self.high - self.low) * u[..., 0]
        return torch.stack([scale, (2 * u[..., 1] - 1) * (1 - scale), (2 * u[..., 2] - 1) * (1 - scale)], -1)


class GridWindows(nn.Module):
    """The same ``grid_windows`` for every image."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.glimpses = cfg.glimpses

    def forward(self, learnt: torch.Tensor, proxy: torch.Tensor, regions: torch.Tensor | None, draws=FRESH) -> torch.Tensor:
        return grid_windows(self.glimpses).to(proxy).expand(len(proxy), -1, -1)


class SalientWindows(nn.Module):
    """``salient_windows`` at the smallest window scale: drawn from the ink in training (and in evaluation
    with ``eval_sample``), the most inked cells otherwise."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.glimpses, self.scale, self.ink_power, self.reach = cfg.glimpses, cfg.window.min_scale, cfg.ink_power, cfg.cell_reach
        self.eval_sample = cfg.eval_sample

    def forward(self, learnt: torch.Tensor, proxy: torch.Tensor, regions: torch.Tensor | None, draws=FRESH) -> torch.Tensor:
        return salient_windows(proxy, self.glimpses, self.scale, self.ink_power, self.reach,
                               self.training or self.eval_sample, draws)


class OracleWindows(nn.Module):
    """``oracle_windows`` on the boxes the batch carries as ``regions``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.glimpses, self.scale = cfg.glimpses, cfg.window.min_scale

    def forward(self, learnt: torch.Tensor, proxy: torch.Tensor, regions: torch.Tensor | None, draws=FRESH) -> torch.Tensor:
        if regions is None:
            raise ValueError("the oracle policy needs the objects' boxes: a batch with 'regions' (two-digit tasks)")
        return oracle_windows(regions.to(proxy), self.glimpses, self.scale)


def build_policy(cfg: ModelConfig) -> nn.Module:
    if cfg.policy == "learnt":
        return LearntWindows()
    return {"random": RandomWindows, "grid": GridWindows, "salient": SalientWindows, "oracle": OracleWindows}[cfg.policy](cfg)


class GlimpseStart(nn.Module):
    """Where the T glimpses start. ``centre``: all at the image centre, as a plain VRNN starts (the
    glimpses are then symmetric and tend to stay on top of each other). ``grid``: a learnt per-glimpse
    offset of z, shared by prior and posterior (the KL sees only their difference), starting on the
    cells of ``grid_windows(T)``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.offset = nn.Parameter(grid_offsets(cfg)) if cfg.init_layout == "grid" else None

    def forward(self, mu: torch.Tensor, t: int | None = None) -> torch.Tensor:
        """``mu`` of glimpse ``t`` [N, 3], or of all glimpses [N, T, 3] when ``t`` is None."""
        if self.offset is None:
            return mu
        return mu + (self.offset if t is None else self.offset[t])


def grid_offsets(cfg: ModelConfig) -> torch.Tensor:
    """[T, 3] z offsets whose windows are centred on the grid_windows(T) cells (centres kept inside the
    room a window of ``init_scale`` has); the scale is left to the heads' initial bias."""
    centres = grid_windows(cfg.glimpses)[:, 1:]
    room = 1.0 - cfg.init_scale
    if cfg.window.mode == "original":
        return torch.cat([torch.zeros(cfg.glimpses, 1), centres.clamp(-room, room)], -1)
    return torch.cat([torch.zeros(cfg.glimpses, 1), torch.atanh((centres / room).clamp(-0.95, 0.95))], -1)

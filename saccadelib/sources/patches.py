"""Sampling crops from patches read out of a file (photos and pyramids alike)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_patches(patches: list[torch.Tensor], patch_boxes, window_boxes: torch.Tensor, size: int,
                    supersample: int = 1) -> torch.Tensor:
    """Bilinear samples of each patch (``patches[i]`` [C, h_i, w_i] covering ``patch_boxes[i]`` in image
    pixels) at the pixel centres of a (size·k)² grid over ``window_boxes[i]`` (image pixels, [T, 4], may
    carry a gradient), averaged in k×k blocks (k = ``supersample``, a box prefilter as
    ``sampler.crop_tensor``'s) → [T, C, size, size]. Off the image the samples are zeros, as in memory.

    The patches are sampled in one call, each padded with zeros to the largest (a patch's edge is either
    the image's, where zeros are right, or a margin beyond the window that the samples do not reach). The
    positions are worked out in float64 (exact at any image side) and sampled in float32: relative to a
    patch of a few hundred pixels, float32 is exact to far below a pixel."""
    m = size * supersample
    heights, widths = [p.shape[1] for p in patches], [p.shape[2] for p in patches]
    top, right = max(heights), max(widths)
    padded = torch.stack([F.pad(p.float(), (0, right - p.shape[2], 0, top - p.shape[1])) for p in patches])
    bounds = torch.tensor(patch_boxes, dtype=torch.float64)  # [T, 4]
    scale = torch.tensor([[w / right, h / top] for w, h in zip(widths, heights)], dtype=torch.float64)
    centres = (torch.arange(m, dtype=torch.float64) + 0.5) / m  # [m]
    boxes = window_boxes.to(torch.float64)
    xs = boxes[:, :1] + centres * (boxes[:, 2:3] - boxes[:, :1])  # [T, m]
    ys = boxes[:, 1:2] + centres * (boxes[:, 3:4] - boxes[:, 1:2])
    # grid_sample (align_corners=False) puts pixel j of a W-wide tensor at (2j + 1) / W - 1: a position
    # u patch pixels from the patch's edge is at 2u / W - 1
    gx = 2 * (xs - bounds[:, :1]) / (bounds[:, 2:3] - bounds[:, :1]).clamp(min=1e-9) * scale[:, :1] - 1
    gy = 2 * (ys - bounds[:, 1:2]) / (bounds[:, 3:4] - bounds[:, 1:2]).clamp(min=1e-9) * scale[:, 1:] - 1
    t = len(patches)
    grid = torch.stack(torch.broadcast_tensors(gx.view(t, 1, m), gy.view(t, m, 1)), -1).float()
    out = F.grid_sample(padded, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if supersample > 1:  # the k×k block means (avg_pool2d's, without its threading cost on small maps)
        out = out.view(*out.shape[:2], size, supersample, size, supersample).mean((3, 5))
    return out

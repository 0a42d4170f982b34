"""Places as cells: the arithmetic of choosing where to look among the cells of a grid over the proxy.

The ink per cell (``cell_ink``), draws without replacement that take a block of neighbouring cells out of
later draws (``draw_cells``), their log-probability for REINFORCE (``drawn_log_prob``) and attention
sampling's unbiased estimate of a mean under the categorical (``sampled_means``). Used by the cells
posterior, the salient control and attention sampling; no parameters here.
"""
from __future__ import annotations

import torch

from ..draws import FRESH


def cell_ink(proxy: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The proxy's ink per cell of r×r proxy pixels (g×g cells, g = side // r; the last rows and columns
    beyond a whole number of cells left out): mass [N, g, g] and the ink-weighted centre of each cell
    [N, g, g, 2] (x, y in [-1, 1]; the cell's own centre where it holds no ink)."""
    n, _, side, _ = proxy.shape
    g = side // r
    ink = proxy[:, :, :g * r, :g * r].mean(1).clamp(min=0).reshape(n, g, r, g, r)
    centres = ((2 * torch.arange(g * r, device=proxy.device, dtype=proxy.dtype) + 1) / side - 1).view(g, r)
    mass = ink.sum((2, 4))
    safe = mass.clamp(min=1e-8)
    cx = (ink * centres[None, None, None]).sum((2, 4)) / safe
    cy = (ink * centres[None, :, :, None, None]).sum((2, 4)) / safe
    empty = mass <= 1e-7
    own = centres.mean(1)
    cx = torch.where(empty, own.view(1, 1, g).expand_as(cx), cx)
    cy = torch.where(empty, own.view(1, g, 1).expand_as(cy), cy)
    return mass, torch.stack([cx, cy], -1)


def _gumbel_keys(log_p: torch.Tensor, sample: bool, draws=FRESH, stream: str = "cells") -> torch.Tensor:
    """log_p perturbed by Gumbel noise (when ``sample``): its arg-maxes are draws from the categorical."""
    keys = log_p.detach()
    if sample:
        u = draws.uniform(keys.shape, keys, stream).clamp(1e-10, 1 - 1e-7)
        keys = keys - torch.log(-torch.log(u))
    return keys


def gumbel_top_k(log_p: torch.Tensor, k: int, sample: bool, draws=FRESH, stream: str = "cells") -> torch.Tensor:
    """[N, k] indices: k draws without replacement from the categorical ``log_p`` [N, M], in draw order
    (Gumbel top-k), or with ``sample`` False the k most probable, most probable first."""
    return _gumbel_keys(log_p, sample, draws, stream).topk(min(k, log_p.shape[1]), -1).indices


def draw_cells(log_a: torch.Tensor, k: int, side: int, reach: int, sample: bool, draws=FRESH,
               stream: str = "cells") -> tuple[torch.Tensor, torch.Tensor]:
    """k draws from the categorical ``log_a`` [N, M] over a side×side grid of cells, each taking the cell
    drawn and the cells within ``reach`` of it (a (2·reach+1)² block) out of later draws: a glimpse centred
    on a cell shows its neighbours too. Drawn by Gumbel-max on keys perturbed once (exact sampling without
    replacement from what is left), or with ``sample`` False the most probable cell left each time.
    Returns the cells ``chosen`` [N, k] and the mass each draw took out ``taken`` [N, k] (differentiable in
    log_a): the probability of the block it stands for. When every cell is taken, the grid starts over."""
    keys = _gumbel_keys(log_a, sample, draws, stream)
    a = log_a.exp()
    index = torch.arange(keys.shape[1], device=keys.device)
    rows, cols = index // side, index % side
    free = torch.ones_like(keys, dtype=torch.bool)
    chosen, taken = [], []
    for _ in range(k):
        free = free | ~free.any(-1, keepdim=True)
        cell = keys.masked_fill(~free, float("-inf")).argmax(-1)
        block = (((rows - (cell // side).unsqueeze(-1)).abs() <= reach)
                 & ((cols - (cell % side).unsqueeze(-1)).abs() <= reach) & free)
        chosen.append(cell)
        taken.append((a * block).sum(-1))
        free = free & ~block
    return torch.stack(chosen, 1), torch.stack(taken, 1)


def drawn_log_prob(log_a: torch.Tensor, chosen: torch.Tensor, taken: torch.Tensor) -> torch.Tensor:
    """[N, k] log-probability of each of the draws ``chosen`` [N, k] that ``draw_cells`` made from ``log_a``
    [N, M], given the earlier ones: its cell over the mass they left, log a_{c_t} - log(1 - Σ_{j<t} taken_j).
    Their sum over the draws is the log-probability of the whole draw."""
    left = 1 - (taken.cumsum(1) - taken)
    return log_a.gather(1, chosen) - left.clamp(min=1e-12).log()


def sampled_means(picked: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """[N, k, D]: after each of k draws without replacement from a distribution a, in draw order, the
    unbiased estimate of Σ_m a_m f_m from the features ``feats`` [N, k, D] of the draws so far, its
    gradient in a unbiased too (attention sampling's estimator); ``picked`` [N, k] is the probability
    of what each draw took (a_i for a single item). Draw i is unbiased once scaled by the mass left,
    F_i = Σ_{j<i} a_j f_j + (1 - Σ_{j<i} a_j) f_i, and the estimate after i draws is the average of
    F_1..F_i. The gradient reaches a through a_j in the first sum and, for the drawn term, through
    a_i / stopgrad(a_i), the score-function factor."""
    picked = picked.unsqueeze(-1)  # [N, k, 1]
    left = (1 - (picked.cumsum(1) - picked)).detach()  # the mass not yet drawn at each draw
    weighted = picked * feats
    estimates = weighted.cumsum(1) - weighted + left * (picked / picked.detach().clamp(min=1e-30)) * feats  # F_i
    count = torch.arange(1, picked.shape[1] + 1, device=feats.device, dtype=feats.dtype).view(1, -1, 1)
    return estimates.cumsum(1) / count

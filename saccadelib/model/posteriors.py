"""Where to look: the prior p(z_t | h_{t-1}) and the three posterior heads q, one chosen per model.

Every posterior has the same four steps, so the model's recurrence reads the same whichever it is:
- ``plan(e_c, fmap, proxy, sample, draws)``: what it computes once per image, before the glimpses (a
  ``Plan``; ``draws``: where a random choice's numbers come from, ``saccadelib.draws``);
- ``step(plan, t, h)``: (mu, logvar) of z_t given h_{t-1};
- ``code(plan, t, z)``: what the core and the decoder read of glimpse t (z itself, or the window);
- ``windows(plan, z, codes)``: the learnt windows [N, T, 3] once all glimpses are placed;
and ``policy_terms(plan, sample)`` gives the loss terms of a discrete choice (none for the Gaussians).

- ``PooledPosterior`` (the paper's method): an MLP over the proxy features e_c and h_{t-1}; the window
  follows z through ``window_from_z``, trained through the crop's pathwise derivative.
- ``MapPosterior``: the position read off a score map over the proxy encoder's map (soft-argmax).
- ``CellPosterior`` (the ``saccade_cells`` variant): a categorical over the map's cells, drawn without
  replacement from an ink prior, learnt by REINFORCE (or attention sampling's estimator); a Gaussian z
  places the window within the cell.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..draws import FRESH
from ..sampler import WindowConfig, window_from_z
from .cells import cell_ink, draw_cells, drawn_log_prob
from .config import HEAD_WIDTH, LATENT, ModelConfig
from .nets import mlp


def raw_scale(scale: float, window: WindowConfig) -> float:
    """The z_0 that ``window_from_z`` maps to ``scale`` (learnt mode); 0 in other modes."""
    if window.mode != "learnt" or window.max_scale == window.min_scale:
        return 0.0
    frac = min(max((scale - window.min_scale) / (window.max_scale - window.min_scale), 1e-3), 1 - 1e-3)
    return math.log(frac / (1 - frac))


class GaussianHead(nn.Module):
    """features → (mu, logvar) of z; starts near a chosen window so training begins from a sane policy."""

    def __init__(self, cin: int, hidden: int, cfg: ModelConfig):
        super().__init__()
        self.net = mlp(cin, hidden, 2 * LATENT)
        last = self.net[-1]
        nn.init.normal_(last.weight, std=1e-3)
        with torch.no_grad():
            last.bias.zero_()
            last.bias[0] = raw_scale(cfg.init_scale, cfg.window)
            last.bias[LATENT:] = cfg.init_logvar

    def forward(self, x):
        mu, logvar = self.net(x).chunk(2, -1)
        return mu, logvar


class Prior(GaussianHead):
    """p(z_t | h_{t-1})."""


@dataclass
class Plan:
    """What a posterior computes once per image, before the glimpses."""
    features: torch.Tensor  # e_c [N, F] (pooled) or the scored map [N, C, m, m]
    cells: dict | None = None  # cells posterior: the categorical over the cells (CellPosterior.cells)
    chosen: torch.Tensor | None = None  # [N, T] the cells drawn, in draw order
    taken: torch.Tensor | None = None  # [N, T] the probability each draw took out


def _encoder_input(features: torch.Tensor, trains_encoder: bool) -> torch.Tensor:
    """The proxy features as the posterior reads them: without passing its gradient back into the proxy
    encoder unless ``posterior_trains_encoder`` (location gradients through the sampler are noisy)."""
    return features if trains_encoder else features.detach()


class GaussianPosterior(nn.Module):
    """What the two Gaussian heads share: z is the code, the window follows z."""

    window_config: WindowConfig

    def code(self, plan: Plan, t: int, z: torch.Tensor) -> torch.Tensor:
        return z

    def windows(self, plan: Plan, z: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        # window_cap: a buffer the model keeps where the largest window narrows in training (narrow_to)
        return window_from_z(z, self.window_config, getattr(self, "window_cap", None))

    def policy_terms(self, plan: Plan, sample: bool) -> tuple[None, None]:
        return None, None


class PooledPosterior(GaussianHead, GaussianPosterior):
    """q(z_t | c, h_{t-1}) = N(MLP([e_c, h_{t-1}])): the paper's posterior."""

    def __init__(self, map_channels: int, cfg: ModelConfig):
        super().__init__(cfg.proxy_features + cfg.hidden, HEAD_WIDTH, cfg)
        self.trains_encoder, self.window_config = cfg.posterior_trains_encoder, cfg.window

    def plan(self, e_c: torch.Tensor, fmap: torch.Tensor, proxy: torch.Tensor, sample: bool, draws=FRESH) -> Plan:
        return Plan(_encoder_input(e_c, self.trains_encoder))

    def step(self, plan: Plan, t: int, h: torch.Tensor):
        return self(torch.cat([plan.features, h], -1))


class MapPosterior(GaussianPosterior):
    """q(z_t | c, h_{t-1}) with the position read off a map: the proxy features at a quarter of the proxy's
    side through a 3×3 convolution (once per image), scaled and shifted per channel by h_{t-1} (so each
    glimpse can look elsewhere), scored per cell; the centre is the softmax-weighted mean of the cell
    centres (differentiable in every score), written in z's coordinates (atanh: ``window_from_z`` maps it
    back). The scale's mean and every log-variance come from h_{t-1}. The scores start at 0: the first
    centre is the image's."""

    def __init__(self, channels: int, cfg: ModelConfig):
        super().__init__()
        self.features = nn.Conv2d(channels, channels, 3, padding=1)  # once per image, before the glimpses
        self.film = nn.Linear(cfg.hidden, 2 * channels)
        self.score = nn.Conv2d(channels, 1, 1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)
        self.rest = GaussianHead(cfg.hidden, HEAD_WIDTH, cfg)  # its (mu_s, logvar) are used; its position is not
        self.trains_encoder, self.window_config = cfg.posterior_trains_encoder, cfg.window

    def plan(self, e_c: torch.Tensor, fmap: torch.Tensor, proxy: torch.Tensor, sample: bool, draws=FRESH) -> Plan:
        return Plan(self.features(_encoder_input(fmap, self.trains_encoder)))

    def step(self, plan: Plan, t: int, h: torch.Tensor):
        fmap = plan.features
        gamma, beta = self.film(h).unsqueeze(-1).unsqueeze(-1).chunk(2, 1)
        scores = self.score(F.relu(fmap * (1 + gamma) + beta)).flatten(1)  # [N, m·m]
        weights = scores.softmax(-1)
        m = fmap.shape[-1]
        centres = (2 * torch.arange(m, device=fmap.device, dtype=weights.dtype) + 1) / m - 1
        cx = weights.view(-1, m, m).sum(1) @ centres  # columns
        cy = weights.view(-1, m, m).sum(2) @ centres  # rows
        mu, logvar = self.rest(h)
        position = torch.atanh(torch.stack([cx, cy], -1).clamp(-0.999, 0.999))
        return torch.cat([mu[:, :1], position], -1), logvar


class CellPosterior(nn.Module):
    """q(c, z_t | proxy, h_{t-1}): where to look as a choice among the cells of the proxy encoder's map,
    then the window within it (the ``saccade_cells`` variant; docs/model.md).

    - Which cells: one categorical per image over the map's m×m cells, a = softmax(β·log ink + s), where
      ink is the cell's sum of p**ink_power over its proxy pixels p (a start that looks where something
      dense is drawn), β (learnt, from 1) sharpens or flattens it and s is a learnt score of the cell's
      features (from 0). The T glimpses take T distinct cells (``draw_cells``): drawn in training, the most
      probable in evaluation, each taking its block of cells (``cell_reach``) out of later draws. A draw
      has no pathwise derivative: the scores learn by REINFORCE (``drawn_log_prob``, the loss's policy
      term) or through attention sampling's estimator (the classifier's pooling), as ``cell_gradient``
      says. The categorical's prior is the ink alone (β = 1, s = 0); its KL is a loss term of its own
      weight (loss.cell_kl_weight).
    - The window: centred on the cell's ink centroid shifted by up to one cell (tanh of z's position),
      scaled by z's first component; (mu, logvar) of z from h_{t-1} and the chosen cell's features, so
      scale and offset stay pathwise and variational against the Gaussian prior p(z | h_{t-1}). The
      window is also what the core reads: it says which cell the glimpse took."""

    def __init__(self, channels: int, cfg: ModelConfig):
        super().__init__()
        self.features = nn.Conv2d(channels, channels, 3, padding=1)  # once per image, before the glimpses
        self.score = nn.Conv2d(channels, 1, 1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)
        self.ink_sharpness = nn.Parameter(torch.ones(()))
        self.rest = GaussianHead(cfg.hidden + channels, HEAD_WIDTH, cfg)
        self.ink_power, self.glimpses, self.reach = cfg.ink_power, cfg.glimpses, cfg.cell_reach
        self.trains_encoder, self.window_config = cfg.posterior_trains_encoder, cfg.window
        # REINFORCE needs the log-probability of what was drawn from the scores the windows came from
        self.reinforce = cfg.cell_gradient == "reinforce" and cfg.policy == "learnt"

    def cells(self, fmap: torch.Tensor, proxy: torch.Tensor) -> dict:
        """Once per image, from ``features`` of the map: the log-probabilities of the cells ``log_a`` and of
        the prior ``log_prior`` [N, M], their ink centroids ``centroid`` [N, M, 2] and features ``local``
        [N, M, C] (M = m²), the cell's side ``cell`` (in [-1, 1] units) and the grid's ``side`` m."""
        m = fmap.shape[-1]
        ink = proxy.clamp(min=0) ** self.ink_power
        mass, centroid = cell_ink(ink, max(1, proxy.shape[-1] // m))
        log_ink = (mass.flatten(1) + 1e-8).log()  # far below any inked cell's mass: empty cells are not drawn
        local = F.relu(fmap)
        log_a = (self.ink_sharpness * log_ink + self.score(local).flatten(1)).log_softmax(-1)
        return {"log_a": log_a, "log_prior": log_ink.log_softmax(-1), "centroid": centroid.flatten(1, 2),
                "local": local.flatten(2).transpose(1, 2), "cell": 2 / m, "side": m}

    def plan(self, e_c: torch.Tensor, fmap: torch.Tensor, proxy: torch.Tensor, sample: bool, draws=FRESH) -> Plan:
        """The cells, drawn once before the recurrence (the categorical reads no h)."""
        features = self.features(_encoder_input(fmap, self.trains_encoder))
        cells = self.cells(features, proxy)
        chosen, taken = draw_cells(cells["log_a"], self.glimpses, cells["side"], self.reach, sample, draws)
        return Plan(features, cells, chosen, taken)

    def step(self, plan: Plan, t: int, h: torch.Tensor):
        local = plan.cells["local"]
        picked = local.gather(1, plan.chosen[:, t].view(-1, 1, 1).expand(-1, 1, local.shape[-1]))[:, 0]
        return self.rest(torch.cat([h, picked], -1))

    def code(self, plan: Plan, t: int, z: torch.Tensor) -> torch.Tensor:
        """[N, 3] the window of z within the cell glimpse t drew."""
        cells, window = plan.cells, self.window_config
        centroid = cells["centroid"].gather(1, plan.chosen[:, t].view(-1, 1, 1).expand(-1, 1, 2))[:, 0]
        scale = window.min_scale + (window.max_scale - window.min_scale) * torch.sigmoid(z[:, :1])
        room = 1.0 - scale
        centre = torch.maximum(torch.minimum(centroid + torch.tanh(z[:, 1:]) * cells["cell"], room), -room)
        return torch.cat([scale, centre], -1)

    def windows(self, plan: Plan, z: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return codes

    def policy_terms(self, plan: Plan, sample: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """[N] the KL of the cells' categorical to its ink prior, and (REINFORCE, when drawn) [N, T] the
        log-probability of each cell drawn given the earlier draws."""
        log_a = plan.cells["log_a"]
        kl = (log_a.exp() * (log_a - plan.cells["log_prior"])).sum(-1)
        log_prob = drawn_log_prob(log_a, plan.chosen, plan.taken) if self.reinforce and sample else None
        return kl, log_prob


POSTERIORS = {"pooled": PooledPosterior, "map": MapPosterior, "cells": CellPosterior}

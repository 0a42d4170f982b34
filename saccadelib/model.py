"""Variational Saccading (paper §3-4): a VRNN over the proxy that decides where to look, and a crop
classifier that reads the full-resolution glimpses.

Per glimpse t = 1..T, with h_0 = 0 and e_c = ProxyEncoder(c):
    prior      p(z_t | h_{t-1})          = N(Prior(h_{t-1}))
    posterior  q(z_t | c, h_{t-1})       = N(Posterior(e_c, h_{t-1}))      z_t ~ q (pathwise)
    decoder    p(c | z_t, h_{t-1})       = Bernoulli(ProxyDecoder(z_t, h_{t-1}))
    recurrence h_t = CoreRNN([e_c, φ(z_t)], h_{t-1})
    glimpse    o_t = crop(x, window(z_t))                              (sampler.py)
Prediction: the glimpse features g(o_t) (optionally with h_{t-1}) are averaged over t and a dense head
gives the class (optionally seeing e_c too). As in the original code, the crops never feed back into the
RNN: where to look depends on the proxy and earlier z only, so all T crops are read in one batched call.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import from_dict, to_dict
from .loss import LossConfig, gaussian_sample, saccade_loss
from .sampler import ImageSource, TensorSource, WindowConfig, noisy_proxy, window_from_z

LATENT = 3  # (scale, x, y)


POLICIES = ("learnt", "random", "grid", "oracle", "salient")
STEMS = ("space_to_depth", "conv")
POSTERIOR_HEADS = ("pooled", "map", "cells")
CLASSIFIER_READS = ("crops", "crops+state", "crops+proxy", "crops+state+proxy")


@dataclass(frozen=True)
class ModelConfig:
    n_classes: int = 55
    channels: int = 1
    glimpses: int = 4
    crop_size: int = 32
    proxy_size: int = 32
    hidden: int = 256
    rnn_layers: int = 2
    proxy_features: int = 256
    crop_features: int = 256
    latent_features: int = 64
    width: int = 16  # conv channels: crop net (w, 2w, 4w, 8w), proxy encoder (w, 2w, 4w), decoder (2w, 2w, w)
    proxy_width: int | None = None  # the proxy encoder's w when it differs (a 32² proxy is cheap to widen)
    norm: str = "batch"  # conv normalization: "batch" (learns much faster here, see README) or "group" (paper)
    # How the conv nets (crop net, proxy encoder) read full-resolution pixels: "space_to_depth" (each 2×2
    # pixel block folded into channels, the first conv at half the side) or "conv" (a 3×3 conv at full
    # side, then 2×2 max-pooling). See conv_stem.
    stem: str = "space_to_depth"
    # The side of the pixel blocks the crop net's space_to_depth stem folds: 2 for 32² crops; 4 for 64²
    # crops runs the rest of the crop net at the same 16² side, at the 32² crops' cost.
    crop_fold: int = 2
    proxy_encoder: str = "spatial"  # "spatial" (flatten: keeps where things are) or "pooled" (global pool)
    # How the posterior places a glimpse: "pooled" (an MLP over the proxy features e_c and h_{t-1}, the
    # paper's) or "map" (a score map over the proxy encoder's features at a quarter of the proxy's side,
    # modulated by h_{t-1}; the window's centre is the map's soft-argmax): a map says *where* to the
    # precision of its cells, which a few pooled cells cannot when a digit is 2% of the image side;
    # "cells" (a categorical over the map's cells, drawn without replacement, times a Gaussian for the
    # window's scale and its offset within the cell: CellPosterior) chooses among places, which a position
    # moved along the image gradient inside its window cannot do when most windows hold nothing.
    posterior_head: str = "pooled"
    # What the classifier reads besides the crops (docs/deviations.md): "crops" (the crops' features
    # alone: the paper's Eq. 6, and the test of whether looking is what works), "crops+state" (joined with
    # h_{t-1}, as the original code did), "crops+proxy" (with the proxy features e_c), or both.
    classifier_reads: str = "crops"
    # posterior_head=cells: a drawn cell takes the cells within this many cells of it out of later draws
    # (its glimpse shows them too), so the T glimpses land on T different things rather than on one
    # object's neighbouring cells.
    cell_reach: int = 1
    # posterior_head=cells: the ink prior weighs a proxy pixel of value p as p**ink_power. In a proxy a
    # digit is a dense blob and a thin stroke a faint line, so powers above 1 rank the digits' cells first
    # (scripts/probes/megapixel_ink_ranking.py: with 4, the six most probable cells of a Megapixel MNIST
    # canvas hold 4.5 of its 5 digits, against 3.2 with 1).
    ink_power: float = 4.0
    # posterior_head=cells: how the draws' scores learn. "reinforce": the classifier reads the plain mean of
    # the glimpse features and the scores follow the score-function gradient of the expected loss (reward:
    # the canvas's log-likelihood of its label, less the batch's mean); "attention_sampling": the
    # classifier reads attention sampling's estimate of the features' mean under the categorical, whose
    # gradient reaches the scores (the loss of the expected features; it drifted off the digits on
    # Megapixel MNIST, docs/resolution.md).
    cell_gradient: str = "reinforce"
    init_scale: float = 0.6  # initial window side (fraction of the image side)
    init_logvar: float = -2.0  # initial posterior log-variance of z
    # Where the T glimpses start: "centre" (all at the image centre, as a plain VRNN starts: the glimpses
    # are then symmetric and tend to stay on top of each other) or "grid" (a learnt per-glimpse offset of
    # z, shared by prior and posterior, starting on the cells of grid_windows(T)).
    init_layout: str = "centre"
    # False: the posterior reads the proxy features without passing its gradients back into the proxy
    # encoder (location gradients through the sampler are noisy; the classifier and decoder shape e_c).
    posterior_trains_encoder: bool = True
    eval_sample: bool = False  # evaluation uses the posterior mean unless True
    train_sample: bool = True  # training draws z from q; False: the posterior mean (the deterministic ablation)
    # "learnt" (windows from z), or the controls "random" (uniform), "grid" (fixed), "salient" (where the
    # proxy is bright: a hand-made policy that looks where the ink is) and "oracle" (on the objects' boxes,
    # which the batch must carry as ``regions``: the ceiling for any policy)
    policy: str = "learnt"
    # The noisy-proxy ablation (docs/tasks.md): Gaussian noise std and pixel keep fraction applied to the
    # proxy the model is shown, never to the crops. Fresh noise in training, a fixed stream in evaluation.
    proxy_noise: float = 0.0
    proxy_keep: float = 1.0
    window: WindowConfig = field(default_factory=WindowConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise ValueError(f"unknown glimpse policy {self.policy!r}; valid: {', '.join(POLICIES)}")
        if self.classifier_reads not in CLASSIFIER_READS:
            raise ValueError(f"unknown classifier input {self.classifier_reads!r}; valid: {', '.join(CLASSIFIER_READS)}")
        if self.init_layout not in ("centre", "grid"):
            raise ValueError(f"unknown initial layout {self.init_layout!r}; valid: centre, grid")
        if self.stem not in STEMS:
            raise ValueError(f"unknown stem {self.stem!r}; valid: {', '.join(STEMS)}")
        if self.stem == "space_to_depth" and (self.crop_size % self.crop_fold or self.proxy_size % 2):
            raise ValueError(f"stem=space_to_depth needs crop_size divisible by crop_fold ({self.crop_size}, "
                             f"{self.crop_fold}) and an even proxy_size ({self.proxy_size}); change them or use stem=conv")
        if self.crop_fold < 2 or (self.stem == "conv" and self.crop_fold != 2):
            raise ValueError(f"crop_fold must be ≥ 2 and is only set with stem=space_to_depth, got {self.crop_fold}")
        if self.norm not in ("batch", "group"):
            raise ValueError(f"unknown norm {self.norm!r}; valid: batch, group")
        if self.posterior_head not in POSTERIOR_HEADS:
            raise ValueError(f"unknown posterior head {self.posterior_head!r}; valid: {', '.join(POSTERIOR_HEADS)}")
        if self.posterior_head != "pooled" and self.window.mode != "learnt":
            raise ValueError(f"posterior_head={self.posterior_head} places windows through the learnt window mode; "
                             "set window.mode=learnt")
        if self.cell_gradient not in ("attention_sampling", "reinforce"):
            raise ValueError(f"unknown cell_gradient {self.cell_gradient!r}; valid: attention_sampling, reinforce")
        if self.posterior_head == "cells" and self.proxy_size % 4:
            raise ValueError(f"posterior_head=cells scores the cells of a map at a quarter of the proxy's side: "
                             f"proxy_size must be divisible by 4, got {self.proxy_size}")
        if self.posterior_head == "cells" and self.init_layout != "centre":
            raise ValueError("posterior_head=cells chooses its own places; init_layout must stay centre")
        if self.proxy_encoder not in ("spatial", "pooled"):
            raise ValueError(f"unknown proxy encoder {self.proxy_encoder!r}; valid: spatial, pooled")
        if self.proxy_noise < 0 or not 0 < self.proxy_keep <= 1:
            raise ValueError(f"proxy_noise must be >= 0 and proxy_keep in (0, 1], got {self.proxy_noise}, {self.proxy_keep}")
        if self.proxy_width is not None and self.proxy_width < 1:
            raise ValueError(f"proxy_width must be a positive channel count or None, got {self.proxy_width}")
        for name, low in (("cell_reach", 0), ("n_classes", 2), ("channels", 1), ("glimpses", 1), ("crop_size", 8),
                          ("proxy_size", 8), ("hidden", 1), ("rnn_layers", 1), ("proxy_features", 1), ("crop_features", 1),
                          ("latent_features", 1), ("width", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"setting {name} must be at least {low}, got {getattr(self, name)}")
        if self.ink_power <= 0:
            raise ValueError(f"setting ink_power must be positive, got {self.ink_power}")
        if not 0 < self.init_scale <= 1:
            raise ValueError(f"setting init_scale must be in (0, 1] (a window's side over the image's), got {self.init_scale}")

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        return from_dict(cls, values)


def conv_block(cin: int, cout: int, norm: str, pool: bool = True) -> nn.Sequential:
    """3×3 conv, then (when ``pool``) 2×2 max-pooling, normalization and ReLU. Pooling straight after the
    conv lets the normalization and ReLU run on a quarter of the pixels: max-pooling commutes with ReLU,
    and only the normalization's statistics change (those of the pooled map)."""
    layers = [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), *([nn.MaxPool2d(2)] if pool else []),
              nn.BatchNorm2d(cout) if norm == "batch" else nn.GroupNorm(min(8, cout), cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def conv_stem(cin: int, cout: int, norm: str, stem: str, fold: int = 2) -> nn.Sequential:
    """The block that reads full-resolution pixels and divides the side by ``fold``. ``space_to_depth``
    folds each fold×fold pixel block into fold²·cin channels and convolves at the reduced side: no pixel is
    dropped before the conv (its 3×3 kernel spans 3·fold pixels), and on a CPU, where a conv with one input
    channel at full side is bound by memory traffic, it costs about a third as much as ``conv``, a plain
    conv_block at full side (docs/efficiency.md)."""
    if stem == "conv":
        return conv_block(cin, cout, norm)
    return nn.Sequential(nn.PixelUnshuffle(fold), *conv_block(fold * fold * cin, cout, norm, pool=False))


def mlp(cin: int, hidden: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, cout))


class ProxyEncoder(nn.Module):
    """c [N,C,J,J] → e_c. ``spatial`` keeps a 4×4 layout (flattened): a globally pooled encoder cannot
    say *where* anything is, which is the one thing the proxy is for."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w, norm = cfg.proxy_width or cfg.width, cfg.norm
        self.trunk = nn.Sequential(conv_stem(cfg.channels, w, norm, cfg.stem), conv_block(w, 2 * w, norm),
                                   conv_block(2 * w, 4 * w, norm),
                                   nn.AdaptiveAvgPool2d(4 if cfg.proxy_encoder == "spatial" else 1))
        width = 4 * w * (16 if cfg.proxy_encoder == "spatial" else 1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(width, cfg.proxy_features), nn.ReLU(inplace=True))
        self.map_channels = 2 * w

    def forward(self, proxy, with_map: bool = False):
        """e_c [N, proxy_features]; with ``with_map`` also the feature map at a quarter of the proxy's side."""
        fmap = self.trunk[:2](proxy)
        e_c = self.head(self.trunk[2:](fmap))
        return (e_c, fmap) if with_map else e_c


class GaussianHead(nn.Module):
    """features → (mu, logvar) of z; starts near a chosen window so training begins from a sane policy."""

    def __init__(self, cin: int, hidden: int, cfg: ModelConfig):
        super().__init__()
        self.net = mlp(cin, hidden, 2 * LATENT)
        last = self.net[-1]
        nn.init.normal_(last.weight, std=1e-3)
        with torch.no_grad():
            last.bias.zero_()
            last.bias[0] = _raw_scale(cfg.init_scale, cfg.window)
            last.bias[LATENT:] = cfg.init_logvar

    def forward(self, x):
        mu, logvar = self.net(x).chunk(2, -1)
        return mu, logvar


def _raw_scale(scale: float, window: WindowConfig) -> float:
    """The z_0 that ``window_from_z`` maps to ``scale`` (learnt mode); 0 in other modes."""
    if window.mode != "learnt" or window.max_scale == window.min_scale:
        return 0.0
    frac = min(max((scale - window.min_scale) / (window.max_scale - window.min_scale), 1e-3), 1 - 1e-3)
    return math.log(frac / (1 - frac))


class Prior(GaussianHead):
    """p(z_t | h_{t-1})."""


class Posterior(GaussianHead):
    """q(z_t | c, h_{t-1})."""


class MapPosterior(nn.Module):
    """q(z_t | c, h_{t-1}) with the position read off a map: the proxy features at a quarter of the proxy's
    side through a 3×3 convolution (once per image), scaled and shifted per channel by h_{t-1} (so each
    glimpse can look elsewhere), scored per cell;
    the centre is the softmax-weighted mean of the cell centres (differentiable in every score), written in
    z's coordinates (atanh: ``window_from_z`` maps it back). The scale's mean and every log-variance come
    from h_{t-1}, as in ``Posterior``. The scores start at 0: the first centre is the image's."""

    def __init__(self, channels: int, cfg: ModelConfig):
        super().__init__()
        self.features = nn.Conv2d(channels, channels, 3, padding=1)  # once per image, before the glimpses
        self.film = nn.Linear(cfg.hidden, 2 * channels)
        self.score = nn.Conv2d(channels, 1, 1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)
        self.rest = GaussianHead(cfg.hidden, 256, cfg)  # its (mu_s, logvar) are used; its position is not

    def forward(self, fmap: torch.Tensor, h: torch.Tensor):
        """``fmap``: ``features`` of the proxy encoder's map (computed once for all glimpses)."""
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


def _gumbel_keys(log_p: torch.Tensor, sample: bool, generator: torch.Generator | None) -> torch.Tensor:
    """log_p perturbed by Gumbel noise (when ``sample``): its arg-maxes are draws from the categorical."""
    keys = log_p.detach()
    if sample:
        u = torch.rand(keys.shape, generator=generator, device=keys.device, dtype=keys.dtype).clamp(1e-10, 1 - 1e-7)
        keys = keys - torch.log(-torch.log(u))
    return keys


def gumbel_top_k(log_p: torch.Tensor, k: int, sample: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """[N, k] indices: k draws without replacement from the categorical ``log_p`` [N, M], in draw order
    (Gumbel top-k), or with ``sample`` False the k most probable, most probable first."""
    return _gumbel_keys(log_p, sample, generator).topk(min(k, log_p.shape[1]), -1).indices


def draw_cells(log_a: torch.Tensor, k: int, side: int, reach: int, sample: bool,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """k draws from the categorical ``log_a`` [N, M] over a side×side grid of cells, each taking the cell
    drawn and the cells within ``reach`` of it (a (2·reach+1)² block) out of later draws: a glimpse centred
    on a cell shows its neighbours too. Drawn by Gumbel-max on keys perturbed once (exact sampling without
    replacement from what is left), or with ``sample`` False the most probable cell left each time.
    Returns the cells ``chosen`` [N, k] and the mass each draw took out ``taken`` [N, k] (differentiable in
    log_a): the probability of the block it stands for. When every cell is taken, the grid starts over."""
    keys = _gumbel_keys(log_a, sample, generator)
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
    """[N] log-probability of the draws ``chosen`` [N, k] that ``draw_cells`` made from ``log_a`` [N, M]:
    each draw's cell over the mass the earlier draws left, Σ_t log a_{c_t} - log(1 - Σ_{j<t} taken_j)."""
    left = 1 - (taken.cumsum(1) - taken)
    return (log_a.gather(1, chosen) - left.clamp(min=1e-12).log()).sum(1)


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


class CellPosterior(nn.Module):
    """q(c, z_t | proxy, h_{t-1}): where to look as a choice among the cells of the proxy encoder's map,
    then the window within it.

    - Which cells: one categorical per image over the map's m×m cells, a = softmax(β·log ink + s), where
      ink is the cell's sum of p**ink_power over its proxy pixels p (a start that looks where something
      dense is drawn), β (learnt, from 1) sharpens or flattens it and s is a learnt score of the cell's
      features (from 0). The T glimpses take T distinct cells (``draw_cells``): drawn in training, the most
      probable in evaluation, each taking its block of cells (``cell_reach``) out of later draws. A draw
      has no pathwise derivative: the scores learn by REINFORCE (``drawn_log_prob``, the loss's policy
      term) or through attention sampling's estimator (``sampled_means``), as ``cell_gradient`` says.
      The categorical's prior is the ink alone (β = 1, s = 0); its KL is a loss term of its own weight
      (loss.cell_kl_weight).
    - The window: centred on the cell's ink centroid shifted by up to one cell (tanh of z's position),
      scaled by z's first component; (mu, logvar) of z from h_{t-1} and the chosen cell's features, so
      scale and offset stay pathwise and variational against the Gaussian prior p(z | h_{t-1})."""

    def __init__(self, channels: int, cfg: ModelConfig):
        super().__init__()
        self.features = nn.Conv2d(channels, channels, 3, padding=1)  # once per image, before the glimpses
        self.score = nn.Conv2d(channels, 1, 1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)
        self.ink_sharpness = nn.Parameter(torch.ones(()))
        self.ink_power = cfg.ink_power
        self.rest = GaussianHead(cfg.hidden + channels, 256, cfg)

    def cells(self, fmap: torch.Tensor, proxy: torch.Tensor) -> dict:
        """Once per image, from ``features`` of the map: the log-probabilities of the cells ``log_a`` and of
        the prior ``log_prior`` [N, M], their ink centroids ``centroid`` [N, M, 2] and features ``local``
        [N, M, C] (M = m²), the cell's side ``cell`` (in [-1, 1] units) and the grid's ``side`` m."""
        n, channels, m, _ = fmap.shape
        ink = proxy.clamp(min=0) ** self.ink_power
        mass, centroid = cell_ink(ink, max(1, proxy.shape[-1] // m))
        log_ink = (mass.flatten(1) + 1e-8).log()  # far below any inked cell's mass: empty cells are not drawn
        local = F.relu(fmap)
        log_a = (self.ink_sharpness * log_ink + self.score(local).flatten(1)).log_softmax(-1)
        return {"log_a": log_a, "log_prior": log_ink.log_softmax(-1), "centroid": centroid.flatten(1, 2),
                "local": local.flatten(2).transpose(1, 2), "cell": 2 / m, "side": m}

    def forward(self, cells: dict, chosen: torch.Tensor, h: torch.Tensor):
        """(mu, logvar) of z for the cells ``chosen`` [N] given h_{t-1}."""
        local = cells["local"].gather(1, chosen.view(-1, 1, 1).expand(-1, 1, cells["local"].shape[-1]))[:, 0]
        return self.rest(torch.cat([h, local], -1))

    @staticmethod
    def window(cells: dict, chosen: torch.Tensor, z: torch.Tensor, window: WindowConfig) -> torch.Tensor:
        """[N, 3] the window of z within the cells ``chosen`` [N]."""
        centroid = cells["centroid"].gather(1, chosen.view(-1, 1, 1).expand(-1, 1, 2))[:, 0]
        scale = window.min_scale + (window.max_scale - window.min_scale) * torch.sigmoid(z[:, :1])
        room = 1.0 - scale
        centre = torch.maximum(torch.minimum(centroid + torch.tanh(z[:, 1:]) * cells["cell"], room), -room)
        return torch.cat([scale, centre], -1)


class ProxyDecoder(nn.Module):
    """p(c | z_t, h_{t-1}): conv-transpose layers from the latent back to the J×J proxy (logits)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.size = cfg.proxy_size
        self.w = w = cfg.width
        self.fc = nn.Sequential(nn.Linear(cfg.latent_features + cfg.hidden, 2 * w * 16), nn.ReLU(inplace=True))
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * w, 2 * w, 4, 2, 1), nn.GroupNorm(8, 2 * w), nn.ReLU(inplace=True),  # 8
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.GroupNorm(8, w), nn.ReLU(inplace=True),  # 16
            nn.ConvTranspose2d(w, cfg.channels, 4, 2, 1))  # 32

    def forward(self, z_features, h):
        out = self.up(self.fc(torch.cat([z_features, h], -1)).view(-1, 2 * self.w, 4, 4))
        if out.shape[-1] != self.size:
            out = F.interpolate(out, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return out


class CoreRNN(nn.Module):
    """h_t = LSTM([e_c, φ(z_t)], h_{t-1}); stacked layers, the top layer's output is h."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.lstm = nn.LSTM(cfg.proxy_features + cfg.latent_features, cfg.hidden, cfg.rnn_layers, batch_first=True)

    def forward(self, x, state):
        out, state = self.lstm(x.unsqueeze(1), state)
        return out[:, 0], state


class GlimpseClassifier(nn.Module):
    """g(o_t): a small fully-convolutional net with spatial pooling per crop; then f_d over the time
    average (Eq. 8's pooled form), giving a prediction after every glimpse (running mean)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        w, norm = cfg.width, cfg.norm
        self.crop_net = nn.Sequential(conv_stem(cfg.channels, w, norm, cfg.stem, cfg.crop_fold),
                                      conv_block(w, 2 * w, norm),
                                      conv_block(2 * w, 4 * w, norm), conv_block(4 * w, 8 * w, norm, pool=False),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                      nn.Linear(8 * w, cfg.crop_features), nn.ReLU(inplace=True))
        self.reads_state = "state" in cfg.classifier_reads.split("+")
        self.reads_proxy = "proxy" in cfg.classifier_reads.split("+")
        head_in = (cfg.crop_features + (cfg.hidden if self.reads_state else 0)
                   + (cfg.proxy_features if self.reads_proxy else 0))
        self.head = mlp(head_in, 256, cfg.n_classes)

    def forward(self, crops, states, proxy_features, draws: torch.Tensor | None = None):
        """``draws`` [N, T]: when the glimpses' places were drawn from a categorical (CellPosterior), the
        probability of what each draw took; the pooled features are then sampled_means's estimate of
        their mean under that categorical."""
        n, t = crops.shape[:2]
        feats = self.crop_net(crops.flatten(0, 1)).view(n, t, -1)
        if self.reads_state:
            feats = torch.cat([feats, states], -1)
        if draws is None:
            steps = torch.arange(1, t + 1, device=feats.device, dtype=feats.dtype).view(1, t, 1)
            running = feats.cumsum(1) / steps  # the pooled features after 1, 2, …, T glimpses
        else:
            running = sampled_means(draws, feats)
        if self.reads_proxy:
            running = torch.cat([running, proxy_features.unsqueeze(1).expand(n, t, -1)], -1)
        return self.head(running)  # [N, T, classes]


def grid_windows(glimpses: int) -> torch.Tensor:
    """[T, 3] fixed windows: the image cut into g×g cells (g = ⌈√T⌉, window side 1/g), T of them taken
    evenly spread in row-major order (T = 4: the four quadrants; T = 2: the two diagonal cells)."""
    g = math.ceil(math.sqrt(glimpses))
    cells = torch.linspace(0, g * g - 1, glimpses).round().long()
    centres = (2 * torch.arange(g, dtype=torch.float64) + 1) / g - 1
    return torch.stack([torch.full((glimpses,), 1 / g, dtype=torch.float64),
                        centres[cells % g], centres[cells // g]], -1).float()


def _grid_offsets(cfg: ModelConfig) -> torch.Tensor:
    """[T, 3] z offsets whose windows are centred on the grid_windows(T) cells (centres kept inside the
    room a window of ``init_scale`` has); the scale is left to the heads' initial bias."""
    centres = grid_windows(cfg.glimpses)[:, 1:]
    room = 1.0 - cfg.init_scale
    if cfg.window.mode == "original":
        return torch.cat([torch.zeros(cfg.glimpses, 1), centres.clamp(-room, room)], -1)
    return torch.cat([torch.zeros(cfg.glimpses, 1), torch.atanh((centres / room).clamp(-0.95, 0.95))], -1)


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
                    sample: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """[N, T, 3] windows of side ``scale`` on T cells of a grid of cells about a window wide, chosen by the
    cells' ink (the sum of p**ink_power over their proxy pixels p) as the cells posterior's prior chooses
    them (``draw_cells``: drawn with probability proportional to the ink, or the most inked with ``sample``
    False, each taking the cells within ``reach`` out of later choices), each centred on its cell's ink
    centroid: where the ink is, without any learning."""
    m = proxy.shape[-1]
    ink = proxy.clamp(min=0) ** ink_power
    mass, centroid = cell_ink(ink, max(1, min(m, round(m * scale))))  # cells about a window wide
    n, g = mass.shape[:2]
    chosen, _ = draw_cells((mass.flatten(1) + 1e-8).log().log_softmax(-1), glimpses, g, reach, sample, generator)
    room = 1.0 - scale
    centre = centroid.flatten(1, 2).gather(1, chosen.unsqueeze(-1).expand(-1, -1, 2)).clamp(-room, room)
    return torch.cat([torch.full((n, glimpses, 1), scale, device=proxy.device, dtype=proxy.dtype), centre], -1)


@dataclass
class SaccadeOutput:
    logits: torch.Tensor  # [N, classes] after all T glimpses
    step_logits: torch.Tensor  # [N, T, classes] after 1..T glimpses
    windows: torch.Tensor  # [N, T, 3] (scale, cx, cy), normalized image coordinates
    z: torch.Tensor  # [N, T, 3]
    q_mu: torch.Tensor
    q_logvar: torch.Tensor
    p_mu: torch.Tensor | None  # the prior: computed with the loss terms (in training)
    p_logvar: torch.Tensor | None
    proxy: torch.Tensor  # [N, C, J, J] what the model was shown
    proxy_logits: torch.Tensor | None  # [N, D, C, J, J] when decoded (training with a reconstruction term):
    # D = T, or D = 1 with loss.reconstruction_glimpses="one"
    crops: torch.Tensor  # [N, T, C, S, S]
    cell_kl: torch.Tensor | None = None  # [N] KL of the cells' categorical to its prior (posterior_head=cells, in training)
    cell_log_prob: torch.Tensor | None = None  # [N] log-probability of the cells drawn (cell_gradient=reinforce, in training)


class VariationalSaccading(nn.Module):
    def __init__(self, cfg: ModelConfig = ModelConfig()):
        super().__init__()
        self.cfg = cfg
        self.proxy_encoder = ProxyEncoder(cfg)
        self.latent_embedding = nn.Sequential(nn.Linear(LATENT, cfg.latent_features), nn.ReLU(inplace=True))
        self.prior = Prior(cfg.hidden, 256, cfg)
        if cfg.posterior_head == "map":
            self.posterior = MapPosterior(self.proxy_encoder.map_channels, cfg)
        elif cfg.posterior_head == "cells":
            self.posterior = CellPosterior(self.proxy_encoder.map_channels, cfg)
        else:
            self.posterior = Posterior(cfg.proxy_features + cfg.hidden, 256, cfg)
        self.decoder = ProxyDecoder(cfg)
        self.core = CoreRNN(cfg)
        self.classifier = GlimpseClassifier(cfg)
        if cfg.init_layout == "grid":
            self.glimpse_offset = nn.Parameter(_grid_offsets(cfg))

    def source(self, images) -> ImageSource:
        if isinstance(images, ImageSource):
            return images
        if images.dim() != 4 or images.shape[1] != self.cfg.channels:
            raise ValueError(f"expected images [N, {self.cfg.channels}, H, W], got shape {tuple(images.shape)}")
        return TensorSource(images)

    def forward(self, images, proxy: torch.Tensor | None = None, sample: bool | None = None,
                regions: torch.Tensor | None = None, loss_terms: bool | None = None) -> SaccadeOutput:
        """``images``: a tensor [N,C,H,W] or an ImageSource; ``proxy`` overrides the source's proxy
        (e.g. a noisy one). ``sample``: draw z from q (default: in training unless cfg.train_sample is
        False, or in evaluation if cfg.eval_sample). ``regions`` [N, D, 4]: the objects' boxes (x0, y0,
        x1, y1 in [-1, 1]) for the oracle policy. ``loss_terms``: also compute what only the loss reads, the
        prior and (when the loss weighs it) the proxy reconstruction (default: in training); otherwise
        ``p_mu``, ``p_logvar`` and ``proxy_logits`` are None."""
        cfg = self.cfg
        src = self.source(images)
        if proxy is None:
            proxy = self.shown_proxy(src.proxy(cfg.proxy_size))
        proxy = proxy.to(self.core.lstm.weight_ih_l0.device)  # a file source decodes on the CPU
        if sample is None:
            sample = cfg.train_sample if self.training else cfg.eval_sample
        if loss_terms is None:
            loss_terms = self.training
        n = proxy.shape[0]
        head = cfg.posterior_head
        e_c, fmap = self.proxy_encoder(proxy, with_map=True) if head != "pooled" else (self.proxy_encoder(proxy), None)
        posterior_in = e_c if head == "pooled" else fmap
        if not cfg.posterior_trains_encoder:
            posterior_in = posterior_in.detach()
        if head != "pooled":  # the map's convolution does not depend on the glimpse: once, before the recurrence
            posterior_in = self.posterior.features(posterior_in)
        cells = chosen = taken = None
        if head == "cells":  # which cells: drawn once, before the recurrence (the categorical reads no h)
            cells = self.posterior.cells(posterior_in, proxy)
            generator = None if self.training else torch.Generator(device=proxy.device).manual_seed(n)
            chosen, taken = draw_cells(cells["log_a"], cfg.glimpses, cells["side"], cfg.cell_reach, sample, generator)
        offsets = self.glimpse_offset if cfg.init_layout == "grid" else None
        # The recurrence: only the posterior, z and the core depend on the previous glimpse. The prior
        # and the decoder read h_{t-1} and z_t but feed nothing back, so they run once, batched, after it.
        h = proxy.new_zeros(n, cfg.hidden)
        state = None
        record = {k: [] for k in ("z", "q_mu", "q_logvar", "h_prev", "code", "window")}
        for t in range(cfg.glimpses):
            if head == "cells":
                q_mu, q_logvar = self.posterior(cells, chosen[:, t], h)
            elif head == "map":
                q_mu, q_logvar = self.posterior(posterior_in, h)
            else:
                q_mu, q_logvar = self.posterior(torch.cat([posterior_in, h], -1))
            if offsets is not None:  # the same shift for prior and posterior: the KL sees only their difference
                q_mu = q_mu + offsets[t]
            z = gaussian_sample(q_mu, q_logvar) if sample else q_mu
            # What the core reads of the glimpse: z, or with cells the window, which says which cell it took
            window = self.posterior.window(cells, chosen[:, t], z, cfg.window) if head == "cells" else None
            code = z if window is None else window
            for key, value in (("z", z), ("q_mu", q_mu), ("q_logvar", q_logvar), ("h_prev", h), ("code", code),
                               ("window", window)):
                record[key].append(value)
            h, state = self.core(torch.cat([e_c, self.latent_embedding(code)], -1), state)
        stack = {k: torch.stack(v, 1) for k, v in record.items() if v[0] is not None}
        p_mu = p_logvar = proxy_logits = cell_kl = cell_log_prob = None
        if loss_terms:
            t, h_prev = cfg.glimpses, stack["h_prev"].flatten(0, 1)
            p_mu, p_logvar = (v.view(n, t, LATENT) for v in self.prior(h_prev))
            if offsets is not None:
                p_mu = p_mu + offsets
            if cfg.loss.reconstruction_weight > 0:
                decoded = self.decoded_glimpses(n, proxy.device)
                z_dec, h_dec = (stack[key].gather(1, decoded.unsqueeze(-1).expand(-1, -1, stack[key].shape[-1]))
                                for key in ("code", "h_prev"))
                proxy_logits = self.decoder(self.latent_embedding(z_dec.flatten(0, 1)), h_dec.flatten(0, 1))
                proxy_logits = proxy_logits.view(n, decoded.shape[1], *proxy.shape[1:])
            if cells is not None:
                cell_kl = (cells["log_a"].exp() * (cells["log_a"] - cells["log_prior"])).sum(-1)
                if cfg.cell_gradient == "reinforce" and sample and cfg.policy == "learnt":
                    cell_log_prob = drawn_log_prob(cells["log_a"], chosen, taken)
        drawn = cells is not None and cfg.policy == "learnt"  # the windows are the drawn cells'
        windows = stack["window"] if drawn else self.windows(stack["z"], n, proxy, regions)
        crops = src.crop(windows, cfg.crop_size)
        draws = taken if drawn and cfg.cell_gradient == "attention_sampling" else None
        step_logits = self.classifier(crops, stack["h_prev"], e_c, draws)
        return SaccadeOutput(step_logits[:, -1], step_logits, windows, stack["z"], stack["q_mu"], stack["q_logvar"],
                             p_mu, p_logvar, proxy, proxy_logits, crops, cell_kl, cell_log_prob)

    def decoded_glimpses(self, n: int, device) -> torch.Tensor:
        """[N, D] the glimpses whose proxy decode the loss reads: all T, or one per canvas drawn uniformly
        (``loss.reconstruction_glimpses``)."""
        t = self.cfg.glimpses
        if self.cfg.loss.reconstruction_glimpses == "one":
            return torch.randint(t, (n, 1), device=device)
        return torch.arange(t, device=device).expand(n, t)

    def windows(self, z: torch.Tensor, n: int, like: torch.Tensor, regions: torch.Tensor | None) -> torch.Tensor:
        """[N, T, 3] windows of the configured policy."""
        cfg = self.cfg
        if cfg.policy == "learnt":
            return window_from_z(z, cfg.window)
        if cfg.policy == "random":
            return self.random_windows(n, like)
        if cfg.policy == "grid":
            return grid_windows(cfg.glimpses).to(like).expand(n, -1, -1)
        if cfg.policy == "salient":
            generator = None if self.training else torch.Generator(device=like.device).manual_seed(n)
            return salient_windows(like, cfg.glimpses, cfg.window.min_scale, cfg.ink_power, cfg.cell_reach,
                                   self.training or cfg.eval_sample, generator)
        if regions is None:
            raise ValueError("the oracle policy needs the objects' boxes: a batch with 'regions' (two-digit tasks)")
        return oracle_windows(regions.to(like), cfg.glimpses, cfg.window.min_scale)

    def shown_proxy(self, proxy: torch.Tensor) -> torch.Tensor:
        """The proxy after the configured ablation noise (unchanged when there is none)."""
        if self.cfg.proxy_noise == 0 and self.cfg.proxy_keep == 1:
            return proxy
        generator = None if self.training else torch.Generator(device=proxy.device).manual_seed(len(proxy) + 1)
        return noisy_proxy(proxy, self.cfg.proxy_noise, self.cfg.proxy_keep, generator)

    def random_windows(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """Uniform windows (scale in the allowed range, centre anywhere inside): the learnt policy's
        control. Fresh in training; in evaluation a fixed stream, so scores repeat exactly."""
        generator = None if self.training else torch.Generator(device=like.device).manual_seed(n)
        u = torch.rand(n, self.cfg.glimpses, 3, generator=generator, device=like.device, dtype=like.dtype)
        w = self.cfg.window
        low, high = (w.fixed_scale, w.fixed_scale) if w.mode != "learnt" else (w.min_scale, w.max_scale)
        scale = low + (high - low) * u[..., 0]
        return torch.stack([scale, (2 * u[..., 1] - 1) * (1 - scale), (2 * u[..., 2] - 1) * (1 - scale)], -1)

    # -- the interface the shared training loop uses (train.py) --
    def training_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        out = self(batch["image"], proxy=batch.get("proxy"), regions=batch.get("regions"))
        return saccade_loss(out, batch["label"], self.cfg.loss)

    @torch.no_grad()
    def evaluate_batch(self, batch: dict) -> dict:
        out = self(batch["image"], proxy=batch.get("proxy"), regions=batch.get("regions"))
        return {"logits": out.logits, "step_logits": out.step_logits, "windows": out.windows}

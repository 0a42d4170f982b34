"""The model's networks, each named after its part in the paper (§3-4): the proxy encoder, the core RNN,
the proxy decoder and the glimpse classifier. Where to look is decided by ``posteriors`` and
``policies``; ``saccade`` wires the parts together.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .cells import sampled_means
from .config import HEAD_WIDTH, ModelConfig


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
    """c [N,C,J,J] → (e_c, the feature map at a quarter of the proxy's side). ``spatial`` keeps a 4×4
    layout (flattened): a globally pooled encoder cannot say *where* anything is, which is the one thing
    the proxy is for. The map is what the map and cells posteriors score."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w, norm = cfg.proxy_width or cfg.width, cfg.norm
        self.trunk = nn.Sequential(conv_stem(cfg.channels, w, norm, cfg.stem), conv_block(w, 2 * w, norm),
                                   conv_block(2 * w, 4 * w, norm),
                                   nn.AdaptiveAvgPool2d(4 if cfg.proxy_encoder == "spatial" else 1))
        width = 4 * w * (16 if cfg.proxy_encoder == "spatial" else 1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(width, cfg.proxy_features), nn.ReLU(inplace=True))
        self.map_channels = 2 * w

    def forward(self, proxy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self.trunk[:2](proxy)
        return self.head(self.trunk[2:](fmap)), fmap


class CoreRNN(nn.Module):
    """h_t = LSTM([e_c, φ(code_t)], h_{t-1}); stacked layers, the top layer's output is h."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.lstm = nn.LSTM(cfg.proxy_features + cfg.latent_features, cfg.hidden, cfg.rnn_layers, batch_first=True)

    def forward(self, x, state):
        out, state = self.lstm(x.unsqueeze(1), state)
        return out[:, 0], state


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


def running_mean(feats: torch.Tensor) -> torch.Tensor:
    """[N, T, D]: the mean of the glimpse features after 1, 2, …, T glimpses."""
    steps = torch.arange(1, feats.shape[1] + 1, device=feats.device, dtype=feats.dtype).view(1, -1, 1)
    return feats.cumsum(1) / steps


class GlimpseClassifier(nn.Module):
    """g(o_t): a small fully-convolutional net with spatial pooling per crop; then f_d over the pooled
    features (Eq. 8's pooled form), giving a prediction after every glimpse. How the glimpses are pooled
    is chosen once: their features' running mean, (cells drawn with ``cell_gradient=attention_sampling``)
    the estimate of that mean under the categorical the places were drawn from, or (``classifier_pool=
    vote``) the running mean of each glimpse's own class distribution."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w, norm = cfg.width, cfg.norm
        self.crop_net = nn.Sequential(conv_stem(cfg.channels, w, norm, cfg.stem, cfg.crop_fold),
                                      conv_block(w, 2 * w, norm),
                                      conv_block(2 * w, 4 * w, norm), conv_block(4 * w, 8 * w, norm, pool=False),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                      nn.Linear(8 * w, cfg.crop_features), nn.ReLU(inplace=True))
        reads = cfg.classifier_reads.split("+")
        self.reads_state, self.reads_proxy = "state" in reads, "proxy" in reads
        head_in = (cfg.crop_features + (cfg.hidden if self.reads_state else 0)
                   + (cfg.proxy_features if self.reads_proxy else 0))
        self.head = mlp(head_in, HEAD_WIDTH, cfg.n_classes)
        # drawn places pool by attention sampling's estimate of the features' mean under the categorical they
        # were drawn from, whose gradient reaches the draws; all others by the running mean
        self.drawn = cfg.posterior_head == "cells" and cfg.cell_gradient == "attention_sampling" and cfg.policy == "learnt"
        self.votes = cfg.classifier_pool == "vote"

    def forward(self, crops: torch.Tensor, states: torch.Tensor, proxy_features: torch.Tensor,
                draws: torch.Tensor | None = None) -> torch.Tensor:
        """[N, T, classes] from the crops [N, T, C, S, S], the states h_{t-1} [N, T, H], e_c [N, F] and, for
        drawn places, the probability each draw took [N, T]."""
        n, t = crops.shape[:2]
        feats = self.crop_net(crops.flatten(0, 1)).view(n, t, -1)
        if self.reads_state:
            feats = torch.cat([feats, states], -1)
        if self.votes:
            return self.vote(feats, proxy_features)
        pooled = sampled_means(draws, feats) if self.drawn else running_mean(feats)
        if self.reads_proxy:
            pooled = torch.cat([pooled, proxy_features.unsqueeze(1).expand(n, t, -1)], -1)
        return self.head(pooled)

    def vote(self, feats: torch.Tensor, proxy_features: torch.Tensor) -> torch.Tensor:
        """[N, T, classes]: the log of the mean class distribution of glimpses 1..t, each glimpse read alone
        (log-probabilities are logits whose softmax is that mean)."""
        if self.reads_proxy:
            feats = torch.cat([feats, proxy_features.unsqueeze(1).expand(*feats.shape[:2], -1)], -1)
        log_probs = self.head(feats).log_softmax(-1)
        steps = torch.arange(1, feats.shape[1] + 1, device=feats.device, dtype=feats.dtype).view(1, -1, 1)
        return log_probs.logcumsumexp(1) - steps.log()

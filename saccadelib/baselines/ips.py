"""Iterative patch selection (IPS; Bergner, Lippert & Mahendran, ICLR 2023), from its paper's description.

The image is cut into a grid of patches read at full resolution (50² on a 1500² canvas: 900 patches).
Selection runs without gradient and in evaluation mode: a memory of the first ``memory`` patches' embeddings
is scored together with the next ``iteration`` patches by the aggregator's cross-attention, and the
``memory`` best-scored stay; after the last patch the memory holds the image's top patches. Those are then
encoded again, with gradient, and pooled by the same cross-attention (one learnt query, several heads)
into one vector that a small head classifies. Patch positions enter as sinusoidal encodings of the patch's
row and column added to its embedding (the ``top`` label asks where a digit is).

An all-black patch has one embedding (evaluation mode normalises with running statistics, so it does not
depend on the batch): selection encodes it once per call and encodes only the patches that hold ink, with
the same result. On Megapixel MNIST most of the 900 are black.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torchvision

from ..loss import class_nll
from .common import _Config, _source
from .resnets import tile_windows

ENCODERS = ("resnet18_2stages", "small")


@dataclass(frozen=True)
class IPSConfig(_Config):
    """The defaults are IPS's Megapixel MNIST settings, except where a CPU budget needs a smaller encoder."""
    n_classes: int = 10
    channels: int = 1
    patch: int = 50  # patch side in image pixels, read at full resolution on a grid of stride ``patch``
    memory: int = 100  # M: the patches kept, and the ones the classifier reads
    iteration: int = 100  # I: patches scored with the memory per selection step
    # "resnet18_2stages": the paper's (torchvision's ResNet-18 through its second stage, from scratch, 128
    # channels); "small": four 3×3 convs of 32 channels at stride 2, for a CPU budget (named as such)
    encoder: str = "resnet18_2stages"
    dim: int = 128  # D: embedding width
    heads: int = 8
    positions: bool = True  # sinusoidal encodings of each patch's row and column, added to its embedding
    shown: int = 10  # the best-scored patches reported as windows (window statistics, hit rates)

    def __post_init__(self):
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown IPS encoder {self.encoder!r}; valid: {', '.join(ENCODERS)}")
        if self.dim % self.heads or self.dim % 4:
            raise ValueError(f"IPS dim must be divisible by heads and by 4, got dim={self.dim}, heads={self.heads}")
        for name in ("patch", "memory", "iteration", "shown"):
            if getattr(self, name) < 1:
                raise ValueError(f"IPS setting {name} must be at least 1, got {getattr(self, name)}")


def patch_encoder(cfg: IPSConfig) -> nn.Module:
    """A patch [C, p, p] → [dim]."""
    if cfg.encoder == "resnet18_2stages":
        net = torchvision.models.resnet18(weights=None)
        stem = nn.Conv2d(cfg.channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        trunk, width = [stem, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2], 128
    else:
        trunk, cin, width = [], cfg.channels, 32
        for _ in range(4):
            trunk += [nn.Conv2d(cin, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            cin = width
    return nn.Sequential(*trunk, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, cfg.dim))


def grid_positions(count: int, dim: int) -> torch.Tensor:
    """[count², dim] sinusoidal encodings of a row-major grid: half the width for the row, half the column."""
    quarter = dim // 4
    freq = torch.exp(-math.log(10_000.0) * torch.arange(quarter, dtype=torch.float64) / quarter)
    steps = torch.arange(count, dtype=torch.float64)[:, None] * freq  # [count, quarter]
    axis = torch.cat([steps.sin(), steps.cos()], -1)  # [count, dim / 2]
    rows, cols = axis[:, None].expand(count, count, -1), axis[None].expand(count, count, -1)
    return torch.cat([rows, cols], -1).reshape(count * count, dim).float()


class CrossAttentionPool(nn.Module):
    """One learnt query attends over the patch embeddings (multi-head); a residual MLP follows. ``scores``
    is the query's attention to each patch, averaged over the heads: what selection ranks by."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, dim) * dim ** -0.5)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def scores(self, keys: torch.Tensor) -> torch.Tensor:
        _, weights = self.attention(self.query.expand(len(keys), -1, -1), keys, keys, need_weights=True)
        return weights[:, 0]  # [N, L]

    def forward(self, keys: torch.Tensor) -> torch.Tensor:
        pooled = self.attention(self.query.expand(len(keys), -1, -1), keys, keys, need_weights=False)[0][:, 0]
        return pooled + self.mlp(self.norm(pooled))


class IterativePatchSelection(nn.Module):
    def __init__(self, cfg: IPSConfig = IPSConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder = patch_encoder(cfg)
        self.pool = CrossAttentionPool(cfg.dim, cfg.heads)
        self.head = nn.Sequential(nn.LayerNorm(cfg.dim), nn.Linear(cfg.dim, cfg.n_classes))

    def forward(self, images) -> dict:
        cfg = self.cfg
        src = _source(images, cfg.channels)
        if src.height != src.width:
            raise ValueError(f"IPS cuts a square image into a grid of patches, got {src.height}×{src.width}")
        grid = tile_windows(src.height, cfg.patch).to(device=src.device, dtype=src.dtype)  # [P, 3]
        count = math.isqrt(len(grid))
        positions = grid_positions(count, cfg.dim).to(src.device) if cfg.positions else None
        chosen = self.select(src, grid, positions)  # [N, M] patch indices, best first
        patches = src.crop(grid[chosen], cfg.patch, supersample=1)  # [N, M, C, p, p]
        keys = self.embed(patches, chosen, positions)
        logits = self.head(self.pool(keys))
        return {"logits": logits, "windows": grid[chosen[:, :cfg.shown]]}

    def embed(self, patches: torch.Tensor, index: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
        n, k = patches.shape[:2]
        keys = self.encoder(patches.flatten(0, 1)).view(n, k, -1)
        return keys if positions is None else keys + positions[index]

    @torch.no_grad()
    def select(self, src, grid: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
        """[N, M] the indices of the ``memory`` best-scored patches, best first (all of them when the image has
        fewer), found ``iteration`` patches at a time in evaluation mode."""
        cfg, n = self.cfg, src.count
        was_training = self.training
        self.eval()
        try:
            blank = self.encoder(torch.zeros(1, cfg.channels, cfg.patch, cfg.patch, device=src.device, dtype=src.dtype))
            kept = keys = None
            start = 0
            while start < len(grid):  # the first step fills the memory, each later one adds ``iteration`` patches
                step = max(cfg.memory, cfg.iteration) if kept is None else cfg.iteration
                index = torch.arange(start, min(start + step, len(grid)), device=src.device).expand(n, -1)
                start += step
                new = self._encoded(src.crop(grid[index], cfg.patch, supersample=1), blank)
                if positions is not None:
                    new = new + positions[index]
                index, new = (index, new) if kept is None else (torch.cat([kept, index], 1), torch.cat([keys, new], 1))
                best = self.pool.scores(new).topk(min(cfg.memory, new.shape[1]), dim=1).indices
                kept, keys = index.gather(1, best), new.gather(1, best[..., None].expand(-1, -1, new.shape[-1]))
            return kept
        finally:
            self.train(was_training)

    def _encoded(self, patches: torch.Tensor, blank: torch.Tensor) -> torch.Tensor:
        """[N, k, dim]: the encoder's embedding of each patch [N, k, C, p, p], the blank one for all-black patches."""
        n, k = patches.shape[:2]
        flat = patches.flatten(0, 1)
        inked = flat.flatten(1).amax(1) > 0
        keys = blank.expand(n * k, -1).clone()
        if inked.any():
            keys[inked] = self.encoder(flat[inked])
        return keys.view(n, k, -1)

    def training_loss(self, batch: dict):
        loss = class_nll(self(batch["image"])["logits"], batch["label"])
        return loss, {"loss": loss.item(), "nll_class": loss.item()}

    @torch.no_grad()
    def evaluate_batch(self, batch: dict) -> dict:
        return self(batch["image"])

"""ResNet-18 on the whole image (paper Table 1), and over a grid of 224² tiles of a large one (Eq. 8)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint as recompute

from ..sources import TensorSource, UpsampledSource
from .common import _Classifier, _Config, _source, resnet18_trunk


@dataclass(frozen=True)
class ResNetConfig(_Config):
    n_classes: int = 55
    channels: int = 1
    # None: the image at its own resolution; a side: the image first downsampled (anti-aliased) to that
    # side², as a practitioner would feed a large image to ResNet-18 (e.g. 224)
    input_side: int | None = None

    def __post_init__(self):
        if self.input_side is not None and self.input_side < 32:
            raise ValueError(f"input_side must be at least 32 pixels or None, got {self.input_side}")


class WholeImageResNet(_Classifier):
    def __init__(self, cfg: ResNetConfig = ResNetConfig()):
        super().__init__()
        self.cfg = cfg
        self.trunk = resnet18_trunk(cfg.channels)
        self.fc = nn.Linear(512, cfg.n_classes)

    def forward(self, images) -> torch.Tensor:
        src = _source(images, self.cfg.channels)
        if self.cfg.input_side is not None:  # the sources' proxy is that downsample, never the large image
            return self.fc(self.trunk(src.proxy(self.cfg.input_side)))
        if isinstance(src, UpsampledSource):
            whole = src.materialize()
        elif isinstance(src, TensorSource):
            whole = src.images
        else:
            raise ValueError(f"the whole-image ResNet needs the image in memory, not a {type(src).__name__}")
        return self.fc(self.trunk(whole))

    def logits(self, batch):
        return self(batch["image"])


# ------------------------------------------------------------------------------------ 144 tiles

def tile_starts(side: int, tile: int) -> list[int]:
    """Left (or top) edges of the tiles along one axis: every ``tile`` pixels, and a last tile flush with
    the far edge (2528, 224 → 0, 224, …, 2240, 2304: 12 tiles, the last overlapping by 160 px)."""
    if side < tile:
        raise ValueError(f"image side {side} is smaller than one {tile}-px tile")
    count = math.ceil(side / tile)
    return [i * tile for i in range(count - 1)] + [side - tile]


def tile_windows(side: int, tile: int) -> torch.Tensor:
    """[count², 3] windows (scale, cx, cy) in the sampler's convention, row-major (y, then x)."""
    starts = torch.tensor(tile_starts(side, tile), dtype=torch.float64)
    centres = (starts + tile / 2) / side * 2 - 1
    cy, cx = torch.meshgrid(centres, centres, indexing="ij")
    scale = torch.full_like(cx, tile / side)
    return torch.stack([scale, cx, cy], -1).reshape(-1, 3)


@dataclass(frozen=True)
class TiledResNetConfig(_Config):
    n_classes: int = 55
    channels: int = 1
    tile: int = 224
    checkpoint: bool = False  # recompute each chunk's activations in backward (torch.utils.checkpoint)
    chunk_tiles: int = 12  # tiles per trunk call; the same chunks in both modes, so they agree exactly
    head_hidden: int = 512


class TiledResNet(_Classifier):
    """Paper Eq. 8: y = f_d(Σ_i g_c(x_i)) over the tiles x_i of the large image."""

    def __init__(self, cfg: TiledResNetConfig = TiledResNetConfig()):
        super().__init__()
        self.cfg = cfg
        self.trunk = resnet18_trunk(cfg.channels)
        self.head = nn.Sequential(nn.Linear(512, cfg.head_hidden), nn.ReLU(inplace=True),
                                  nn.Linear(cfg.head_hidden, cfg.n_classes))

    def forward(self, images) -> torch.Tensor:
        cfg = self.cfg
        src = _source(images, cfg.channels)
        n, height, width = src.count, src.height, src.width
        if height != width:
            raise ValueError(f"tiles need a square image, got {height}×{width}")
        windows = tile_windows(height, cfg.tile).to(device=src.device, dtype=src.dtype)
        total = None
        for start in range(0, len(windows), cfg.chunk_tiles):
            chunk = windows[start:start + cfg.chunk_tiles].unsqueeze(0).expand(n, -1, -1)
            # Tiles are read from the source chunk by chunk, so at most one chunk of them exists at a time.
            tiles = src.crop(chunk, cfg.tile, supersample=1).flatten(0, 1)  # [N·chunk, C, tile, tile]
            if cfg.checkpoint and torch.is_grad_enabled():
                feats = recompute(self.trunk, tiles, use_reentrant=False)
            else:
                feats = self.trunk(tiles)
            summed = feats.view(n, -1, feats.shape[-1]).sum(1)
            total = summed if total is None else total + summed
        return self.head(total)

    def logits(self, batch):
        return self(batch["image"])

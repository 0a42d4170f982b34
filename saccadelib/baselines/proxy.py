"""A CNN on the proxy alone: does the proxy solve the task without looking?"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..model import ModelConfig, ProxyEncoder
from .common import _Classifier, _Config, _source


@dataclass(frozen=True)
class ProxyCNNConfig(_Config):
    n_classes: int = 55
    channels: int = 1
    proxy_size: int = 32
    width: int = 32
    features: int = 256


class ProxyCNN(_Classifier):
    """Our proxy encoder (conv blocks keeping a 4×4 layout) and a dense head, on the proxy alone."""

    def __init__(self, cfg: ProxyCNNConfig = ProxyCNNConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder = ProxyEncoder(ModelConfig(channels=cfg.channels, width=cfg.width,
                                                proxy_features=cfg.features, proxy_size=cfg.proxy_size))
        self.fc = nn.Linear(cfg.features, cfg.n_classes)

    def forward(self, images, proxy: torch.Tensor | None = None) -> torch.Tensor:
        if proxy is None:
            proxy = _source(images, self.cfg.channels).proxy(self.cfg.proxy_size)
        return self.fc(self.encoder(proxy)[0])

    def logits(self, batch):
        return self(batch["image"], proxy=batch.get("proxy"))

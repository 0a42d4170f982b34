"""Every trainable model by name: the paper's model, its glimpse controls and the baselines.

``build(name, config)`` makes one; ``config_for(name, n_classes, overrides)`` resolves its config with
``KEY=VALUE`` overrides (``saccadelib.config``). The study, the command line and the benchmarks pick
models through this table only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

from .baselines import (RAM, AttentionSampling, AttentionSamplingConfig, ProxyCNN, ProxyCNNConfig, RAMConfig, ResNetConfig, TiledResNet, TiledResNetConfig,
                        WholeImageResNet)
from .config import apply_overrides
from .model import ModelConfig, VariationalSaccading


@dataclass(frozen=True)
class ModelSpec:
    config: type
    build: type
    defaults: dict  # settings that make this entry what it is (e.g. policy="random"): they win over overrides
    about: str


REGISTRY: dict[str, ModelSpec] = {
    "saccade": ModelSpec(ModelConfig, VariationalSaccading, {}, "Variational Saccading (the paper's model)"),
    "random_glimpses": ModelSpec(ModelConfig, VariationalSaccading, {"policy": "random"},
                                 "our crop classifier, windows drawn uniformly at random"),
    "grid_glimpses": ModelSpec(ModelConfig, VariationalSaccading, {"policy": "grid"},
                               "our crop classifier, windows on a fixed grid"),
    "salient_glimpses": ModelSpec(ModelConfig, VariationalSaccading, {"policy": "salient"},
                                  "our crop classifier, windows drawn where the proxy has ink (no learning)"),
    "oracle_glimpses": ModelSpec(ModelConfig, VariationalSaccading, {"policy": "oracle"},
                                 "our crop classifier, windows on the digits' boxes (the ceiling for a policy)"),
    "deterministic_glimpses": ModelSpec(
        ModelConfig, VariationalSaccading,
        {"train_sample": False, "loss.kl_weight": 0.0, "loss.kl_free_bits": 0.0, "loss.reconstruction_weight": 0.0},
        "our model without its variational parts: z is the posterior's mean, no KL, no decoder"),
    "resnet18": ModelSpec(ResNetConfig, WholeImageResNet, {}, "ResNet-18 on the whole image"),
    "resnet18_downsampled": ModelSpec(ResNetConfig, WholeImageResNet, {"input_side": 224},
                                      "ResNet-18 on a 224² anti-aliased downsample of the image"),
    "resnet18_tiles": ModelSpec(TiledResNetConfig, TiledResNet, {}, "ResNet-18 over 224² tiles, features summed (Eq. 8)"),
    "proxy_cnn": ModelSpec(ProxyCNNConfig, ProxyCNN, {}, "a CNN on the 32² proxy alone"),
    "ram": ModelSpec(RAMConfig, RAM, {}, "Recurrent Attention Model, REINFORCE"),
    "attention_sampling": ModelSpec(AttentionSamplingConfig, AttentionSampling, {},
                                    "attention sampling: patches drawn from an attention map over a low-resolution view"),
}
# The entries built on VariationalSaccading: they have glimpses, and `predict` can load them.
GLIMPSE_MODELS = tuple(name for name, entry in REGISTRY.items() if entry.build is VariationalSaccading)


def spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def config_for(name: str, n_classes: int, overrides: dict | None = None):
    """The named model's config for ``n_classes`` classes: ``overrides``, then the entry's own settings
    (a recipe shared by the glimpse models cannot turn a control back into the model it controls for)."""
    entry = spec(name)
    return apply_overrides(entry.config(), {"n_classes": n_classes, **(overrides or {}), **entry.defaults})


def build(name: str, config) -> nn.Module:
    entry = spec(name)
    if not isinstance(config, entry.config):
        config = entry.config.from_dict(config)
    return entry.build(config)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

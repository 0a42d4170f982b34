"""Every trainable model by name: the paper's method, our cells variant, their glimpse controls and the
baselines.

``build(name, config)`` makes one; ``config_for(name, n_classes, overrides)`` resolves its config with
``KEY=VALUE`` overrides (``saccadelib.config``). The study, the command line and the benchmarks pick
models through this table only.

Two methods, two names: ``saccade`` is the paper's (a Gaussian posterior over a continuous window,
trained through the crop's pathwise derivative); ``saccade_cells`` chooses its places among the proxy
map's cells from an ink prior and learns that choice by REINFORCE, a score-function estimator the paper
sets its method against (docs/model.md). Neither can be turned into the other by a setting.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn as nn

from .baselines import (RAM, AttentionSampling, AttentionSamplingConfig, IPSConfig, IterativePatchSelection, ProxyCNN,
                        ProxyCNNConfig, RAMConfig, ResNetConfig, TiledResNet, TiledResNetConfig, WholeImageResNet)
from .config import apply_overrides
from .model import ModelConfig, VariationalSaccading
from .recipes import LARGE_CROP, LARGE_SIDE, RAM_STUDY, SMALL_GLIMPSES, TASK_RECIPE, crop_settings, recipe


@dataclass(frozen=True)
class ModelSpec:
    config: type
    build: type
    fixed: dict  # settings that make this entry what it is (e.g. policy="random"): they win over overrides
    about: str
    defaults: dict = field(default_factory=dict)  # the entry's own starting settings: overrides win
    refused: dict = field(default_factory=dict)  # setting → {value: why} that belong to another entry


REGISTRY: dict[str, ModelSpec] = {
    "saccade": ModelSpec(ModelConfig, VariationalSaccading, {},
                         "Variational Saccading, the paper's method: a Gaussian posterior over the window, pathwise",
                         refused={"posterior_head": {"cells": "places drawn among cells are the saccade_cells model: "
                                                              "use --model saccade_cells"}}),
    "saccade_cells": ModelSpec(ModelConfig, VariationalSaccading, {"posterior_head": "cells"},
                               "our variant: places drawn among the proxy map's cells from an ink prior, REINFORCE",
                               defaults={k: v for k, v in SMALL_GLIMPSES.items() if k != "posterior_head"}),
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
    "ips": ModelSpec(IPSConfig, IterativePatchSelection, {},
                     "iterative patch selection: the best-scored patches of a full-resolution grid, cross-attention pooled"),
}
# The entries built on VariationalSaccading: they have glimpses, and `predict` can load them.
GLIMPSE_MODELS = tuple(name for name, entry in REGISTRY.items() if entry.build is VariationalSaccading)


def spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def config_for(name: str, n_classes: int, overrides: dict | None = None):
    """The named model's config for ``n_classes`` classes: the entry's defaults, ``overrides``, then the
    settings that make the entry what it is (a recipe shared by the glimpse models cannot turn a control
    back into the model it controls for, nor one method into the other)."""
    entry = spec(name)
    config = apply_overrides(entry.config(), {"n_classes": n_classes, **entry.defaults, **(overrides or {}),
                                              **entry.fixed})
    for key, why in entry.refused.items():
        value = getattr(config, key)
        if value in why:
            raise ValueError(f"{name} with {key}={value}: {why[value]}")
    return config


def build(name: str, config) -> nn.Module:
    entry = spec(name)
    if not isinstance(config, entry.config):
        config = entry.config.from_dict(config)
    return entry.build(config)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def task_settings(task: str, model: str, image_side: int = 100) -> dict:
    """The recipe settings a glimpse model trains with on a generated task (at 2528², with 64² crops);
    RAM with the settings its probes found strongest (``recipes.RAM_STUDY``); the other baselines at their
    defaults."""
    if model == "ram":
        return dict(RAM_STUDY)
    if model not in GLIMPSE_MODELS:
        return {}
    settings = recipe(TASK_RECIPE[task])
    if image_side == LARGE_SIDE:
        settings.update(crop_settings(LARGE_CROP))
    return settings

"""What the baselines share: the config shape, reading an image source, the loop interface of a model
that maps a batch to logits, and torchvision's ResNet-18 trunk."""
from __future__ import annotations

import torch
import torch.nn as nn
import torchvision

from ..config import from_dict, to_dict
from ..loss import class_nll
from ..sources import ImageSource, TensorSource


class _Config:
    """to_dict/from_dict, the shape every model config has (saccadelib.config)."""

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, values: dict):
        return from_dict(cls, values)


def _source(images, channels: int) -> ImageSource:
    if isinstance(images, ImageSource):
        return images
    if images.dim() != 4 or images.shape[1] != channels:
        raise ValueError(f"expected images [N, {channels}, H, W], got shape {tuple(images.shape)}")
    return TensorSource(images)


class _Classifier(nn.Module):
    """The loop interface for models that map a batch to logits with one cross-entropy."""

    def logits(self, batch: dict) -> torch.Tensor:
        raise NotImplementedError

    def training_loss(self, batch: dict):
        loss = class_nll(self.logits(batch), batch["label"])
        return loss, {"loss": loss.item(), "nll_class": loss.item()}

    @torch.no_grad()
    def evaluate_batch(self, batch: dict) -> dict:
        return {"logits": self.logits(batch)}


def resnet18_trunk(channels: int) -> nn.Module:
    """torchvision's ResNet-18 up to its global pooling (512 features), first conv for ``channels``."""
    net = torchvision.models.resnet18(weights=None)
    net.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    net.fc = nn.Identity()
    return net

"""Attention sampling (Katharopoulos & Fleuret 2019), from its paper's description."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..draws import FRESH, for_evaluation
from ..loss import class_nll
from ..model import gumbel_top_k, sampled_means
from .common import _Config, _source


@dataclass(frozen=True)
class AttentionSamplingConfig(_Config):
    """Attention sampling (Katharopoulos & Fleuret, ICML 2019), from its paper's description; the defaults
    are its Megapixel MNIST settings (a 180² view of a 1500² canvas, ten 50-px patches)."""
    n_classes: int = 10
    channels: int = 1
    view_size: int = 180  # the low-resolution view the attention network reads
    patches: int = 10  # sampled without replacement from the attention distribution
    patch_scale: float = 50 / 1500  # a patch's side as a fraction of the image side
    patch_size: int = 50  # pixels a patch is read at
    attention_width: int = 8
    feature_width: int = 32
    entropy_weight: float = 1e-4  # rewards an attention distribution that has not collapsed

    def __post_init__(self):
        if not 0 < self.patch_scale <= 1 or self.patches < 1 or self.view_size < 4:
            raise ValueError("attention sampling needs 0 < patch_scale <= 1, at least one patch and a view of 4 px")


class AttentionSampling(nn.Module):
    """An attention network scores every pixel of the low-resolution view (softmax over all of them); the
    patches centred on ``patches`` positions drawn from it without replacement (Gumbel top-k, in draw
    order) are read at full resolution; a feature network (four convs, global max-pool, L2-normalised)
    describes each; the class comes from a linear layer on the estimate of the attention-weighted mean
    feature Σ_i a_i f(x_i).

    The estimate, sampling without replacement: draw i is unbiased for that mean once scaled by the mass
    left, F_i = Σ_{j<i} a_j f_j + (1 - Σ_{j<i} a_j) f_i, and the prediction reads the average of the F_i.
    Its gradient reaches the attention through a_j in the first sum and, for the sampled term, through
    a_i / stopgrad(a_i), the score-function factor that makes it unbiased for the gradient as well.
    In evaluation the draws come from a fixed seed, so a score repeats.
    """

    def __init__(self, cfg: AttentionSamplingConfig = AttentionSamplingConfig()):
        super().__init__()
        self.cfg = cfg
        a, f = cfg.attention_width, cfg.feature_width
        self.attention = nn.Sequential(nn.Conv2d(cfg.channels, a, 3, padding=1), nn.Tanh(),
                                       nn.Conv2d(a, a, 3, padding=1), nn.Tanh(), nn.Conv2d(a, 1, 3, padding=1))
        layers, cin = [], cfg.channels
        for k in range(4):
            layers += [nn.Conv2d(cin, f, 3, padding=1), nn.ReLU(inplace=True)] + ([nn.MaxPool2d(2)] if k < 3 else [])
            cin = f
        self.features = nn.Sequential(*layers, nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(f, cfg.n_classes)

    def forward(self, images, draw_keys: torch.Tensor | None = None) -> dict:
        cfg = self.cfg
        src = _source(images, cfg.channels)
        view = src.proxy(cfg.view_size)
        n, m = view.shape[0], cfg.view_size
        scores = self.attention(view).flatten(1)  # [N, m²]
        log_a = scores.log_softmax(-1)
        a = log_a.exp()
        draws = FRESH if self.training else for_evaluation(draw_keys, n)
        chosen = gumbel_top_k(log_a, cfg.patches, True, draws, "patches")  # without replacement, in draw order
        centres = (2 * torch.arange(m, device=view.device, dtype=view.dtype) + 1) / m - 1
        windows = torch.stack([torch.full(chosen.shape, cfg.patch_scale, dtype=view.dtype, device=view.device),
                               centres[chosen % m], centres[chosen // m]], -1)  # [N, k, 3]
        crops = src.crop(windows, cfg.patch_size)
        feats = F.normalize(self.features(crops.flatten(0, 1)).view(n, chosen.shape[1], -1), dim=-1)
        step_logits = self.classifier(sampled_means(a.gather(1, chosen), feats))
        entropy = -(a * log_a).sum(-1)
        return {"logits": step_logits[:, -1], "step_logits": step_logits, "windows": windows, "entropy": entropy}

    def training_loss(self, batch: dict):
        out = self(batch["image"])
        classification = class_nll(out["logits"], batch["label"])
        entropy = out["entropy"].mean()
        total = classification - self.cfg.entropy_weight * entropy
        return total, {"loss": total.item(), "nll_class": classification.item(), "attention_entropy": entropy.item()}

    @torch.no_grad()
    def evaluate_batch(self, batch: dict) -> dict:
        out = self(batch["image"], draw_keys=batch.get("draw_keys"))
        return {k: out[k] for k in ("logits", "step_logits", "windows")}

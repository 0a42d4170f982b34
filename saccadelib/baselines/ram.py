"""The Recurrent Attention Model (Mnih et al. 2014), reimplemented: a multi-resolution retina, a glimpse
network, an LSTM core and a Gaussian location policy trained by REINFORCE."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..draws import FRESH, for_evaluation
from ..loss import class_nll, label_probability, predicted_right
from ..sources import ImageSource, TensorSource
from .common import _Config, _source


@dataclass(frozen=True)
class RAMConfig(_Config):
    n_classes: int = 55
    channels: int = 1
    glimpses: int = 6
    patch: int = 12  # retina patch side (pixels read per scale)
    scales: int = 3  # patches of side patch_fraction·2^k of the image, k = 0..scales-1, each read at patch²
    patch_fraction: float = 0.12  # the finest patch's side as a fraction of the image side (12 px of 100)
    glimpse_features: int = 128
    hidden: int = 256
    location_std: float = 0.15  # the Gaussian policy's fixed standard deviation (normalized coordinates)
    reinforce_weight: float = 1.0
    # Where the first glimpse reads: "random" (uniform over [-1, 1]², as common RAM implementations do, so the
    # policy starts out exploring the whole image) or "centre". From the centre, a 100² sum canvas stayed at
    # the label prior for 62 epochs: no glimpse found a digit, so REINFORCE had no reward to learn from.
    start: str = "random"
    # What REINFORCE rewards: "correct" (1 when the final prediction is right, RAM's) or "likelihood" (the
    # final prediction's probability of the true label: a graded reward, not zero on almost every canvas
    # while the classifier is at chance).
    reward: str = "correct"
    # Train every glimpse's prediction (the mean cross-entropy over steps), not the last one alone: the
    # classifier and core learn from the first glimpse on, before the policy finds anything.
    step_loss: bool = False
    # Let REINFORCE's gradient reach the core through h_t (RAM's own formulation); False: the locator reads
    # h_t detached and learns alone.
    policy_trains_core: bool = False
    # How the retina reads its scales at patch² pixels: "supersample" reads every scale's patch as the
    # widest one needs (a 128-px patch read at 16² takes 8×8 samples a pixel, and so then does every other
    # scale: a retina that reaches the whole canvas costs 7× one of three scales), "pyramid" reads scale k
    # at 2-4 samples a pixel from the image box-filtered to half its side k-1 times (built once a batch):
    # RAM's patches "resized to g_w × g_w", far cheaper for four scales, the patches within 2-15% of the
    # supersampled ones (mean absolute difference, wider scales a little blurrier; records/ram_probes/retina.json).
    retina: str = "supersample"

    def __post_init__(self):
        if self.start not in ("random", "centre"):
            raise ValueError(f"RAMConfig.start must be 'random' or 'centre', got {self.start!r}")
        if self.reward not in ("correct", "likelihood"):
            raise ValueError(f"RAMConfig.reward must be 'correct' or 'likelihood', got {self.reward!r}")
        if self.retina not in ("supersample", "pyramid"):
            raise ValueError(f"RAMConfig.retina must be 'supersample' or 'pyramid', got {self.retina!r}")


class RAM(nn.Module):
    """Recurrent Attention Model. Locations l_t ∈ [-1, 1]²; glimpse t reads at l_{t-1}; l_0 is uniform over the
    image (``start="random"``; in evaluation drawn from a fixed seed, so a score is repeatable) or the centre.

    Loss = cross-entropy of the last step (of every step: ``step_loss``) + REINFORCE (reward 1 if the final
    prediction is right, or its probability of the label: ``reward``; minus a learnt baseline b_t(h_t)) on the
    location policy (and the core: ``policy_trains_core``) + the baseline's squared error. ``windows`` report
    the second-finest patch (twice the finest: 24 px of 100), for the hit rate: the smallest of its
    patches that can hold most of a 28-px digit.
    """

    def __init__(self, cfg: RAMConfig = RAMConfig()):
        super().__init__()
        self.cfg = cfg
        k = cfg.glimpse_features
        self.what = nn.Sequential(nn.Linear(cfg.channels * cfg.scales * cfg.patch ** 2, k), nn.ReLU(inplace=True))
        self.where = nn.Sequential(nn.Linear(2, k), nn.ReLU(inplace=True))
        self.glimpse = nn.Sequential(nn.Linear(2 * k, cfg.hidden), nn.ReLU(inplace=True))
        self.core = nn.LSTMCell(cfg.hidden, cfg.hidden)
        self.locator = nn.Linear(cfg.hidden, 2)
        self.baseline = nn.Linear(cfg.hidden, 1)
        self.classifier = nn.Linear(cfg.hidden, cfg.n_classes)

    def retina(self, levels: list[ImageSource], location: torch.Tensor) -> torch.Tensor:
        """location [N, 2] → patches [N, scales·C·patch²] read from ``levels`` (``retina_levels``): scale k
        from level k, or all from the one level; windows may hang over the edge (zeros there)."""
        cfg = self.cfg
        n = location.shape[0]
        scales = cfg.patch_fraction * 2.0 ** torch.arange(cfg.scales, dtype=location.dtype, device=location.device)
        windows = torch.cat([scales.view(1, -1, 1).expand(n, -1, 1), location.unsqueeze(1).expand(n, cfg.scales, 2)], -1)
        if len(levels) == 1:
            return levels[0].crop(windows, cfg.patch).reshape(n, -1)
        return torch.cat([level.crop(windows[:, k:k + 1], cfg.patch) for k, level in enumerate(levels)], 1).reshape(n, -1)

    def retina_levels(self, src: ImageSource) -> list[ImageSource]:
        """What the retina reads: the source itself, or (``retina="pyramid"``, images in memory) one level
        per scale: the image box-filtered to half its side once less often than the scale shrinks it, so a
        patch is read at 2-4 samples per patch pixel (the finest at its own detail)."""
        cfg = self.cfg
        if cfg.retina == "supersample" or not isinstance(src, TensorSource):
            return [src]
        finest = cfg.patch_fraction * src.detail_px / cfg.patch  # image pixels per patch pixel at scale 0
        halvings = [max(0, math.floor(math.log2(finest * 2 ** k) + 1e-9) - 1) for k in range(cfg.scales)]
        levels, images = {0: src}, src.images
        for j in range(1, max(halvings) + 1):
            h, w = images.shape[-2:]
            images = F.interpolate(images, size=(math.ceil(h / 2), math.ceil(w / 2)), mode="area")  # 2×2 boxes
            levels[j] = TensorSource(images)
        return [levels[j] for j in halvings]

    def first_location(self, n: int, like: dict, draws=FRESH) -> torch.Tensor:
        if self.cfg.start == "centre":
            return torch.zeros(n, 2, **like)
        # Training draws from the global generator (seeded by the loop, restored on resume); evaluation
        # from each canvas's own stream, so evaluating a checkpoint twice gives the same score.
        return draws.uniform((n, 2), torch.zeros((), **like), "start") * 2 - 1

    def forward(self, images, sample: bool | None = None, draw_keys: torch.Tensor | None = None) -> dict:
        cfg = self.cfg
        src = _source(images, cfg.channels)
        sample = self.training if sample is None else sample
        n = src.count
        like = {"dtype": src.dtype, "device": src.device}
        levels = self.retina_levels(src)
        location = self.first_location(n, like, FRESH if self.training else for_evaluation(draw_keys, n))
        state = (torch.zeros(n, cfg.hidden, **like), torch.zeros(n, cfg.hidden, **like))
        record = {k: [] for k in ("location", "log_prob", "baseline", "logits")}
        for _ in range(cfg.glimpses):
            record["location"].append(location)
            g = self.glimpse(torch.cat([self.what(self.retina(levels, location)), self.where(location)], -1))
            state = self.core(g, state)
            h = state[0]
            record["logits"].append(self.classifier(h))
            record["baseline"].append(self.baseline(h.detach()).squeeze(-1))
            # By default the policy learns from REINFORCE alone: it sees h without passing gradients back into
            # the core (policy_trains_core: RAM's own formulation, the core learns from both).
            mean = torch.tanh(self.locator(h if cfg.policy_trains_core else h.detach()))
            if sample:
                location = (mean + cfg.location_std * torch.randn_like(mean)).detach().clamp(-1, 1)
            else:
                location = mean.detach()
            log_prob = -0.5 * ((location - mean) / cfg.location_std) ** 2  # up to a constant
            record["log_prob"].append(log_prob.sum(-1))
        out = {k: torch.stack(v, 1) for k, v in record.items()}
        scale = torch.full((n, cfg.glimpses, 1), cfg.patch_fraction * (2 if cfg.scales > 1 else 1), **like)
        out["windows"] = torch.cat([scale, out["location"]], -1)
        return out

    def training_loss(self, batch: dict):
        out = self(batch["image"])
        label = batch["label"]
        logits = out["logits"][:, -1]
        classification = class_nll(out["logits"] if self.cfg.step_loss else logits, label)
        if self.cfg.reward == "likelihood":
            reward = label_probability(logits.detach(), label).unsqueeze(1)  # [N, 1]
        else:
            reward = predicted_right(logits, label).to(logits.dtype).unsqueeze(1)  # [N, 1]
        baseline = out["baseline"][:, :-1]  # b_t predicts the reward before l_t is used
        advantage = (reward - baseline).detach()
        reinforce = -(out["log_prob"][:, :-1] * advantage).sum(1).mean()
        baseline_loss = F.mse_loss(baseline, reward.expand_as(baseline))
        total = classification + self.cfg.reinforce_weight * reinforce + baseline_loss
        return total, {"loss": total.item(), "nll_class": classification.item(), "reinforce": reinforce.item(),
                       "baseline_mse": baseline_loss.item(), "reward": reward.mean().item()}

    @torch.no_grad()
    def evaluate_batch(self, batch: dict) -> dict:
        out = self(batch["image"], draw_keys=batch.get("draw_keys"))
        return {"logits": out["logits"][:, -1], "step_logits": out["logits"], "windows": out["windows"]}

"""Baselines on the same data, trained by the same loop (``train.fit``) and scored by the same metrics.

- ``resnet18``: torchvision's ResNet-18 on the whole image (paper Table 1), from scratch, one input channel.
- ``resnet18_tiles``: paper Eq. 8, y = f_d(Σ_i g_c(x_i)) over a grid of 224² tiles of the large image
  (144 tiles at 2528² = 11·224 + 64: the last row and column overlap the one before by 160 px), one
  shared ResNet-18 trunk; ``checkpoint=True`` recomputes each chunk of tiles in the backward pass
  (``torch.utils.checkpoint``) instead of storing its activations.
- ``proxy_cnn``: a CNN that sees only the 32² proxy (does the proxy alone solve the task?).
- ``random_glimpses`` / ``grid_glimpses``: our model with its crop classifier and glimpse count unchanged,
  but the windows drawn uniformly at random or laid on a fixed grid (what does the learnt policy add?).
- ``ram``: the Recurrent Attention Model (Mnih et al. 2014): multi-resolution retina, glimpse network,
  LSTM core, Gaussian location policy trained with REINFORCE against a learnt reward baseline.
- ``attention_sampling`` (Katharopoulos & Fleuret 2019): patches drawn without replacement from an
  attention map over a low-resolution view, with the paper's unbiased estimator of the attention-weighted
  mean of their features.

Each model has ``training_loss(batch)`` and ``evaluate_batch(batch)``, the interface ``train.fit`` uses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.utils.checkpoint import checkpoint as recompute

from .config import from_dict, to_dict
from .draws import FRESH, for_evaluation
from .model import ModelConfig, ProxyEncoder, gumbel_top_k, sampled_means
from .sources import ImageSource, TensorSource, UpsampledSource


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
        loss = F.cross_entropy(self.logits(batch), batch["label"])
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


# ------------------------------------------------------------------------------------ whole image

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


# ------------------------------------------------------------------------------------ proxy only

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


# ------------------------------------------------------------------------------------ RAM

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

    def __post_init__(self):
        if self.start not in ("random", "centre"):
            raise ValueError(f"RAMConfig.start must be 'random' or 'centre', got {self.start!r}")
        if self.reward not in ("correct", "likelihood"):
            raise ValueError(f"RAMConfig.reward must be 'correct' or 'likelihood', got {self.reward!r}")


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

    def retina(self, src: ImageSource, location: torch.Tensor) -> torch.Tensor:
        """location [N, 2] → patches [N, scales·C·patch²]; windows may hang over the edge (zeros there)."""
        cfg = self.cfg
        n = location.shape[0]
        scales = cfg.patch_fraction * 2.0 ** torch.arange(cfg.scales, dtype=location.dtype, device=location.device)
        windows = torch.cat([scales.view(1, -1, 1).expand(n, -1, 1), location.unsqueeze(1).expand(n, cfg.scales, 2)], -1)
        return src.crop(windows, cfg.patch).reshape(n, -1)

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
        location = self.first_location(n, like, FRESH if self.training else for_evaluation(draw_keys, n))
        state = (torch.zeros(n, cfg.hidden, **like), torch.zeros(n, cfg.hidden, **like))
        record = {k: [] for k in ("location", "log_prob", "baseline", "logits")}
        for _ in range(cfg.glimpses):
            record["location"].append(location)
            g = self.glimpse(torch.cat([self.what(self.retina(src, location)), self.where(location)], -1))
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
        if self.cfg.step_loss:
            classification = F.cross_entropy(out["logits"].flatten(0, 1), label.repeat_interleave(self.cfg.glimpses))
        else:
            classification = F.cross_entropy(logits, label)
        if self.cfg.reward == "likelihood":
            reward = logits.detach().softmax(-1).gather(1, label.unsqueeze(1))  # [N, 1]
        else:
            reward = (logits.argmax(-1) == label).to(logits.dtype).unsqueeze(1)  # [N, 1]
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


# ------------------------------------------------------------------------------------ attention sampling

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
        classification = F.cross_entropy(out["logits"], batch["label"])
        entropy = out["entropy"].mean()
        total = classification - self.cfg.entropy_weight * entropy
        return total, {"loss": total.item(), "nll_class": classification.item(), "attention_entropy": entropy.item()}

    @torch.no_grad()
    def evaluate_batch(self, batch: dict) -> dict:
        out = self(batch["image"], draw_keys=batch.get("draw_keys"))
        return {k: out[k] for k in ("logits", "step_logits", "windows")}

"""The objective (paper Eq. 6): classification NLL + proxy reconstruction NLL + KL(q(z|c,h) || p(z|h)).

One Gaussian parameterization everywhere: (mu, logvar), std = exp(logvar / 2). (The original code read
the second output as a log-variance when sampling but as a standard deviation in the KL.)

Units: nats per image. Reconstruction and KL are summed over proxy pixels, latent dimensions and
glimpses, as the bound has them; weights rescale each term. ``combine="multiply"`` reproduces the
original code's ELBO × cross-entropy for parity runs only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


CELL_REWARDS = ("label", "look")


@dataclass(frozen=True)
class LossConfig:
    classification_weight: float = 1.0
    reconstruction_weight: float = 1.0
    kl_weight: float = 1.0  # the original used 5
    combine: str = "add"  # "add" (Eq. 6) or "multiply" (the original code's ELBO × CE)
    every_step: bool = False  # also train each glimpse's running prediction (mean over steps)
    # "Free bits" (Kingma et al. 2016): each glimpse's latent dimension keeps its first λ nats of
    # batch-mean KL for free. With h_0 = 0 the first glimpse's prior cannot see the image, so the full KL
    # pulls that glimpse to one place for every image (posterior collapse); λ > 0 lets it depend on c.
    kl_free_bits: float = 0.0
    # The reconstruction term sums T decodes of the proxy. "all" decodes every glimpse; "one" decodes one
    # glimpse per canvas, drawn uniformly, and counts it T times: an unbiased estimate of the same sum at
    # 1/T of the decoder's cost (at T = 4 the decoder is a quarter of a training step otherwise).
    reconstruction_glimpses: str = "all"
    # The weight of the KL of a categorical location posterior to its prior (posterior_head=cells: one
    # categorical per image, counted once). 1 is the bound; less lets the policy leave the ink prior
    # sooner, as attention sampling's small entropy weight does.
    cell_kl_weight: float = 1.0
    # What REINFORCE credits the cells drawn with (posterior_head=cells, cell_gradient=reinforce). "label":
    # the whole draw with the final prediction's log-likelihood of the label, less the batch's mean.
    # "look": each draw with the probability its own glimpse, read alone, gives the label, less the mean
    # over the batch's looks (classifier_pool=vote, whose glimpses each have a class distribution). Under a
    # vote a look on a digit that is not the majority lowers the label's likelihood while one on noise
    # barely moves it, so the label's reward hardly tells digits from noise; and a look on a decoy drawn in
    # every canvas is credited with nothing, as the batch's mean takes it out. Credited alone, a look on a
    # digit earns about 0.6 (3 of 5 digits are the majority) and one on noise or a decoy about 0.1.
    cell_reward: str = "label"

    def __post_init__(self):
        if self.combine not in ("add", "multiply"):
            raise ValueError(f"unknown loss combination {self.combine!r}; valid: add, multiply")
        if self.cell_reward not in CELL_REWARDS:
            raise ValueError(f"unknown cell_reward {self.cell_reward!r}; valid: {', '.join(CELL_REWARDS)}")
        if self.reconstruction_glimpses not in ("all", "one"):
            raise ValueError(f"unknown reconstruction_glimpses {self.reconstruction_glimpses!r}; valid: all, one")
        if self.cell_kl_weight < 0:
            raise ValueError(f"cell_kl_weight must be ≥ 0, got {self.cell_kl_weight}")
        if self.kl_free_bits < 0:
            raise ValueError(f"kl_free_bits must be ≥ 0, got {self.kl_free_bits}")


def gaussian_kl(mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
    """KL(N(mu_q, exp(logvar_q)) || N(mu_p, exp(logvar_p))), elementwise, closed form."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1.0)


def gaussian_sample(mu, logvar, generator: torch.Generator | None = None, eps: torch.Tensor | None = None) -> torch.Tensor:
    """Reparameterized sample: mu + exp(logvar/2)·ε, ε ~ N(0, 1) drawn here unless given."""
    if eps is None:
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + (0.5 * logvar).exp() * eps


def gaussian_nll(x, mu, logvar) -> torch.Tensor:
    """-log N(x; mu, exp(logvar)), elementwise."""
    return 0.5 * (math.log(2 * math.pi) + logvar + (x - mu) ** 2 / logvar.exp())


def bernoulli_nll(logits, target) -> torch.Tensor:
    """-log Bernoulli(target; sigmoid(logits)) elementwise, for targets in [0, 1] (the proxy)."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none")


def class_nll(logits: torch.Tensor, label: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """The classification loss of every model: the cross-entropy of one class per image (``label`` [N]
    integers) or, where an image holds a set of classes (``label`` [N, C] of 0/1, Megapixel MNIST's
    ``multi``), the binary cross-entropy of each class summed over the classes. ``logits`` [N, C], or
    [N, T, C] with each step's (the mean, sum or [N, T] over every step of every image)."""
    steps = logits.dim() == 3
    if steps:
        n, t = logits.shape[:2]
        label = label.repeat_interleave(t, dim=0)
        logits = logits.reshape(n * t, -1)
    if label.dim() == 1:
        nll = F.cross_entropy(logits, label, reduction=reduction)
    else:
        per = F.binary_cross_entropy_with_logits(logits, label.to(logits.dtype), reduction="none").sum(-1)
        nll = per.mean() if reduction == "mean" else per.sum() if reduction == "sum" else per
    return nll.view(n, t) if steps and reduction == "none" else nll


def predicted_right(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """bool [N] (or [N, T] for [N, T, C] logits): the most probable class is the label, or, for a set of
    classes, every class's probability is on the right side of one half."""
    if logits.dim() == 3:
        label = label.unsqueeze(1)
    if label.dim() == logits.dim() - 1:
        return logits.argmax(-1) == label
    return ((logits > 0) == label.bool()).all(-1)


def label_probability(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """[N] the probability the model gives the label: of its class, or of the whole set of classes."""
    if label.dim() == 1:
        return logits.softmax(-1).gather(1, label.unsqueeze(1)).squeeze(1)
    return (-class_nll(logits, label, reduction="none")).exp()


def each_look_probability(step_logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """[N, T] the probability each glimpse, read alone, gives the label, from a vote's running predictions
    ``step_logits`` [N, T, classes] (the log of the mean of glimpses 1..t's distributions, P_t): glimpse t's
    own distribution is t·P_t - (t-1)·P_{t-1}."""
    running = step_logits.softmax(-1).gather(2, label.view(-1, 1, 1).expand(-1, step_logits.shape[1], 1))[..., 0]
    steps = torch.arange(1, running.shape[1] + 1, device=running.device, dtype=running.dtype)
    summed = running * steps  # Σ_{j≤t} p_j(label)
    return torch.diff(summed, dim=1, prepend=summed.new_zeros(summed.shape[0], 1)).clamp(0, 1)


def saccade_loss(out, label: torch.Tensor, config: LossConfig = LossConfig()) -> tuple[torch.Tensor, dict]:
    """Negative bound, averaged over the batch. ``out`` is a ``model.SaccadeOutput``."""
    n = label.shape[0]
    classification = class_nll(out.step_logits if config.every_step else out.logits, label)
    if out.proxy_logits is None:  # not decoded: the model skips the decoder when this term has no weight
        if config.reconstruction_weight != 0:
            raise ValueError("the loss has a reconstruction term but the proxy was not decoded")
        reconstruction = out.proxy.new_zeros(())
    else:
        target = out.proxy.unsqueeze(1).expand_as(out.proxy_logits)
        glimpses, decoded = out.q_mu.shape[1], out.proxy_logits.shape[1]  # decoded < glimpses: an estimate
        reconstruction = bernoulli_nll(out.proxy_logits, target).reshape(n, -1).sum(1).mean() * (glimpses / decoded)
    kl_terms = gaussian_kl(out.q_mu, out.q_logvar, out.p_mu, out.p_logvar)  # [N, T, 3]
    kl = kl_terms.reshape(n, -1).sum(1).mean()
    kl_charged = kl_terms.mean(0).clamp(min=config.kl_free_bits).sum() if config.kl_free_bits > 0 else kl
    elbo_loss = config.reconstruction_weight * reconstruction + config.kl_weight * kl_charged
    cell_kl = out.cell_kl.mean() if out.cell_kl is not None else None
    if cell_kl is not None:
        elbo_loss = elbo_loss + config.cell_kl_weight * cell_kl
    policy = None
    if out.cell_log_prob is not None:  # the score-function gradient of the expected loss in the draws
        if config.cell_reward == "look":
            reward = each_look_probability(out.step_logits.detach(), label)  # [N, T]
            policy = -((reward - reward.mean()) * out.cell_log_prob).sum(1).mean()
        else:
            reward = -class_nll(out.logits.detach(), label, reduction="none")
            policy = -((reward - reward.mean()) * out.cell_log_prob.sum(1)).mean()
    if config.combine == "add":
        total = config.classification_weight * classification + elbo_loss
    else:
        total = config.classification_weight * classification * elbo_loss
    if policy is not None:
        total = total + policy
    parts = {"loss": total.item(), "nll_class": classification.item(), "nll_proxy": reconstruction.item(),
             "kl": kl.item(), **({"kl_cells": cell_kl.item()} if cell_kl is not None else {}),
             **({"policy": policy.item()} if policy is not None else {})}
    return total, parts

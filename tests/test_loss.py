import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from saccadelib.loss import (LossConfig, bernoulli_nll, gaussian_kl, gaussian_nll, gaussian_sample,
                             saccade_loss)


def _random_gaussians(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 3, generator=g, dtype=torch.float64) * s for s in (1.0, 0.7, 1.0, 0.7)]


def test_gaussian_kl_matches_torch_distributions():
    mu_q, logvar_q, mu_p, logvar_p = _random_gaussians()
    ours = gaussian_kl(mu_q, logvar_q, mu_p, logvar_p)
    theirs = kl_divergence(Normal(mu_q, (0.5 * logvar_q).exp()), Normal(mu_p, (0.5 * logvar_p).exp()))
    assert torch.allclose(ours, theirs, atol=1e-12)
    assert gaussian_kl(mu_q, logvar_q, mu_q, logvar_q).abs().max() < 1e-12


def test_gaussian_kl_matches_a_monte_carlo_estimate():
    mu_q, logvar_q, mu_p, logvar_p = (torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64),
                                      torch.tensor([-1.0, 0.5, 0.0], dtype=torch.float64),
                                      torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64),
                                      torch.tensor([0.0, -0.5, 1.0], dtype=torch.float64))
    g = torch.Generator().manual_seed(1)
    z = gaussian_sample(mu_q.expand(400_000, 3), logvar_q.expand(400_000, 3), generator=g)
    log_ratio = gaussian_nll(z, mu_p, logvar_p) - gaussian_nll(z, mu_q, logvar_q)  # log q - log p
    estimate, stderr = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(len(z))
    exact = gaussian_kl(mu_q, logvar_q, mu_p, logvar_p)
    assert ((estimate - exact).abs() < 4 * stderr).all()


def test_one_parameterization_sampling_uses_logvar_as_the_kl_does():
    g = torch.Generator().manual_seed(2)
    mu, logvar = torch.full((200_000,), 1.5, dtype=torch.float64), torch.full((200_000,), math.log(0.25), dtype=torch.float64)
    z = gaussian_sample(mu, logvar, generator=g)
    assert z.mean().item() == pytest.approx(1.5, abs=0.01)
    assert z.var().item() == pytest.approx(0.25, rel=0.02)  # variance = exp(logvar), std = exp(logvar / 2)


def test_gaussian_nll_matches_torch():
    mu, logvar, x, _ = _random_gaussians(seed=3)
    assert torch.allclose(gaussian_nll(x, mu, logvar), -Normal(mu, (0.5 * logvar).exp()).log_prob(x), atol=1e-12)


def test_bernoulli_nll_by_hand():
    logits = torch.tensor([0.0, 2.0, -1.0])
    target = torch.tensor([0.3, 1.0, 0.0])
    expected = [math.log(2), math.log(1 + math.exp(-2)), math.log(1 + math.exp(-1))]
    assert bernoulli_nll(logits, target).tolist() == pytest.approx(expected, abs=1e-6)


class _Out:
    """A stand-in for SaccadeOutput with hand-chosen values."""

    def __init__(self):
        self.logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
        self.step_logits = torch.stack([self.logits, self.logits], 1)
        self.proxy = torch.full((2, 1, 2, 2), 0.5)
        self.proxy_logits = torch.zeros(2, 2, 1, 2, 2)  # T = 2 decodes of a 2×2 proxy
        self.q_mu = torch.zeros(2, 2, 3)
        self.q_logvar = torch.zeros(2, 2, 3)
        self.p_mu = torch.ones(2, 2, 3)
        self.p_logvar = torch.zeros(2, 2, 3)
        self.cell_kl = None
        self.cell_log_prob = None


def test_loss_terms_and_combinations():
    out, label = _Out(), torch.tensor([0, 1])
    ce = (math.log(1 + math.exp(-2)) + math.log(2)) / 2
    recon = 2 * 4 * math.log(2)  # T × pixels × ln 2 per image
    kl = 2 * 3 * 0.5  # T × dims × ½(μ_q − μ_p)²
    total, parts = saccade_loss(out, label, LossConfig())
    assert parts["nll_class"] == pytest.approx(ce, rel=1e-6)
    assert parts["nll_proxy"] == pytest.approx(recon, rel=1e-6)
    assert parts["kl"] == pytest.approx(kl, rel=1e-6)
    assert total.item() == pytest.approx(ce + recon + kl, rel=1e-6)
    weighted, _ = saccade_loss(out, label, LossConfig(classification_weight=2, reconstruction_weight=0.1, kl_weight=5))
    assert weighted.item() == pytest.approx(2 * ce + 0.1 * recon + 5 * kl, rel=1e-6)
    multiplied, _ = saccade_loss(out, label, LossConfig(combine="multiply", kl_weight=5))
    assert multiplied.item() == pytest.approx(ce * (recon + 5 * kl), rel=1e-6)
    every, _ = saccade_loss(out, label, LossConfig(every_step=True))
    assert every.item() == pytest.approx(ce + recon + kl, rel=1e-6)  # both steps predict the same here
    with pytest.raises(ValueError, match="unknown loss combination"):
        LossConfig(combine="max")


def test_the_cells_kl_is_added_with_its_own_weight():
    out, label = _Out(), torch.tensor([0, 1])
    plain, _ = saccade_loss(out, label)
    out.cell_kl = torch.tensor([1.0, 3.0])
    total, parts = saccade_loss(out, label, LossConfig(cell_kl_weight=0.5))
    assert parts["kl_cells"] == pytest.approx(2.0)
    assert total.item() == pytest.approx(plain.item() + 0.5 * 2.0, rel=1e-6)
    with pytest.raises(ValueError, match="cell_kl_weight"):
        LossConfig(cell_kl_weight=-1)


def test_reinforce_credits_the_whole_draw_with_the_label_or_each_look_with_its_own_glimpse():
    """Under a vote, glimpse t's own distribution is t·P_t - (t-1)·P_{t-1}: "look" credits draw t with its
    probability of the label less the mean over the batch's looks; "label" credits every draw with the
    final prediction's log-likelihood less the batch's mean."""
    from saccadelib.loss import each_look_probability
    own = torch.tensor([[[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]],
                        [[0.3, 0.7], [0.6, 0.4], [0.1, 0.9]]])  # [N=2, T=3, 2 classes], each glimpse alone
    steps = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1)
    label = torch.tensor([0, 1])
    out = _Out()
    out.step_logits = (own.cumsum(1) / steps).log()
    out.logits = out.step_logits[:, -1]
    looks = each_look_probability(out.step_logits, label)
    assert torch.allclose(looks, torch.tensor([[0.9, 0.5, 0.2], [0.7, 0.4, 0.9]]), atol=1e-6)
    for reward, credit in (("look", looks - looks.mean()),
                           ("label", (lambda r: (r - r.mean()).unsqueeze(1).expand(2, 3))(
                               (own.mean(1).gather(1, label.view(-1, 1))[:, 0]).log()))):
        out.cell_log_prob = torch.zeros(2, 3, requires_grad=True)
        total, parts = saccade_loss(out, label, LossConfig(cell_reward=reward))
        total.backward()
        assert torch.allclose(out.cell_log_prob.grad, -credit / 2, atol=1e-6), reward
    with pytest.raises(ValueError, match="unknown cell_reward 'glimpse'"):
        LossConfig(cell_reward="glimpse")


def test_one_decoded_glimpse_estimates_the_sum_over_glimpses_without_bias():
    out, label = _Out(), torch.tensor([0, 1])
    out.proxy_logits = torch.tensor([-1.0, 0.5]).view(1, 2, 1, 1, 1).expand(2, 2, 1, 2, 2).clone()
    _, full = saccade_loss(out, label)
    estimates = []
    for t in range(2):  # the one decode the model drew, for each choice of glimpse
        one = _Out()
        one.proxy_logits = out.proxy_logits[:, t:t + 1]
        estimates.append(saccade_loss(one, label)[1]["nll_proxy"])
    assert estimates[0] != pytest.approx(estimates[1])  # each draw alone is off
    assert sum(estimates) / 2 == pytest.approx(full["nll_proxy"], rel=1e-6)  # their mean is the sum over T
    with pytest.raises(ValueError, match="reconstruction_glimpses"):
        LossConfig(reconstruction_glimpses="two")


def test_free_bits_charge_at_least_lambda_per_dimension_and_free_the_small_ones():
    out, label = _Out(), torch.tensor([0, 1])
    ce = (math.log(1 + math.exp(-2)) + math.log(2)) / 2
    recon = 2 * 4 * math.log(2)
    out.q_mu = torch.zeros(2, 2, 3, requires_grad=True)  # each (glimpse, dim) has KL ½ here
    total, parts = saccade_loss(out, label, LossConfig(kl_free_bits=0.8))
    assert parts["kl"] == pytest.approx(3.0, rel=1e-6)  # the reported KL is the true one
    assert total.item() == pytest.approx(ce + recon + 2 * 3 * 0.8, rel=1e-6)  # charged: λ per dimension
    total.backward()
    assert out.q_mu.grad.abs().max() == 0  # below λ the posterior moves for free
    out.q_mu = torch.zeros(2, 2, 3, requires_grad=True)
    total, _ = saccade_loss(out, label, LossConfig(kl_free_bits=0.2))
    assert total.item() == pytest.approx(ce + recon + 3.0, rel=1e-6)  # above λ: the full KL
    total.backward()
    assert out.q_mu.grad.abs().min() > 0
    with pytest.raises(ValueError, match="kl_free_bits"):
        LossConfig(kl_free_bits=-1)

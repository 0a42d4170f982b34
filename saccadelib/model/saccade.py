"""Variational Saccading (paper §3-4): a VRNN over the proxy that decides where to look, and a crop
classifier that reads the full-resolution glimpses.

Per glimpse t = 1..T, with h_0 = 0 and e_c = ProxyEncoder(c):
    prior      p(z_t | h_{t-1})          = N(Prior(h_{t-1}))
    posterior  q(z_t | c, h_{t-1})       = N(Posterior(e_c, h_{t-1}))      z_t ~ q (pathwise)
    decoder    p(c | z_t, h_{t-1})       = Bernoulli(ProxyDecoder(z_t, h_{t-1}))
    recurrence h_t = CoreRNN([e_c, φ(z_t)], h_{t-1})
    glimpse    o_t = crop(x, window(z_t))                              (sampler.py)
Prediction: the glimpse features g(o_t) are pooled over t and a dense head gives the class. As in the
original code, the crops never feed back into the RNN: where to look depends on the proxy and earlier z
only, so all T crops are read in one batched call.

The parts are chosen once, at construction, from the config: the posterior head (``posteriors``: the
paper's pooled Gaussian, the map, or the cells of the ``saccade_cells`` variant), the window policy
(``policies``: learnt or a control), where the glimpses start, and how the classifier pools.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..draws import FRESH, for_evaluation
from ..loss import gaussian_sample, saccade_loss
from ..sources import ImageSource, TensorSource
from ..sampler import jitter_windows, noisy_proxy
from .config import HEAD_WIDTH, LATENT, ModelConfig
from .nets import CoreRNN, GlimpseClassifier, ProxyDecoder, ProxyEncoder
from .policies import GlimpseStart, build_policy
from .posteriors import POSTERIORS, Plan, Prior


@dataclass
class SaccadeOutput:
    logits: torch.Tensor  # [N, classes] after all T glimpses
    step_logits: torch.Tensor  # [N, T, classes] after 1..T glimpses
    windows: torch.Tensor  # [N, T, 3] (scale, cx, cy), normalized image coordinates
    z: torch.Tensor  # [N, T, 3]
    q_mu: torch.Tensor
    q_logvar: torch.Tensor
    p_mu: torch.Tensor | None  # the prior: computed with the loss terms (in training)
    p_logvar: torch.Tensor | None
    proxy: torch.Tensor  # [N, C, J, J] what the model was shown
    proxy_logits: torch.Tensor | None  # [N, D, C, J, J] when decoded (training with a reconstruction term):
    # D = T, or D = 1 with loss.reconstruction_glimpses="one"
    crops: torch.Tensor  # [N, T, C, S, S]
    cell_kl: torch.Tensor | None = None  # [N] KL of the cells' categorical to its prior (posterior_head=cells, in training)
    # [N, T] log-probability of each cell drawn, given the earlier draws (cell_gradient=reinforce, in training)
    cell_log_prob: torch.Tensor | None = None


@dataclass
class Glimpses:
    """The recurrence's record, each [N, T, ·]: z_t, q's parameters, h_{t-1}, and the code the core read."""
    z: torch.Tensor
    q_mu: torch.Tensor
    q_logvar: torch.Tensor
    h_prev: torch.Tensor
    code: torch.Tensor


@dataclass
class LossTerms:
    """What only the loss reads (``VariationalSaccading.loss_terms``); all None outside training."""
    p_mu: torch.Tensor | None = None
    p_logvar: torch.Tensor | None = None
    proxy_logits: torch.Tensor | None = None
    cell_kl: torch.Tensor | None = None
    cell_log_prob: torch.Tensor | None = None


class VariationalSaccading(nn.Module):
    def __init__(self, cfg: ModelConfig = ModelConfig()):
        super().__init__()
        self.cfg = cfg
        self.proxy_encoder = ProxyEncoder(cfg)
        self.latent_embedding = nn.Sequential(nn.Linear(LATENT, cfg.latent_features), nn.ReLU(inplace=True))
        self.prior = Prior(cfg.hidden, HEAD_WIDTH, cfg)
        self.posterior = POSTERIORS[cfg.posterior_head](self.proxy_encoder.map_channels, cfg)
        self.start = GlimpseStart(cfg)
        self.decoder = ProxyDecoder(cfg)
        self.core = CoreRNN(cfg)
        self.policy = build_policy(cfg)
        self.classifier = GlimpseClassifier(cfg)
        if cfg.window.narrow_to is not None:  # the cap in force, saved with the weights it trained
            self.posterior.register_buffer("window_cap", torch.tensor(cfg.window.final_cap))

    def start_epoch(self, epoch: int) -> None:
        """Called by the training loop before each epoch (from 0): where the largest window narrows over
        training, it sets the cap of ``epoch``. The weights a checkpoint saves keep the cap they trained at."""
        if self.cfg.window.narrow_to is not None:
            self.posterior.window_cap.fill_(self.cfg.window.cap(epoch))

    def forward(self, images, proxy: torch.Tensor | None = None, sample: bool | None = None,
                regions: torch.Tensor | None = None, loss_terms: bool | None = None,
                draw_keys: torch.Tensor | None = None) -> SaccadeOutput:
        """``images``: a tensor [N,C,H,W] or an ImageSource; ``proxy`` overrides the source's proxy
        (e.g. a noisy one). ``sample``: draw z from q (default: in training unless cfg.train_sample is
        False, or in evaluation if cfg.eval_sample). ``regions`` [N, D, 4]: the objects' boxes (x0, y0,
        x1, y1 in [-1, 1]) for the oracle policy. ``loss_terms``: also compute what only the loss reads, the
        prior and (when the loss weighs it) the proxy reconstruction (default: in training); otherwise
        ``p_mu``, ``p_logvar`` and ``proxy_logits`` are None. ``draw_keys`` [N]: in evaluation, each
        canvas's key for its own random draws (``saccadelib.draws``; default: its position in the batch)."""
        cfg = self.cfg
        src = self.source(images)
        draws = FRESH if self.training else for_evaluation(draw_keys, src.count)
        if proxy is None:
            proxy = self.shown_proxy(src.proxy(cfg.proxy_size), draws)
        proxy = proxy.to(self.core.lstm.weight_ih_l0.device)  # a file source decodes on the CPU
        if sample is None:
            sample = cfg.train_sample if self.training else cfg.eval_sample
        if loss_terms is None:
            loss_terms = self.training
        e_c, fmap = self.proxy_encoder(proxy)
        plan = self.posterior.plan(e_c, fmap, proxy, sample, draws)
        glimpses = self.recurrence(e_c, plan, sample, proxy.new_zeros(len(proxy), cfg.hidden), draws)
        terms = self.loss_terms(glimpses, plan, proxy, sample) if loss_terms else LossTerms()
        windows = self.policy(self.posterior.windows(plan, glimpses.z, glimpses.code), proxy, regions, draws)
        if self.training and cfg.window.jitter:
            windows = jitter_windows(windows, cfg.window.jitter, draws.uniform((*windows.shape[:-1], 2), windows, "jitter"))
        crops = src.crop(windows, cfg.crop_size)
        step_logits = self.classifier(crops, glimpses.h_prev, e_c, plan.taken)
        return SaccadeOutput(logits=step_logits[:, -1], step_logits=step_logits, windows=windows, z=glimpses.z,
                             q_mu=glimpses.q_mu, q_logvar=glimpses.q_logvar, p_mu=terms.p_mu, p_logvar=terms.p_logvar,
                             proxy=proxy, proxy_logits=terms.proxy_logits, crops=crops, cell_kl=terms.cell_kl,
                             cell_log_prob=terms.cell_log_prob)

    def recurrence(self, e_c: torch.Tensor, plan: Plan, sample: bool, h: torch.Tensor, draws=FRESH) -> Glimpses:
        """The glimpses in order, from h_0 = ``h``: only the posterior, z and the core depend on the previous
        glimpse. The prior and the decoder read h_{t-1} and z_t but feed nothing back, so they run once,
        batched, after it (``loss_terms``)."""
        state = None
        # z sampled in evaluation (eval_sample) takes each canvas's own noise; training draws step by step
        eps = draws.normal((len(h), self.cfg.glimpses, LATENT), h, "latent") if sample and draws is not FRESH else None
        steps = []
        for t in range(self.cfg.glimpses):
            q_mu, q_logvar = self.posterior.step(plan, t, h)
            q_mu = self.start(q_mu, t)
            z = gaussian_sample(q_mu, q_logvar, eps=None if eps is None else eps[:, t]) if sample else q_mu
            code = self.posterior.code(plan, t, z)  # what the core reads of the glimpse
            steps.append((z, q_mu, q_logvar, h, code))
            h, state = self.core(torch.cat([e_c, self.latent_embedding(code)], -1), state)
        return Glimpses(*(torch.stack(column, 1) for column in zip(*steps)))

    def loss_terms(self, glimpses: Glimpses, plan: Plan, proxy: torch.Tensor, sample: bool) -> "LossTerms":
        """What only the loss reads: the prior, the proxy decoded (when the loss weighs it) and the
        policy terms of a discrete choice of places (cells)."""
        n, t = glimpses.z.shape[:2]
        p_mu, p_logvar = (v.view(n, t, LATENT) for v in self.prior(glimpses.h_prev.flatten(0, 1)))
        proxy_logits = None
        if self.cfg.loss.reconstruction_weight > 0:
            decoded = self.decoded_glimpses(n, proxy.device)
            code, h = (x.gather(1, decoded.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
                       for x in (glimpses.code, glimpses.h_prev))
            proxy_logits = self.decoder(self.latent_embedding(code.flatten(0, 1)), h.flatten(0, 1))
            proxy_logits = proxy_logits.view(n, decoded.shape[1], *proxy.shape[1:])
        cell_kl, cell_log_prob = self.posterior.policy_terms(plan, sample)
        return LossTerms(self.start(p_mu), p_logvar, proxy_logits, cell_kl, cell_log_prob)

    def decoded_glimpses(self, n: int, device) -> torch.Tensor:
        """[N, D] the glimpses whose proxy decode the loss reads: all T, or one per canvas drawn uniformly
        (``loss.reconstruction_glimpses``)."""
        t = self.cfg.glimpses
        if self.cfg.loss.reconstruction_glimpses == "one":
            return torch.randint(t, (n, 1), device=device)
        return torch.arange(t, device=device).expand(n, t)

    def source(self, images) -> ImageSource:
        if isinstance(images, ImageSource):
            return images
        if images.dim() != 4 or images.shape[1] != self.cfg.channels:
            raise ValueError(f"expected images [N, {self.cfg.channels}, H, W], got shape {tuple(images.shape)}")
        return TensorSource(images)

    def shown_proxy(self, proxy: torch.Tensor, draws=FRESH) -> torch.Tensor:
        """The proxy after the configured ablation noise (unchanged when there is none): fresh in training,
        each canvas's own in evaluation (``saccadelib.draws``)."""
        if self.cfg.proxy_noise == 0 and self.cfg.proxy_keep == 1:
            return proxy
        return noisy_proxy(proxy, self.cfg.proxy_noise, self.cfg.proxy_keep, draws)

    # -- the interface the shared training loop uses (train.py) --
    def parameter_groups(self) -> list[dict]:
        """The optimizer's groups by part, each with its learning rate as a multiple of the training's: the
        reader (the crop classifier) and the policy (every part that decides where to look: encoder,
        posterior, prior, core, decoder)."""
        reader = list(self.classifier.parameters())
        own = {id(p) for p in reader}
        policy = [p for p in self.parameters() if id(p) not in own]
        return [{"params": reader, "part": "reader", "lr_scale": self.cfg.reader_lr_scale},
                {"params": policy, "part": "policy", "lr_scale": self.cfg.policy_lr_scale}]

    def training_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        out = self(batch["image"], proxy=batch.get("proxy"), regions=batch.get("regions"))
        return saccade_loss(out, batch["label"], self.cfg.loss)

    @torch.no_grad()
    def evaluate_batch(self, batch: dict) -> dict:
        out = self(batch["image"], proxy=batch.get("proxy"), regions=batch.get("regions"),
                   draw_keys=batch.get("draw_keys"))
        return {"logits": out.logits, "step_logits": out.step_logits, "windows": out.windows}

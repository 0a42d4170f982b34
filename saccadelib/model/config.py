"""The model's settings: one frozen dataclass, saved with every checkpoint (``to_dict``/``from_dict``).

Each setting is read by one part (docs/model.md); ``__post_init__`` refuses combinations the parts
cannot build, with a message that names the setting and what it takes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import from_dict, to_dict
from ..loss import LossConfig
from ..sampler import WindowConfig

LATENT = 3  # (scale, x, y)
HEAD_WIDTH = 256  # hidden units of every dense head: the classifier's, the prior's and the posteriors'
POLICIES = ("learnt", "random", "grid", "oracle", "salient")
STEMS = ("space_to_depth", "conv")
POSTERIOR_HEADS = ("pooled", "map", "cells")
CLASSIFIER_READS = ("crops", "crops+state", "crops+proxy", "crops+state+proxy")
CLASSIFIER_POOLS = ("mean", "vote")


@dataclass(frozen=True)
class ModelConfig:
    n_classes: int = 55
    channels: int = 1
    glimpses: int = 4
    crop_size: int = 32
    proxy_size: int = 32
    hidden: int = 256
    rnn_layers: int = 2
    proxy_features: int = 256
    crop_features: int = 256
    latent_features: int = 64
    width: int = 16  # conv channels: crop net (w, 2w, 4w, 8w), proxy encoder (w, 2w, 4w), decoder (2w, 2w, w)
    proxy_width: int | None = None  # the proxy encoder's w when it differs (a 32² proxy is cheap to widen)
    norm: str = "batch"  # conv normalization: "batch" (learns much faster here, see README) or "group" (paper)
    # How the conv nets (crop net, proxy encoder) read full-resolution pixels: "space_to_depth" (each 2×2
    # pixel block folded into channels, the first conv at half the side) or "conv" (a 3×3 conv at full
    # side, then 2×2 max-pooling). See conv_stem.
    stem: str = "space_to_depth"
    # The side of the pixel blocks the crop net's space_to_depth stem folds: 2 for 32² crops; 4 for 64²
    # crops runs the rest of the crop net at the same 16² side, at the 32² crops' cost.
    crop_fold: int = 2
    proxy_encoder: str = "spatial"  # "spatial" (flatten: keeps where things are) or "pooled" (global pool)
    # How the posterior places a glimpse: "pooled" (an MLP over the proxy features e_c and h_{t-1}, the
    # paper's) or "map" (a score map over the proxy encoder's features at a quarter of the proxy's side,
    # modulated by h_{t-1}; the window's centre is the map's soft-argmax): a map says *where* to the
    # precision of its cells, which a few pooled cells cannot when a digit is 2% of the image side;
    # "cells" (a categorical over the map's cells, drawn without replacement, times a Gaussian for the
    # window's scale and its offset within the cell: CellPosterior) chooses among places, which a position
    # moved along the image gradient inside its window cannot do when most windows hold nothing.
    posterior_head: str = "pooled"
    # What the classifier reads besides the crops (docs/deviations.md): "crops" (the crops' features
    # alone: the paper's Eq. 6, and the test of whether looking is what works), "crops+state" (joined with
    # h_{t-1}, as the original code did), "crops+proxy" (with the proxy features e_c), or both.
    classifier_reads: str = "crops"
    # How the classifier joins the glimpses (GlimpseClassifier): "mean" (the dense head reads the running
    # mean of the glimpse features: Eq. 8's pooled form) or "vote" (the head reads each glimpse alone and
    # the prediction after t glimpses is the mean of their t class distributions). A vote can only say
    # which class most glimpses hold, as a label counted over objects (Megapixel MNIST's majority) asks;
    # one class per image only.
    classifier_pool: str = "mean"
    # posterior_head=cells: a drawn cell takes the cells within this many cells of it out of later draws
    # (its glimpse shows them too), so the T glimpses land on T different things rather than on one
    # object's neighbouring cells.
    cell_reach: int = 1
    # posterior_head=cells: the ink prior weighs a proxy pixel of value p as p**ink_power. In a proxy a
    # digit is a dense blob and a thin stroke a faint line, so powers above 1 rank the digits' cells first
    # (scripts/probes/megapixel_ink_ranking.py: with 4, the six most probable cells of a Megapixel MNIST
    # canvas hold 4.5 of its 5 digits, against 3.2 with 1).
    ink_power: float = 4.0
    # posterior_head=cells: how the draws' scores learn. "reinforce": the classifier reads the plain mean of
    # the glimpse features and the scores follow the score-function gradient of the expected loss (reward:
    # the canvas's log-likelihood of its label, less the batch's mean); "attention_sampling": the
    # classifier reads attention sampling's estimate of the features' mean under the categorical, whose
    # gradient reaches the scores (the loss of the expected features; it drifted off the digits on
    # Megapixel MNIST, docs/resolution.md).
    cell_gradient: str = "reinforce"
    init_scale: float = 0.6  # initial window side (fraction of the image side)
    init_logvar: float = -2.0  # initial posterior log-variance of z
    # Where the T glimpses start: "centre" (all at the image centre, as a plain VRNN starts: the glimpses
    # are then symmetric and tend to stay on top of each other) or "grid" (a learnt per-glimpse offset of
    # z, shared by prior and posterior, starting on the cells of grid_windows(T)).
    init_layout: str = "centre"
    # False: the posterior reads the proxy features without passing its gradients back into the proxy
    # encoder (location gradients through the sampler are noisy; the classifier and decoder shape e_c).
    posterior_trains_encoder: bool = True
    eval_sample: bool = False  # evaluation uses the posterior mean unless True
    train_sample: bool = True  # training draws z from q; False: the posterior mean (the deterministic ablation)
    # "learnt" (windows from z), or the controls "random" (uniform), "grid" (fixed), "salient" (where the
    # proxy is bright: a hand-made policy that looks where the ink is) and "oracle" (on the objects' boxes,
    # which the batch must carry as ``regions``: the ceiling for any policy)
    policy: str = "learnt"
    # The noisy-proxy ablation (docs/tasks.md): Gaussian noise std and pixel keep fraction applied to the
    # proxy the model is shown, never to the crops. Fresh noise in training, a fixed stream in evaluation.
    proxy_noise: float = 0.0
    proxy_keep: float = 1.0
    # Learning rates per part, as multiples of the training's lr (the loop reads them through
    # ``parameter_groups``, as a model states its own optimizer groups): the reader, the crop classifier,
    # and the policy, every part that decides where to look.
    reader_lr_scale: float = 1.0
    policy_lr_scale: float = 1.0
    window: WindowConfig = field(default_factory=WindowConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise ValueError(f"unknown glimpse policy {self.policy!r}; valid: {', '.join(POLICIES)}")
        if self.classifier_reads not in CLASSIFIER_READS:
            raise ValueError(f"unknown classifier input {self.classifier_reads!r}; valid: {', '.join(CLASSIFIER_READS)}")
        if self.classifier_pool not in CLASSIFIER_POOLS:
            raise ValueError(f"unknown classifier pool {self.classifier_pool!r}; valid: {', '.join(CLASSIFIER_POOLS)}")
        if self.classifier_pool == "vote" and self.posterior_head == "cells" and \
                self.cell_gradient == "attention_sampling" and self.policy == "learnt":
            raise ValueError("classifier_pool=vote averages each glimpse's prediction, while cell_gradient="
                             "attention_sampling pools the features by its own estimate: use one of them")
        if self.loss.cell_reward == "look" and not (self.classifier_pool == "vote" and self.posterior_head == "cells"
                                                    and self.cell_gradient == "reinforce"):
            raise ValueError("loss.cell_reward=look credits each look with its own glimpse's prediction, which only "
                             "a vote has: it needs classifier_pool=vote with posterior_head=cells and "
                             "cell_gradient=reinforce; leave loss.cell_reward at label")
        if self.init_layout not in ("centre", "grid"):
            raise ValueError(f"unknown initial layout {self.init_layout!r}; valid: centre, grid")
        if self.stem not in STEMS:
            raise ValueError(f"unknown stem {self.stem!r}; valid: {', '.join(STEMS)}")
        if self.stem == "space_to_depth" and (self.crop_size % self.crop_fold or self.proxy_size % 2):
            raise ValueError(f"stem=space_to_depth needs crop_size divisible by crop_fold ({self.crop_size}, "
                             f"{self.crop_fold}) and an even proxy_size ({self.proxy_size}); change them or use stem=conv")
        if self.crop_fold < 2 or (self.stem == "conv" and self.crop_fold != 2):
            raise ValueError(f"crop_fold must be ≥ 2 and is only set with stem=space_to_depth, got {self.crop_fold}")
        if self.norm not in ("batch", "group"):
            raise ValueError(f"unknown norm {self.norm!r}; valid: batch, group")
        if self.posterior_head not in POSTERIOR_HEADS:
            raise ValueError(f"unknown posterior head {self.posterior_head!r}; valid: {', '.join(POSTERIOR_HEADS)}")
        if self.window.narrow_to is not None and self.posterior_head == "cells":
            raise ValueError("window.narrow_to narrows a Gaussian posterior's windows; posterior_head=cells places "
                             "its own: leave window.narrow_to unset")
        if self.posterior_head != "pooled" and self.window.mode != "learnt":
            raise ValueError(f"posterior_head={self.posterior_head} places windows through the learnt window mode; "
                             "set window.mode=learnt")
        if self.cell_gradient not in ("attention_sampling", "reinforce"):
            raise ValueError(f"unknown cell_gradient {self.cell_gradient!r}; valid: attention_sampling, reinforce")
        if self.posterior_head == "cells" and self.proxy_size % 4:
            raise ValueError(f"posterior_head=cells scores the cells of a map at a quarter of the proxy's side: "
                             f"proxy_size must be divisible by 4, got {self.proxy_size}")
        if self.posterior_head == "cells" and self.init_layout != "centre":
            raise ValueError("posterior_head=cells chooses its own places; init_layout must stay centre")
        if self.proxy_encoder not in ("spatial", "pooled"):
            raise ValueError(f"unknown proxy encoder {self.proxy_encoder!r}; valid: spatial, pooled")
        if self.proxy_noise < 0 or not 0 < self.proxy_keep <= 1:
            raise ValueError(f"proxy_noise must be >= 0 and proxy_keep in (0, 1], got {self.proxy_noise}, {self.proxy_keep}")
        if self.proxy_width is not None and self.proxy_width < 1:
            raise ValueError(f"proxy_width must be a positive channel count or None, got {self.proxy_width}")
        for name, low in (("cell_reach", 0), ("n_classes", 2), ("channels", 1), ("glimpses", 1), ("crop_size", 8),
                          ("proxy_size", 8), ("hidden", 1), ("rnn_layers", 1), ("proxy_features", 1), ("crop_features", 1),
                          ("latent_features", 1), ("width", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"setting {name} must be at least {low}, got {getattr(self, name)}")
        for name in ("reader_lr_scale", "policy_lr_scale"):
            if not 0 <= getattr(self, name) < float("inf"):
                raise ValueError(f"setting {name} must be a finite number ≥ 0, got {getattr(self, name)}")
        if self.ink_power <= 0:
            raise ValueError(f"setting ink_power must be positive, got {self.ink_power}")
        if not 0 < self.init_scale <= 1:
            raise ValueError(f"setting init_scale must be in (0, 1] (a window's side over the image's), got {self.init_scale}")

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        return from_dict(cls, values)

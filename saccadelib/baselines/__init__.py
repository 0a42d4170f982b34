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
- ``ips``: iterative patch selection (Bergner et al. 2023): every patch of a grid scored without gradient by
  a cross-attention over patch embeddings, the best ``memory`` kept iteration by iteration, then encoded
  again with gradient and pooled by the same cross-attention.

Each model has ``training_loss(batch)`` and ``evaluate_batch(batch)``, the interface ``train.fit`` uses.
"""
from .attention_sampling import AttentionSampling, AttentionSamplingConfig
from .common import resnet18_trunk
from .ips import IPSConfig, IterativePatchSelection
from .proxy import ProxyCNN, ProxyCNNConfig
from .ram import RAM, RAMConfig
from .resnets import ResNetConfig, TiledResNet, TiledResNetConfig, WholeImageResNet, tile_starts, tile_windows

__all__ = ["RAM", "AttentionSampling", "AttentionSamplingConfig", "IPSConfig", "IterativePatchSelection", "ProxyCNN",
           "ProxyCNNConfig", "RAMConfig",
           "ResNetConfig", "TiledResNet", "TiledResNetConfig", "WholeImageResNet", "resnet18_trunk", "tile_starts",
           "tile_windows"]

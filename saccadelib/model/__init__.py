"""Variational Saccading in its parts (docs/model.md):

- ``config``: ``ModelConfig``, the one settings dataclass;
- ``nets``: the proxy encoder, core RNN, proxy decoder and glimpse classifier;
- ``posteriors``: the prior and the posterior heads (the paper's pooled Gaussian, the map, the cells);
- ``cells``: drawing places among the cells of a grid (no parameters);
- ``policies``: the learnt windows and the controls (random, grid, salient, oracle), where glimpses start;
- ``saccade``: ``VariationalSaccading``, the parts wired together, and its output.
"""
from .cells import cell_ink, draw_cells, drawn_log_prob, gumbel_top_k, sampled_means
from .config import CLASSIFIER_READS, LATENT, POLICIES, POSTERIOR_HEADS, STEMS, ModelConfig
from .nets import CoreRNN, GlimpseClassifier, ProxyDecoder, ProxyEncoder, conv_block, conv_stem
from .policies import grid_windows, oracle_windows, salient_windows
from .posteriors import CellPosterior, MapPosterior, PooledPosterior, Prior
from .saccade import SaccadeOutput, VariationalSaccading

__all__ = ["CLASSIFIER_READS", "LATENT", "POLICIES", "POSTERIOR_HEADS", "STEMS", "CellPosterior", "CoreRNN",
           "GlimpseClassifier", "MapPosterior", "ModelConfig", "PooledPosterior", "Prior", "ProxyDecoder",
           "ProxyEncoder", "SaccadeOutput", "VariationalSaccading", "cell_ink", "conv_block", "conv_stem", "draw_cells",
           "drawn_log_prob", "gumbel_top_k", "grid_windows", "oracle_windows", "salient_windows", "sampled_means"]

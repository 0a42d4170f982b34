"""Named model settings: the recipes our glimpse models train with, and the crop settings for large crops.

A recipe is a dict of ``KEY=VALUE`` model settings (``saccadelib.config``). ``train --recipe NAME`` and
the study apply one under ``--set``; docs/deviations.md says why each setting.

- ``four_glimpses_grid_start``: the paper's method on the two-digit tasks (sum, identification at 100²
  and 2528²) and FiveK.
- ``small_windows``: the paper's method where a digit is 2-3% of the image side (Megapixel MNIST,
  native-size identification): six windows of 3-10% of the side on a 128² proxy.
- ``small_glimpses``: the ``saccade_cells`` variant's settings, the same windows chosen among the proxy
  map's cells (its registry defaults; the controls of 06 read it too, so they share its classifier).
"""
from __future__ import annotations

# What every recipe shares: a classifier that reads the crops alone, a small reconstruction weight, a
# loss on every glimpse's running prediction (where a recipe does not say otherwise), one nat of free
# bits per latent dimension, and the reconstruction term estimated from one decoded glimpse.
_SHARED = {"classifier_reads": "crops", "loss.reconstruction_weight": 0.01, "loss.every_step": True,
           "loss.kl_free_bits": 1.0, "loss.reconstruction_glimpses": "one"}

# Four glimpses starting on the quadrants (on sum as on identification, a classifier that reads the crops
# alone needs a glimpse on each digit: docs/controls.md), windows learnt in [0.2, 0.45] of the side from
# 0.35, a posterior that does not train the proxy encoder, and the crop classifier learning at twice the
# policy's rate (reading lags finding at short budgets: docs/deviations.md). Only the prediction after
# the last glimpse is trained, as in the original code: asked for both digits after one glimpse, the first
# window sits between them at the cap, and the four read 2.1 points less (docs/controls.md).
FOUR_GLIMPSES_GRID_START = {**_SHARED, "loss.every_step": False, "window.max_scale": 0.45, "init_scale": 0.35,
                            "posterior_trains_encoder": False, "glimpses": 4, "init_layout": "grid",
                            "reader_lr_scale": 2.0}

# Six windows of 3-10% of the side read at 32², on a 128² proxy (a digit 2-3% of the side is a few
# proxy pixels there), starting on a grid.
SMALL_WINDOWS = {**_SHARED, "glimpses": 6, "window.min_scale": 0.03, "window.max_scale": 0.1, "init_scale": 0.04,
                 "proxy_size": 128, "posterior_trains_encoder": False, "init_layout": "grid"}

# The cells variant: the same windows, placed among the cells of a map over the proxy's features from an
# ink prior, learnt by REINFORCE, with a small weight on the cells' KL and the posterior training the
# proxy encoder (docs/model.md, docs/resolution.md).
SMALL_GLIMPSES = {**SMALL_WINDOWS, "init_layout": "centre", "posterior_head": "cells", "cell_gradient": "reinforce",
                  "loss.cell_kl_weight": 0.01, "posterior_trains_encoder": True}

# The reader of a Megapixel label that is the majority digit: each glimpse read alone into a 48² crop (the
# crop net's stem folds 3×3 blocks, so the rest of it costs what 32² does) and the prediction the mean of
# the glimpses' class distributions, trained after the last glimpse. With it oracle windows read 99.7% at
# 16 epochs where the features' mean read 90.4 at 50 (records/megapixel_detail/, docs/resolution.md). A
# max, top or multi label is no vote of its glimpses: those keep the features' mean.
MAJORITY_READER = {"crop_size": 48, "crop_fold": 3, "classifier_pool": "vote", "loss.every_step": False}

# RAM as the study trains it on the two-digit tasks: the strongest arm of its probes on both tasks
# (records/ram_probes/, 40 epochs: 16.5% on identification and 14.9% on sum, against 9.75 and 9.8 at RAM's
# own settings, which stay its defaults): four scales of 16-128 px read at 16² from a box-filtered pyramid,
# so that the first glimpse sees the whole canvas; a loss on every glimpse's prediction; the label's
# probability as the reward; eight glimpses (docs/baselines.md).
RAM_STUDY = {"patch": 16, "patch_fraction": 0.16, "scales": 4, "retina": "pyramid", "step_loss": True,
             "reward": "likelihood", "glimpses": 8}

RECIPES = {"four_glimpses_grid_start": FOUR_GLIMPSES_GRID_START, "small_windows": SMALL_WINDOWS,
           "small_glimpses": SMALL_GLIMPSES}
# The recipe of our models on each generated task (the study's and the benchmarks').
TASK_RECIPE = {"sum": "four_glimpses_grid_start", "identification": "four_glimpses_grid_start",
               "fivek": "four_glimpses_grid_start"}

LARGE_SIDE, LARGE_CROP = 2528, 64  # the paper's large variant: a lazy 2528² upsample read in 64² crops


def crop_settings(crop: int) -> dict:
    """Our model's settings for ``crop``² glimpses: the crop net's stem folds pixel blocks so that the
    rest of it runs at 16² (64² crops then cost what 32² ones do; docs/efficiency.md)."""
    return {"crop_size": crop, "crop_fold": max(2, crop // 16)}


def recipe(name: str) -> dict:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; valid: {', '.join(RECIPES)}")
    return dict(RECIPES[name])

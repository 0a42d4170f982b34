"""Figures the notebooks and the CLI share: curves (``curves``) and pictures of where models looked
(``pictures``)."""
from .curves import (accuracy_against_cost, compare_curves, learning_curve, plateau_curve, proxy_sweep, read_history,
                     save_figure)
from .pictures import GLIMPSE_COLOURS, draw_saccades, figure5, noise_view, saccade_gallery, side_by_side

__all__ = ["GLIMPSE_COLOURS", "accuracy_against_cost", "compare_curves", "draw_saccades", "figure5", "learning_curve",
           "noise_view", "plateau_curve", "proxy_sweep", "read_history", "saccade_gallery", "save_figure",
           "side_by_side"]

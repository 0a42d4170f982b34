"""Using a trained model: ``load`` it from its checkpoint, ``predict`` one image or ``predict_folder`` a
folder of them, ``score_folder`` on labelled image files, and ``draw_overlay`` where it looked. The
command line's ``predict`` and ``evaluate`` call these."""
from ..checkpoint import CheckpointError
from .loading import class_names, load, load_model, resolve
from .overlays import draw_overlay
from .predicting import as_source, predict, predict_folder
from .scoring import read_labels, score_folder

__all__ = ["CheckpointError", "as_source", "class_names", "draw_overlay", "load", "load_model", "predict",
           "predict_folder", "read_labels", "resolve", "score_folder"]

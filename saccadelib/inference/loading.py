"""Loading a trained model: the checkpoint a training run wrote, rebuilt from its recorded meta and checked
(its weights finite, its class names as many as its classes)."""
from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoint import CheckpointError, load_checkpoint
from ..datasets import twodigit
from ..model import VariationalSaccading
from ..registry import GLIMPSE_MODELS, REGISTRY, build


def load_model(checkpoint: str | Path, glimpses_only: bool = True) -> tuple[torch.nn.Module, dict]:
    """The model a training checkpoint (``best.pt``, ``last.pt``) holds, in evaluation mode, and its recorded
    meta (name, task, config). ``glimpses_only``: refuse models without glimpses (``predict`` draws them)."""
    path = Path(checkpoint)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    ckpt = load_checkpoint(path)
    meta = ckpt.get("model_meta") if isinstance(ckpt, dict) else None
    known = GLIMPSE_MODELS if glimpses_only else tuple(REGISTRY)
    if not meta or meta.get("name") not in known or "model" not in ckpt:
        raise CheckpointError(f"{path} is not a checkpoint of {'a glimpse model' if glimpses_only else 'a saccadelib model'} "
                              f"(model_meta name not one of {', '.join(known)})")
    try:
        model = build(meta["name"], meta["config"])
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, ValueError, TypeError) as err:
        raise CheckpointError(f"checkpoint {path} does not match its recorded model config: {err}") from None
    broken = [k for k, v in ckpt["model"].items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:  # a run that diverged: every score it gives would be NaN
        raise CheckpointError(f"{path} holds weights that are not finite (NaN or infinite: {', '.join(broken[:3])}"
                              f"{'…' if len(broken) > 3 else ''}): the run diverged; use an earlier checkpoint")
    names, classes = meta.get("class_names"), getattr(getattr(model, "cfg", None), "n_classes", None)
    if names is not None and classes is not None and len(names) != classes:
        raise CheckpointError(f"{path} records {len(names)} class names for its {classes} classes: its outputs "
                              "cannot be named; use the checkpoint its training run wrote")
    return model.eval(), meta


def load(checkpoint: str | Path) -> torch.nn.Module:
    """The model a training checkpoint holds (any model of the registry), in evaluation mode, with its
    recorded meta (name, task, config, class names) as ``model.meta``: what ``predict`` and ``evaluate``
    take in place of a checkpoint path, so a notebook loads once and scores many images."""
    model, meta = load_model(checkpoint, glimpses_only=False)
    model.meta = {**meta, "checkpoint": str(checkpoint)}
    return model


def resolve(model_or_checkpoint, glimpses_only: bool) -> tuple[torch.nn.Module, dict]:
    """(model, meta) from a model ``load`` returned or a checkpoint path."""
    if isinstance(model_or_checkpoint, torch.nn.Module):
        model, meta = model_or_checkpoint, getattr(model_or_checkpoint, "meta", {})
    elif model_or_checkpoint is None:
        raise ValueError("give a checkpoint path or a model from saccadelib.load")
    else:
        model, meta = load_model(model_or_checkpoint, glimpses_only=False)
        model.meta = {**meta, "checkpoint": str(model_or_checkpoint)}  # later calls with the model keep its names
    if glimpses_only and not isinstance(model, VariationalSaccading):
        raise ValueError(f"predict shows where a model looked; {meta.get('name', type(model).__name__)} takes no "
                         "glimpses: score it with the evaluate command (saccadelib.score_folder) instead")
    return model, meta


def class_names(meta: dict, n_classes: int) -> list[str]:
    """What a model's outputs mean: the names its checkpoint records, or for a checkpoint written before
    every checkpoint recorded them, its task's (two-digit tasks) or the class indices."""
    if meta.get("class_names"):
        return list(meta["class_names"])
    if meta.get("task") in twodigit.TASKS:
        return twodigit.class_names(meta["task"])
    return [str(k) for k in range(n_classes)]


def channels(model) -> int:
    return model.cfg.channels



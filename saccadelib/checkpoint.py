"""Checkpoints on disk: written atomically, read back as tensors and plain values only."""
from __future__ import annotations

from pathlib import Path

import torch

from .paths import atomic_path


def save_checkpoint(path: Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


class CheckpointError(ValueError):
    """A checkpoint that cannot serve: unreadable, not ours, or not matching its recorded config."""


def load_checkpoint(path: Path) -> dict:
    """torch.load of a checkpoint, tensors and plain types only; a file that is not one gets one line
    saying so (not torch's advice to unpickle arbitrary objects, which a checkpoint of ours never needs)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors, truncated zip archives, foreign objects
        text = str(err)
        foreign = "weights_only" in text or "unsupported global" in text.lower()
        why = ("it holds objects other than tensors and plain values" if foreign else
               (text.strip().splitlines() or [type(err).__name__])[0][:200])
        raise CheckpointError(f"{path} is not a checkpoint saccadelib can read ({why}): give the best.pt or last.pt "
                              "a training run wrote") from None

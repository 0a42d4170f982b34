"""Tasks: what the training loop trains on, without naming any task itself.

A task gives its classes, a training stream (``set_epoch(e)``, ``len()`` batches, iteration: a pure
function of (seed, epoch), so a resumed run sees the same batches; in a multi-process run each rank's
share of the epoch and of the batch) and its fixed evaluation sets
(``len()``, ``as_dict(start, stop)``, ``describe()``, and optionally ``glimpse_hits(windows, batch)`` for
the hit rate). ``get_task(name, data_root)`` resolves a name; definitions are in docs/tasks.md.
"""
from __future__ import annotations

from pathlib import Path

from . import data as twodigit


class TwoDigitTask:
    """Sum or identification on 100² canvases generated from MNIST (fresh training canvases each epoch),
    read as they are or, with ``image_side``, as their lazy upsample to that side (the paper's 2528²)."""

    def __init__(self, name: str, image_side: int | None = None):
        self.spec = twodigit.task_spec(name)
        self.name, self.image_side = name, image_side
        self.n_classes = self.spec.n_classes
        self.class_names = twodigit.class_names(name)

    def training_stream(self, train_size: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        """Process ``rank`` of ``world`` draws its own ``train_size / world`` canvases an epoch in batches of
        ``batch_size / world``: together one epoch of the one-process run's size and batch."""
        return twodigit.TwoDigitStream(self.name, train_size // world, batch_size // world, seed,
                                       image_side=self.image_side, rank=rank)

    def evaluation_set(self, split: str):
        return twodigit.eval_set(self.name, split, image_side=self.image_side)


class FiveKTask:
    """MIT-Adobe FiveK's six subjects from a prepared folder (``python -m saccadelib data fivek``); an epoch
    is the whole training split in a fresh seeded order (``train_size`` does not apply)."""

    name = "fivek"

    def __init__(self, root: str | Path | None = None):
        from . import fivek

        self.root = fivek.check_prepared(root)
        self.n_classes = len(fivek.SUBJECTS)
        self.class_names = list(fivek.SUBJECTS)

    def training_stream(self, train_size: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        from . import fivek

        return fivek.FiveKStream(batch_size // world, seed, self.root, rank, world)

    def evaluation_set(self, split: str):
        from . import fivek

        return fivek.FiveKSet(split, self.root)


TASK_NAMES = (*twodigit.TASKS, "fivek")


def n_classes(name: str) -> int:
    """Classes of a task, without loading its data."""
    if name == "fivek":
        from .fivek import SUBJECTS

        return len(SUBJECTS)
    return twodigit.task_spec(name).n_classes


def check_name(name: str) -> str:
    if name not in TASK_NAMES:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASK_NAMES)}")
    return name


def get_task(name: str, data_root: str | Path | None = None, image_side: int | None = None):
    if check_name(name) == "fivek":
        if image_side is not None:
            raise ValueError("image_side applies to generated canvases; FiveK's photos are read at their own size")
        return FiveKTask(data_root)
    return TwoDigitTask(name, image_side)

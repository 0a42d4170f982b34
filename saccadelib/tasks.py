"""Tasks: what the training loop trains on, without naming any task itself.

A task gives its classes, a training stream (``set_epoch(e)``, ``len()`` batches, iteration: a pure
function of (seed, epoch), so a resumed run sees the same batches; in a multi-process run each rank's
share of the epoch and of the batch) and its fixed evaluation sets
(``len()``, ``as_dict(start, stop)``, ``describe()``, and optionally ``glimpse_hits(windows, batch)`` for
the hit rate). ``get_task(name, data_root)`` resolves a name; definitions are in docs/tasks.md.
"""
from __future__ import annotations

from pathlib import Path

from .datasets import fivek, folder, megapixel, twodigit
from .datasets.fivek import SUBJECTS
from .datasets.folder import read_manifest
from .names import MEGAPIXEL_TASKS, megapixel_decoys
from .names import check_task as check_name


class TwoDigitTask:
    """Sum or identification generated from MNIST (fresh training canvases each epoch): on the paper's 100²
    canvas, read as it is or, with ``image_side``, as its lazy upsample to that side (the paper's 2528²);
    or, with ``canvas_side``, native-size digits and clutter on a larger canvas (kept sparse above 256²)."""

    def __init__(self, name: str, image_side: int | None = None, canvas_side: int = 100):
        self.spec = twodigit.task_spec(name)
        if canvas_side < twodigit.DIGIT:
            raise ValueError(f"canvas_side must be at least {twodigit.DIGIT} to hold a digit, got {canvas_side}")
        if image_side is not None and canvas_side > twodigit.DENSE_LIMIT:
            raise ValueError(f"image_side upsamples a small canvas; a {canvas_side}² canvas of native-size digits "
                             "is read as it is: leave image_side unset")
        self.name, self.image_side, self.canvas_side = name, image_side, canvas_side
        self.n_classes = self.spec.n_classes
        self.class_names = twodigit.class_names(name)

    def training_stream(self, train_size: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        """Process ``rank`` of ``world`` draws its own ``train_size / world`` canvases an epoch in batches of
        ``batch_size / world``: together one epoch of the one-process run's size and batch."""
        return twodigit.TwoDigitStream(self.name, train_size // world, batch_size // world, seed,
                                       canvas=self.canvas_side, image_side=self.image_side, rank=rank)

    def evaluation_set(self, split: str):
        return twodigit.eval_set(self.name, split, canvas=self.canvas_side, image_side=self.image_side)


class MegapixelTask:
    """Megapixel MNIST with one of its single labels (``megapixel_majority``, ``_max``, ``_top``), or a decoy
    variant of it (``megapixel_blobs_majority``, ``megapixel_lookalikes_majority``, …), from the stored sets
    (``python -m saccadelib data megapixel [--decoys KIND]``); an epoch is the training split in a fresh
    seeded order, or its first ``train_size`` canvases when that is smaller."""

    def __init__(self, name: str, root: str | Path | None = None):
        if name not in MEGAPIXEL_TASKS:
            raise ValueError(f"unknown Megapixel MNIST task {name!r}; valid: {', '.join(MEGAPIXEL_TASKS)}")
        self.name = name
        self.label, self.decoys = name.rpartition("_")[2], megapixel_decoys(name)
        self.root = root if root or self.decoys == "none" else megapixel.default_root(megapixel.MegapixelConfig(decoys=self.decoys))
        self.n_classes, self.class_names = 10, [str(d) for d in range(10)]

    def training_stream(self, train_size: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        return megapixel.MegapixelStream(self.evaluation_set("train"), batch_size // world, seed, rank, world,
                                         train_size=train_size)

    def evaluation_set(self, split: str):
        return megapixel.stored_set(split, self.root).with_label(self.label)


class FiveKTask:
    """MIT-Adobe FiveK's six subjects from a prepared folder (``python -m saccadelib data fivek``); an epoch
    is the whole training split in a fresh seeded order (``train_size`` does not apply)."""

    name = "fivek"

    def __init__(self, root: str | Path | None = None):
        self.root = fivek.check_prepared(root)
        self.n_classes = len(fivek.SUBJECTS)
        self.class_names = list(fivek.SUBJECTS)

    def training_stream(self, train_size: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        return fivek.FiveKStream(batch_size // world, seed, self.root, rank, world)

    def evaluation_set(self, split: str):
        return fivek.FiveKSet(split, self.root)


class FolderTask:
    """Your own images (``train --images DIR`` or ``--manifest FILE``): a folder of image files of any size,
    one subfolder per class or a ``file,label[,split]`` CSV, split per class by the run's seed when no
    split is given (folder.py); an epoch is the training split in a fresh seeded order. The split and any
    skipped files are written with the run (``records``)."""

    name = "folder"

    def __init__(self, images: str | Path | None, manifest: str | Path | None = None, seed: int = 0,
                 channels: int = 3, convert: bool = False, proxy_size: int | None = None):
        if images is None:
            raise ValueError("the folder task reads your images: give --images DIR (or --train data_root=DIR)")
        self.manifest = folder.read_manifest(images, manifest, seed)
        self.channels, self.convert, self.proxy_size = channels, convert, proxy_size
        self.class_names = list(self.manifest.class_names)
        self.n_classes = len(self.class_names)

    def training_stream(self, train_size: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        return folder.FolderStream(self.evaluation_set("train"), batch_size // world, seed, rank, world, self.proxy_size)

    def evaluation_set(self, split: str):
        return folder.FolderSet(self.manifest, split, self.channels, self.convert)

    def restore(self, run_dir: Path) -> list[str]:
        """Take the split the run in ``run_dir`` saved, if it saved one (folder.reuse_split); the messages
        say what changed in the folder since."""
        saved = Path(run_dir) / "split.csv"
        if not saved.exists():
            trained = [name for name in ("last.pt", "best.pt") if (Path(run_dir) / name).exists()]
            if trained:  # a new split would move images the checkpoint trained on into validation and test
                raise folder.FolderError(f"{saved} is gone but {Path(run_dir) / trained[0]} was trained on the split it "
                                         "held: put split.csv back, or train into a new --out folder")
            return []
        self.manifest, notes = folder.reuse_split(self.manifest, saved)
        return [f"reusing the split saved in {saved}", *notes]

    def records(self) -> dict[str, str]:
        """Files the run keeps beside its checkpoints: the split used, and the files skipped and why."""
        return {"split.csv": self.manifest.csv_text(),
                **({"skipped.csv": self.manifest.skipped_text()} if self.manifest.skipped else {})}


def class_names(name: str, data_root: str | Path | None = None, manifest: str | Path | None = None) -> list[str]:
    """Class names of a task, in label order (a folder task reads its folder or manifest to know them)."""
    if name == "fivek":
        return list(SUBJECTS)
    if name in MEGAPIXEL_TASKS:
        return [str(d) for d in range(10)]
    if name == "folder":
        if data_root is None:
            raise ValueError("the folder task reads your images: give --images DIR (or --train data_root=DIR)")
        return list(read_manifest(data_root, manifest).class_names)
    return twodigit.class_names(name)


def n_classes(name: str, data_root: str | Path | None = None, manifest: str | Path | None = None) -> int:
    """Classes of a task (without loading its data, except a folder task's list of files)."""
    if name not in ("folder", "fivek", *MEGAPIXEL_TASKS):
        return twodigit.task_spec(name).n_classes
    return len(class_names(name, data_root, manifest))


def get_task(name: str, data_root: str | Path | None = None, image_side: int | None = None,
             canvas_side: int = 100, manifest: str | Path | None = None, seed: int = 0, channels: int = 1,
             convert: bool = False, proxy_size: int | None = None):
    """The task ``name``: ``data_root`` for the tasks read from files (FiveK, Megapixel MNIST, a folder of
    your images, with its ``manifest``, split ``seed``, the model's ``channels`` and whether to
    ``convert`` images to them, and the ``proxy_size`` its training batches are read ahead at),
    ``image_side`` and ``canvas_side`` for the generated two-digit ones."""
    if image_side == canvas_side:  # read at its own side: no upsampling
        image_side = None
    if check_name(name) in ("fivek", "folder", *MEGAPIXEL_TASKS):
        if image_side is not None or canvas_side != 100:
            raise ValueError(f"image_side and canvas_side apply to generated two-digit canvases; {name} is "
                             "read at its own size")
        if name == "folder":
            return FolderTask(data_root, manifest, seed, channels, convert, proxy_size)
        return FiveKTask(data_root) if name == "fivek" else MegapixelTask(name, data_root)
    if manifest is not None:
        raise ValueError(f"a manifest lists your own images (task folder); {name} is generated")
    return TwoDigitTask(name, image_side, canvas_side)

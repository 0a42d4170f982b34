"""Your own images: a dataset from a folder of image files of any size (docs/your_images.md).

Two layouts, as the field writes them:
- torchvision's ImageFolder: one subfolder per class (its name is the class), image files anywhere under
  it; classes in sorted order;
- a CSV manifest with a header ``file,label`` and optionally ``split`` (train, val or test); ``file`` is a
  path relative to the images folder; classes are the labels in sorted order.

Without a split column the images are split per class (stratified) by a seeded permutation, 70% / 15% /
15% with at least one validation and one test image per class; the split is written with the run
(``split.csv``) and reused when the run is resumed or rerun into the same folder, even after the images
folder changed (``reuse_split``): an image never moves between splits. Files that PIL cannot identify are
skipped and listed (``skipped.csv``); every other problem (too few classes, an empty class, a class too
small to split, a bad split name) is refused with a one-line error.

Images are read lazily, batch by batch, through ``files.FileBatchSource``: the proxy from a reduced
decode, the crops by region, so memory follows the crops and not the image size.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..paths import csv_text, read_csv_rows
from ..sources import SLIDE_SUFFIXES, FileBatchSource
from ..sources.open import unreadable

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp") + SLIDE_SUFFIXES
SPLITS = ("train", "val", "test")
HELD_OUT_SHARE = 0.15  # validation and test each, per class, when the folder gives no split


class FolderError(ValueError):
    """A folder or manifest that cannot make a dataset."""


@dataclass(frozen=True)
class Manifest:
    root: Path  # the images folder; files are relative to it
    files: tuple[str, ...]
    labels: tuple[int, ...]
    splits: tuple[str, ...]
    class_names: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (file, why)

    def rows(self, split: str) -> list[int]:
        return [k for k, s in enumerate(self.splits) if s == split]

    def csv_text(self) -> str:
        return csv_text([{"file": f, "label": self.class_names[y], "split": s}
                         for f, y, s in zip(self.files, self.labels, self.splits)])

    def skipped_text(self) -> str:
        return csv_text([{"file": f, "reason": why} for f, why in self.skipped], ["file", "reason"])


def _readable(path: Path) -> str | None:
    """None when the file is an image its reader identifies, else why not (``sources.open.unreadable``)."""
    return unreadable(path)


OUTPUT_MARK = ".saccade-output"  # in a folder predict wrote: never read back as images


def list_images(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """The image files under ``folder`` (sorted), following symlinked subfolders once each (a link back up
    the tree is not followed again), leaving out folders ``predict`` wrote (``OUTPUT_MARK``). Files whose
    names are not UTF-8, and entries with an image's name that are not files (a FIFO, a device: reading one
    would wait forever), come back apart, as (name, why), to be listed as skipped."""
    found, odd, seen, top = [], [], set(), os.path.realpath(folder)
    for here, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(here)
        above = top.startswith(real.rstrip(os.sep) + os.sep)  # a link up the tree would list it all again
        if real in seen or above or OUTPUT_MARK in names:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        for name in names:
            if Path(name).suffix.lower() not in IMAGE_SUFFIXES or os.path.isdir(os.path.join(here, name)):
                continue
            path = Path(here) / name
            shown = os.fsencode(path.relative_to(folder)).decode("utf-8", "backslashreplace")
            try:
                str(path.relative_to(folder)).encode("utf-8")
            except UnicodeEncodeError:
                odd.append((shown, "its name is not UTF-8: rename it"))
                continue
            if not os.path.isfile(path):
                odd.append((shown, "not a regular file (a FIFO, a device or a broken link): list image files only"))
                continue
            found.append(path)
    return sorted(found), sorted(odd)


def _from_subfolders(root: Path) -> tuple[list[str], list[str], None, list[tuple[str, str]]]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files, labels, odd = [], [], []
    for name in classes:
        found, unnamed = list_images(root / name)
        odd += [(f"{name}/{shown}", why) for shown, why in unnamed]
        if not found:
            raise FolderError(f"class folder {root / name} holds no image files ({', '.join(IMAGE_SUFFIXES)}): "
                              "add images or remove the folder")
        files += [str(p.relative_to(root)) for p in found]
        labels += [name] * len(found)
    return files, labels, None, odd


def _from_csv(root: Path, manifest: Path) -> tuple[list[str], list[str], list[str] | None, list]:
    if not manifest.exists():
        raise FolderError(f"manifest not found: {manifest}")
    rows = read_csv_rows(manifest, ("file", "label"), FolderError)
    if not rows:
        raise FolderError(f"{manifest} has its header but no rows: list one image per row (file,label[,split])")
    splits = [r["split"].strip() for r in rows] if "split" in rows[0] else None
    if splits is not None:
        for line, s in enumerate(splits, start=2):
            if s not in SPLITS:
                raise FolderError(f"{manifest} line {line}: split {s!r} is not one of {', '.join(SPLITS)}")
    for line, r in enumerate(rows, start=2):
        if not (root / r["file"]).is_file():
            raise FolderError(f"{manifest} line {line}: no image file {root / r['file']}")
    return [r["file"] for r in rows], [r["label"].strip() for r in rows], splits, []


def stratified_split(labels: list[int], seed: int) -> list[str]:
    """Per class, a seeded permutation: the first 15% (at least one) to validation, the next 15% (at least
    one) to test, the rest to training."""
    splits = [""] * len(labels)
    rng = np.random.default_rng(seed)
    for c in sorted(set(labels)):
        members = [k for k, y in enumerate(labels) if y == c]
        order = rng.permutation(len(members))
        held = max(1, round(HELD_OUT_SHARE * len(members)))
        for rank, k in enumerate(order):
            splits[members[k]] = "val" if rank < held else "test" if rank < 2 * held else "train"
    return splits


def read_manifest(images: str | Path, manifest: str | Path | None = None, seed: int = 0) -> Manifest:
    """The dataset in ``images`` (subfolders per class, or the ``manifest`` CSV), unreadable files skipped
    and listed, split per class by ``seed`` when no split is given."""
    root = Path(images)
    if not root.is_dir():
        raise FolderError(f"images folder not found: {root}")
    files, names, splits, odd = _from_csv(root, Path(manifest)) if manifest else _from_subfolders(root)
    bad = {k: why for k, f in enumerate(files) if (why := _readable(root / f)) is not None}
    skipped = tuple(odd) + tuple((files[k], why) for k, why in sorted(bad.items()))
    keep = [k for k in range(len(files)) if k not in bad]
    files, names = [files[k] for k in keep], [names[k] for k in keep]
    splits = [splits[k] for k in keep] if splits is not None else None
    class_names = sorted(set(names))
    if len(class_names) < 2:
        raise FolderError(f"{manifest or root} has {len(class_names)} class{'es' if len(class_names) != 1 else ''} "
                          "with readable images; a classifier needs at least two")
    labels = [class_names.index(n) for n in names]
    if splits is None:
        small = [n for n in class_names if names.count(n) < 3]
        if small:
            raise FolderError(f"class {small[0]!r} has {names.count(small[0])} image(s); splitting into training, "
                              "validation and test needs at least 3 per class (or give a split column)")
        splits = stratified_split(labels, seed)
    for split in ("train", "val"):
        if split not in splits:
            raise FolderError(f"{manifest or root} has no {split} images: give some rows that split")
    return Manifest(root, tuple(files), tuple(labels), tuple(splits), tuple(class_names), skipped)


def reuse_split(manifest: Manifest, saved: Path) -> tuple[Manifest, list[str]]:
    """The split a run saved (its ``split.csv``) applied to the folder as it is now, so that a rerun never
    moves an image between training, validation and test. Images that are gone (or now unreadable) are
    dropped, images added since are left out, both listed in ``skipped`` and in the returned messages;
    an image whose class changed, or a changed set of classes, is refused (train into a new folder)."""
    rows = read_csv_rows(saved, ("file", "label", "split"), FolderError)
    before = {r["file"]: (r["label"], r["split"]) for r in rows}
    now = {f: manifest.class_names[y] for f, y in zip(manifest.files, manifest.labels)}
    classes = sorted({label for label, _ in before.values()})
    if classes != list(manifest.class_names):
        raise FolderError(f"the classes changed since {saved} was written ({', '.join(classes)} → "
                          f"{', '.join(manifest.class_names)}): train into a new --out folder")
    for name, label in now.items():
        if name in before and before[name][0] != label:
            raise FolderError(f"{name} was class {before[name][0]!r} when {saved} was written and is {label!r} now: "
                              "train into a new --out folder")
    unreadable = {f for f, _ in manifest.skipped}
    gone = [f for f in before if f not in now and f not in unreadable]
    new = [f for f in now if f not in before]
    kept = [f for f in before if f in now]
    notes = []
    if gone or unreadable & set(before):
        lost = gone + sorted(unreadable & set(before))
        notes.append(f"{len(lost)} image(s) of the saved split are gone or unreadable and are dropped: "
                     f"{', '.join(lost[:5])}{'…' if len(lost) > 5 else ''}")
    if new:
        notes.append(f"{len(new)} image(s) added since the split was saved are left out (train into a new --out "
                     f"folder to use them): {', '.join(new[:5])}{'…' if len(new) > 5 else ''}")
    skipped = manifest.skipped + tuple((f, "gone since the split was saved: dropped") for f in gone) + \
        tuple((f, "added since the split was saved: left out") for f in new)
    reused = Manifest(manifest.root, tuple(kept), tuple(manifest.class_names.index(now[f]) for f in kept),
                      tuple(before[f][1] for f in kept), manifest.class_names, skipped)
    for split in ("train", "val"):
        if not reused.rows(split):
            raise FolderError(f"no {split} images of the split saved in {saved} are left: train into a new --out folder")
    return reused, notes


class FolderSet:
    """One split of a folder dataset, read batch by batch from the files (``FileBatchSource``). With
    ``convert``, images whose channels differ from ``channels`` are converted (colour to luma, PIL's "L";
    grey to RGB by repeating it) instead of refused."""

    def __init__(self, manifest: Manifest, split: str, channels: int, convert: bool = False):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        self.manifest, self.split, self.channels, self.convert = manifest, split, channels, convert
        rows = manifest.rows(split)
        if not rows:
            raise FolderError(f"{manifest.root} has no {split} images")
        self.paths = [manifest.root / manifest.files[k] for k in rows]
        self.label = torch.tensor([manifest.labels[k] for k in rows])

    def __len__(self) -> int:
        return len(self.paths)

    def as_dict(self, start: int = 0, stop: int | None = None, order: list[int] | None = None) -> dict:
        picked = (order or list(range(len(self))))[start:stop]
        return {"image": FileBatchSource([self.paths[k] for k in picked], self.channels, convert=self.convert),
                "label": self.label[picked]}

    def describe(self) -> dict:
        digest = hashlib.sha256()
        for path, label in zip(self.paths, self.label.tolist()):
            digest.update(f"{path.relative_to(self.manifest.root)},{label}\n".encode())
        return {"dataset": "folder", "root": str(self.manifest.root), "split": self.split, "n": len(self),
                "classes": list(self.manifest.class_names), "sha256": digest.hexdigest()}


class FolderStream(IterableDataset):
    """The training split in a fresh seeded order each epoch (a pure function of (seed, epoch), so a
    resumed run sees the same batches); process ``rank`` of ``world`` takes every world-th image.

    Through ``DataLoader(stream, batch_size=None, num_workers=N)`` (``--train workers=N``) the workers
    take every N-th batch and read it ahead: with ``proxy_size`` they build the proxies, decoding each
    file once, and hand the decode on with the batch, so the crops read it without decoding again."""

    def __init__(self, data: FolderSet, batch_size: int, seed: int = 0, rank: int = 0, world: int = 1,
                 proxy_size: int | None = None):
        self.data, self.batch_size, self.seed, self.epoch, self.rank, self.world = data, batch_size, seed, 0, rank, world
        self.proxy_size = proxy_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-(len(self.data) // self.world) // self.batch_size)

    def __iter__(self) -> Iterator[dict]:
        worker = get_worker_info()
        first, step = (worker.id, worker.num_workers) if worker else (0, 1)
        order = np.random.default_rng((self.seed, self.epoch)).permutation(len(self.data)).tolist()
        mine = order[self.rank::self.world][:len(self.data) // self.world]  # equal shares: ranks step together
        for start in range(first * self.batch_size, len(mine), step * self.batch_size):
            batch = self.data.as_dict(start, start + self.batch_size, mine)
            if self.proxy_size is not None:
                batch["image"].read_proxies(self.proxy_size)
            yield batch

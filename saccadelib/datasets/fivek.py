"""MIT-Adobe FiveK: from the official download to training batches (paper §5.2, docs/tasks.md).

Preparation (``python -m saccadelib data fivek --source DIR``) reads the official distribution
(``fivek_dataset/``: ``categories.txt`` with each photo's attributes, the raw DNG photos under
``raw_photos/HQa*/photos/`` or an expert's rendition under ``tiff16_<a-e>/``) and writes, under
``data/fivek/`` by default:

- ``large/<id>.jpg``: the photo at 2528² (squashed, as the original code did) or with its longer side at
  2528 (``aspect="native"``), JPEG quality 95 without chroma subsampling;
- ``proxy/<id>.png``: the 32² proxy, read from the large image exactly as inference reads a photo
  (``FileSource.proxy``), so training and inference see the same proxy;
- ``index.csv`` (id, subject, label, split, size, source file), ``fivek.json`` (class order, seed, split
  counts, settings), ``settings.json`` (the sizes, fixed at the first run) and ``skipped.csv`` (files
  that could not be read, with the reason).

Each image's files are written atomically and an image whose files exist is not redone, so a killed
preparation continues where it stopped. The split is stratified by subject and seeded: 80/10/10.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..paths import atomic_path, csv_text, data_dir, write_text_atomic
from ..sources import FileBatchSource, FileSource
from .folder import FolderStream

# The paper's class order (§5.2); "None" is FiveK's own word for an unknown subject.
SUBJECTS = ("abstract", "animals", "man_made", "nature", "None", "people")
EXPERTS = "abcde"
PHOTO_SUFFIXES = (".dng", ".tif", ".tiff", ".jpg", ".jpeg", ".png")
LARGE_SIDE, PROXY_SIDE = 2528, 32
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
HOW_TO_GET = (
    "MIT-Adobe FiveK is not here. Get it from https://data.csail.mit.edu/graphics/fivek/ (fivek_dataset.tar, "
    "about 50 GB: raw DNG photos and categories.txt; the experts' renditions are optional), extract it, then "
    "run: python -m saccadelib data fivek --source <path>/fivek_dataset")


class FiveKError(ValueError):
    """The FiveK distribution or a prepared FiveK folder is missing something or holds bad values."""


class PhotoError(ValueError):
    """One photo cannot be read (corrupt, truncated, unsupported); preparation skips it and lists it."""


def default_root() -> Path:
    return data_dir() / "fivek"


# ------------------------------------------------------------------------------- the distribution

def read_subjects(source: str | Path) -> dict[str, str]:
    """{photo id: subject} from ``categories.txt`` (lines ``id,location,time,light,subject``)."""
    path = Path(source) / "categories.txt"
    if not path.exists():
        raise FiveKError(f"{path} is missing: it holds each photo's subject (the six classes). {HOW_TO_GET}")
    subjects = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 5:
            raise FiveKError(f"{path}:{number}: expected 5 comma-separated fields "
                             f"(id,location,time,light,subject), got {line!r}")
        photo, subject = fields[0], fields[4]
        if subject not in SUBJECTS:
            raise FiveKError(f"{path}:{number}: unknown subject {subject!r} for {photo}; "
                             f"valid: {', '.join(SUBJECTS)}")
        subjects[photo] = subject
    if not subjects:
        raise FiveKError(f"{path} lists no photos")
    return subjects


def photo_folders(source: str | Path, photos: str = "auto") -> list[Path]:
    """Where the photos are: ``raw`` (the DNGs), an expert ``a``-``e`` (``tiff16_<x>/``), ``auto`` (the DNGs
    when present, else expert C's rendition, else any expert's), or a folder of ``<id>.<ext>`` files
    (relative to ``source`` or absolute: e.g. JPEG renditions exported elsewhere)."""
    source = Path(source)
    raw = sorted(source.glob("raw_photos/*/photos"))
    experts = {x: source / f"tiff16_{x}" for x in EXPERTS if (source / f"tiff16_{x}").is_dir()}
    if photos == "raw":
        chosen = raw
    elif photos in EXPERTS:
        chosen = [experts[photos]] if photos in experts else []
    elif photos == "auto":
        chosen = raw or ([experts["c"]] if "c" in experts else list(experts.values())[:1])
    elif (source / photos).is_dir():
        chosen = [source / photos]
    else:
        raise FiveKError(f"unknown photos {photos!r}; valid: auto, raw, {', '.join(EXPERTS)}, or a folder")
    if not chosen:
        wanted = {"raw": "raw_photos/HQa*/photos/", "auto": "raw_photos/HQa*/photos/ or tiff16_<a-e>/"}.get(
            photos, f"tiff16_{photos}/")
        raise FiveKError(f"no photo folder {wanted} under {source}. {HOW_TO_GET}")
    return chosen


def find_photos(source: str | Path, photos: str = "auto") -> dict[str, Path]:
    found = {}
    for folder in photo_folders(source, photos):
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in PHOTO_SUFFIXES:
                found.setdefault(path.stem, path)
    return found


def read_photo(path: str | Path):
    """An RGB 8-bit PIL image from a DNG (rawpy: camera white balance, sRGB), a TIFF (16-bit scaled to
    8-bit; no colour-space conversion) or a JPEG/PNG."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".dng":
            import rawpy  # noqa: PLC0415 (the study extra)

            with rawpy.imread(str(path)) as raw:
                return Image.fromarray(raw.postprocess(use_camera_wb=True, output_bps=8))
        if suffix in (".tif", ".tiff"):
            array = tifffile.imread(path)
            if array.dtype == np.uint16:
                array = (array.astype(np.float32) / 257.0).round().astype(np.uint8)
            elif array.dtype != np.uint8:
                raise PhotoError(f"{path.name}: unsupported TIFF sample type {array.dtype}")
            if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[-1] not in (3, 4):
                array = np.moveaxis(array, 0, -1)  # planar → interleaved
            image = Image.fromarray(array[..., :3] if array.ndim == 3 else array)
            return image.convert("RGB")
        with Image.open(path) as img:
            return img.convert("RGB")
    except PhotoError:
        raise
    except Exception as err:  # noqa: BLE001 - any decoder failure means "cannot use this file"
        raise PhotoError(f"{path.name}: {type(err).__name__}: {err}") from None


def resized(image, side: int = LARGE_SIDE, aspect: str = "squash"):
    if aspect == "squash":
        size = (side, side)
    elif aspect == "native":
        scale = side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    else:
        raise FiveKError(f"unknown aspect {aspect!r}; valid: squash, native")
    return image.resize(size, Image.LANCZOS, reducing_gap=3.0)


# ------------------------------------------------------------------------------------ preparation

@dataclass(frozen=True)
class PrepareSettings:
    side: int = LARGE_SIDE
    proxy: int = PROXY_SIDE
    aspect: str = "squash"
    photos: str = "auto"
    seed: int = 0


def _outputs(out: Path, photo: str) -> tuple[Path, Path]:
    return out / "large" / f"{photo}.jpg", out / "proxy" / f"{photo}.png"


def prepare_one(photo: str, path: Path, out: Path, settings: PrepareSettings) -> dict:
    """Write one photo's large image and proxy (skipped when both exist); returns its index row or
    ``{"id", "error"}``."""
    large, proxy = _outputs(out, photo)
    try:
        if not (large.exists() and proxy.exists()):
            image = resized(read_photo(path), settings.side, settings.aspect)
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=95, subsampling=0)
            with atomic_path(large) as tmp:
                Path(tmp).write_bytes(buffer.getvalue())
            small = FileSource(large).proxy(settings.proxy)[0]
            array = (small.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
            with atomic_path(proxy) as tmp:
                Image.fromarray(array).save(tmp, "PNG")
        with Image.open(large) as img:
            width, height = img.size
    except PhotoError as err:
        return {"id": photo, "source": str(path), "error": str(err)}
    return {"id": photo, "width": width, "height": height, "source": str(path)}


def stratified_split(subjects: dict[str, str], seed: int = 0,
                     fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> dict[str, str]:
    """{id: train|val|test}: within each subject, a seeded shuffle cut at 80/10/10 (rounded)."""
    rng = np.random.default_rng(seed)
    split = {}
    for subject in SUBJECTS:
        ids = sorted(p for p, s in subjects.items() if s == subject)
        order = [ids[k] for k in rng.permutation(len(ids))]
        n_val, n_test = round(fractions[1] * len(ids)), round(fractions[2] * len(ids))
        n_train = len(ids) - n_val - n_test
        for k, photo in enumerate(order):
            split[photo] = "train" if k < n_train else "val" if k < n_train + n_val else "test"
    return split


def _write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    write_text_atomic(path, csv_text(rows, fields))


def prepare(source: str | Path, out: str | Path | None = None, settings: PrepareSettings = PrepareSettings(),
            workers: int | None = None, progress: bool = True, limit: int | None = None) -> dict:
    """Prepare the FiveK folder ``out`` from the distribution at ``source``; returns fivek.json's content."""
    source = Path(source)
    if not source.is_dir():
        raise FiveKError(f"{source} is not a folder. {HOW_TO_GET}")
    out = Path(out or default_root())
    subjects = read_subjects(source)
    photos = find_photos(source, settings.photos)
    # The sizes are fixed when a folder is first used (settings.json, written before any image), so a
    # resumed run with other sizes cannot mix two kinds of image in one folder.
    sizes = {k: getattr(settings, k) for k in ("side", "proxy", "aspect")}
    recorded = out / "settings.json"
    if recorded.exists():
        old = json.loads(recorded.read_text())
        if old != sizes:
            raise FiveKError(f"{out} was prepared with {old}; use another --out for {sizes}")
    else:
        write_text_atomic(recorded, json.dumps(sizes) + "\n")
    (out / "large").mkdir(parents=True, exist_ok=True)
    (out / "proxy").mkdir(parents=True, exist_ok=True)
    todo = sorted(set(subjects) & set(photos))[:limit]
    skipped = [{"id": p, "source": "", "error": "no photo file"} for p in sorted(set(subjects) - set(photos))]
    rows = []
    workers = workers or min(4, os.cpu_count() or 1)

    bar = tqdm(total=len(todo), desc="FiveK", unit="photo", disable=not progress)
    with ProcessPoolExecutor(workers) if workers > 1 else _Serial() as pool:
        for row in pool.map(prepare_one, todo, [photos[p] for p in todo], [out] * len(todo),
                            [settings] * len(todo), chunksize=1):
            (skipped if "error" in row else rows).append(row)
            bar.update()
    bar.close()
    split = stratified_split({r["id"]: subjects[r["id"]] for r in rows}, settings.seed)
    for r in rows:
        r.update(subject=subjects[r["id"]], label=SUBJECTS.index(subjects[r["id"]]), split=split[r["id"]])
    _write_csv(out / "index.csv", rows, ["id", "subject", "label", "split", "width", "height", "source"])
    _write_csv(out / "skipped.csv", skipped, ["id", "source", "error"])
    counts = {s: {c: sum(1 for r in rows if r["split"] == s and r["subject"] == c) for c in SUBJECTS}
              for s in ("train", "val", "test")}
    card = {"classes": list(SUBJECTS), "settings": dataclasses.asdict(settings), "source": str(source),
            "photos": str(photo_folders(source, settings.photos)[0]),
            "prepared": len(rows), "skipped": len(skipped), "split_fractions": list(SPLIT_FRACTIONS),
            "counts": counts}
    write_text_atomic(out / "fivek.json", json.dumps(card, indent=2) + "\n")
    return card


class _Serial:
    """The executor interface, in this process (workers=1: easier to debug, no pickling)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def map(fn, *iterables, chunksize=1):
        return map(fn, *iterables)


# ------------------------------------------------------------------------------------- training data

def check_prepared(root: str | Path | None = None) -> Path:
    root = Path(root or default_root())
    if not (root / "index.csv").exists() or not (root / "fivek.json").exists():
        raise FiveKError(f"no prepared FiveK at {root} (index.csv and fivek.json are missing). {HOW_TO_GET}")
    return root


class FiveKSet:
    """One split of a prepared FiveK folder: proxies in memory ([N, 3, 32, 32] uint8), large images read
    from their files by ``FileBatchSource`` batch by batch."""

    def __init__(self, split: str, root: str | Path | None = None):
        if split not in ("train", "val", "test"):
            raise ValueError(f"unknown split {split!r}; valid: train, val, test")
        self.root, self.split = check_prepared(root), split
        with open(self.root / "index.csv", newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["split"] == split]
        if not rows:
            raise FiveKError(f"{self.root}/index.csv has no {split} images")
        self.ids = [r["id"] for r in rows]
        self.label = torch.tensor([int(r["label"]) for r in rows])
        self.paths = [_outputs(self.root, p)[0] for p in self.ids]
        proxies = [np.asarray(Image.open(_outputs(self.root, p)[1]).convert("RGB")) for p in self.ids]
        self.proxies = torch.from_numpy(np.stack(proxies)).permute(0, 3, 1, 2).contiguous()

    def __len__(self) -> int:
        return len(self.ids)

    def as_dict(self, start: int = 0, stop: int | None = None, order: list[int] | None = None) -> dict:
        picked = (order or list(range(len(self))))[start:stop]
        proxies = self.proxies[picked].float().div_(255.0)
        return {"image": FileBatchSource([self.paths[k] for k in picked], 3, proxies), "proxy": proxies,
                "label": self.label[picked]}

    def describe(self) -> dict:
        digest = hashlib.sha256("\n".join(f"{p},{int(y)}" for p, y in zip(self.ids, self.label)).encode())
        return {"dataset": "fivek", "split": self.split, "n": len(self), "root": str(self.root),
                "classes": list(SUBJECTS), "sha256": digest.hexdigest()}


class FiveKStream(FolderStream):
    """The training split in a fresh seeded order each epoch, as any folder dataset's (``folder.FolderStream``)."""

    def __init__(self, batch_size: int, seed: int = 0, root: str | Path | None = None, rank: int = 0, world: int = 1):
        super().__init__(FiveKSet("train", root), batch_size, seed, rank, world)

"""Stored Megapixel MNIST splits as 8-bit PNG files with their labels, so that any tool (and ``train
--images``, through the file reader) can read the canvases."""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from ..paths import atomic_path, csv_text, write_text_atomic
from . import megapixel


def export_png(split: str, out_dir: str | Path, label: str = "majority", root: str | Path | None = None,
               limit: int | None = None) -> Path:
    """Write a stored split as 8-bit greyscale PNG files (``00000.png``, …) with ``labels.csv`` (``file,label``
    and every label as its own column), so any tool can read the canvases. Returns the labels file."""
    _export_split(split, Path(out_dir), label, root, limit)
    return Path(out_dir) / "labels.csv"


def export_manifest(out_dir: str | Path, label: str = "majority", root: str | Path | None = None,
                    limit: int | None = None) -> Path:
    """Every split as PNG files under ``out_dir/{train,val,test}/`` (each with its ``labels.csv``) and one
    ``manifest.csv`` (``file,label,split``, the label a class name "0"-"9"): a folder that ``train --images
    DIR --manifest DIR/manifest.csv`` trains on through the file reader, with the stored split. Returns the
    manifest."""
    rows = [{"file": f"{split}/{row['file']}", "label": row["label"], "split": split}
            for split in ("train", "val", "test")
            for row in _export_split(split, Path(out_dir) / split, label, root, limit)]
    write_text_atomic(Path(out_dir) / "manifest.csv", csv_text(rows))
    return Path(out_dir) / "manifest.csv"


def _export_split(split: str, out_dir: Path, label: str, root: str | Path | None, limit: int | None) -> list[dict]:
    """The PNG files and ``labels.csv`` of one split (files already written are kept: a stopped export
    resumes); returns the labels' rows."""
    if label not in megapixel.LABELS:
        raise ValueError(f"unknown Megapixel MNIST label {label!r}; valid: {', '.join(megapixel.LABELS)}")
    data = megapixel.stored_set(split, root)  # through the module: a test stands in for the stored sets
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(len(data) if limit is None else min(limit, len(data))):
        name = f"{i:05d}.png"
        if not (out_dir / name).exists():  # written atomically, so whole or absent
            with atomic_path(out_dir / name) as tmp:
                Image.fromarray(data.images[i:i + 1].dense()[0].numpy(), mode="L").save(tmp, format="PNG")
        rows.append({"file": name, "label": int(data.labels[label][i]), **{k: int(data.labels[k][i]) for k in megapixel.LABELS}})
    write_text_atomic(out_dir / "labels.csv", csv_text(rows))
    return rows

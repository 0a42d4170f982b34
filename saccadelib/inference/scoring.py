"""Scoring a trained model on a folder of image files listed in a ``file,label`` CSV (``score_folder``): the
accuracy, the confusion matrix and one row per image. Not the training loop's ``evaluation.evaluate``,
which scores a model on a data set in memory."""
from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..names import MAX_PIXELS, multilabel
from ..paths import csv_text, read_csv_rows, write_text_atomic
from ..runinfo import run_metadata, write_json
from ..sampler import window_to_box
from ..sources import ImageFileError, open_image
from .loading import channels, class_names, resolve
from .predicting import window_record, windows_text


def read_labels(labels: str | Path, images: str | Path, names: list[str],
                split: str | None = None, label_indices: bool = False) -> list[tuple[Path, int]]:
    """(image path, class index) per row of a ``file,label`` CSV. A label is a class name; it is read as a
    class index only with ``label_indices`` (a name that looks like a number, "10", is never taken for
    the eleventh class unasked). A file listed twice is refused: it would count twice. ``split``: only
    the rows of that split (the CSV must then have a ``split`` column, as a run's ``split.csv`` does)."""
    labels, images = Path(labels), Path(images)
    if not labels.exists():
        raise FileNotFoundError(f"labels file not found: {labels}")
    rows = read_csv_rows(labels, ("file", "label"))
    if not rows:
        raise ValueError(f"{labels} has its header but no rows: list one image per row (file,label)")
    if split is not None:
        if "split" not in rows[0]:
            raise ValueError(f"{labels} has no split column to choose the {split} rows from")
        rows = [r for r in rows if r["split"].strip() == split]
        if not rows:
            raise ValueError(f"{labels} has no rows of split {split!r}")
    index = {name: k for k, name in enumerate(names)}
    if label_indices:
        index = {str(k): k for k in range(len(names))}
    out, seen = [], {}
    for line, row in enumerate(rows, start=2):
        path = images / row["file"]
        if not path.exists():
            raise FileNotFoundError(f"{labels} line {line}: no image {path}")
        if not path.is_file():  # a folder, or a FIFO or device that reading would wait on forever
            raise ValueError(f"{labels} line {line}: {path} is not a regular file: list image files only")
        if path.resolve() in seen:
            raise ValueError(f"{labels} line {line}: {row['file']} is listed again (first on line "
                             f"{seen[path.resolve()]}); each image counts once: remove the repeat")
        seen[path.resolve()] = line
        label = row["label"].strip()
        if label not in index:
            what = (f"index 0..{len(names) - 1}" if label_indices else
                    f"of the model's {len(names)} class names ({', '.join(names[:12])}"
                    f"{'…' if len(names) > 12 else ''}); labels that are class indices need --label-indices")
            raise ValueError(f"{labels} line {line}: label {label!r} is not a class {what}")
        out.append((path, index[label]))
    return out


@torch.no_grad()
def score_folder(model: str | Path | torch.nn.Module, images: str | Path, labels: str | Path,
             out_dir: str | Path | None = None, max_pixels: int = MAX_PIXELS, progress: bool | None = None,
             split: str | None = None, label_indices: bool = False) -> dict:
    """Score a trained model (a checkpoint path, or a model from ``load``) on image files of any size
    (``file,label`` CSV): accuracy, the confusion matrix (rows: true class, columns: predicted) and one row
    per image (its prediction, probability and, for glimpse models, each window as level-0 x,y,w,h in
    image pixels, and in microns where the file gives its resolution), written
    to ``out_dir`` as ``metrics.json``, ``confusion.csv`` and ``predictions.csv``. Files are read as
    training and ``predict`` read them (``FileSource``): a lossless file exactly as a canvas in memory,
    so a model scores a canvas the same from its PNG. ``split``: only that split's rows (e.g. a
    run's ``split.csv`` and "test"). ``label_indices``: the CSV's labels are class indices, not names.
    ``progress``: a tqdm bar (default: on a terminal only). The command
    line's ``evaluate`` calls this."""
    checkpoint = getattr(model, "meta", {}).get("checkpoint") if isinstance(model, torch.nn.Module) else model
    model, meta = resolve(model, glimpses_only=False)
    if multilabel(meta.get("task", "")):
        raise ValueError(f"{checkpoint or 'this model'} was trained on {meta['task']}, whose label is a set of classes; "
                         "a labels CSV gives one class per image: score it on its task's test set (the study), or "
                         "read its classes with predict")
    names = class_names(meta, model.cfg.n_classes)
    rows, skipped, correct, started = [], [], 0, time.perf_counter()
    confusion = torch.zeros(len(names), len(names), dtype=torch.int64)
    listed = read_labels(labels, images, names, split, label_indices)
    for path, label in tqdm(listed, desc="evaluate", unit="image", disable=None if progress is None else not progress):
        try:
            source = open_image(path, channels(model), max_pixels)
            out = model.evaluate_batch({"image": source, "label": torch.tensor([label])})
        except ImageFileError as err:  # a corrupt file is listed and the rest scored, as predict does
            skipped.append({"file": str(path.relative_to(images)), "reason": str(err)})
            continue
        probs = out["logits"].softmax(-1)[0]
        guess = int(probs.argmax())
        correct += guess == label
        confusion[label, guess] += 1
        row = {"file": str(path.relative_to(images)), "label": names[label], "prediction": names[guess],
               "correct": int(guess == label), "probability": round(float(probs[guess]), 4)}
        if "windows" in out:
            boxes = window_to_box(out["windows"][0], source.height, source.width)
            records = [window_record(t, box, source.mpp) for t, box in enumerate(boxes.tolist())]
            row["windows"] = windows_text(records)
            if source.mpp is not None:
                row["windows_microns"] = windows_text(records, microns=True)
        rows.append(row)
    if not rows:
        raise ValueError(f"none of the {len(listed)} images listed in {labels} could be read: "
                         f"the first, {skipped[0]['file']}: {skipped[0]['reason']}")
    metrics = {"accuracy": correct / len(rows), "n": len(rows), "correct": correct, "skipped": len(skipped),
               "checkpoint": str(checkpoint) if checkpoint else None, "model": meta.get("name"), "task": meta.get("task"),
               "images": str(images), "labels": str(labels),
               "seconds_per_image": round((time.perf_counter() - started) / len(rows), 4), "run": run_metadata()}
    table = [{"true \\ predicted": name, **dict(zip(names, counts))} for name, counts in zip(names, confusion.tolist())]
    if out_dir is not None:
        _write_predictions(Path(out_dir), rows, metrics, table, skipped)
    return {**metrics, "predictions": rows, "skipped_files": skipped, "confusion": confusion.tolist(),
            "class_names": names}


def _write_predictions(out_dir: Path, rows: list[dict], metrics: dict, confusion: list[dict],
                       skipped: list[dict]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "skipped.csv", csv_text(skipped, ["file", "reason"]))  # this call's, even when empty
    write_text_atomic(out_dir / "predictions.csv", csv_text(rows))
    write_text_atomic(out_dir / "confusion.csv", csv_text(confusion))
    write_json(out_dir / "metrics.json", metrics)

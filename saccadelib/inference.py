"""Use a trained model on an image: class, probabilities, and where it looked (in image pixels)."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .datasets import twodigit
from .model import VariationalSaccading
from .registry import GLIMPSE_MODELS
from .file_source import MAX_PIXELS, FileSource
from .files import open_image
from .pyramid import PyramidSource
from .sampler import ImageSource, TensorSource, window_to_box
from .checkpoint import CheckpointError, load_checkpoint


def load_model(checkpoint: str | Path, glimpses_only: bool = True) -> tuple[torch.nn.Module, dict]:
    """The model a training checkpoint (``best.pt``, ``last.pt``) holds, in evaluation mode, and its recorded
    meta (name, task, config). ``glimpses_only``: refuse models without glimpses (``predict`` draws them)."""
    from .registry import REGISTRY, build

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


def _resolve(model_or_checkpoint, glimpses_only: bool) -> tuple[torch.nn.Module, dict]:
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
                         "glimpses: score it with evaluate instead")
    return model, meta


def _class_names(meta: dict, n_classes: int) -> list[str]:
    task = meta.get("task")
    if task in twodigit.TASKS:
        return twodigit.class_names(task)
    return meta.get("class_names") or [str(k) for k in range(n_classes)]


def _channels(model) -> int:
    return model.cfg.channels


@torch.no_grad()
def predict(image, model: str | Path | torch.nn.Module | None = None, overlay: str | Path | None = None,
            max_pixels: int = MAX_PIXELS) -> dict:
    """Classify one image with a glimpse model (a checkpoint path, or a model from ``load``): ``image`` is a
    file path (JPEG/PNG/TIFF…), a tensor [C,H,W] or [1,C,H,W] in [0, 1], a numpy array [H,W] or [H,W,C]
    (uint8, or floats in [0, 1]), or an image source.

    Returns {"class", "label", "probabilities", "windows": [{"glimpse", "box": [x0, y0, x1, y1]}],
    "step_predictions", "image_size"}; boxes are in the image's own pixels. ``overlay`` saves the image
    with numbered saccades drawn on it. The command line's ``predict`` calls this.
    """
    if overlay is not None and isinstance(image, (str, Path)) and Path(overlay).exists() and \
            os.path.samefile(overlay, image):  # the same file by any name: a symlink or a hard link too
        raise ValueError(f"the overlay {overlay} is the input image itself: give the overlay another path")
    model, meta = _resolve(model, glimpses_only=True)
    cfg = model.cfg
    source = _as_source(image, cfg.channels, max_pixels)
    out = model(source)
    probs = out.logits.softmax(-1)[0]
    names = _class_names(meta, cfg.n_classes)
    boxes = window_to_box(out.windows[0], source.height, source.width)
    result = {
        "label": int(probs.argmax()),
        "class": names[int(probs.argmax())],
        "probabilities": {names[k]: float(p) for k, p in enumerate(probs)},
        "windows": [{"glimpse": t + 1, "box": [round(float(v), 2) for v in box]} for t, box in enumerate(boxes)],
        "step_predictions": [names[int(k)] for k in out.step_logits[0].argmax(-1)],
        "image_size": [source.width, source.height],
    }
    if isinstance(source, PyramidSource):  # what was read of the file: tiles, their bytes, the file's size
        result["read"] = source.reads()
    if overlay is not None:
        draw_overlay(source, boxes, overlay, title=f"{result['class']} ({probs.max():.0%})")
    return result


@torch.no_grad()
def predict_folder(folder: str | Path, model: str | Path | torch.nn.Module, out_dir: str | Path,
                   overlays: bool = False, max_pixels: int = MAX_PIXELS, progress: bool | None = None) -> list[dict]:
    """``predict`` on every image file under ``folder`` (sorted; PNG, JPEG, TIFF, BMP, WebP, slides;
    symlinked subfolders followed): writes ``predictions.csv`` to ``out_dir`` (file, class, probability
    and each glimpse's box in the image's pixels as x0,y0,x1,y1 separated by ``;``) and, with
    ``overlays``, one overlay per image under ``out_dir/overlays``. A file that cannot be read is listed
    with its error in ``skipped.csv`` and the rest go on; when none can be read, the call fails after
    writing ``skipped.csv``. What an earlier call wrote to ``out_dir`` is cleared first, and the new
    files appear whole at the end (the overlays as one folder), so an interrupted call leaves none that
    look complete. A folder ``predict`` wrote (marked ``OUTPUT_MARK``) is never read as input. Returns
    the rows."""
    import shutil

    from tqdm.auto import tqdm

    from .datasets.folder import IMAGE_SUFFIXES, OUTPUT_MARK, list_images
    from .file_source import ImageFileError
    from .paths import csv_text, write_text_atomic

    folder, out_dir = Path(folder), Path(out_dir)
    model, meta = _resolve(model, glimpses_only=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / OUTPUT_MARK).touch()  # before listing: an out_dir inside the folder is not an input
    for name in ("predictions.csv", "skipped.csv"):
        (out_dir / name).unlink(missing_ok=True)
    staging = out_dir / ".overlays.partial"
    for stale in (out_dir / "overlays", staging):
        shutil.rmtree(stale, ignore_errors=True)
    files, odd = list_images(folder)
    if not files and not odd:
        raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    rows, skipped = [], [{"file": name, "reason": why} for name, why in odd]
    for path in tqdm(files, desc="predict", unit="image", disable=None if progress is None else not progress):
        name = str(path.relative_to(folder))
        overlay = staging / (name.replace("/", "__") + ".png") if overlays else None
        try:
            result = predict(path, model, overlay=overlay, max_pixels=max_pixels)
        except ImageFileError as err:
            skipped.append({"file": name, "reason": str(err)})
            continue
        rows.append({"file": name, "class": result["class"],
                     "probability": round(result["probabilities"][result["class"]], 4),
                     "windows": ";".join(",".join(f"{v:.0f}" for v in w["box"]) for w in result["windows"])})
    write_text_atomic(out_dir / "skipped.csv", csv_text(skipped, ["file", "reason"]))
    if not rows:
        raise ValueError(f"none of the {len(files) + len(odd)} image files under {folder} could be read: "
                         f"{out_dir / 'skipped.csv'} says why")
    if overlays:
        staging.mkdir(exist_ok=True)
        staging.rename(out_dir / "overlays")
    write_text_atomic(out_dir / "predictions.csv", csv_text(rows, ["file", "class", "probability", "windows"]))
    return rows


def _as_source(image, channels: int, max_pixels: int = MAX_PIXELS) -> ImageSource:
    import numpy as np

    if isinstance(image, ImageSource):
        return image
    if isinstance(image, (str, Path)):
        return open_image(image, channels=channels, max_pixels=max_pixels)
    if isinstance(image, np.ndarray):  # [H, W] or [H, W, C], as image libraries hold pixels
        if image.ndim not in (2, 3):
            raise ValueError(f"expected an array [H, W] or [H, W, C], got shape {image.shape}")
        pixels = torch.from_numpy(np.ascontiguousarray(image))
        pixels = pixels.float() / 255 if image.dtype == np.uint8 else pixels.float()
        image = pixels.unsqueeze(0) if image.ndim == 2 else pixels.permute(2, 0, 1)
    if isinstance(image, torch.Tensor):
        tensor = image.unsqueeze(0) if image.dim() == 3 else image
        if tensor.dim() != 4 or tensor.shape[0] != 1 or tensor.shape[1] != channels:
            raise ValueError(f"expected one image [{channels}, H, W], got shape {tuple(image.shape)}")
        return TensorSource(tensor.float())
    raise TypeError(f"cannot read an image from {type(image).__name__}")


def draw_overlay(source: ImageSource, boxes: torch.Tensor, path: str | Path, title: str = "", max_side: int = 1024,
                 min_side: int = 512):
    """Save the image (shrunk to ``max_side``, or a small one enlarged to ``min_side`` with its pixels kept
    sharp) with each glimpse's window drawn and numbered."""
    from PIL import Image, ImageDraw, ImageFont

    longest = max(source.height, source.width)
    scale = max_side / longest if longest > max_side else max(1.0, min_side / longest)
    size = (max(1, round(source.width * scale)), max(1, round(source.height * scale)))
    resample = Image.BILINEAR if scale <= 1 else Image.NEAREST
    if isinstance(source, FileSource):
        picture = source._reduced(size).resize(size, resample).convert("RGB")
    elif isinstance(source, PyramidSource):  # the level that fits the screen, not the whole image
        array = (source.overview(max(size))[:3].clamp(0, 1) * 255).byte().permute(1, 2, 0).numpy()
        picture = Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).convert("RGB").resize(size, resample)
    else:
        # in-memory images are drawn as they are; a lazy upsample through its anti-aliased view
        pixels = source.images if isinstance(source, TensorSource) else source.proxy(max(size))
        array = (pixels[0].clamp(0, 1) * 255).byte().permute(1, 2, 0).numpy()
        picture = Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).convert("RGB").resize(size, resample)
    pen = ImageDraw.Draw(picture)
    colours = ["#ff3b30", "#34c759", "#0a84ff", "#ffcc00", "#af52de", "#ff9500"]
    # Text scaled with the picture (a 2.5% of its side, at least 12 px), each label on a dark plate
    # outside its box's outline, so numbers and title stay readable on any image at any size.
    font = ImageFont.load_default(size=max(12, round(max(size) / 40)))
    line = max(1, round(max(size) / 200))
    for t, box in enumerate(boxes.tolist()):
        x0, y0, x1, y1 = (v * scale for v in box)
        colour = colours[t % len(colours)]
        pen.rectangle([x0, y0, x1, y1], outline=colour, width=line)
        _label(pen, (x0, y0 - line), str(t + 1), colour, font, size, above=True)
    if title:
        _label(pen, (0, size[1]), title, "#ffffff", font, size, above=True)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)


def _label(pen, anchor: tuple[float, float], text: str, colour: str, font, size: tuple[int, int], above: bool):
    """``text`` on a dark plate whose bottom-left corner is ``anchor`` (moved inside the picture)."""
    left, top, right, bottom = pen.textbbox((0, 0), text, font=font)
    w, h, pad = right - left, bottom - top, 2
    x = min(max(0.0, anchor[0]), size[0] - w - 2 * pad)
    y = min(max(0.0, anchor[1] - h - 2 * pad if above else anchor[1]), size[1] - h - 2 * pad)
    pen.rectangle([x, y, x + w + 2 * pad, y + h + 2 * pad], fill="#000000")
    pen.text((x + pad - left, y + pad - top), text, fill=colour, font=font)


# ---------------------------------------------------------------------------------- a folder of images

def read_labels(labels: str | Path, images: str | Path, class_names: list[str],
                split: str | None = None, label_indices: bool = False) -> list[tuple[Path, int]]:
    """(image path, class index) per row of a ``file,label`` CSV. A label is a class name; it is read as a
    class index only with ``label_indices`` (a name that looks like a number, "10", is never taken for
    the eleventh class unasked). A file listed twice is refused: it would count twice. ``split``: only
    the rows of that split (the CSV must then have a ``split`` column, as a run's ``split.csv`` does)."""
    from .paths import read_csv_rows

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
    index = {name: k for k, name in enumerate(class_names)}
    if label_indices:
        index = {str(k): k for k in range(len(class_names))}
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
            what = (f"index 0..{len(class_names) - 1}" if label_indices else
                    f"of the model's {len(class_names)} class names ({', '.join(class_names[:12])}"
                    f"{'…' if len(class_names) > 12 else ''}); labels that are class indices need --label-indices")
            raise ValueError(f"{labels} line {line}: label {label!r} is not a class {what}")
        out.append((path, index[label]))
    return out


@torch.no_grad()
def evaluate(model: str | Path | torch.nn.Module, images: str | Path, labels: str | Path,
             out_dir: str | Path | None = None, max_pixels: int = MAX_PIXELS, progress: bool | None = None,
             split: str | None = None, label_indices: bool = False) -> dict:
    """Score a trained model (a checkpoint path, or a model from ``load``) on image files of any size
    (``file,label`` CSV): accuracy, the confusion matrix (rows: true class, columns: predicted) and one row
    per image (its prediction, probability and, for glimpse models, the windows in image pixels), written
    to ``out_dir`` as ``metrics.json``, ``confusion.csv`` and ``predictions.csv``. Files are read as
    training and ``predict`` read them (``FileSource``): a lossless file exactly as a canvas in memory,
    so a model scores a canvas the same from its PNG. ``split``: only that split's rows (e.g. a
    run's ``split.csv`` and "test"). ``label_indices``: the CSV's labels are class indices, not names.
    ``progress``: a tqdm bar (default: on a terminal only). The command
    line's ``evaluate`` calls this."""
    import time

    from tqdm.auto import tqdm

    from .runinfo import run_metadata

    checkpoint = getattr(model, "meta", {}).get("checkpoint") if isinstance(model, torch.nn.Module) else model
    model, meta = _resolve(model, glimpses_only=False)
    names = _class_names(meta, model.cfg.n_classes)
    from .file_source import ImageFileError

    rows, skipped, correct, started = [], [], 0, time.perf_counter()
    confusion = torch.zeros(len(names), len(names), dtype=torch.int64)
    listed = read_labels(labels, images, names, split, label_indices)
    for path, label in tqdm(listed, desc="evaluate", unit="image", disable=None if progress is None else not progress):
        try:
            source = open_image(path, _channels(model), max_pixels)
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
            row["windows"] = ";".join(",".join(f"{v:.0f}" for v in box) for box in boxes.tolist())
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
    from .paths import csv_text, write_text_atomic
    from .runinfo import write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "skipped.csv", csv_text(skipped, ["file", "reason"]))  # this call's, even when empty
    write_text_atomic(out_dir / "predictions.csv", csv_text(rows))
    write_text_atomic(out_dir / "confusion.csv", csv_text(confusion))
    write_json(out_dir / "metrics.json", metrics)

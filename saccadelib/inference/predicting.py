"""Using a trained glimpse model on images: one image (``predict``: its class, probabilities and where it
looked), or every image under a folder (``predict_folder``)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..datasets.folder import IMAGE_SUFFIXES, OUTPUT_MARK, list_images
from ..names import MAX_PIXELS, multilabel
from ..paths import csv_text, write_text_atomic
from ..sampler import window_to_box
from ..sources import ImageFileError, ImageSource, TensorSource, open_image
from .loading import class_names, resolve
from .overlays import draw_overlay


@torch.no_grad()
def predict(image, model: str | Path | torch.nn.Module | None = None, overlay: str | Path | None = None,
            max_pixels: int = MAX_PIXELS) -> dict:
    """Classify one image with a glimpse model (a checkpoint path, or a model from ``load``): ``image`` is a
    file path (JPEG/PNG/TIFF…), a tensor [C,H,W] or [1,C,H,W] in [0, 1], a numpy array [H,W] or [H,W,C]
    (uint8, or floats in [0, 1]), or an image source.

    Returns {"class", "label", "probabilities", "windows", "step_predictions", "image_size"}; for a model
    trained on a set of classes per image (``megapixel_multi``), "classes" (those more probable than not,
    each scored apart) and "class" them joined by "+" ("none" for none), "label" their indices. Each window
    as a slide user reads a region (``window_record``: level-0 ``x, y, w, h`` in the image's own pixels,
    in microns where the file gives its resolution, and its ``box`` [x0, y0, x1, y1]). ``overlay`` saves
    the image with numbered saccades drawn on it. The command line's ``predict`` calls this.
    """
    if overlay is not None and isinstance(image, (str, Path)) and Path(overlay).exists() and \
            os.path.samefile(overlay, image):  # the same file by any name: a symlink or a hard link too
        raise ValueError(f"the overlay {overlay} is the input image itself: give the overlay another path")
    model, meta = resolve(model, glimpses_only=True)
    cfg = model.cfg
    source = as_source(image, cfg.channels, max_pixels)
    out = model(source)
    names = class_names(meta, cfg.n_classes)
    boxes = window_to_box(out.windows[0], source.height, source.width)
    result = {**_classes(out.logits[0], out.step_logits[0], names, multilabel(meta.get("task", ""))),
              "windows": [window_record(t, box, source.mpp) for t, box in enumerate(boxes.tolist())],
              "image_size": [source.width, source.height]}
    read = source.reads()  # what was read of the file: tiles, their bytes, the file's size
    if read is not None:
        result["read"] = read
    if overlay is not None:
        draw_overlay(source, boxes, overlay, title=f"{result['class']} ({max(result['probabilities'].values()):.0%})")
    return result


def _classes(logits: torch.Tensor, step_logits: torch.Tensor, names: list[str], several: bool) -> dict:
    """What ``predict`` says of one image's logits [C] (and each step's [T, C]): its class, or its set of classes."""
    if not several:
        probs = logits.softmax(-1)
        return {"label": int(probs.argmax()), "class": names[int(probs.argmax())],
                "probabilities": {names[k]: float(p) for k, p in enumerate(probs)},
                "step_predictions": [names[int(k)] for k in step_logits.argmax(-1)]}
    probs = logits.sigmoid()
    present = [k for k, p in enumerate(probs) if p > 0.5]
    return {"label": present, "classes": [names[k] for k in present],
            "class": "+".join(names[k] for k in present) or "none",
            "probabilities": {names[k]: float(p) for k, p in enumerate(probs)},
            "step_predictions": ["+".join(names[k] for k, logit in enumerate(step) if logit > 0) or "none"
                                 for step in step_logits]}


def window_record(t: int, box: list[float], mpp: tuple[float, float] | None) -> dict:
    """Glimpse ``t``'s window as a slide user reads a region: its level-0 ``x, y`` (top-left) and ``w, h`` in
    pixels, in microns too where the file gives its resolution, and the ``box`` [x0, y0, x1, y1]."""
    x0, y0, x1, y1 = box
    record = {"glimpse": t + 1, "x": round(x0, 2), "y": round(y0, 2), "w": round(x1 - x0, 2), "h": round(y1 - y0, 2),
              "box": [round(v, 2) for v in box]}
    if mpp is not None:
        record["microns"] = {"x": round(x0 * mpp[0], 2), "y": round(y0 * mpp[1], 2),
                             "w": round((x1 - x0) * mpp[0], 2), "h": round((y1 - y0) * mpp[1], 2)}
    return record


def windows_text(windows: list[dict], microns: bool = False) -> str:
    """A CSV cell: each window's ``x,y,w,h`` (level-0 pixels, or microns; empty where not known), ``;`` apart."""
    if microns:
        if not all("microns" in w for w in windows):
            return ""
        return ";".join(",".join(f"{w['microns'][k]:.1f}" for k in "xywh") for w in windows)
    return ";".join(",".join(f"{w[k]:.0f}" for k in "xywh") for w in windows)


@torch.no_grad()
def predict_folder(folder: str | Path, model: str | Path | torch.nn.Module, out_dir: str | Path,
                   overlays: bool = False, max_pixels: int = MAX_PIXELS, progress: bool | None = None) -> list[dict]:
    """``predict`` on every image file under ``folder`` (sorted; PNG, JPEG, TIFF, BMP, WebP, slides;
    symlinked subfolders followed): writes ``predictions.csv`` to ``out_dir`` (file, class, probability
    and each glimpse's window as level-0 x,y,w,h in the image's pixels, ``;`` apart, and in microns where
    the files give their resolution) and, with
    ``overlays``, one overlay per image under ``out_dir/overlays``. A file that cannot be read is listed
    with its error in ``skipped.csv`` and the rest go on; when none can be read, the call fails after
    writing ``skipped.csv``. What an earlier call wrote to ``out_dir`` is cleared first, and the new
    files appear whole at the end (the overlays as one folder), so an interrupted call leaves none that
    look complete. A folder ``predict`` wrote (marked ``OUTPUT_MARK``) is never read as input. Returns
    the rows."""
    folder, out_dir = Path(folder), Path(out_dir)
    model, meta = resolve(model, glimpses_only=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    # an earlier call's overlays go: in a folder predict marked, or where they are PNG files alone (a folder of
    # the user's own that happens to be called overlays stays)
    earlier = out_dir / "overlays"
    ours = (out_dir / OUTPUT_MARK).exists() or (earlier.is_dir() and all(p.suffix == ".png" for p in earlier.iterdir()))
    if earlier.exists() and not ours:  # refused before anything is written or cleared
        raise ValueError(f"{earlier} holds files predict did not write: give --out another folder")
    (out_dir / OUTPUT_MARK).touch()  # before listing: an out_dir inside the folder is not an input
    for name in ("predictions.csv", "skipped.csv"):
        (out_dir / name).unlink(missing_ok=True)
    staging = out_dir / ".overlays.partial"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(earlier, ignore_errors=True)
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
                     "windows": windows_text(result["windows"]),
                     "windows_microns": windows_text(result["windows"], microns=True)})
    write_text_atomic(out_dir / "skipped.csv", csv_text(skipped, ["file", "reason"]))
    if not rows:
        raise ValueError(f"none of the {len(files) + len(odd)} image files under {folder} could be read: "
                         f"{out_dir / 'skipped.csv'} says why")
    if overlays:
        staging.mkdir(exist_ok=True)
        staging.rename(out_dir / "overlays")
    columns = ["file", "class", "probability", "windows"] + (["windows_microns"] if any(r["windows_microns"] for r in rows)
                                                             else [])
    write_text_atomic(out_dir / "predictions.csv", csv_text(rows, columns))
    return rows


def as_source(image, channels: int, max_pixels: int = MAX_PIXELS) -> ImageSource:
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



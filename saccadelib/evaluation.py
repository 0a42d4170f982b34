"""Scoring a model on a fixed set (exact match, per-glimpse accuracy, where its glimpses landed), and where
and in what precision a model runs: what training, the study and the benchmarks share."""
from __future__ import annotations

import torch

from .draws import canvas_keys
from .loss import class_nll, predicted_right
from .sources import ImageSource
from .window_stats import reading, window_statistics


def resolve_device(name: str) -> torch.device:
    """``auto`` → the GPU if there is one, else the CPU; a GPU asked for by name must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but this torch sees no GPU; use device=cpu or auto")
    return device


def to_device(batch: dict, device: torch.device) -> dict:
    """Tensors and image sources of a batch on ``device``."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, (torch.Tensor, ImageSource)) else v
            for k, v in batch.items()}


def autocast(device: torch.device, precision: str):
    """bf16 autocast when asked for (a GPU, or a CPU with bf16 units: measure before choosing it there)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@torch.no_grad()
def evaluate(model, dataset, batch_size: int = 500, limit: int | None = None,
             device: torch.device | str | None = None, precision: str = "fp32", seed: int = 0,
             per_canvas: bool = False, window_stats: bool = False) -> dict:
    """Exact-match accuracy; with glimpses also per-step accuracy and, on datasets that know where their
    objects are (``glimpse_hits``), the per-step hit rate and the share of images where every object was
    hit by some glimpse, with the accuracy on those images and on the rest. Runs where the model's
    parameters are unless ``device`` says otherwise. ``seed``: the run's, which with the split and each
    canvas's index keys the canvas's own evaluation draws.
    ``per_canvas``: also ``correct``, a [n] bool tensor, whether each canvas was read right.
    ``window_stats``: also ``windows``, what the glimpses' windows looked like (``window_stats``), on sets
    that know their objects' boxes (``object_boxes``)."""
    model.eval()
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    correct, total = 0, 0
    step_correct = hits = covered = None
    right_when_held = 0  # canvases read right where every object was held
    loss_sum = 0.0
    right, seen_windows, seen_boxes, seen_decoys, box_side = [], [], [], [], None
    n = len(dataset) if limit is None else min(limit, len(dataset))
    split = getattr(dataset, "split", None)  # every fixed set names its split; describe() may hash the whole set
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        # each canvas's own random draws (random windows, drawn cells, a noisy proxy): see saccadelib.draws
        batch = to_device({**dataset.as_dict(start, stop), "draw_keys": canvas_keys(seed, split, start, stop)}, device)
        with autocast(device, precision):
            out = model.evaluate_batch(batch)
        label = batch["label"]
        loss_sum += class_nll(out["logits"].float(), label, reduction="sum").item()
        hit = predicted_right(out["logits"], label)
        correct += hit.sum().item()
        if per_canvas:
            right.append(hit.cpu())
        total += len(label)
        if "step_logits" in out:
            sc = predicted_right(out["step_logits"], label).sum(0)
            step_correct = sc if step_correct is None else step_correct + sc
        if "windows" in out and hasattr(dataset, "glimpse_hits"):
            hm = dataset.glimpse_hits(out["windows"], batch)
            h = hm.any(-1).sum(0)
            held = hm.any(1).all(-1)
            c = held.sum()
            right_when_held += (hit & held.to(hit.device)).sum().item()
            hits, covered = (h, c) if hits is None else (hits + h, covered + c)
        if window_stats and "windows" in out and hasattr(dataset, "object_boxes"):
            boxes, box_side = dataset.object_boxes(batch)
            seen_windows.append(out["windows"].float().cpu())
            seen_boxes.append(boxes.cpu())
            decoys = dataset.decoys(batch) if hasattr(dataset, "decoys") else None
            if decoys is not None:
                seen_decoys.append(decoys.cpu())
    metrics = {"n": total, "accuracy": correct / total, "nll": loss_sum / total}
    if per_canvas:
        metrics["correct"] = torch.cat(right)
    if step_correct is not None:
        metrics["step_accuracy"] = (step_correct.double() / total).tolist()
    if hits is not None:
        metrics["hit_rate"] = (hits.double() / total).tolist()
        metrics["both_digits_hit"] = covered.item() / total  # every object held by some glimpse (all five on Megapixel)
        # what finding and reading each cost: the accuracy where every object was held, and where one was not
        held = covered.item()
        metrics["accuracy_every_object_held"] = right_when_held / held if held else None
        metrics["accuracy_some_object_missed"] = (correct - right_when_held) / (total - held) if total > held else None
    if seen_windows:
        metrics["windows"] = window_statistics(torch.cat(seen_windows), torch.cat(seen_boxes), box_side, *reading(model),
                                               decoys=torch.cat(seen_decoys) if seen_decoys else None)
    return metrics

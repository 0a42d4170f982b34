"""One training loop for the model and every baseline.

A model plugs in with two methods: ``training_loss(batch) -> (loss, {name: float})`` and
``evaluate_batch(batch) -> {"logits": [N, K], optional "step_logits": [N, T, K], "windows": [N, T, 3]}``.

Each epoch ends with an evaluation on the validation set (model selection) and an atomic checkpoint
(``last.pt``: weights, optimizer, epoch, RNG state, history, elapsed time); ``best.pt`` holds the best
validation weights. A killed run restarted with the same arguments continues exactly where the last
checkpoint left it: the training canvases are a pure function of (seed, epoch) and the RNG state is
restored, so the weights equal those of an uninterrupted run. The test set is scored once, at the end,
with the best-on-validation weights.
"""
from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from . import data as twodigit
from .paths import atomic_path, write_text_atomic
from .runinfo import run_metadata, write_json
from .sampler import box_contains, window_to_box


@dataclass(frozen=True)
class TrainConfig:
    task: str = "identification"
    canvas: int = 100
    epochs: int = 30
    train_size: int = 20_000  # fresh canvases per epoch
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: str = "constant"  # "constant" or "cosine" (from lr down to lr/100 over `epochs`)
    weight_decay: float = 0.0
    clip_norm: float | None = 10.0
    clip_value: float | None = None  # the original clipped gradients by value at 0.25
    seed: int = 0
    threads: int | None = None  # torch threads (None: leave as is)
    workers: int = 0  # DataLoader workers generating canvases
    val_size: int = 10_000  # first val_size canvases of the fixed validation set
    eval_batch_size: int = 500
    time_budget_s: float | None = None  # do not start an epoch that would end past this training time
    progress: str = "log"  # "bar" (tqdm), "log" (a line per epoch), "none"
    test: bool = True  # score the best-on-validation weights on the test set at the end
    test_size: int | None = None  # first test_size canvases of the fixed test set (None: all 10,000)
    device: str = "cpu"  # "cpu", "cuda", "cuda:N", or "auto" (the GPU when there is one)
    precision: str = "fp32"  # "fp32", or "bf16" (autocast on a GPU: matmuls and convs in bfloat16)
    data_root: str | None = None  # task "fivek": the prepared folder (default data/fivek)

    def __post_init__(self):
        if self.task != "fivek":
            twodigit.task_spec(self.task)
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"unknown precision {self.precision!r}; valid: fp32, bf16")
        if not (self.device in ("cpu", "auto") or self.device.startswith("cuda")):
            raise ValueError(f"unknown device {self.device!r}; valid: cpu, cuda, cuda:N, auto")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"unknown lr schedule {self.lr_schedule!r}; valid: constant, cosine")
        if self.progress not in ("bar", "log", "none"):
            raise ValueError(f"unknown progress mode {self.progress!r}; valid: bar, log, none")


# -------------------------------------------------------------------------------------- evaluation

def hit_matrix(windows: torch.Tensor, boxes: torch.Tensor, canvas: int) -> torch.Tensor:
    """[N, T, 2] bool: glimpse t's window contains digit d's box centre (canvas pixel coordinates)."""
    win_box = window_to_box(windows, canvas, canvas)  # [N, T, 4]
    centres = (boxes[..., :2] + boxes[..., 2:]) / 2  # [N, 2, 2]
    return box_contains(win_box.unsqueeze(2), centres.unsqueeze(1))


def resolve_device(name: str) -> torch.device:
    """``auto`` → the GPU if there is one, else the CPU; a GPU asked for by name must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but this torch sees no GPU; use device=cpu or auto")
    return device


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def autocast(device: torch.device, precision: str):
    """bf16 autocast on a GPU; full precision otherwise (CPU runs stay in float32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16" and device.type == "cuda")


@torch.no_grad()
def evaluate(model, dataset: "twodigit.TwoDigitSet", batch_size: int = 500, limit: int | None = None,
             device: torch.device | str | None = None, precision: str = "fp32") -> dict:
    """Exact-match accuracy; with glimpses also per-step accuracy, per-step hit rate, and the share of
    images where every digit was hit by some glimpse. Runs where the model's parameters are unless
    ``device`` says otherwise."""
    model.eval()
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    correct, total = 0, 0
    step_correct = hits = covered = None
    loss_sum = 0.0
    n = len(dataset) if limit is None else min(limit, len(dataset))
    for start in range(0, n, batch_size):
        batch = to_device(dataset.as_dict(start, min(start + batch_size, n)), device)
        with autocast(device, precision):
            out = model.evaluate_batch(batch)
        label = batch["label"]
        loss_sum += torch.nn.functional.cross_entropy(out["logits"].float(), label, reduction="sum").item()
        correct += (out["logits"].argmax(-1) == label).sum().item()
        total += len(label)
        if "step_logits" in out:
            sc = (out["step_logits"].argmax(-1) == label.unsqueeze(1)).sum(0)
            step_correct = sc if step_correct is None else step_correct + sc
        if "windows" in out and "boxes" in batch:  # digit boxes: two-digit tasks only
            hm = hit_matrix(out["windows"], batch["boxes"], dataset.canvas)
            h = hm.any(-1).sum(0)
            c = hm.any(1).all(-1).sum()
            hits, covered = (h, c) if hits is None else (hits + h, covered + c)
    metrics = {"n": total, "accuracy": correct / total, "nll": loss_sum / total}
    if step_correct is not None:
        metrics["step_accuracy"] = (step_correct.double() / total).tolist()
    if hits is not None:
        metrics["hit_rate"] = (hits.double() / total).tolist()
        metrics["both_digits_hit"] = covered.item() / total
    return metrics


# -------------------------------------------------------------------------------------------- loop

def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def training_data(cfg: TrainConfig):
    """The task's training batches: fresh two-digit canvases (train_size per epoch), or FiveK's training
    split in a new seeded order each epoch (all of it; train_size is ignored)."""
    if cfg.task == "fivek":
        from . import fivek

        return fivek.FiveKStream(cfg.batch_size, cfg.seed, cfg.data_root)
    return twodigit.TwoDigitStream(cfg.task, cfg.train_size, cfg.batch_size, cfg.seed, cfg.canvas)


def evaluation_set(cfg: TrainConfig, split: str):
    if cfg.task == "fivek":
        from . import fivek

        return fivek.FiveKSet(split, cfg.data_root)
    return twodigit.eval_set(cfg.task, split, cfg.canvas)


def describe(dataset) -> dict:
    return dataset.describe() if hasattr(dataset, "describe") else twodigit.describe(dataset)


def _save_checkpoint(path: Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _write_history(out_dir: Path, history: list[dict]) -> None:
    flat = [{k: (json.dumps(v) if isinstance(v, list) else v) for k, v in row.items()} for row in history]
    buffer = io.StringIO()
    columns = list(dict.fromkeys(k for row in flat for k in row))  # a resumed older run may lack a column
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(flat)
    write_text_atomic(out_dir / "history.csv", buffer.getvalue())


def learning_rate(cfg: TrainConfig, epoch: int) -> float:
    """The epoch's learning rate: a function of the epoch alone, so a resumed run follows it exactly."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    floor = 0.01
    return cfg.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * epoch / cfg.epochs)))


def _clip(model, cfg: TrainConfig) -> None:
    if cfg.clip_value is not None:
        torch.nn.utils.clip_grad_value_(model.parameters(), cfg.clip_value)
    if cfg.clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)


def _log(cfg: TrainConfig, message: str) -> None:
    if cfg.progress != "none":
        print(message, flush=True)


def fit(model, cfg: TrainConfig, out_dir: str | Path, model_meta: dict | None = None, resume: bool = True) -> dict:
    """Train ``model`` on ``cfg.task``; returns the summary also written to ``out_dir/metrics.json``.

    ``model_meta`` (e.g. {"name": ..., "config": ...}) is stored in the checkpoints so a checkpoint can
    rebuild its model, and a resume with a different model is refused.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
    model.to(device)
    model_meta = model_meta or {}
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: list[dict] = []
    start_epoch, elapsed, best = 0, 0.0, {"accuracy": -1.0, "epoch": -1}
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"

    if resume and last_path.exists():
        ckpt = load_checkpoint(last_path)
        if not _same_model(ckpt["model_meta"], model_meta, model) or ckpt["train_config"] != _resumable(cfg):
            raise ValueError(f"{last_path} was written by another model or training config; "
                             "use another output folder or resume=False")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["rng"])
        if device.type == "cuda" and ckpt.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ckpt["cuda_rng"], device)
        start_epoch, elapsed, best, history = ckpt["epoch"], ckpt["elapsed_s"], ckpt["best"], ckpt["history"]
        _log(cfg, f"resuming {out_dir} at epoch {start_epoch} ({elapsed:.0f} s trained)")
    else:
        seed_everything(cfg.seed)

    stream, val = training_data(cfg), evaluation_set(cfg, "val")
    loader = stream if cfg.task == "fivek" else \
        DataLoader(stream, batch_size=None, num_workers=cfg.workers, pin_memory=device.type == "cuda")
    write_json(out_dir / "config.json", {"train": asdict(cfg), "model": model_meta,
                                         "datasets": {"val": describe(val)}, "run": run_metadata(device)})

    for epoch in range(start_epoch, cfg.epochs):
        per_epoch = elapsed / epoch if epoch else 0.0
        if cfg.time_budget_s is not None and epoch > 0 and elapsed + per_epoch > cfg.time_budget_s:
            _log(cfg, f"time budget {cfg.time_budget_s:.0f} s reached after {epoch} epochs")
            break
        stream.set_epoch(epoch)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, epoch)
        model.train()
        tick = time.perf_counter()
        sums: dict[str, float] = {}
        seen = 0
        batches = loader
        if cfg.progress == "bar":
            from tqdm.auto import tqdm
            batches = tqdm(loader, total=len(stream), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False)
        for batch in batches:
            batch = to_device(batch, device)
            with autocast(device, cfg.precision):
                loss, parts = model.training_loss(batch)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            _clip(model, cfg)
            optimizer.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v * len(batch["label"])
            seen += len(batch["label"])
        train_s = time.perf_counter() - tick
        elapsed += train_s
        tick = time.perf_counter()
        val_metrics = evaluate(model, val, cfg.eval_batch_size, cfg.val_size, device, cfg.precision)
        val_s = time.perf_counter() - tick  # part of a run's cost: the cpu profile's budgets include it
        row = {"epoch": epoch + 1, "lr": learning_rate(cfg, epoch), "train_s": round(train_s, 2),
               "elapsed_s": round(elapsed, 2), "val_s": round(val_s, 2),
               **{f"train_{k}": v / max(seen, 1) for k, v in sums.items()},
               **{f"val_{k}": v for k, v in val_metrics.items() if k != "n"}}
        history.append(row)
        if val_metrics["accuracy"] > best["accuracy"]:
            best = {"accuracy": val_metrics["accuracy"], "epoch": epoch + 1}
            _save_checkpoint(best_path, {"model": model.state_dict(), "model_meta": model_meta, "epoch": epoch + 1})
        _save_checkpoint(last_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                     "rng": torch.get_rng_state(), "epoch": epoch + 1, "elapsed_s": elapsed,
                                     "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                                     "best": best, "history": history, "model_meta": model_meta,
                                     "train_config": _resumable(cfg)})
        _write_history(out_dir, history)
        extra = ""
        if "hit_rate" in val_metrics:
            extra = " hits " + "/".join(f"{h:.2f}" for h in val_metrics["hit_rate"])
        _log(cfg, f"epoch {epoch + 1:3d}  {train_s:6.1f}s  loss {row.get('train_loss', float('nan')):.3f}  "
                  f"val acc {val_metrics['accuracy']:.4f}{extra}")

    summary = {"best_epoch": best["epoch"], "best_val_accuracy": best["accuracy"], "epochs_run": len(history),
               "train_s": round(elapsed, 1), "val_s": round(sum(row.get("val_s", 0.0) for row in history), 1)}
    if cfg.test and best_path.exists():
        model.load_state_dict(load_checkpoint(best_path)["model"])
        test = evaluation_set(cfg, "test")
        summary["test"] = evaluate(model, test, cfg.eval_batch_size, cfg.test_size, device, cfg.precision)
        summary["test_dataset"] = describe(test)
    summary["run"] = run_metadata(device)
    write_json(out_dir / "metrics.json", summary)
    return summary


def _same_model(saved: dict, meta: dict, model) -> bool:
    """Whether a checkpoint's model_meta describes this model; a config field added since the checkpoint
    was written reads as its LEGACY value (what the code did before the field existed)."""
    if saved == meta:
        return True
    config_type = type(getattr(model, "cfg", None))
    if not hasattr(config_type, "from_dict") or {k: v for k, v in saved.items() if k != "config"} != \
            {k: v for k, v in meta.items() if k != "config"}:
        return False
    try:
        return json.loads(json.dumps(config_type.from_dict(saved.get("config", {})).to_dict())) == meta.get("config")
    except (TypeError, ValueError):
        return False


def _resumable(cfg: TrainConfig) -> dict:
    """The config fields that must match to resume (epochs, budget and display may change)."""
    values = asdict(cfg)
    if cfg.lr_schedule == "constant":
        values.pop("epochs")  # more epochs may be added to a constant-rate run; a schedule depends on them
    if cfg.precision == "fp32":
        values.pop("precision")  # the default: runs saved before the setting existed still resume
    if cfg.data_root is None:
        values.pop("data_root")  # likewise
    for key in ("time_budget_s", "progress", "threads", "workers", "test", "eval_batch_size", "test_size", "device"):
        values.pop(key)
    return values

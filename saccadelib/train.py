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

import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, IterableDataset
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, save_checkpoint
from .distributed import Processes, TrainingLoss, all_sum, broadcast_flag, finish, start_processes
from .evaluation import autocast, evaluate, resolve_device, to_device
from .paths import RunLock, write_text_atomic
from .registry import build
from .runinfo import run_metadata, write_history, write_json
from .schedule import learning_rate, parameter_groups, part_lr_scale, plateaus
from .settings import model_identity, resolve, resumable_settings
from .tasks import get_task
from .train_config import TrainConfig

# TrainConfig.optimizer → its class: Adam adds weight decay to the gradient, AdamW decouples it
OPTIMIZER_CLASSES = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def prepare_model(model, cfg: TrainConfig, device: torch.device):
    """The model on ``device`` in the configured memory layout, compiled if asked (in place: the model's
    own methods, e.g. ``training_loss``, then call the compiled forward)."""
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.compile:
        model.compile(dynamic=False)  # a few fixed batch shapes; dynamic shapes fail in the sampler's backward
    return model


def seed_everything(seed: int) -> None:

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _clip(model, cfg: TrainConfig) -> None:
    if cfg.clip_value is not None:
        torch.nn.utils.clip_grad_value_(model.parameters(), cfg.clip_value)
    if cfg.clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)


def _log(cfg: TrainConfig, message: str) -> None:
    if cfg.progress != "none":
        print(message, flush=True)


@dataclass
class RunState:
    """Where a run stands after its last finished epoch: what ``last.pt`` saves and a resume restores."""
    epoch: int = 0
    elapsed_s: float = 0.0  # training seconds so far (validation apart)
    best: dict = field(default_factory=lambda: {"accuracy": -1.0, "epoch": -1})
    history: list[dict] = field(default_factory=list)


def fit(model, cfg: TrainConfig, out_dir: str | Path, model_meta: dict | None = None, resume: bool = True) -> dict:
    """Train ``model`` on ``cfg.task``; returns the summary also written to ``out_dir/metrics.json``.

    ``model_meta`` (e.g. {"name": ..., "config": ...}) is stored in the checkpoints so a checkpoint can
    rebuild its model, and a resume with a different model is refused. The folder is locked while the run
    trains into it (``paths.RunLock``): a second process is refused.
    """
    if not Processes.from_env().main:  # under torchrun rank 0 alone writes, and holds the lock
        return _fit(model, cfg, Path(out_dir), model_meta or {}, resume)
    with RunLock(out_dir):
        return _fit(model, cfg, Path(out_dir), model_meta or {}, resume)


def _fit(model, cfg: TrainConfig, out_dir: Path, model_meta: dict, resume: bool) -> dict:
    procs = Processes.from_env()
    say = cfg if procs.main else TrainConfig(task=cfg.task, progress="none")  # rank 0 alone logs
    device, own_group = _start(cfg, procs, out_dir)
    prepare_model(model, cfg, device)
    optimizer = OPTIMIZER_CLASSES[cfg.optimizer](parameter_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    resumable = resumable_settings(cfg) if procs.world == 1 else {**resumable_settings(cfg), "processes": procs.world}
    state = RunState()
    if resume and (out_dir / "last.pt").exists():
        state = _resume(out_dir / "last.pt", model, optimizer, model_meta, resumable, device)
        _log(say, f"resuming {out_dir} at epoch {state.epoch} ({state.elapsed_s:.0f} s trained)")
    else:
        seed_everything(cfg.seed)
    task, stream, loader = _training_data(cfg, model, procs, device, out_dir, say)
    val = task.evaluation_set("val")
    step = _training_step(model, procs, device)
    if procs.main:
        for name, text in getattr(task, "records", dict)().items():  # e.g. a folder task's split
            write_text_atomic(out_dir / name, text)
        write_json(out_dir / "config.json", {"train": asdict(cfg), "model": model_meta, "processes": procs.world,
                                             "datasets": {"val": val.describe()}, "run": run_metadata(device)})

    stopped = {"reason": "epochs", "after_epoch": cfg.epochs}
    for epoch in range(state.epoch, cfg.epochs):
        reason = _stop_reason(cfg, state, epoch, procs, device)
        if reason:
            stopped = {"reason": reason, "after_epoch": epoch}
            _log(say, _stop_message(cfg, reason, epoch))
            break
        _reseed_rank(cfg, procs, epoch)
        stream.set_epoch(epoch)
        getattr(model, "start_epoch", lambda epoch: None)(epoch)  # a model whose settings move with training
        rate = learning_rate(cfg, epoch, state.history)
        for group in optimizer.param_groups:
            group["lr"] = rate * part_lr_scale(cfg, group, epoch)
        means, train_s = _train_epoch(model, step, optimizer, loader, len(stream), cfg, epoch, procs, device, say)
        state.elapsed_s += train_s
        if not procs.main:
            continue  # rank 0 evaluates and writes; the others go on to the next epoch's first step
        tick = time.perf_counter()
        val_metrics = evaluate(model, val, cfg.eval_batch_size, cfg.val_size, device, cfg.precision, cfg.seed)
        val_s = time.perf_counter() - tick  # part of a run's cost: the cpu profile's budgets include it
        state.history.append({"epoch": epoch + 1, "lr": rate, "train_s": round(train_s, 2),
                              "elapsed_s": round(state.elapsed_s, 2), "val_s": round(val_s, 2),
                              **{f"train_{k}": v for k, v in means.items()},
                              **{f"val_{k}": v for k, v in val_metrics.items() if k != "n"}})
        state.epoch = epoch + 1
        _save_epoch(out_dir, state, val_metrics["accuracy"], model, optimizer, model_meta, resumable, device)
        _log(cfg, _epoch_message(state.history[-1], val_metrics))

    if not procs.main:
        return finish(own_group, {})
    summary = _summary(state, stopped)
    if cfg.test and (out_dir / "best.pt").exists():
        tick = time.perf_counter()
        model.load_state_dict(load_checkpoint(out_dir / "best.pt")["model"])
        test = task.evaluation_set("test")
        summary["test"] = evaluate(model, test, cfg.eval_batch_size, cfg.test_size, device, cfg.precision, cfg.seed,
                                   window_stats=True)
        summary["test_dataset"] = test.describe()
        summary["test_s"] = round(time.perf_counter() - tick, 1)  # part of what a study costs (profile_time)
    summary["run"] = {**run_metadata(device), "processes": procs.world}
    write_json(out_dir / "metrics.json", summary)
    return finish(own_group, summary)


def _start(cfg: TrainConfig, procs: Processes, out_dir: Path) -> tuple[torch.device, bool]:
    """The run's device and threads, and its process group when torchrun started several (whether it
    is this call's own, to close at the end)."""
    if procs.main:
        out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device, own_group = resolve_device(cfg.device), False
    if procs.world > 1:
        device, own_group = start_processes(procs, cfg.batch_size, cfg.train_size, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
    return device, own_group


def _resume(path: Path, model, optimizer, model_meta: dict, resumable: dict, device: torch.device) -> RunState:
    """Weights, optimizer, random state and progress from ``last.pt``, refused if another model or
    training config wrote it."""
    ckpt = load_checkpoint(path)
    if model_identity(ckpt["model_meta"]) != model_identity(model_meta) or ckpt["train_config"] != resumable:
        raise ValueError(f"{path} was written by another model, training config or process count: train into "
                         f"another --out folder, or delete {path} (and best.pt beside it) to start this one over")
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["rng"])
    if device.type == "cuda" and ckpt.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(ckpt["cuda_rng"], device)
    return RunState(ckpt["epoch"], ckpt["elapsed_s"], ckpt["best"], ckpt["history"])


def _training_data(cfg: TrainConfig, model, procs: Processes, device: torch.device, out_dir: Path, say):
    """The task, this process's stream of training batches and what iterates it."""
    model_cfg = getattr(model, "cfg", None)
    task = get_task(cfg.task, cfg.data_root, cfg.image_side, cfg.canvas_side, cfg.manifest, cfg.seed,
                    getattr(model_cfg, "channels", 1), cfg.convert_channels, getattr(model_cfg, "proxy_size", None))
    for note in getattr(task, "restore", lambda _: [])(out_dir):  # e.g. a folder task's saved split
        _log(say, note)
    stream = task.training_stream(cfg.train_size, cfg.batch_size, cfg.seed, procs.rank, procs.world)
    # Generated canvases and folders of image files come through a DataLoader (workers render or read
    # batches ahead); stored sets in memory are iterated directly.
    loader = DataLoader(stream, batch_size=None, num_workers=cfg.workers, pin_memory=device.type == "cuda") \
        if isinstance(stream, IterableDataset) else stream
    return task, stream, loader


def _training_step(model, procs: Processes, device: torch.device):
    """batch -> (loss, parts): the model's own loss, or its data-parallel wrapper under torchrun."""
    if procs.world == 1:
        return model.training_loss

    # Some models leave parameters out of a step (no decoder without a reconstruction term)
    return DistributedDataParallel(TrainingLoss(model), device_ids=[device] if device.type == "cuda" else None,
                                   find_unused_parameters=True)


def _stop_reason(cfg: TrainConfig, state: RunState, epoch: int, procs: Processes,
                 device: torch.device) -> str | None:
    """"plateau" or "time_budget" when the run stops before ``epoch``, else None. Decided from the saved
    history alone, so a resumed run stops where an uninterrupted one did."""
    per_epoch = state.elapsed_s / epoch if epoch else 0.0
    over_budget = cfg.time_budget_s is not None and epoch > 0 and state.elapsed_s + per_epoch > cfg.time_budget_s
    flat = plateaus(state.history, cfg.plateau_epochs, cfg.plateau_margin, cfg.plateau_test) > \
        (cfg.lr_decays if cfg.lr_schedule == "plateau" else 0)
    stop = over_budget or flat
    if procs.world > 1:
        stop = broadcast_flag(stop, device)
    if not stop:
        return None
    return "plateau" if flat else "time_budget"


def _reseed_rank(cfg: TrainConfig, procs: Processes, epoch: int) -> None:
    """Under torchrun, each rank's own random stream (z samples, random windows) for ``epoch``: a function of
    the seed, the rank and the epoch, so a resumed run draws what an uninterrupted one did."""
    if procs.world > 1:
        torch.manual_seed(hash((cfg.seed, procs.rank, epoch)) % 2**63)


def _stop_message(cfg: TrainConfig, reason: str, epoch: int) -> str:
    if reason == "time_budget":
        return f"time budget {cfg.time_budget_s:.0f} s reached after {epoch} epochs"
    last_rate = " at the last learning rate" if cfg.lr_schedule == "plateau" else ""
    how = "its fitted line over the last" if cfg.plateau_test == "slope" else "for"
    return (f"plateau: validation accuracy has not risen by {cfg.plateau_margin:g} {how} {cfg.plateau_epochs} "
            f"epochs{last_rate}; stopped after {epoch}")


def _train_epoch(model, step, optimizer, loader, n_batches: int, cfg: TrainConfig, epoch: int,
                 procs: Processes, device: torch.device, say) -> tuple[dict[str, float], float]:
    """One pass over the epoch's batches: the loss parts' means over its canvases (summed over the
    processes) and the seconds it took."""
    model.train()
    tick = time.perf_counter()
    sums: dict[str, float] = {}
    seen = 0
    batches = loader
    if say.progress == "bar":
        batches = tqdm(loader, total=n_batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False)
    for batch in batches:
        batch = to_device(batch, device)
        with autocast(device, cfg.precision):
            loss, parts = step(batch)
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
    if procs.world > 1:
        sums = all_sum({**sums, "_seen": seen}, device)
        seen = sums.pop("_seen")
    return {k: v / max(seen, 1) for k, v in sums.items()}, train_s


def _save_epoch(out_dir: Path, state: RunState, val_accuracy: float, model, optimizer, model_meta: dict,
                resumable: dict, device: torch.device) -> None:
    """best.pt when validation accuracy is the best yet; last.pt and history.csv every epoch."""
    if val_accuracy > state.best["accuracy"]:
        state.best = {"accuracy": val_accuracy, "epoch": state.epoch}
        save_checkpoint(out_dir / "best.pt", {"model": model.state_dict(), "model_meta": model_meta,
                                               "epoch": state.epoch})
    save_checkpoint(out_dir / "last.pt", {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
        "epoch": state.epoch, "elapsed_s": state.elapsed_s,
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "best": state.best, "history": state.history, "model_meta": model_meta, "train_config": resumable})
    write_history(out_dir, state.history)


def _epoch_message(row: dict, val_metrics: dict) -> str:
    hits = " hits " + "/".join(f"{h:.2f}" for h in val_metrics["hit_rate"]) if "hit_rate" in val_metrics else ""
    return (f"epoch {row['epoch']:3d}  {row['train_s']:6.1f}s  loss {row.get('train_loss', float('nan')):.3f}  "
            f"val acc {val_metrics['accuracy']:.4f}{hits}")


def _summary(state: RunState, stopped: dict) -> dict:
    history = state.history
    return {"best_epoch": state.best["epoch"], "best_val_accuracy": state.best["accuracy"],
            "epochs_run": len(history), "stopped": {**stopped, "elapsed_s": round(state.elapsed_s, 1)},
            "train_s": round(state.elapsed_s, 1), "val_s": round(sum(row.get("val_s", 0.0) for row in history), 1)}


# ---------------------------------------------------------------------------------- by name

def train_model(name: str, task: str, out_dir: str | Path, model_overrides: dict | None = None,
                train_overrides: dict | None = None, recipe: str | None = None) -> dict:
    """Train the registered model ``name`` on ``task`` (with the named ``recipe``'s model settings under
    ``model_overrides``) with the shared loop; resumes from ``out_dir``."""
    model_cfg, meta, train_cfg = resolve(name, task, recipe, model_overrides, train_overrides)
    seed_everything(train_cfg.seed)  # the weights' initialization is part of the run's seed
    return fit(build(name, model_cfg), train_cfg, out_dir, model_meta=meta)



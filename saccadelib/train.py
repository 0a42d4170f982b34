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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, IterableDataset

from .evaluation import autocast, evaluate, resolve_device, to_device
from .distributed import Processes, TrainingLoss, all_sum, broadcast_flag, finish, start_processes
from .paths import atomic_path, write_text_atomic
from .runinfo import run_metadata, write_json
from .schedule import learning_rate, parameter_groups, part_lr_scale, plateaus
from .tasks import check_name, get_task


@dataclass(frozen=True)
class TrainConfig:
    task: str = "identification"  # sum, identification, megapixel_majority|max|top or fivek (docs/tasks.md)
    epochs: int = 30
    train_size: int = 20_000  # canvases per epoch: fresh ones (generated tasks), at most the split (stored sets)
    batch_size: int = 128
    lr: float = 1e-3
    # "constant"; "cosine" (from lr down to lr/100 over `epochs`); or "plateau": lr divided by 10 at each
    # plateau of validation accuracy (the plateau rule below), lr_decays times, then stop at the next one
    lr_schedule: str = "constant"
    lr_decays: int = 2
    # Epochs at the start with the policy frozen, for models that name their parts (``parameter_groups``:
    # the reader that classifies the crops, the policy that decides where to look; their learning rates are
    # the model's settings), so the reader learns on the start windows first.
    policy_warmup_epochs: int = 0
    weight_decay: float = 0.0
    clip_norm: float | None = 10.0
    clip_value: float | None = None  # the original clipped gradients by value at 0.25
    seed: int = 0
    threads: int | None = None  # torch threads (None: leave as is)
    workers: int = 0  # DataLoader workers generating canvases or reading image files ahead
    val_size: int = 10_000  # first val_size canvases of the fixed validation set
    eval_batch_size: int = 500
    time_budget_s: float | None = None  # do not start an epoch that would end past this training time (a cap)
    # The plateau rule: stop once validation accuracy has not risen by at least plateau_margin (absolute,
    # 0.002 = 0.2 points) above its last such rise for plateau_epochs epochs in a row (None: no rule).
    plateau_epochs: int | None = None
    plateau_margin: float = 0.002
    progress: str = "log"  # "bar" (tqdm), "log" (a line per epoch), "none"
    test: bool = True  # score the best-on-validation weights on the test set at the end
    test_size: int | None = None  # first test_size canvases of the fixed test set (None: all 10,000)
    device: str = "cpu"  # "cpu", "cuda", "cuda:N", or "auto" (the GPU when there is one)
    precision: str = "fp32"  # "fp32", or "bf16" (autocast: matmuls and convs in bfloat16, on a GPU or a CPU with bf16 units)
    channels_last: bool = True  # convolutions in NHWC memory layout (1.1-1.3× on our CPU, docs/efficiency.md)
    compile: bool = False  # torch.compile the model (compiles on the first steps; pays on long runs)
    data_root: str | None = None  # a task read from files (fivek, megapixel_*, folder): its folder (default under data/)
    manifest: str | None = None  # task folder: a file,label[,split] CSV listing the images (default: subfolders per class)
    convert_channels: bool = False  # task folder: convert images to the model's channels (colour→luma, grey→RGB), not refuse them
    # The side the model reads two-digit canvases at: their own side (canvas_side; None says the same) as
    # generated, a larger N as each canvas's lazy N×N upsample (the paper's 2528²)
    image_side: int | None = None
    canvas_side: int = 100  # two-digit tasks: the canvas the native-size digits are pasted on (100: the paper's)

    def __post_init__(self):
        check_name(self.task)
        for name, low in (("epochs", 1), ("train_size", 1), ("batch_size", 1), ("val_size", 1),
                          ("eval_batch_size", 1), ("workers", 0), ("canvas_side", 28), ("lr_decays", 0),
                          ("policy_warmup_epochs", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"setting {name} must be at least {low}, got {getattr(self, name)}")
        if self.plateau_margin < 0:
            raise ValueError(f"setting plateau_margin must be at least 0, got {self.plateau_margin}")
        for name in ("test_size", "threads", "plateau_epochs"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"setting {name} must be at least 1 (or unset), got {getattr(self, name)}")
        for name in ("lr", "clip_norm", "clip_value", "time_budget_s", "weight_decay", "plateau_margin"):
            if getattr(self, name) is not None and not math.isfinite(getattr(self, name)):
                raise ValueError(f"setting {name} must be a finite number, got {getattr(self, name)}")
        for name in ("lr", "clip_norm", "clip_value", "time_budget_s"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"setting {name} must be positive{'' if name == 'lr' else ' (or unset)'}, "
                                 f"got {getattr(self, name)}")
        if self.lr_schedule == "plateau" and not self.plateau_epochs:
            raise ValueError("lr_schedule=plateau needs plateau_epochs (the epochs without a rise that make a plateau)")
        if self.weight_decay < 0:
            raise ValueError(f"setting weight_decay must be at least 0, got {self.weight_decay}")
        if self.image_side is not None and self.image_side < 8:
            raise ValueError(f"image_side must be at least 8 pixels or None, got {self.image_side}")
        if self.image_side == self.canvas_side:  # one spelling of "no upsampling" in what a run records
            object.__setattr__(self, "image_side", None)
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"unknown precision {self.precision!r}; valid: fp32, bf16")
        if not (self.device in ("cpu", "auto") or self.device.startswith("cuda")):
            raise ValueError(f"unknown device {self.device!r}; valid: cpu, cuda, cuda:N, auto")
        if self.lr_schedule not in ("constant", "cosine", "plateau"):
            raise ValueError(f"unknown lr schedule {self.lr_schedule!r}; valid: constant, cosine, plateau")
        if self.progress not in ("bar", "log", "none"):
            raise ValueError(f"unknown progress mode {self.progress!r}; valid: bar, log, none")


def prepare_model(model, cfg: TrainConfig, device: torch.device):
    """The model on ``device`` in the configured memory layout, compiled if asked (in place: the model's
    own methods, e.g. ``training_loss``, then call the compiled forward)."""
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.compile:
        model.compile(dynamic=False)  # a few fixed batch shapes; dynamic shapes fail in the sampler's backward
    return model


# -------------------------------------------------------------------------------------------- loop

def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _save_checkpoint(path: Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


class CheckpointError(ValueError):
    """A checkpoint that cannot serve: unreadable, not ours, or not matching its recorded config."""


def load_checkpoint(path: Path) -> dict:
    """torch.load of a checkpoint, tensors and plain types only; a file that is not one gets one line
    saying so (not torch's advice to unpickle arbitrary objects, which a checkpoint of ours never needs)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors, truncated zip archives, foreign objects
        text = str(err)
        foreign = "weights_only" in text or "unsupported global" in text.lower()
        why = ("it holds objects other than tensors and plain values" if foreign else
               (text.strip().splitlines() or [type(err).__name__])[0][:200])
        raise CheckpointError(f"{path} is not a checkpoint saccadelib can read ({why}): give the best.pt or last.pt "
                              "a training run wrote") from None


def _write_history(out_dir: Path, history: list[dict]) -> None:
    flat = [{k: (json.dumps(v) if isinstance(v, list) else v) for k, v in row.items()} for row in history]
    buffer = io.StringIO()
    columns = list(dict.fromkeys(k for row in flat for k in row))  # a resumed older run may lack a column
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(flat)
    write_text_atomic(out_dir / "history.csv", buffer.getvalue())


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
    rebuild its model, and a resume with a different model is refused.
    """
    out_dir, model_meta = Path(out_dir), model_meta or {}
    procs = Processes.from_env()
    say = cfg if procs.main else TrainConfig(task=cfg.task, progress="none")  # rank 0 alone logs
    device, own_group = _start(cfg, procs, out_dir)
    prepare_model(model, cfg, device)
    optimizer = torch.optim.Adam(parameter_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    resumable = _resumable(cfg) if procs.world == 1 else {**_resumable(cfg), "processes": procs.world}
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
        stream.set_epoch(epoch)
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
        summary["test"] = evaluate(model, test, cfg.eval_batch_size, cfg.test_size, device, cfg.precision, cfg.seed)
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
        raise ValueError(f"{path} was written by another model, training config or process count; "
                         "use another output folder or resume=False")
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
    from torch.nn.parallel import DistributedDataParallel

    # Some models leave parameters out of a step (no decoder without a reconstruction term)
    return DistributedDataParallel(TrainingLoss(model), device_ids=[device] if device.type == "cuda" else None,
                                   find_unused_parameters=True)


def _stop_reason(cfg: TrainConfig, state: RunState, epoch: int, procs: Processes,
                 device: torch.device) -> str | None:
    """"plateau" or "time_budget" when the run stops before ``epoch``, else None. Decided from the saved
    history alone, so a resumed run stops where an uninterrupted one did."""
    per_epoch = state.elapsed_s / epoch if epoch else 0.0
    over_budget = cfg.time_budget_s is not None and epoch > 0 and state.elapsed_s + per_epoch > cfg.time_budget_s
    flat = plateaus(state.history, cfg.plateau_epochs, cfg.plateau_margin) > \
        (cfg.lr_decays if cfg.lr_schedule == "plateau" else 0)
    stop = over_budget or flat
    if procs.world > 1:
        stop = broadcast_flag(stop, device)
        # each rank's own random stream (z samples, random windows), a function of the epoch: resumable
        torch.manual_seed(hash((cfg.seed, procs.rank, epoch)) % 2**63)
    if not stop:
        return None
    return "plateau" if flat else "time_budget"


def _stop_message(cfg: TrainConfig, reason: str, epoch: int) -> str:
    if reason == "time_budget":
        return f"time budget {cfg.time_budget_s:.0f} s reached after {epoch} epochs"
    last_rate = " at the last learning rate" if cfg.lr_schedule == "plateau" else ""
    return (f"plateau: validation accuracy has not risen by {cfg.plateau_margin:g} for {cfg.plateau_epochs} "
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
        from tqdm.auto import tqdm
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
        _save_checkpoint(out_dir / "best.pt", {"model": model.state_dict(), "model_meta": model_meta,
                                               "epoch": state.epoch})
    _save_checkpoint(out_dir / "last.pt", {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
        "epoch": state.epoch, "elapsed_s": state.elapsed_s,
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "best": state.best, "history": state.history, "model_meta": model_meta, "train_config": resumable})
    _write_history(out_dir, state.history)


def _epoch_message(row: dict, val_metrics: dict) -> str:
    hits = " hits " + "/".join(f"{h:.2f}" for h in val_metrics["hit_rate"]) if "hit_rate" in val_metrics else ""
    return (f"epoch {row['epoch']:3d}  {row['train_s']:6.1f}s  loss {row.get('train_loss', float('nan')):.3f}  "
            f"val acc {val_metrics['accuracy']:.4f}{hits}")


def _summary(state: RunState, stopped: dict) -> dict:
    history = state.history
    return {"best_epoch": state.best["epoch"], "best_val_accuracy": state.best["accuracy"],
            "epochs_run": len(history), "stopped": {**stopped, "elapsed_s": round(state.elapsed_s, 1)},
            "train_s": round(state.elapsed_s, 1), "val_s": round(sum(row.get("val_s", 0.0) for row in history), 1)}


NEUTRAL_SETTINGS = {"policy_warmup_epochs": 0}  # the value that changes nothing


def model_identity(meta: dict) -> dict:
    """A run's model meta less the model settings that are at their neutral value (``model.config``): what
    must match to resume, and what names a study's run."""
    from .model.config import NEUTRAL_SETTINGS as NEUTRAL_MODEL

    config = meta.get("config")
    if not isinstance(config, dict):
        return meta
    kept = {k: v for k, v in config.items() if not (k in NEUTRAL_MODEL and v == NEUTRAL_MODEL[k])}
    return {**meta, "config": kept}


def _resumable(cfg: TrainConfig) -> dict:
    """The config fields that must match to resume: not the epochs of a run whose schedule does not
    depend on them (more may be added), nor how the run is displayed, timed, placed or scored."""
    values = asdict(cfg)
    if cfg.lr_schedule != "cosine":  # the others do not depend on the epoch count
        values.pop("epochs")
    if cfg.lr_schedule != "plateau":  # then the rule only says when to stop, not what the weights are
        for key in ("lr_decays", "plateau_epochs", "plateau_margin"):
            values.pop(key)
    # Settings added after runs were made count only when they change something, so those runs keep their
    # identity (and their resumable checkpoints) when a later version adds a setting.
    for key, neutral in NEUTRAL_SETTINGS.items():
        if values[key] == neutral:
            values.pop(key)
    for key in ("time_budget_s", "progress", "threads", "workers", "test", "eval_batch_size", "test_size", "device",
                "channels_last", "compile"):
        values.pop(key)
    return values


# ---------------------------------------------------------------------------------- by name

def resolved_settings(name: str, task: str, model_overrides: dict | None = None,
                      train_overrides: dict | None = None):
    """(model config, the model_meta a run records, TrainConfig) for ``KEY=VALUE`` overrides."""
    from .config import apply_overrides, to_dict
    from .registry import config_for
    from .tasks import class_names

    train_cfg = apply_overrides(TrainConfig(task=task), train_overrides)
    names = class_names(task, train_cfg.data_root, train_cfg.manifest)
    model_cfg = config_for(name, len(names), model_overrides)
    meta = {"name": name, "task": task, "config": to_dict(model_cfg)}
    if task == "folder":  # the classes are the user's: the checkpoint must say what its outputs mean
        meta["class_names"] = names
    return model_cfg, meta, train_cfg


def train_model(name: str, task: str, out_dir: str | Path, model_overrides: dict | None = None,
                train_overrides: dict | None = None) -> dict:
    """Train the registered model ``name`` on ``task`` with the shared loop (resumes from ``out_dir``)."""
    from .registry import build

    model_cfg, meta, train_cfg = resolved_settings(name, task, model_overrides, train_overrides)
    seed_everything(train_cfg.seed)  # the weights' initialization is part of the run's seed
    return fit(build(name, model_cfg), train_cfg, out_dir, model_meta=meta)


def record_run(run_dir: str | Path, record_dir: str | Path, command: list[str]) -> Path:
    """Copy a finished run's small outputs (history, metrics, config) to ``record_dir`` with the command
    that produced them, so the numbers there can be regenerated."""
    import shlex
    import shutil

    run_dir, record_dir = Path(run_dir), Path(record_dir)
    if not (run_dir / "metrics.json").exists():
        raise FileNotFoundError(f"{run_dir} has no metrics.json: the run has not finished")
    record_dir.mkdir(parents=True, exist_ok=True)
    for name in ("history.csv", "metrics.json", "config.json"):
        with atomic_path(record_dir / name) as tmp:
            shutil.copyfile(run_dir / name, tmp)
    write_text_atomic(record_dir / "command.txt", "# from the repository root; rerunning resumes or repeats the run\n"
                      + shlex.join(command) + "\n")
    return record_dir

"""Every run of an experiment (``RunSpec``), its epochs from the budget, and training them all.

Each run trains through the shared loop (``train.train_model``) into its own folder under
``runs/study/<profile>/<experiment>/``, named by a hash of its *resolved* settings (the model's and the
training's full configs, defaults included): a rerun resumes it (or reuses it when it has finished), and
a changed setting or default starts a new one.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
from PIL import Image

from .. import train as training_loop  # training_loop.train_model, looked up when called
from ..bench import cost  # cost.measure, looked up when called (tests replace it)
from ..datasets import fivek, fivek_miniature, megapixel
from ..paths import RunLockedError, atomic_path, data_dir, is_locked, results_dir, runs_dir
from ..recipes import LARGE_SIDE, TASK_RECIPE, crop_settings, recipe
from ..registry import task_settings
from ..settings import resolve
from ..tasks import get_task
from ..names import megapixel_decoys
from .experiments import (
    COMMITTED_FOLDERS,
    COMMITTED_PROFILE,
    EPOCH_SECONDS,
    VAL_SECONDS,
    VAL_SHARE,
    FiveKStudy,
    NoiseStudy,
    ResolutionStudy,
    TaskStudy,
    Training,
    clock_cap_s,
    dataset_name,
    resolution_entries,
    resolution_label,
    seeds_for,
)
from .profiles import noise_study, resolution_study, task_study


@dataclass(frozen=True)
class RunSpec:
    label: str  # what tables and plots call it
    model: str  # registry name
    task: str
    seed: int
    model_overrides: dict
    train_overrides: dict
    calibration: tuple[str, int, str] | None = None  # (task, side, name) whose measured epoch sized it

    def resolved(self):
        """The run's settings under today's defaults (``settings.resolve``): model config, model meta,
        training config."""
        return resolve(self.model, self.task, model_overrides=self.model_overrides,
                       train_overrides=self.train_overrides)

    def key(self) -> str:
        """Hash of the resolved settings that decide the weights (not how the run is displayed or timed)."""
        return self.resolved().key()

    def folder(self) -> str:
        return f"{self.label}_s{self.seed}_{self.key()}".replace(" ", "_")


def measured_seconds(task: str, image_side: int, model: str) -> tuple[float, float]:
    key = (task, image_side, model)
    if key not in EPOCH_SECONDS or key not in VAL_SECONDS:
        raise ValueError(f"no measured epoch time for {model} on {task} at {image_side}²: measure it with "
                         "scripts/probes/epoch_seconds.py (reference/epoch_seconds.json) "
                         "or give epochs instead of budget_min")
    return EPOCH_SECONDS[key], VAL_SECONDS[key]


def validation_size(task: str, image_side: int, model: str, training: Training) -> int:
    """The training's ``val_size``, or fewer canvases (whole hundreds) where scoring them after each epoch
    would cost more than VAL_SHARE of the epoch's training time."""
    loop = training.config()
    if training.budget_min is None:
        return loop.val_size
    train_s, val_s = measured_seconds(task, image_side, model)
    affordable = VAL_SHARE * train_s * loop.train_size / 20_000 / val_s * 2_000
    return max(100, min(loop.val_size, int(affordable // 100) * 100))


def epochs_for(task: str, image_side: int, model: str, training: Training) -> int:
    if training.budget_min is None:
        return training.epochs
    train_s, val_s = measured_seconds(task, image_side, model)
    # the budget pays for each epoch's validation too: it is time the run takes
    val_size = validation_size(task, image_side, model, training)
    seconds = train_s * training.config().train_size / 20_000 + val_s * val_size / 2_000
    # nearest, not floor: a model whose epoch is a large share of the budget (ResNet-18, 5 min) would
    # otherwise lose up to a whole epoch; each run is off its budget by at most half an epoch either way
    return max(1, round(training.budget_min * 60 / seconds))


# The settings every run lists in its overrides, resolved (the rest are TrainConfig's defaults)
SHOWN_SETTINGS = ("lr_schedule", "train_size", "batch_size", "lr", "val_size", "test_size", "device", "threads",
                  "precision", "progress")


def train_overrides(task: str, image_side: int, model: str, training: Training, seed: int) -> dict:
    """The TrainConfig settings of one run: the training's, its epochs from the budget, its seed."""
    loop = training.config()
    out = {**{key: getattr(loop, key) for key in SHOWN_SETTINGS}, **training.train,
           "epochs": epochs_for(task, image_side, model, training), "seed": seed,
           "val_size": validation_size(task, image_side, model, training), "image_side": image_side}
    if training.budget_min is not None:
        out["time_budget_s"] = clock_cap_s(training.budget_min)
    return out


def task_runs(study: TaskStudy) -> list[RunSpec]:
    return [RunSpec(name, name, study.task, seed, task_settings(study.task, name, study.image_side),
                    train_overrides(study.task, study.image_side, name, study.model_training(name), seed),
                    (study.task, study.image_side, name))
            for name in study.models for seed in seeds_for(study, name)]


def noise_runs(study: NoiseStudy) -> list[RunSpec]:
    task = "identification"
    runs = []
    for sigma, keep in study.levels():
        overrides = {**task_settings(task, "saccade"), "proxy_noise": sigma, "proxy_keep": keep}
        label = noise_label(sigma, keep)
        for seed in seeds_for(study, label):
            runs.append(RunSpec(label, "saccade", task, seed, overrides,
                                train_overrides(task, 100, "saccade", study.training, seed), (task, 100, "saccade")))
    return runs


def noise_label(sigma: float, keep: float) -> str:
    return f"noise_{sigma:g}_keep_{keep:g}"


def fivek_runs(study: FiveKStudy) -> list[RunSpec]:
    runs = []
    t = study.training
    for name in study.models:
        if name == "resnet18_tiles":
            settings = {"channels": 3, "tile": study.tile}
        else:
            settings = {**recipe(TASK_RECIPE["fivek"]), "channels": 3, **crop_settings(study.crop)}
        for seed in t.seeds:
            # an epoch is the prepared training split: no train_size unless one is asked for
            shown = {key: getattr(t.config(), key) for key in SHOWN_SETTINGS if key != "train_size"}
            train = {**shown, **t.train, "epochs": t.epochs,
                     "seed": seed, "data_root": str(study.root()), "eval_batch_size": 32}
            runs.append(RunSpec(name, name, "fivek", seed, settings, train))
    return runs


def prepare_fivek_miniature(study: FiveKStudy, log: Callable[[str], None] = print) -> Path:
    """Smoke: the synthetic FiveK-shaped photos (data/fivek_miniature_source) prepared at study.side."""
    source = fivek_miniature.write_miniature(data_dir() / "fivek_miniature_source")
    card = fivek.prepare(source, study.root(), fivek.PrepareSettings(side=study.side), progress=False)
    log(f"miniature (synthetic photos, a pipeline check) prepared at {study.side}²: {card['prepared']} photos")
    return study.root()


def resolution_data(study: ResolutionStudy, task: str, side: int) -> dict:
    """The training settings that say which data a 06 run reads."""
    if task.startswith("megapixel"):
        return {"data_root": study.megapixel_root(task)}
    return {"canvas_side": side}


def resolution_runs(study: ResolutionStudy) -> list[RunSpec]:
    """06's runs. Budgets become epochs from the calibration of (task, canvas side, run name), as in every
    other experiment (scripts/probes/epoch_seconds.py measures them)."""
    runs = []
    for task, side, name, model, settings in resolution_entries(study):
        label = resolution_label(task, name)
        for seed in seeds_for(study, label):
            train = train_overrides(task, side, name, study.run_training(task, model), seed)
            train.pop("image_side", None)
            runs.append(RunSpec(label, model, task, seed, settings,
                                {**train, **resolution_data(study, task, side)}, (task, side, name)))
    return runs


def experiment_runs(profile: str) -> dict[str, list[RunSpec]]:
    """Every training run each experiment of ``profile`` makes (FiveK aside: it needs its data)."""
    runs = {"01_two_digit_sum": task_runs(task_study("sum", profile)),
            "02_two_digit_identification_100": task_runs(task_study("identification", profile)),
            f"02_two_digit_identification_{LARGE_SIDE}": task_runs(task_study("identification", profile,
                                                                              image_side=LARGE_SIDE))}
    if profile != "plateau":  # it trains Table 1's cells alone
        runs.update({"03_noisy_proxy_ablation": noise_runs(noise_study(profile)),
                     "06_resolution": resolution_runs(resolution_study(profile))})
    return runs


def resolution_evaluation_set(study: ResolutionStudy, task: str, split: str):
    """A 06 task's fixed ``split`` set as its runs read it."""
    data = resolution_data(study, task, study.side(task))
    return get_task(task, data.get("data_root"), canvas_side=data.get("canvas_side", 100)).evaluation_set(split)


def canvases_per_epoch(study: ResolutionStudy, task: str, model: str | None = None) -> int:
    """Training canvases an epoch of registry model ``model`` on 06's ``task`` reads: ``train_size`` fresh
    ones, or at most the stored training split (``model`` None: the study's own epoch)."""
    train_size = study.run_training(task, model).config().train_size
    if task.startswith("megapixel"):
        return min(train_size, len(resolution_evaluation_set(study, task, "train")))
    return train_size


COST_COLUMNS = ["label", "infer_ms_per_image", "work_mib", "peak_rss_mib", "parameters"]  # inference_costs' table
WHOLE_IMAGE_CNN = ("resnet18_500", "resnet18_downsampled", {"input_side": 500})  # 06's cost-only row


def inference_costs(study: ResolutionStudy, task: str, folder: str | Path) -> "pd.DataFrame":
    """Each 06 model's inference cost per image on ``task``: batch 1, end to end from the first test canvas
    written as a PNG in ``folder`` (decoded and read as the model reads it), 2 threads, the median of
    ``study.cost_repeats`` after 2 warm-ups, each model in a fresh process so that its memory is its own
    (saccadelib.bench.cost). The costs do not depend on the weights. ResNet-18 on a 500² downsample, the
    whole-image CNN a practitioner would try, is measured beside them though 06 does not train it."""
    if megapixel_decoys(task) != "none":  # the same side, reader and models: it costs what the plain set does
        return pd.DataFrame(columns=COST_COLUMNS)
    image = Path(folder) / f"{dataset_name(task)}_test_00000.png"
    if not image.exists():
        pixels = resolution_evaluation_set(study, task, "test").as_dict(0, 1)["image"].dense()[0, 0]
        with atomic_path(image) as tmp:
            Image.fromarray((pixels * 255).round().byte().numpy(), mode="L").save(tmp, format="PNG")
    side = study.side(task)
    entries = [(name, model, settings) for t, _, name, model, settings in resolution_entries(study)
               if t == task and name != "oracle_glimpses" and (study.costed is None or name in study.costed)]
    if study.costed is None:
        entries.append(WHOLE_IMAGE_CNN)
    rows = []
    for name, model, settings in entries:
        spec = {"model": model, "config": settings, "task": task, "side": side, "source": "file",
                "file": str(image), "phase": "infer", "batch": 1, "threads": study.training.config().threads,
                "repeats": study.cost_repeats, "min_time_s": 2.0 if study.cost_repeats > 1 else 0.0, "warmup": 2}
        row = cost.measure(spec, timeout_s=900)
        rows.append({"label": resolution_label(task, name), "infer_ms_per_image": round(row["median_s"] * 1000, 1),
                     "work_mib": round(row["peak_rss_mib"] - row["base_rss_mib"], 1),
                     "peak_rss_mib": row["peak_rss_mib"], "parameters": row["parameters"]})
    return pd.DataFrame(rows, columns=COST_COLUMNS)


def prepare_resolution_data(study: ResolutionStudy, log: Callable[[str], None] = print) -> None:
    """Megapixel MNIST's stored sets: checked against their hashes (made on first use, about 2 minutes);
    at the smoke profile a small miniature (64/32/32 canvases), never a result."""
    for task in study.tasks:
        if not task.startswith("megapixel"):
            continue
        config, root = megapixel.MegapixelConfig(decoys=megapixel_decoys(task)), study.megapixel_root(task)
        name = "Megapixel MNIST" + ("" if config.decoys == "none" else f" with {config.decoys}")
        if study.profile == "smoke":
            for split, n in (("train", 64), ("val", 32), ("test", 32)):
                if not megapixel.set_path(split, root).exists():
                    megapixel.save(megapixel.generate(split, n=n, config=config), megapixel.set_path(split, root))
            log(f"{name}: a miniature (64/32/32 canvases, a pipeline check) in {root}")
            continue
        cards = megapixel.prepare(root, config)
        log(f"{name}: " + ", ".join(f"{c['split']} {c['n']} (sha256 {c['sha256'][:12]}…)" for c in cards))


def run_folder(runs_dir: str | Path, spec: RunSpec) -> Path:
    return Path(runs_dir) / spec.folder()


def train_all(specs: list[RunSpec], runs_dir: str | Path, log: Callable[[str], None] = print,
              wait_for_others: bool = True, poll_s: float = 60.0) -> list[dict]:
    """Train (or resume, or reuse when finished) every run; return one summary per run, in order.

    A run whose folder another process holds (a second runner sharing the experiment: ``reproduce
    --train-only``) is left to it while this one trains the rest. Then, with ``wait_for_others``, this one
    waits for it, checking every ``poll_s`` seconds, and reuses it once finished (or resumes it, should that
    process have stopped first); without, it is skipped and the summaries hold the runs this call finished."""
    summaries: dict[int, dict] = {}
    pending, told = list(enumerate(specs, 1)), set()
    while pending:
        elsewhere = []
        for k, spec in pending:
            try:
                summaries[k] = _train_or_reuse(spec, run_folder(runs_dir, spec), f"[{k}/{len(specs)}]", log)
            except RunLockedError:
                if k not in told:
                    log(f"[{k}/{len(specs)}] {spec.label} seed {spec.seed}: training in another process "
                        + ("(waited for after the others)" if wait_for_others else "(left to it)"))
                    told.add(k)
                elsewhere.append((k, spec))
        if elsewhere and wait_for_others:
            time.sleep(poll_s)
        pending = elsewhere if wait_for_others else []
    return [summaries[k] for k in sorted(summaries)]


def _train_or_reuse(spec: RunSpec, folder: Path, tag: str, log: Callable[[str], None]) -> dict:
    """A finished run's summary (its metrics.json), else the run trained or resumed to its end; raises
    ``RunLockedError`` when another process trains into ``folder``."""
    done = folder / "metrics.json"
    if done.exists() and "test" in json.loads(done.read_text()):
        log(f"{tag} {spec.label} seed {spec.seed}: finished earlier ({folder})")
        return json.loads(done.read_text())
    if is_locked(folder):
        raise RunLockedError(str(folder))
    log(f"{tag} {spec.label} seed {spec.seed}: training {spec.train_overrides['epochs']} epochs → {folder}")
    return training_loop.train_model(spec.model, spec.task, folder, spec.model_overrides, spec.train_overrides)


def results_root(profile: str, root: str | Path | None = None) -> Path:
    """Where a profile's results go: results/ for cpu, results/plateau/ for plateau (the committed ones),
    results-<profile>/ (git-ignored) for the others, so a smoke or paper run never overwrites the
    committed numbers."""
    if root:
        return Path(root)
    base = results_dir()
    if profile in COMMITTED_FOLDERS:
        return base / COMMITTED_FOLDERS[profile] if COMMITTED_FOLDERS[profile] else base
    return base.with_name(f"{base.name}-{profile}")


def default_out(experiment: str, out_dir: str = "", profile: str = COMMITTED_PROFILE) -> Path:
    return Path(out_dir) if out_dir else results_root(profile) / experiment


def default_runs(experiment: str, profile: str, folder: str = "") -> Path:
    return Path(folder) if folder else runs_dir() / "study" / profile / experiment

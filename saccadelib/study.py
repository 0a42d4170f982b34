"""The study's experiments: one typed config per experiment, resolved from a profile, and the helpers
the notebooks call to train (or resume) every run and collect its numbers.

Profiles:
- ``smoke``: a few hundred canvases, one epoch; proves the notebook end to end in seconds (CI).
- ``cpu``: our 2-core machine. Each model gets the same budget in minutes (training and the validation
  after each epoch); its epoch count is sized from :data:`EPOCH_SECONDS` and :data:`VAL_SECONDS`
  (measured here), so a run's result does not depend on what else
  shares the CPU, and ``time_budget_s`` is only a safety cap at twice the budget.
- ``paper``: a GPU, three seeds, the paper's sizes at 2528² (64² crops, batch 100); epochs fixed.

Every run trains through the shared loop (``experiment.train_model``) into its own folder under
``runs/study/…``, named by a hash of its resolved settings: a rerun resumes it (or reuses it when it
has finished) and a changed setting starts a new one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import data as twodigit
from .paths import REPO_ROOT, write_text_atomic
from .runinfo import write_json

PROFILES = ("smoke", "cpu", "paper")

# Recipe settings (README, "CPU training recipe"): v5 for sum, v3 for identification.
RECIPE_V2 = {"loss.reconstruction_weight": 0.01, "loss.every_step": True, "window.max_scale": 0.45,
             "init_scale": 0.35, "loss.kl_free_bits": 1.0, "posterior_trains_encoder": False}
RECIPES = {"sum": {**RECIPE_V2, "glimpses": 1, "proxy_width": 32},
           "identification": {**RECIPE_V2, "glimpses": 4, "init_layout": "grid"}}
GLIMPSE_MODELS = ("saccade", "random_glimpses", "grid_glimpses")
LARGE_SIDE, LARGE_CROP = 2528, 64  # the paper's large variant: a lazy 2528² upsample read in 64² crops

# Seconds per epoch on our 2-core machine (2 threads, float32), keyed by (task, canvas side the model reads,
# model): training on 20,000 canvases, and scoring the 2,000 validation canvases that follow every epoch.
# Measured by ``scripts/probes/epoch_seconds.py`` into results/benchmarks/epoch_seconds.json: training from
# the study's own finished cpu runs (their mean epoch), validation timed directly.
# Epochs for a budget = budget / (training + validation per epoch, scaled by train_size and val_size), so the
# cpu profile's runs take their budget on this machine when it is not shared, and give the same result
# when it is.
EPOCH_SECONDS_FILE = REPO_ROOT / "results" / "benchmarks" / "epoch_seconds.json"  # calibration, not output


def _load_epoch_seconds(path: Path = EPOCH_SECONDS_FILE, field: str = "seconds_per_20k") -> dict[tuple[str, int, str], float]:
    """One column of the calibration: ``seconds_per_20k`` (training) or ``val_seconds_per_2k``."""
    if not path.exists():  # an installed copy without the results folder: budgets need measured epochs
        return {}
    return {(p["task"], int(p["canvas"]), p["model"]): float(p[field])
            for p in json.loads(path.read_text())["probes"] if field in p}


EPOCH_SECONDS = _load_epoch_seconds()
VAL_SECONDS = _load_epoch_seconds(field="val_seconds_per_2k")

# Paper Table 1 and STUDY.md §4, for the side-by-side tables.
PAPER = {
    ("sum", 100, "saccade"): "97.2 ± 0.04", ("sum", 100, "resnet18"): "99.86 ± 0.01", ("sum", 100, "ram"): "91",
    ("sum", 100, "dram"): "97.5",
    ("identification", 100, "saccade"): "95.42 ± 0.002", ("identification", 100, "resnet18"): "97.4 ± 0.003",
    ("identification", 100, "ram"): "93", ("identification", 100, "dram"): "95",
    ("identification", LARGE_SIDE, "saccade"): "95.23 ± 0.03",
    ("identification", LARGE_SIDE, "resnet18_tiles"): "97.3 ± 0.006",
    ("fivek", LARGE_SIDE, "saccade"): "62.7 ± 0.03", ("fivek", LARGE_SIDE, "resnet18_tiles"): "63.6 ± 0.03",
}


@dataclass(frozen=True)
class Training:
    """How each run of an experiment is trained (shared by every experiment's config)."""
    seeds: tuple[int, ...] = (0,)
    budget_min: float | None = 15.0  # per run; sizes the epochs from EPOCH_SECONDS (None: use `epochs`)
    epochs: int | None = None  # fixed epochs (when budget_min is None)
    train_size: int = 20_000
    batch_size: int = 128
    lr: float = 1e-3
    val_size: int = 2_000
    test_size: int | None = None  # None: the whole 10,000-canvas test set
    device: str = "cpu"
    threads: int = 2
    precision: str = "fp32"

    def __post_init__(self):
        if (self.budget_min is None) == (self.epochs is None):
            raise ValueError("give either budget_min (minutes per run) or epochs, not both")
        if not self.seeds:
            raise ValueError("need at least one seed")


@dataclass(frozen=True)
class TaskStudy:
    """01 (sum) and 02 (identification at 100² or 2528²): our model beside the baselines."""
    task: str = "sum"
    canvas: int = 100  # 100, or 2528: the model reads a lazy 2528² upsample in 64² crops
    models: tuple[str, ...] = ("saccade", "random_glimpses", "proxy_cnn", "resnet18", "ram")
    training: Training = field(default_factory=Training)
    profile: str = "cpu"

    def __post_init__(self):
        twodigit.task_spec(self.task)
        if self.canvas not in (100, LARGE_SIDE):
            raise ValueError(f"canvas must be 100 or {LARGE_SIDE}, got {self.canvas}")
        from .baselines import REGISTRY

        for name in self.models:
            if name not in REGISTRY:
                raise ValueError(f"unknown model {name!r}; valid: {', '.join(REGISTRY)}")
            if self.canvas == LARGE_SIDE and name not in GLIMPSE_MODELS:
                raise ValueError(f"{name} does not train at {LARGE_SIDE}² on this study's budgets; "
                                 f"its costs are in 05_efficiency")


@dataclass(frozen=True)
class NoiseStudy:
    """03: our model on identification 100² with a noisy proxy (paper Fig. 5): one run per level,
    Gaussian σ at keep 1, then pixel keep fractions at σ 0."""
    sigmas: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0)
    keeps: tuple[float, ...] = (0.5, 0.25, 0.1)
    training: Training = field(default_factory=Training)
    profile: str = "cpu"

    def levels(self) -> list[tuple[float, float]]:
        return [(s, 1.0) for s in self.sigmas] + [(0.0, k) for k in self.keeps]


@dataclass(frozen=True)
class EfficiencyStudy:
    """05: the efficiency benchmark (saccadelib.bench.efficiency)."""
    device: str = "cpu"
    sides: tuple[int, ...] = (2528, 5056, 10112)
    threads: int = 2
    repeats: int = 5
    quick: bool = False  # 64-px tiles and small sides: the smoke profile
    profile: str = "cpu"


SMOKE_TRAINING = Training(budget_min=None, epochs=1, train_size=256, batch_size=64, val_size=200, test_size=200,
                          threads=2)
PAPER_TRAINING = Training(seeds=(0, 1, 2), budget_min=None, epochs=100, device="cuda", threads=4)


def _profile_training(profile: str, cpu_minutes: float) -> Training:
    if profile == "smoke":
        return SMOKE_TRAINING
    if profile == "cpu":
        return Training(budget_min=cpu_minutes)
    if profile == "paper":
        return PAPER_TRAINING
    raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")


@dataclass(frozen=True)
class FiveKStudy:
    """04: our model and the 144-tile ResNet-18 on FiveK (Table 1, first column).

    ``data_root`` is the prepared folder (``python -m saccadelib data fivek``). At the smoke profile the
    notebook writes a synthetic miniature in FiveK's layout and prepares it at ``side`` (small, so that the
    tile baseline runs on a CPU): a pipeline check, never a result.
    """
    models: tuple[str, ...] = ("saccade", "resnet18_tiles")
    side: int = LARGE_SIDE  # the prepared images' side (2528: the paper's)
    tile: int = 224  # the tile baseline's tile side (paper: 224, so 12×12 tiles at 2528²)
    crop: int = LARGE_CROP  # our model's crop side
    data_root: str = ""  # "" → data/fivek (smoke: data/fivek_miniature_<side>)
    miniature: bool = False  # smoke: generate and prepare the synthetic miniature first
    training: Training = field(default_factory=lambda: Training(budget_min=None, epochs=60, batch_size=32,
                                                                device="cuda"))
    profile: str = "paper"

    def root(self) -> Path:
        from .paths import data_dir

        if self.data_root:
            return Path(self.data_root)
        return data_dir() / (f"fivek_miniature_{self.side}" if self.miniature else "fivek")


def fivek_study(profile: str = "cpu", **overrides) -> FiveKStudy:
    """FiveK at ``profile``: smoke trains one epoch on the miniature at 256² (tiles of 128); cpu trains our
    model alone on the prepared FiveK (one seed, 20 epochs: the 144-tile baseline needs a GPU at 2528²);
    paper trains both, three seeds, on a GPU."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    if profile == "smoke":
        study = FiveKStudy(side=256, tile=128, crop=32, miniature=True, profile=profile,
                           training=Training(budget_min=None, epochs=1, batch_size=16, device="cpu"))
    elif profile == "cpu":
        study = FiveKStudy(models=("saccade",), profile=profile,
                           training=Training(budget_min=None, epochs=20, batch_size=32, device="cpu"))
    else:
        study = FiveKStudy(training=Training(seeds=(0, 1, 2), budget_min=None, epochs=60, batch_size=32,
                                             device="cuda"), profile=profile)
    return _override(study, overrides)


def fivek_available(profile: str) -> str | None:
    """None when 04_fivek can run at ``profile``; else why not (the runner reports it as skipped)."""
    if profile == "smoke":
        return None  # the miniature is generated
    from .fivek import HOW_TO_GET, check_prepared, FiveKError

    try:
        check_prepared(fivek_study(profile).root())
    except FiveKError:
        return HOW_TO_GET
    return None


def fivek_runs(study: FiveKStudy) -> list[RunSpec]:
    runs = []
    t = study.training
    for name in study.models:
        if name == "resnet18_tiles":
            settings = {"channels": 3, "tile": study.tile, "image_side": study.side}
        else:
            settings = {**RECIPES["identification"], "channels": 3, "crop_size": study.crop}
        for seed in t.seeds:
            train = {"epochs": t.epochs, "lr_schedule": "cosine", "seed": seed, "batch_size": t.batch_size,
                     "lr": t.lr, "device": t.device, "threads": t.threads, "precision": t.precision,
                     "progress": "log", "data_root": str(study.root()), "eval_batch_size": 32}
            runs.append(RunSpec(name, name, "fivek", seed, settings, train))
    return runs


def prepare_fivek_miniature(study: FiveKStudy, log: Callable[[str], None] = print) -> Path:
    """Smoke: the synthetic FiveK-shaped photos (data/fivek_miniature_source) prepared at study.side."""
    from . import fivek
    from .paths import data_dir

    source = fivek.write_miniature(data_dir() / "fivek_miniature_source")
    card = fivek.prepare(source, study.root(), fivek.PrepareSettings(side=study.side), progress=False)
    log(f"miniature (synthetic photos, a pipeline check) prepared at {study.side}²: {card['prepared']} photos")
    return study.root()


def task_study(task: str, profile: str = "cpu", canvas: int = 100, **overrides) -> TaskStudy:
    """The 01/02 config for ``profile``; ``overrides`` set TaskStudy fields or Training fields by name."""
    # cpu: five models per task at equal minutes, so that the whole study fits in about 4 hours here
    minutes = {("sum", 100): 10.0, ("identification", 100): 20.0, ("identification", LARGE_SIDE): 20.0}
    training = _profile_training(profile, minutes.get((task, canvas), 15.0))
    if profile == "paper" and canvas == LARGE_SIDE:
        training = dataclasses.replace(training, epochs=40, batch_size=100)
    if profile == "cpu" and canvas == LARGE_SIDE:  # 224 s per 20k epoch here: quarter-size epochs for a curve
        training = dataclasses.replace(training, train_size=5_000)
    models = ("saccade",) if canvas == LARGE_SIDE else TaskStudy.models
    if profile == "smoke" and canvas == LARGE_SIDE:
        models = ("saccade", "random_glimpses")
    return _override(TaskStudy(task=task, canvas=canvas, models=models, training=training, profile=profile), overrides)


def noise_study(profile: str = "cpu", **overrides) -> NoiseStudy:
    training = _profile_training(profile, 4.0)
    if profile == "cpu":  # a quarter-size epoch gives the curves 4× the points in the same minutes
        training = dataclasses.replace(training, train_size=5_000)
    study = NoiseStudy(training=training, profile=profile)
    if profile == "smoke":
        study = dataclasses.replace(study, sigmas=(0.0, 0.5), keeps=(0.25,))
    return _override(study, overrides)


def efficiency_study(profile: str = "cpu", **overrides) -> EfficiencyStudy:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    study = EfficiencyStudy(profile=profile)
    if profile == "smoke":
        study = dataclasses.replace(study, sides=(128,), repeats=1, quick=True)
    if profile == "paper":
        study = dataclasses.replace(study, device="cuda")
    return _override(study, overrides)


def _override(config, overrides: dict):
    """Set fields of ``config`` or of its ``training`` by name; None or "" leaves a field as the profile
    has it (papermill parameters default to that). Lists become tuples; comma strings become lists."""
    own = {f.name: f for f in dataclasses.fields(config)}
    train_fields = {f.name for f in dataclasses.fields(Training)}
    direct, train = {}, {}
    for key, value in overrides.items():
        if value is None or value == "":
            continue
        if key in own and key != "training":
            direct[key] = _as_field_value(value, getattr(config, key))
        elif key in train_fields:
            train[key] = _as_field_value(value, getattr(config.training, key))
        else:
            valid = sorted((set(own) - {"training"}) | train_fields)
            raise ValueError(f"unknown setting {key!r} for {type(config).__name__}; valid: {', '.join(valid)}")
    if "budget_min" in train and "epochs" not in train:
        train["epochs"] = None  # a budget replaces the profile's fixed epochs, and the other way round
    if "epochs" in train and "budget_min" not in train:
        train["budget_min"] = None
    if train:
        direct["training"] = dataclasses.replace(config.training, **train)
    return dataclasses.replace(config, **direct)


def _as_field_value(value, like):
    if isinstance(like, tuple):
        items = [v for v in str(value).split(",") if v.strip()] if isinstance(value, str) else list(value)
        kind = type(like[0]) if like else str
        return tuple(kind(v.strip()) if isinstance(v, str) else kind(v) for v in items)
    return value


def as_dict(config) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config)))


# ------------------------------------------------------------------------------------------ runs

@dataclass(frozen=True)
class RunSpec:
    label: str  # what tables and plots call it
    model: str  # registry name
    task: str
    seed: int
    model_overrides: dict
    train_overrides: dict

    def key(self) -> str:
        payload = json.dumps([self.model, self.task, self.model_overrides, self.train_overrides], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:10]

    def folder(self) -> str:
        return f"{self.label}_s{self.seed}_{self.key()}".replace(" ", "_")


def settings_fingerprint(profile: str = "cpu") -> str:
    """A hash of the library settings every experiment's runs resolve from: the recipes, the measured
    epoch times, each registered model's default config per task, the training defaults and the
    profile's experiment configs (budgets, models, noise levels, benchmark sizes). The runner records
    it, so an experiment is not skipped as up to date after any of them changed."""
    from . import baselines
    from .experiment import config_for
    from .train import TrainConfig

    studies = {f"{task}/{canvas}": as_dict(task_study(task, profile, canvas))
               for task, canvas in (("sum", 100), ("identification", 100), ("identification", LARGE_SIDE))}
    studies.update(noise=as_dict(noise_study(profile)), efficiency=as_dict(efficiency_study(profile)),
                   fivek=as_dict(fivek_study(profile)))
    payload = {"recipes": RECIPES, "epoch_seconds": sorted([*key, value] for key, value in EPOCH_SECONDS.items()),
               "val_seconds": sorted([*key, value] for key, value in VAL_SECONDS.items()),
               "models": {f"{name}/{task}": config_for(name, task).to_dict()
                          for name in baselines.REGISTRY for task in ("sum", "identification")},
               "train": dataclasses.asdict(TrainConfig()), "studies": studies}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def model_overrides(task: str, model: str, canvas: int = 100) -> dict:
    """The recipe settings for a glimpse model; the other baselines train at their defaults."""
    if model not in GLIMPSE_MODELS:
        return {}
    settings = dict(RECIPES[task])
    if canvas == LARGE_SIDE:
        settings.update({"image_side": LARGE_SIDE, "crop_size": LARGE_CROP})
    return settings


def epochs_for(task: str, canvas: int, model: str, training: Training) -> int:
    if training.budget_min is None:
        return training.epochs
    key = (task, canvas, model)
    if key not in EPOCH_SECONDS or key not in VAL_SECONDS:
        raise ValueError(f"no measured epoch time for {model} on {task} at {canvas}²: measure it with "
                         "scripts/probes/epoch_seconds.py (results/benchmarks/epoch_seconds.json) "
                         "or give epochs instead of budget_min")
    # the budget pays for each epoch's validation too: it is time the run takes
    seconds = EPOCH_SECONDS[key] * training.train_size / 20_000 + VAL_SECONDS[key] * training.val_size / 2_000
    # nearest, not floor: a model whose epoch is a large share of the budget (ResNet-18, 5 min) would
    # otherwise lose up to a whole epoch; each run is off its budget by at most half an epoch either way
    return max(1, round(training.budget_min * 60 / seconds))


def train_overrides(task: str, canvas: int, model: str, training: Training, seed: int) -> dict:
    t = training
    out = {"epochs": epochs_for(task, canvas, model, t), "lr_schedule": "cosine", "seed": seed,
           "train_size": t.train_size, "batch_size": t.batch_size, "lr": t.lr, "val_size": t.val_size,
           "test_size": t.test_size, "device": t.device, "threads": t.threads, "precision": t.precision,
           "progress": "log"}
    if t.budget_min is not None:
        out["time_budget_s"] = 2 * 60 * t.budget_min  # a safety cap only: the epochs are the budget
    return out


def task_runs(study: TaskStudy) -> list[RunSpec]:
    return [RunSpec(name, name, study.task, seed, model_overrides(study.task, name, study.canvas),
                    train_overrides(study.task, study.canvas, name, study.training, seed))
            for name in study.models for seed in study.training.seeds]


def noise_runs(study: NoiseStudy) -> list[RunSpec]:
    task = "identification"
    runs = []
    for sigma, keep in study.levels():
        overrides = {**model_overrides(task, "saccade"), "proxy_noise": sigma, "proxy_keep": keep}
        for seed in study.training.seeds:
            runs.append(RunSpec(f"noise_{sigma:g}_keep_{keep:g}", "saccade", task, seed, overrides,
                                train_overrides(task, 100, "saccade", study.training, seed)))
    return runs


def run_folder(runs_dir: str | Path, spec: RunSpec) -> Path:
    return Path(runs_dir) / spec.folder()


def train_all(specs: list[RunSpec], runs_dir: str | Path, log: Callable[[str], None] = print) -> list[dict]:
    """Train (or resume, or reuse when finished) every run; return one summary per run, in order.

    A folder trained under other settings (a library default changed since) is never reused: it is set
    aside as ``<folder>.stale`` (kept, not deleted) and the run trains afresh."""
    from .experiment import stale_reason, train_model

    summaries = []
    for k, spec in enumerate(specs, 1):
        folder = run_folder(runs_dir, spec)
        reason = stale_reason(folder, spec.model, spec.task, spec.model_overrides, spec.train_overrides)
        if reason:
            aside = _free_name(folder.with_name(folder.name + ".stale"))
            folder.rename(aside)
            log(f"[{k}/{len(specs)}] {spec.label} seed {spec.seed}: {reason}; set aside as {aside.name}")
        done = folder / "metrics.json"
        if done.exists() and "test" in json.loads(done.read_text()):
            log(f"[{k}/{len(specs)}] {spec.label} seed {spec.seed}: finished earlier ({folder})")
            summary = json.loads(done.read_text())
        else:
            log(f"[{k}/{len(specs)}] {spec.label} seed {spec.seed}: training {spec.train_overrides['epochs']} epochs "
                f"→ {folder}")
            summary = train_model(spec.model, spec.task, folder, spec.model_overrides, spec.train_overrides)
        summaries.append(summary)
    return summaries


def _free_name(path: Path) -> Path:
    k, candidate = 1, path
    while candidate.exists():
        k += 1
        candidate = path.with_name(f"{path.name}{k}")
    return candidate


def count_parameters(spec: RunSpec) -> int:
    from . import baselines
    from .experiment import config_for

    model = baselines.build(spec.model, config_for(spec.model, spec.task, spec.model_overrides))
    return sum(p.numel() for p in model.parameters())


def collect(specs: list[RunSpec], runs_dir: str | Path, out_dir: str | Path) -> "pd.DataFrame":  # noqa: F821
    """One row per run (its test scores, epochs, minutes, seconds per epoch, parameters), written to
    ``out_dir/runs.csv``; each run's history.csv, metrics.json and config.json are copied to
    ``out_dir/runs/<folder>/`` so results/ keeps them."""
    import pandas as pd

    from .paths import atomic_path

    out_dir = Path(out_dir)
    rows = []
    for spec in specs:
        folder = run_folder(runs_dir, spec)
        metrics = json.loads((folder / "metrics.json").read_text())
        keep = out_dir / "runs" / spec.folder()
        for name in ("history.csv", "metrics.json", "config.json"):
            with atomic_path(keep / name) as tmp:
                shutil.copyfile(folder / name, tmp)
        test = metrics.get("test", {})
        rows.append({
            "label": spec.label, "model": spec.model, "task": spec.task, "seed": spec.seed,
            "test_accuracy": test.get("accuracy"), "test_n": test.get("n"),
            "step_accuracy": json.dumps(test.get("step_accuracy")) if "step_accuracy" in test else "",
            "hit_rate": json.dumps(test.get("hit_rate")) if "hit_rate" in test else "",
            "both_digits_hit": test.get("both_digits_hit"),
            "best_epoch": metrics["best_epoch"], "epochs_run": metrics["epochs_run"],
            "epochs_planned": spec.train_overrides["epochs"],
            "train_min": round(metrics["train_s"] / 60, 2),
            "val_min": round(metrics["val_s"] / 60, 2) if "val_s" in metrics else None,  # older runs: untimed
            "s_per_epoch": round(metrics["train_s"] / metrics["epochs_run"], 2),
            "parameters": count_parameters(spec),
            "device": metrics.get("run", {}).get("device", ""),
            "test_sha256": metrics.get("test_dataset", {}).get("sha256", ""),
            "run_folder": spec.folder(),
        })
    frame = pd.DataFrame(rows)
    with atomic_path(out_dir / "runs.csv") as tmp:
        frame.to_csv(tmp, index=False)
    return frame


def summarize(frame: "pd.DataFrame", by: str = "label") -> "pd.DataFrame":  # noqa: F821
    """Mean ± std of test exact match over seeds, per ``by``, in the frame's order."""
    import pandas as pd

    out = []
    for key, group in frame.groupby(by, sort=False):
        acc = group["test_accuracy"].astype(float) * 100
        out.append({by: key, "seeds": len(group), "test_exact_match_%": _mean_std(acc),
                    "mean": acc.mean(), "std": acc.std(ddof=1) if len(acc) > 1 else float("nan"),
                    "train_min": group["train_min"].mean(), "epochs": group["epochs_run"].mean(),
                    "s_per_epoch": group["s_per_epoch"].mean(), "parameters": int(group["parameters"].iloc[0])})
    return pd.DataFrame(out)


def _mean_std(values) -> str:
    values = list(values)
    if len(values) == 1:
        return f"{values[0]:.1f}"
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.1f} ± {std:.1f}"


def save_config(config, out_dir: str | Path, extra: dict | None = None) -> Path:
    """The resolved experiment config (and its run list) beside the results."""
    path = Path(out_dir) / "config.json"
    write_json(path, {"config": as_dict(config), **(extra or {})})
    return path


def save_table(frame, out_dir: str | Path, name: str) -> None:
    """``name``.csv and ``name``.md (pipe table) side by side, atomically."""
    from .paths import atomic_path

    out_dir = Path(out_dir)
    with atomic_path(out_dir / f"{name}.csv") as tmp:
        frame.to_csv(tmp, index=False)
    write_text_atomic(out_dir / f"{name}.md", frame.to_markdown(index=False) + "\n")


def default_out(experiment: str, out_dir: str = "") -> Path:
    from .paths import results_dir

    return Path(out_dir) if out_dir else results_dir() / experiment


def default_runs(experiment: str, profile: str, runs_dir: str = "") -> Path:
    from .paths import runs_dir as runs_root

    return Path(runs_dir) if runs_dir else runs_root() / "study" / profile / experiment



def histories(specs: list[RunSpec], runs_dir: str | Path, by_seed: bool = False) -> dict[str, list[dict]]:
    """label (with the seed when there are several, or ``by_seed``) → that run's history rows."""
    from .plots import read_history

    several = by_seed or len({s.seed for s in specs}) > 1
    return {(f"{s.label} (seed {s.seed})" if several else s.label): read_history(run_folder(runs_dir, s) / "history.csv")
            for s in specs}


def first_run(specs: list[RunSpec], model: str = "saccade") -> RunSpec | None:
    """The first run (lowest seed listed first) of ``model``, or None when the experiment has none."""
    return next((s for s in specs if s.model == model), None)


def load_trained(spec: RunSpec, runs_dir: str | Path):
    """The best-on-validation weights of a finished glimpse-model run, as (model, meta)."""
    from .inference import load_model

    return load_model(run_folder(runs_dir, spec) / "best.pt")


def datasets_used(frame) -> dict:
    """The test sets' content hashes that the runs in ``frame`` were scored on."""
    return {"test_sha256": sorted(set(frame["test_sha256"].dropna()))}


class NoiseExplorer:
    """The sliders' callback of 03: for (σ, keep) it shows the proxy at that noise, with the saccades and
    prediction of the model trained at the nearest level, on test image ``index``; it prints one line
    (a marker a browser test can read) and returns the prediction."""

    def __init__(self, models: dict[tuple[float, float], object], dataset, class_names: list[str]):
        if not models:
            raise ValueError("NoiseExplorer needs at least one trained model")
        self.models, self.dataset, self.class_names = models, dataset, class_names

    def nearest(self, sigma: float, keep: float) -> tuple[float, float]:
        return min(self.models, key=lambda level: abs(level[0] - sigma) + abs(level[1] - keep))

    def show(self, sigma: float = 0.0, keep: float = 1.0, index: int = 0, display: bool = True) -> dict:
        from .plots import noise_view

        if not 0 <= index < len(self.dataset):
            raise ValueError(f"index must be in [0, {len(self.dataset)}), got {index}")
        level = self.nearest(sigma, keep)
        item = self.dataset.as_dict(index, index + 1)
        fig, result = noise_view(self.models[level], item["image"][0], int(item["label"][0]), sigma, keep,
                                 self.class_names)
        result.update({"sigma": sigma, "keep": keep, "index": index, "model_level": list(level)})
        print(f"prediction {result['prediction']} ({result['probability']:.0%}) for test image {index}, "
              f"proxy σ={sigma:g} keep={keep:g}, model trained at σ={level[0]:g} keep={level[1]:g}")
        if display:
            import matplotlib.pyplot as plt

            plt.show()
        else:
            import matplotlib.pyplot as plt

            plt.close(fig)
        result["figure"] = fig
        return result

# ---------------------------------------------------------------------------------------- Table 1

EXPERIMENTS = {"sum": "01_two_digit_sum", ("identification", 100): "02_two_digit_identification_100",
               ("identification", LARGE_SIDE): "02_two_digit_identification_2528", ("fivek", LARGE_SIDE): "04_fivek"}
SYSTEM_NAMES = {"saccade": "variational saccading", "resnet18": "resnet18 - full image",
                "resnet18_tiles": "resnet18 - 144 crops", "ram": "RAM", "dram": "DRAM",
                "random_glimpses": "random glimpses (our classifier; beyond the paper)",
                "proxy_cnn": "proxy-only CNN (32² proxy alone; beyond the paper)"}


def _read_runs(results_root: Path, experiment: str):
    import pandas as pd

    path = results_root / experiment / "runs.csv"
    if not path.exists():
        return None, None
    config = results_root / experiment / "config.json"
    return pd.read_csv(path), (json.loads(config.read_text()) if config.exists() else {})


def _budget_text(cfg: dict, frame) -> str:
    training = cfg.get("config", {}).get("training", {})
    profile = cfg.get("config", {}).get("profile", "?")
    epochs = int(frame["epochs_run"].mean())
    epochs = f"{epochs} epoch{'s' if epochs != 1 else ''}"
    size = training.get("train_size", 20_000)
    if size != 20_000:
        epochs += f" of {size:,}"
    device = frame["device"].iloc[0] if "device" in frame and len(frame) else "?"
    if training.get("budget_min") is not None:  # the budget sized the epochs; say what they really took
        minutes = _run_minutes(frame).dropna()
        measured = f", {minutes.mean():.1f} min measured" if len(minutes) else ""
        return f"{profile}: {training['budget_min']:g} min on {device} ({epochs}{measured})"
    return f"{profile}: {epochs} on {device}"


def _run_minutes(frame) -> "pd.Series":  # noqa: F821
    """Each run's measured minutes: training, plus validation where the run timed it (the budget pays both)."""
    import pandas as pd

    if "train_min" not in frame:
        return pd.Series([], dtype=float)
    val = frame["val_min"].fillna(0.0) if "val_min" in frame else 0.0
    return frame["train_min"] + val


def tile_costs(results_root: Path) -> tuple[str, int | None]:
    """What Table 1 says for the 144-tile ResNet-18 on our CPU: its measured per-image costs from
    05_efficiency (batch 1, first side), and its parameter count."""
    path = results_root / "05_efficiency" / "efficiency_cpu.json"
    if not path.exists():
        return "not trained on CPU; costs: run 05_efficiency", None
    rows = json.loads(path.read_text())["rows"]
    naive = {r["phase"]: r for r in rows if r["variant"] == "tiles_naive" and r["source"] == "lazy"
             and r["batch"] == 1 and "error" not in r}
    if not {"infer", "train"} <= set(naive):
        return "not trained on CPU; costs: see 05_efficiency", None
    side = naive["infer"]["side"]
    text = (f"not trained on CPU: {naive['infer']['median_s']:.2f} s per {side}² image to infer, "
            f"{naive['train']['median_s']:.1f} s per training step (05_efficiency)")
    return text + _gpu_tiles_run(results_root), naive["infer"].get("parameters")


GPU_TILES_RUN = Path("baselines") / "identification_2528_resnet18_tiles_h100"  # scripts/gpu/tiles_run.sh


def _gpu_tiles_run(results_root: Path) -> str:
    """The short GPU run of the 144-tile ResNet-18, when results/ holds it: said beside the CPU costs,
    because it is the only time that model trained here (and it is far from the paper's budget)."""
    path = results_root / GPU_TILES_RUN / "metrics.json"
    if not path.exists():
        return ""
    metrics = json.loads(path.read_text())
    chance = 100 / twodigit.TASKS["identification"].n_classes
    return (f"; trained {metrics['train_s'] / 60:.0f} min on one GPU ({metrics['epochs_run']} short epochs): "
            f"{metrics['test']['accuracy'] * 100:.1f}% test (chance {chance:.1f}%; {GPU_TILES_RUN.as_posix()})")


def table1(results_root: str | Path | None = None) -> "pd.DataFrame":  # noqa: F821
    """Every cell of the paper's Table 1 with our number beside it (long form: one row per cell).

    Ours = mean ± std of test exact match over the seeds that ran, with the profile and budget it was
    obtained at; cells we did not run say why."""
    import pandas as pd

    from .paths import results_dir

    root = Path(results_root) if results_root else results_dir()
    columns = [("sum", 100), ("identification", 100), ("identification", LARGE_SIDE), ("fivek", LARGE_SIDE)]
    systems = {100: ["resnet18", "ram", "dram", "saccade", "random_glimpses", "proxy_cnn"],
               LARGE_SIDE: ["resnet18_tiles", "saccade"]}
    loaded = {key: _read_runs(root, name) for key, name in
              {("sum", 100): EXPERIMENTS["sum"], ("identification", 100): EXPERIMENTS[("identification", 100)],
               ("identification", LARGE_SIDE): EXPERIMENTS[("identification", LARGE_SIDE)],
               ("fivek", LARGE_SIDE): EXPERIMENTS[("fivek", LARGE_SIDE)]}.items()}
    fivek_frame, fivek_cfg = loaded[("fivek", LARGE_SIDE)]
    fivek_check_only = fivek_frame is not None and fivek_cfg.get("config", {}).get("miniature")
    rows = []
    for side in (LARGE_SIDE, 100):
        for system in systems[side]:
            for task, col_side in columns:
                if col_side != side:
                    continue
                paper = PAPER.get((task, side, system), "–")
                ours, budget, seeds, params, spe = "", "", 0, None, None
                if task == "fivek" and fivek_frame is None:
                    ours = "not run: FiveK not prepared (04_fivek says how to get it)"
                elif task == "fivek" and fivek_check_only:
                    ours = ("not run: FiveK is not on this machine (the synthetic miniature ran as a pipeline "
                            "check; no number)")
                elif system == "dram":
                    ours = "not reimplemented (quoted)"
                elif system == "resnet18_tiles" and task != "fivek":
                    ours, params = tile_costs(root)
                else:
                    frame, cfg = loaded[(task, side)]
                    part = None if frame is None else frame[frame["label"] == system]
                    if part is None:
                        ours = f"not run yet ({EXPERIMENTS[task if task == 'sum' else (task, side)]})"
                    elif part.empty and task == "fivek" and system == "resnet18_tiles":
                        ours = "not in this profile (needs a GPU at 2528²)"
                    elif part.empty:
                        ours = "not in this profile"
                    else:
                        acc = part["test_accuracy"].astype(float) * 100
                        ours, seeds = _mean_std(acc), len(part)
                        budget = _budget_text(cfg, part)
                        params, spe = int(part["parameters"].iloc[0]), float(part["s_per_epoch"].mean())
                rows.append({"image_size": f"{side}²", "system": SYSTEM_NAMES[system], "column": task,
                             "ours_%": ours, "seeds": seeds, "budget": budget, "paper_%": paper,
                             "parameters": params, "train_s_per_epoch": spe})
    return pd.DataFrame(rows)


def profile_time(results_root: str | Path | None = None) -> "pd.DataFrame":  # noqa: F821
    """What the study's experiments cost, read from their ``run.json`` and ``runs.csv``: per experiment,
    its training runs' measured minutes of training and validation (summed), and the notebook's wall
    minutes: over every sitting it took where the runner recorded them (``sittings``), else its last
    execution only (``sittings`` "last only": less than its training when it reused runs an earlier sitting
    finished). Then a total row."""
    import pandas as pd

    from .paths import results_dir
    from .reproduce import EXPERIMENTS as NOTEBOOKS

    root = Path(results_root) if results_root else results_dir()
    rows = []
    for exp in NOTEBOOKS:
        record_path = root / exp.name / "run.json"
        if exp.always or not record_path.exists():
            continue
        record = json.loads(record_path.read_text())
        runs = root / exp.name / "runs.csv"
        frame = pd.read_csv(runs) if runs.exists() else pd.DataFrame({"train_min": []})
        validation = frame["val_min"].sum() if "val_min" in frame else 0.0
        recorded = "sittings" in record
        wall = sum(s["wall_s"] for s in record["sittings"]) if recorded else record.get("wall_s", float("nan"))
        rows.append({"experiment": exp.name, "profile": record.get("profile"), "status": record.get("status"),
                     "runs": len(frame), "training_min": round(float(frame["train_min"].sum()), 1),
                     "validation_min": round(float(validation), 1),
                     "notebook_min": round(wall / 60, 1),
                     "sittings": str(len(record["sittings"])) if recorded else "last only"})
    columns = ["experiment", "profile", "status", "runs", "training_min", "validation_min", "notebook_min",
               "sittings"]
    table = pd.DataFrame(rows, columns=columns)
    if len(table):
        total = {"experiment": "total", "profile": ",".join(dict.fromkeys(table["profile"].astype(str))),
                 "status": "", "runs": int(table["runs"].sum()),
                 "training_min": round(float(table["training_min"].sum()), 1),
                 "validation_min": round(float(table["validation_min"].sum()), 1),
                 "notebook_min": round(float(table["notebook_min"].sum()), 1),
                 "sittings": "" if (table["sittings"] != "last only").all() else "some last only"}
        table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    return table


def table1_markdown(frame) -> str:
    """The paper's layout: a row per (image size, system), our number and the paper's per column."""
    names = {"sum": "sum", "identification": "identification", "fivek": "FiveK"}
    lines = []
    for side in (f"{LARGE_SIDE}²", "100²"):
        part = frame[frame["image_size"] == side]
        cols = list(dict.fromkeys(part["column"]))
        header = ["system", "params", "s/epoch (ours)"] + [f"{names[c]}: ours" for c in cols] + \
                 [f"{names[c]}: paper" for c in cols] + ["budget"]
        lines += [f"**{side}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for _, rows in part.groupby("system", sort=False):
            by_col = {r["column"]: r for _, r in rows.iterrows()}
            first = rows.iloc[0]
            params = next((f"{r['parameters'] / 1e6:.2f} M" for _, r in rows.iterrows()
                           if r["parameters"] == r["parameters"] and r["parameters"] is not None), "–")
            spe = next((f"{r['train_s_per_epoch']:.0f}" for _, r in rows.iterrows()
                        if r["train_s_per_epoch"] == r["train_s_per_epoch"] and r["train_s_per_epoch"] is not None), "–")
            ours = [str(by_col[c]["ours_%"]) if c in by_col else "" for c in cols]
            paper = [str(by_col[c]["paper_%"]) if c in by_col else "" for c in cols]
            budgets = "; ".join(dict.fromkeys(str(r["budget"]) for _, r in rows.iterrows() if r["budget"]))
            lines.append("| " + " | ".join([first["system"], params, spe, *ours, *paper, budgets or "–"]) + " |")
        lines.append("")
    return "\n".join(lines)


__all__ = ["PROFILES", "Training", "TaskStudy", "NoiseStudy", "EfficiencyStudy", "task_study", "noise_study",
           "efficiency_study", "profile_time", "task_runs", "noise_runs", "train_all", "collect", "summarize",
           "table1", "NoiseExplorer"]

"""The study declared in one place: the experiments the runner executes, their typed configs at each
profile, the recipes our model trains with, and the calibration that turns minutes into epochs.

Profiles (docs/study.md):
- ``smoke``: a few hundred canvases, one epoch; proves every notebook end to end in seconds (CI).
- ``cpu``: our 2-core machine. Each model gets the same budget in minutes (training and the validation
  after each epoch), turned into a fixed epoch count from measured seconds per epoch
  (``reference/epoch_seconds.json``), so a result does not depend on what else shares the CPU. The runs
  whose cells carry the study's claims (``claim_runs``) train with three seeds, the others with one, so
  that the whole profile fits in six hours (``planned_minutes``).
- ``paper``: a GPU, three seeds, the paper's sizes at 2528² (64² crops, batch 100); epochs fixed.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..config import apply_overrides
from ..paths import REPO_ROOT, data_dir
from ..recipes import LARGE_CROP, LARGE_SIDE, RECIPES, SMALL_GLIMPSES, SMALL_WINDOWS, TASK_RECIPE

PROFILES = ("smoke", "cpu", "paper")
COMMITTED_PROFILE = "cpu"  # the profile whose results live in results/; the others write results-<profile>/


# Seconds per epoch on our 2-core machine (2 threads, float32) per (task, side the model reads, model):
# training on 20,000 canvases and scoring the 2,000 validation canvases that follow each epoch.
VAL_SHARE = 0.1  # the most of each epoch's training time the validation after it may add (cpu profile)
CALIBRATION_FILE = REPO_ROOT / "reference" / "epoch_seconds.json"  # scripts/probes/epoch_seconds.py


def load_calibration(path: Path = CALIBRATION_FILE, column: str = "seconds_per_20k") -> dict[tuple[str, int, str], float]:
    """One column of the calibration: ``seconds_per_20k`` (training) or ``val_seconds_per_2k``."""
    if not path.exists():  # an installed copy without the reference folder: budgets need measured epochs
        return {}
    return {(p["task"], int(p["canvas"]), p["model"]): float(p[column])
            for p in json.loads(path.read_text())["probes"] if column in p}


EPOCH_SECONDS = load_calibration()
VAL_SECONDS = load_calibration(column="val_seconds_per_2k")


# ------------------------------------------------------------------------------------ configs

@dataclass(frozen=True)
class Training:
    """How each run of an experiment is trained (shared by every experiment's config)."""
    seeds: tuple[int, ...] = (0,)  # the claim runs' seeds; every other run trains with the first
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
    image_side: int = 100  # 100, or 2528: the models read a lazy 2528² upsample of the 100² canvas
    # our model, its controls with the same classifier (random, grid and oracle windows; no variational
    # parts), and the baselines
    models: tuple[str, ...] = ("saccade", "deterministic_glimpses", "random_glimpses", "grid_glimpses",
                               "oracle_glimpses", "proxy_cnn", "resnet18", "ram")
    training: Training = field(default_factory=Training)
    profile: str = "cpu"
    claim_runs: tuple[str, ...] | None = None  # runs trained at every seed (None: all of them)

    def __post_init__(self):
        from ..data import task_spec
        from ..registry import GLIMPSE_MODELS, spec

        task_spec(self.task)
        if self.image_side not in (100, LARGE_SIDE):
            raise ValueError(f"image_side must be 100 or {LARGE_SIDE}, got {self.image_side}")
        for name in self.models:
            spec(name)
            if self.image_side == LARGE_SIDE and name not in GLIMPSE_MODELS:
                raise ValueError(f"{name} does not train at {LARGE_SIDE}² on this study's budgets; "
                                 f"its costs are in 05_efficiency")

    def evaluation_set(self, split: str):
        """The task's fixed ``split`` set as this study's models read it (the lazy upsample at 2528²)."""
        from ..tasks import get_task

        return get_task(self.task, image_side=None if self.image_side == 100 else self.image_side).evaluation_set(split)


@dataclass(frozen=True)
class NoiseStudy:
    """03: our model on identification 100² with a noisy proxy (paper Fig. 5): one run per level,
    Gaussian σ at keep 1, then pixel keep fractions at σ 0; and the noise-free runs scored with a noisy
    proxy at every scored level, which needs no training."""
    sigmas: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0)
    keeps: tuple[float, ...] = (0.5, 0.25, 0.1)
    # the noise-free models are also scored with their proxy at each of these (the paper's eight levels)
    scored_levels: tuple[tuple[float, float], ...] = tuple((s, 1.0) for s in (0.0, 0.1, 0.25, 0.5, 1.0)) + \
        tuple((0.0, k) for k in (0.5, 0.25, 0.1))
    training: Training = field(default_factory=Training)
    profile: str = "cpu"
    claim_runs: tuple[str, ...] | None = None  # levels (run labels) trained at every seed (None: all)

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
        if self.data_root:
            return Path(self.data_root)
        return data_dir() / (f"fivek_miniature_{self.side}" if self.miniature else "fivek")


MEGAPIXEL_SIDE, NATIVE_SIDE = 1500, 1000  # Megapixel MNIST's canvas; native-size identification's (06)


@dataclass(frozen=True)
class ResolutionStudy:
    """06: where resolution matters. Megapixel MNIST (majority label, 1500²) and identification with
    native-size digits on a 1000² canvas: our model beside random, salient and oracle windows with the
    same classifier, attention sampling and the proxy-only CNN at our proxy side, and the proxy-only CNN
    swept over proxy sides (where does the proxy stop being enough?)."""
    tasks: tuple[str, ...] = ("megapixel_majority", "identification")
    # the cells variant first (the model that works here), then the paper's method at the same window sizes
    models: tuple[str, ...] = ("saccade_cells", "saccade", "random_glimpses", "salient_glimpses", "oracle_glimpses",
                               "attention_sampling", "proxy_cnn")
    proxy_sweep: tuple[int, ...] = (32, 64, 180)  # the proxy-only CNN at these sides too (128 is in models)
    recipe: dict = field(default_factory=lambda: dict(SMALL_GLIMPSES))  # the cells variant's and the controls'
    paper_recipe: dict = field(default_factory=lambda: dict(SMALL_WINDOWS))  # the paper's method's (saccade)
    data_root: str = ""  # Megapixel MNIST's stored sets ("" → data/megapixel_mnist; smoke: a miniature)
    training: Training = field(default_factory=lambda: Training(train_size=5_000, val_size=1_000))
    profile: str = "cpu"
    claim_runs: tuple[str, ...] | None = None  # run labels (``megapixel/saccade_cells``) trained at every seed
    task_budget_min: dict = field(default_factory=dict)  # task → minutes per run, where not training's
    # inference cost per image (batch 1, end to end from a PNG, each model in a fresh process): the runs
    # measured (None: all but the oracle, which needs the digits' boxes a file does not have), the repeats
    costed: tuple[str, ...] | None = None
    cost_repeats: int = 10

    def __post_init__(self):
        from ..registry import spec
        from ..tasks import check_name

        for task in self.tasks:
            check_name(task)
        for name in self.models:
            spec(name)

    def side(self, task: str) -> int:
        return MEGAPIXEL_SIDE if task.startswith("megapixel") else NATIVE_SIDE

    @property
    def proxy_size(self) -> int:
        return int(self.recipe.get("proxy_size", 32))

    def task_training(self, task: str) -> Training:
        """The training of ``task``'s runs: the study's, at the task's own budget where it has one."""
        minutes = self.task_budget_min.get(task)
        if minutes is None or self.training.budget_min is None:
            return self.training
        return dataclasses.replace(self.training, budget_min=float(minutes))


def seeds_for(study, label: str) -> tuple[int, ...]:
    """The seeds run ``label`` of ``study`` trains with: all of the study's for a claim run, else the first."""
    seeds = study.training.seeds
    return seeds if study.claim_runs is None or label in study.claim_runs else seeds[:1]


# ------------------------------------------------------------------------------------ profiles

SMOKE_TRAINING = Training(budget_min=None, epochs=1, train_size=256, batch_size=64, val_size=200, test_size=200)
PAPER_TRAINING = Training(seeds=(0, 1, 2), budget_min=None, epochs=100, device="cuda", threads=4)
CPU_SEEDS = (0, 1, 2)
# The cpu profile's minutes per run. It must fit in six hours on 2 cores (planned_minutes), so the
# budgets are what each question needs, not one figure for all: identification 100² and Megapixel MNIST
# carry the claims, with three seeds on our model, random windows and the proxy-only CNN; sum and
# native-size identification one seed; 2528² one longer run of our model (docs/study.md).
CPU_MINUTES = {("sum", 100): 4.0, ("identification", 100): 6.0, ("identification", LARGE_SIDE): 20.0,
               "noise": 3.0, "megapixel_majority": 7.0, "identification_native": 4.0}
# On 2 cores ResNet-18 at 100² takes 4.5 min per epoch: one epoch in these budgets measures nothing, so the
# cpu profile leaves it out (its costs are in 05_efficiency and its paper numbers in Table 1).
CPU_TASK_MODELS = tuple(m for m in TaskStudy.models if m != "resnet18")
CLAIMS = ("saccade", "random_glimpses", "proxy_cnn")  # what looking adds, over chance windows and the proxy
RESOLUTION_CLAIMS = ("saccade_cells", "random_glimpses", "proxy_cnn")  # 06: the model that finds the digits there


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    return profile


def _profile_training(profile: str, cpu_minutes: float) -> Training:
    return {"smoke": SMOKE_TRAINING, "cpu": Training(seeds=CPU_SEEDS, budget_min=cpu_minutes),
            "paper": PAPER_TRAINING}[check_profile(profile)]


def task_study(task: str, profile: str = "cpu", image_side: int = 100, **overrides) -> TaskStudy:
    """The 01/02 config for ``profile``; ``overrides`` set TaskStudy or Training fields by name."""
    training = _profile_training(profile, CPU_MINUTES.get((task, image_side), 15.0))
    if profile == "paper" and image_side == LARGE_SIDE:
        training = dataclasses.replace(training, epochs=40, batch_size=100)
    if profile == "cpu" and image_side == LARGE_SIDE:  # quarter-size epochs: the curve gets 4× the points
        training = dataclasses.replace(training, train_size=5_000)
    models = ("saccade",) if image_side == LARGE_SIDE else TaskStudy.models
    claims = None
    if profile == "cpu":
        models = ("saccade",) if image_side == LARGE_SIDE else CPU_TASK_MODELS
        claims = CLAIMS if (task, image_side) == ("identification", 100) else ()
    if profile == "smoke" and image_side == LARGE_SIDE:
        models = ("saccade", "random_glimpses")
    study = TaskStudy(task=task, image_side=image_side, models=models, training=training, profile=profile,
                      claim_runs=claims)
    return override(study, overrides)


def noise_study(profile: str = "cpu", **overrides) -> NoiseStudy:
    """03 at ``profile``. At cpu: the noise-free level and the two strongest noises (σ 1; 90% of the pixels
    dropped), three seeds each, in quarter-size epochs (4× the points on each curve); the notebook also
    scores the noise-free models on every level of the paper's figure."""
    training = _profile_training(profile, CPU_MINUTES["noise"])
    study = NoiseStudy(training=training, profile=profile)
    if profile == "cpu":
        study = dataclasses.replace(study, sigmas=(0.0, 1.0), keeps=(0.1,),
                                    training=dataclasses.replace(training, train_size=5_000))
    if profile == "smoke":
        study = dataclasses.replace(study, sigmas=(0.0, 0.5), keeps=(0.25,))
    return override(study, overrides)


def resolution_study(profile: str = "cpu", **overrides) -> ResolutionStudy:
    """06 at ``profile``: smoke trains one epoch on a miniature of Megapixel MNIST (generated, 64 training
    canvases) and on 256 native-size identification canvases. A ``budget_min`` given here applies to
    both tasks."""
    training = dataclasses.replace(_profile_training(profile, CPU_MINUTES["megapixel_majority"]),
                                   train_size=5_000, val_size=1_000)
    study = ResolutionStudy(training=training, profile=profile)
    if profile == "cpu":
        study = dataclasses.replace(study, claim_runs=tuple(f"megapixel/{m}" for m in RESOLUTION_CLAIMS),
                                    task_budget_min={"identification": CPU_MINUTES["identification_native"]})
    if profile == "smoke":
        study = dataclasses.replace(study, proxy_sweep=(32,), data_root=str(data_dir() / "megapixel_mnist_miniature"),
                                    costed=("saccade_cells", "proxy_cnn"), cost_repeats=1,
                                    training=dataclasses.replace(SMOKE_TRAINING, batch_size=16, val_size=32,
                                                                 test_size=32))
    if overrides.get("budget_min"):
        study = dataclasses.replace(study, task_budget_min={})
    return override(study, overrides)


def efficiency_study(profile: str = "cpu", **overrides) -> EfficiencyStudy:
    study = EfficiencyStudy(profile=check_profile(profile))
    if profile == "smoke":
        study = dataclasses.replace(study, sides=(128,), repeats=1, quick=True)
    if profile == "paper":
        study = dataclasses.replace(study, device="cuda")
    return override(study, overrides)


def fivek_study(profile: str = "cpu", **overrides) -> FiveKStudy:
    """FiveK at ``profile``: smoke trains one epoch on the miniature at 256² (tiles of 128); cpu trains our
    model alone on the prepared FiveK (one seed, 20 epochs: the 144-tile baseline needs a GPU at 2528²);
    paper trains both, three seeds, on a GPU."""
    check_profile(profile)
    if profile == "smoke":
        study = FiveKStudy(side=256, tile=128, crop=32, miniature=True, profile=profile,
                           training=Training(budget_min=None, epochs=1, batch_size=16, device="cpu"))
    elif profile == "cpu":
        study = FiveKStudy(models=("saccade",), profile=profile,
                           training=Training(budget_min=None, epochs=20, batch_size=32, device="cpu"))
    else:
        study = FiveKStudy(training=Training(seeds=(0, 1, 2), budget_min=None, epochs=60, batch_size=32,
                                             device="cuda"), profile=profile)
    return override(study, overrides)


def override(config, overrides: dict):
    """Notebook parameters onto an experiment config: a name sets a field of the config or of its
    ``training``; None or "" leaves it as the profile has it (papermill parameters default to that).
    A budget replaces the profile's fixed epochs, and the other way round."""
    training_fields = {f.name for f in dataclasses.fields(Training)}
    own = {f.name for f in dataclasses.fields(config)} - {"training"}
    dotted = {}
    for key, value in overrides.items():
        if value is None or value == "":
            continue
        if key in own:
            dotted[key] = value
        elif key in training_fields:
            dotted[f"training.{key}"] = value
        else:
            valid = ", ".join(sorted(own | training_fields))
            raise ValueError(f"unknown setting {key!r} for {type(config).__name__}; valid: {valid}")
    if "training.budget_min" in dotted and "training.epochs" not in dotted:
        dotted["training.epochs"] = None
    if "training.epochs" in dotted and "training.budget_min" not in dotted:
        dotted["training.budget_min"] = None
    return apply_overrides(config, dotted)


# ------------------------------------------------------------------------------------ the experiments

@dataclass(frozen=True)
class Experiment:
    name: str  # results/<name>/
    notebook: str  # in notebooks/
    parameters: dict = field(default_factory=dict)  # fixed for this experiment (e.g. the image side)
    publish: tuple[str, ...] = ()  # files of its output also copied to results/ itself
    always: bool = False  # rerun even when its parameters match (the summary reads the others)
    # profile → None when the experiment can run, else why not (missing data): reported as skipped
    requires: Callable[[str], str | None] | None = None


def fivek_available(profile: str) -> str | None:
    """None when 04_fivek can run at ``profile``; else why not (the runner reports it as skipped)."""
    if profile == "smoke":
        return None  # the miniature is generated
    from ..fivek import HOW_TO_GET, FiveKError, check_prepared

    try:
        check_prepared(fivek_study(profile).root())
    except FiveKError:
        return HOW_TO_GET
    return None


def dataset_name(task: str) -> str:
    """06's short name of a task's data: ``megapixel`` or ``id1000``."""
    return "megapixel" if task.startswith("megapixel") else f"id{NATIVE_SIDE}"


def resolution_label(task: str, name: str) -> str:
    """A run's label in 06: the data set and the model (``megapixel/saccade``, ``id1000/proxy_cnn_64``)."""
    return f"{dataset_name(task)}/{name}"


def resolution_entries(study: ResolutionStudy) -> list[tuple[str, int, str, str, dict]]:
    """(task, canvas side, run name, registry model, model settings) of 06: per task, each model (the
    glimpse models with the study's recipe, the proxy-only CNN at the recipe's proxy side), then the
    proxy-only CNN at the sweep's other sides."""
    from .. import megapixel
    from ..registry import GLIMPSE_MODELS

    entries = []
    for task in study.tasks:
        side = study.side(task)
        for name in study.models:
            if name in GLIMPSE_MODELS:
                settings = dict(study.paper_recipe if name == "saccade" else study.recipe)
                if name == "oracle_glimpses" and task.startswith("megapixel"):
                    # one window per digit: a sixth would revisit one and skew the count the majority rests on
                    settings["glimpses"] = megapixel.DIGITS
            elif name == "proxy_cnn":
                settings = {"proxy_size": study.proxy_size}
            elif name == "attention_sampling":
                settings = _attention_view(side)
            else:
                settings = {}
            entries.append((task, side, name, name, settings))
        entries += [(task, side, f"proxy_cnn_{size}", "proxy_cnn", {"proxy_size": size})
                    for size in study.proxy_sweep if size != study.proxy_size]
    return entries


def _attention_view(side: int) -> dict:
    """Attention sampling as its paper set it up on Megapixel MNIST, scaled to ``side``: a view of 12% of
    the side, patches of 50 pixels."""
    return {"view_size": round(0.12 * side / 2) * 2, "patch_scale": 50 / side}


def resolution_calibrated(profile: str) -> str | None:
    """None when 06 can run at ``profile``: its runs' budgets need their measured epoch times."""
    if profile != "cpu":
        return None
    missing = [name for task, side, name, _, _ in resolution_entries(resolution_study(profile))
               if (task, side, name) not in EPOCH_SECONDS]
    if missing:
        return (f"no measured epoch times for {', '.join(missing[:3])}{'…' if len(missing) > 3 else ''}: "
                "run `python scripts/probes/epoch_seconds.py --sides 1500 1000`")
    return None


EXPERIMENTS = (
    Experiment("01_two_digit_sum", "01_two_digit_sum.ipynb"),
    Experiment("02_two_digit_identification_100", "02_two_digit_identification.ipynb", {"image_side": 100}),
    Experiment("02_two_digit_identification_2528", "02_two_digit_identification.ipynb", {"image_side": 2528}),
    Experiment("03_noisy_proxy_ablation", "03_noisy_proxy_ablation.ipynb"),
    Experiment("04_fivek", "04_fivek.ipynb", requires=fivek_available),
    Experiment("05_efficiency", "05_efficiency.ipynb"),
    Experiment("06_resolution", "06_resolution.ipynb", requires=resolution_calibrated),
    Experiment("00_summary", "00_summary.ipynb",
               publish=("table1.md", "table1.csv", "figure4_saccades.png", "figure5_noisy_proxy.png",
                        "accuracy_vs_cost.png", "profile_time.md"), always=True),
)
TABLE1_EXPERIMENTS = {("sum", 100): "01_two_digit_sum", ("identification", 100): "02_two_digit_identification_100",
                      ("identification", LARGE_SIDE): "02_two_digit_identification_2528",
                      ("fivek", LARGE_SIDE): "04_fivek"}


def settings_fingerprint(profile: str = "cpu") -> str:
    """A hash of the library settings every experiment's runs resolve from: the recipes, the calibration,
    each registered model's default config per task, the training defaults and the profile's experiment
    configs. The runner records it, so an experiment is not skipped as up to date after any changed."""
    import hashlib

    from ..config import to_dict
    from ..registry import REGISTRY, config_for
    from ..tasks import n_classes
    from ..train import TrainConfig

    studies = {f"{task}/{side}": to_dict(task_study(task, profile, side))
               for task, side in (("sum", 100), ("identification", 100), ("identification", LARGE_SIDE))}
    studies.update(noise=to_dict(noise_study(profile)), efficiency=to_dict(efficiency_study(profile)),
                   fivek=to_dict(fivek_study(profile)), resolution=to_dict(resolution_study(profile)))
    payload = {"recipes": RECIPES, "task_recipe": TASK_RECIPE,
               "epoch_seconds": sorted([*key, value] for key, value in EPOCH_SECONDS.items()),
               "val_seconds": sorted([*key, value] for key, value in VAL_SECONDS.items()),
               "models": {f"{name}/{task}": to_dict(config_for(name, n_classes(task)))
                          for name in REGISTRY for task in ("sum", "identification")},
               "train": to_dict(TrainConfig()), "studies": studies}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

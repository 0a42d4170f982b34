"""The study's experiments as typed configs (one per kind of experiment), the calibration that turns
minutes into epochs, and what experiment 06 trains. Each profile's values are in ``profiles``; the list
of experiments the runner executes is in ``plan``.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..paths import REPO_ROOT, data_dir
from ..recipes import LARGE_CROP, LARGE_SIDE, SMALL_GLIMPSES, SMALL_WINDOWS
from ..config import apply_overrides
from ..baselines.ips import ENCODERS
from ..datasets import megapixel
from ..datasets.twodigit import task_spec
from ..names import check_task as check_name
from ..names import MEGAPIXEL_LABELS, megapixel_decoys
from ..registry import GLIMPSE_MODELS, spec
from ..tasks import get_task
from ..train_config import TrainConfig

PROFILES = ("smoke", "cpu", "plateau", "paper")
COMMITTED_PROFILE = "cpu"  # the profile whose results live in results/ itself
# Where the committed profiles' results live, under results/: cpu at its top, plateau in results/plateau/.
# The others write a git-ignored results-<profile>/.
COMMITTED_FOLDERS = {"cpu": "", "plateau": "plateau"}


# Seconds per epoch on our 2-core machine (2 threads, float32) per (task, side the model reads, model):
# training on 20,000 canvases and scoring the 2,000 validation canvases that follow each epoch.
VAL_SHARE = 0.1  # the most of each epoch's training time the validation after it may add (cpu profile)


def clock_cap_s(budget_min: float) -> float:
    """The training seconds after which a run stops however busy the machine: three times its budget. A
    safety cap only: the budget itself is an epoch count (from measured seconds per epoch), so a run stops
    at the same epoch on any machine up to three times slower than the one that measured them, unless the
    clock runs away."""
    return 3 * 60 * budget_min
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

# What every run of the study sets on TrainConfig (the loop's one config): a tenth of the validation set
# after each epoch, 2 threads, a cosine schedule over the run's epochs, a line per epoch.
STUDY_TRAIN = {"val_size": 2_000, "threads": 2, "lr_schedule": "cosine", "progress": "log"}


@dataclass(frozen=True)
class Training:
    """How each run of an experiment is trained: its seeds, its budget (minutes per run, or fixed epochs),
    and ``train``, settings of ``TrainConfig`` on top of the study's own (``STUDY_TRAIN``); every other
    setting is TrainConfig's default. A name means one thing from the notebook's parameters to the loop."""
    seeds: tuple[int, ...] = (0,)  # the claim runs' seeds; every other run trains with the first
    budget_min: float | None = 15.0  # per run; sizes the epochs from EPOCH_SECONDS (None: use `epochs`)
    epochs: int | None = None  # fixed epochs (when budget_min is None)
    train: dict = field(default_factory=dict)  # TrainConfig settings, e.g. {"train_size": 5000}

    def __post_init__(self):
        if (self.budget_min is None) == (self.epochs is None):
            raise ValueError("give either budget_min (minutes per run) or epochs, not both")
        if not self.seeds:
            raise ValueError("need at least one seed")
        self.config()  # refuses a setting TrainConfig does not have, or a value it does not take

    def config(self):
        """The TrainConfig every run of this training starts from (epochs and seed are each run's)."""
        return apply_overrides(TrainConfig(), {**STUDY_TRAIN, **self.train})

    def with_train(self, **settings) -> "Training":
        return dataclasses.replace(self, train={**self.train, **settings})


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
    # model → TrainConfig settings on top of training.train for that model's runs; "epochs" there replaces
    # the training's epochs (the plateau profile's cap per model)
    model_train: dict = field(default_factory=dict)

    def __post_init__(self):
        task_spec(self.task)
        if self.image_side not in (100, LARGE_SIDE):
            raise ValueError(f"image_side must be 100 or {LARGE_SIDE}, got {self.image_side}")
        for name in self.models:
            spec(name)
            if self.image_side == LARGE_SIDE and name not in GLIMPSE_MODELS:
                raise ValueError(f"{name} does not train at {LARGE_SIDE}² on this study's budgets; "
                                 f"its costs are in 05_efficiency")
        for name in self.models:
            self.model_training(name)  # refuses a setting TrainConfig does not take

    def model_training(self, name: str) -> Training:
        """The training of model ``name``'s runs: the study's, with the model's own settings on top."""
        settings = dict(self.model_train.get(name, {}))
        epochs = settings.pop("epochs", None)
        training = self.training.with_train(**settings) if settings else self.training
        return dataclasses.replace(training, budget_min=None, epochs=int(epochs)) if epochs else training

    def evaluation_set(self, split: str):
        """The task's fixed ``split`` set as this study's models read it (the lazy upsample at 2528²)."""
        return get_task(self.task, image_side=self.image_side).evaluation_set(split)


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
    training: Training = field(default_factory=lambda: Training(budget_min=None, epochs=60,
                                                                train={"batch_size": 32, "device": "cuda"}))
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
    # settings on top of every glimpse model's recipe on a Megapixel task whose label is the majority digit
    # (recipes.MAJORITY_READER: a vote of 48² crops); {}: the recipes' own reader on every task
    majority_reader: dict = field(default_factory=dict)
    data_root: str = ""  # Megapixel MNIST's stored sets ("" → data/megapixel_mnist; smoke: a miniature); a
    # decoy set's lie beside it, ROOT_blobs and ROOT_lookalikes ("" → data/megapixel_mnist_blobs, …)
    training: Training = field(default_factory=lambda: Training(train={"train_size": 5_000, "val_size": 1_000}))
    profile: str = "cpu"
    claim_runs: tuple[str, ...] | None = None  # run labels (``megapixel/saccade_cells``) trained at every seed
    task_budget_min: dict = field(default_factory=dict)  # task → minutes per run, where not training's
    task_models: dict = field(default_factory=dict)  # task → the models it trains, where not ``models``
    # registry model → TrainConfig settings of its runs on top of training's: for a model whose epoch is a
    # large share of the budget, a smaller ``train_size`` (a fresh seeded draw of the training split each
    # epoch), so that its budget pays for whole epochs as the others' does
    model_train: dict = field(default_factory=dict)
    # Megapixel MNIST's other labels (max, top, multi), each read by label_models at one seed: the four labels
    # IPS reports side by side (majority is in tasks)
    labels: tuple[str, ...] = ()
    label_models: tuple[str, ...] = ("saccade_cells", "ips")
    # IPS's patch encoder (its runs are named after it: ips_small): its paper's 50-px patches, memory and
    # iteration with the "small" encoder, since the paper's ResNet-18 stages ("resnet18_2stages") cost 22
    # times its FLOPs on every patch IPS scans and re-encodes (records/ips/encoders.json)
    ips_encoder: str = "small"
    # inference cost per image (batch 1, end to end from a PNG, each model in a fresh process): the runs
    # measured (None: all but the oracle, which needs the digits' boxes a file does not have), the repeats
    costed: tuple[str, ...] | None = None
    cost_repeats: int = 10

    def __post_init__(self):
        for task in self.tasks:
            check_name(task)
        for task, models in self.task_models.items():
            if task not in self.tasks:
                raise ValueError(f"task_models names {task!r}, which is not one of the study's tasks "
                                 f"({', '.join(self.tasks)}): add it to tasks or remove it from task_models")
        for name in (*self.models, *self.label_models, *(m for models in self.task_models.values() for m in models)):
            spec(name)
        for name in self.model_train:
            spec(name)
            self.run_training(self.tasks[0], name)  # refuses a setting TrainConfig does not take
        if self.ips_encoder not in ENCODERS:
            raise ValueError(f"unknown IPS encoder {self.ips_encoder!r} in ips_encoder; valid: {', '.join(ENCODERS)}")
        others = MEGAPIXEL_LABELS[1:]
        for label in self.labels:
            if label not in others:
                raise ValueError(f"unknown Megapixel MNIST label {label!r} in labels; valid: {', '.join(others)} "
                                 "(majority is a task of its own)")

    def run_name(self, model: str) -> str:
        """A model's run name in 06: its registry name, IPS's with its encoder (``ips_small``)."""
        return f"ips_{self.ips_encoder}" if model == "ips" else model

    def models_for(self, task: str) -> tuple[str, ...]:
        """The models ``task`` trains: its own in ``task_models``, else the study's."""
        return tuple(self.task_models.get(task, self.models))

    def side(self, task: str) -> int:
        return MEGAPIXEL_SIDE if task.startswith("megapixel") else NATIVE_SIDE

    def megapixel_root(self, task: str) -> str | None:
        """Where ``task``'s stored Megapixel sets are: the study's root, or its decoy set's beside it (None:
        the default folder)."""
        decoys = megapixel_decoys(task)
        if not self.data_root:
            return None
        return self.data_root if decoys == "none" else f"{self.data_root}_{decoys}"

    @property
    def proxy_size(self) -> int:
        return int(self.recipe.get("proxy_size", 32))

    def task_training(self, task: str) -> Training:
        """The training of ``task``'s runs: the study's, at the task's own budget where it has one."""
        minutes = self.task_budget_min.get(task)
        if minutes is None or self.training.budget_min is None:
            return self.training
        return dataclasses.replace(self.training, budget_min=float(minutes))

    def run_training(self, task: str, model: str | None) -> Training:
        """The training of registry model ``model``'s runs on ``task``: the task's, with the model's own
        settings (``model_train``) on top (None: the task's alone)."""
        settings = self.model_train.get(model)
        training = self.task_training(task)
        return training.with_train(**settings) if settings else training


def seeds_for(study, label: str) -> tuple[int, ...]:
    """The seeds run ``label`` of ``study`` trains with: all of the study's for a claim run, else the first."""
    seeds = study.training.seeds
    return seeds if study.claim_runs is None or label in study.claim_runs else seeds[:1]


def dataset_name(task: str) -> str:
    """06's short name of a task's data: ``megapixel`` (``megapixel_blobs``, ``megapixel_lookalikes`` with
    decoys; ``megapixel_max`` and so on for a label other than the majority) or ``id1000``."""
    if not task.startswith("megapixel"):
        return f"id{NATIVE_SIDE}"
    decoys, label = megapixel_decoys(task), task.rpartition("_")[2]
    name = "megapixel" if decoys == "none" else f"megapixel_{decoys}"
    return name if label == "majority" else f"{name}_{label}"


def resolution_label(task: str, name: str) -> str:
    """A run's label in 06: the data set and the model (``megapixel/saccade``, ``id1000/proxy_cnn_64``)."""
    return f"{dataset_name(task)}/{name}"


def resolution_entries(study: ResolutionStudy) -> list[tuple[str, int, str, str, dict]]:
    """(task, canvas side, run name, registry model, model settings) of 06: per task, each model (the
    glimpse models with the study's recipe, the proxy-only CNN at the recipe's proxy side), then the
    proxy-only CNN at the sweep's other sides; then Megapixel MNIST's other labels, each read by the
    label models."""
    entries = []
    for task in study.tasks:
        side = study.side(task)
        entries += [(task, side, study.run_name(model), model, _settings(study, task, side, model))
                    for model in study.models_for(task)]
        if megapixel_decoys(task) == "none":  # the proxy's sweep asks about resolution, not decoys
            entries += [(task, side, f"proxy_cnn_{size}", "proxy_cnn", {"proxy_size": size})
                        for size in study.proxy_sweep if size != study.proxy_size]
    for label in study.labels:
        task = f"megapixel_{label}"
        entries += [(task, MEGAPIXEL_SIDE, study.run_name(model), model, _settings(study, task, MEGAPIXEL_SIDE, model))
                    for model in study.label_models]
    return entries


def _settings(study: ResolutionStudy, task: str, side: int, name: str) -> dict:
    """The model settings of registry model ``name`` on ``task`` in 06."""
    if name in GLIMPSE_MODELS:
        settings = dict(study.paper_recipe if name == "saccade" else study.recipe)
        if name == "oracle_glimpses" and task.startswith("megapixel"):
            # one window per digit: a sixth would revisit one and skew the count the majority rests on
            settings["glimpses"] = megapixel.DIGITS
        if task.startswith("megapixel") and task.endswith("_majority"):
            settings.update(study.majority_reader)
        return settings
    if name == "proxy_cnn":
        return {"proxy_size": study.proxy_size}
    if name == "attention_sampling":
        return _attention_view(side)
    if name == "ips":
        return {"encoder": study.ips_encoder}
    return {}


def _attention_view(side: int) -> dict:
    """Attention sampling as its paper set it up on Megapixel MNIST, scaled to ``side``: a view of 12% of
    the side, patches of 50 pixels."""
    return {"view_size": round(0.12 * side / 2) * 2, "patch_scale": 50 / side}

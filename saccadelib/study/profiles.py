"""The study's profiles (docs/study.md): each experiment's config at ``smoke``, ``cpu`` or ``paper``.

- ``smoke``: a few hundred canvases, one epoch; proves every notebook end to end in seconds (CI).
- ``cpu``: our 2-core machine. Each model gets the same budget in minutes (training and the validation
  after each epoch), turned into a fixed epoch count from measured seconds per epoch
  (``reference/epoch_seconds.json``), so a result does not depend on what else shares the CPU. The runs
  whose cells carry the study's claims (``claim_runs``) train with three seeds, the others with one, so
  that the whole profile fits in six hours (``planned_minutes``).
- ``plateau``: Table 1's cells (01, 02) each trained until validation accuracy stops rising: a learning
  rate divided by 10 at each plateau, twice, then a stop at the next, or a cap in minutes per model
  (``PLATEAU_CAP_MIN``); three seeds of the paper's method on identification 100², one run elsewhere.
- ``paper``: a GPU, three seeds, the paper's sizes at 2528² (64² crops, batch 100); epochs fixed.
"""
from __future__ import annotations

import dataclasses

from ..config import apply_overrides
from ..names import MEGAPIXEL_LABELS
from ..paths import data_dir
from ..recipes import LARGE_SIDE
from .experiments import (EPOCH_SECONDS, PROFILES, EfficiencyStudy, FiveKStudy, NoiseStudy, ResolutionStudy, TaskStudy,
                          Training)
from ..train_config import TrainConfig

SMOKE_TRAINING = Training(budget_min=None, epochs=1,
                          train={"train_size": 256, "batch_size": 64, "val_size": 200, "test_size": 200})
PAPER_TRAINING = Training(seeds=(0, 1, 2), budget_min=None, epochs=100, train={"device": "cuda", "threads": 4})
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
# 06 with decoys at the smoke profile: one decoy set (the other takes the same path), so that the notebook's
# cells stay within the smoke test's few minutes each
SMOKE_DECOY_TASKS = ("megapixel_blobs_majority",)


# The plateau profile. Validation on 5,000 canvases after each epoch of 20,000. A plateau is 30 epochs
# (600,000 canvases) whose least-squares line of validation accuracy does not rise by 0.2 points beyond one
# standard error (schedule.plateaus, test "slope"): validation swings by 0.5-3 points from one epoch to the
# next while the policy moves, and the earlier rule (10 epochs without a rise of 0.2 points above the best)
# cut every committed run's first rate while its curve still rose by 0.8-11 points per 10 epochs
# (records/plateau_rule/replay.md; on simulated curves with 0.6 points of noise it cuts one rising 0.6
# points per 10 epochs at epoch 21, the slope rule in 3% of runs).
PLATEAU_TRAIN = {"lr_schedule": "plateau", "plateau_epochs": 30, "plateau_test": "slope", "plateau_margin": 0.002,
                 "lr_decays": 2, "val_size": 5_000}
# The cap: minutes of training on our 2 cores after which a run stops still rising, turned into epochs
# from the measured seconds per epoch (reference/epoch_seconds.json), so that a run stops at the same
# epoch however busy the machine and on any device; validation comes on top (the plan counts it). The
# paper's method gets two hours per run (its committed runs' first rate still rose at epoch 31-63, and
# three rates need 90 epochs at the least); oracle windows one (those 90 epochs in well under an hour);
# RAM an hour and a half (with its study settings it rises by about 3 points per 10 epochs of 9 s at its
# first rate, from chance to 52% in 123 epochs on sum); the proxy-only CNN learns in minutes. At every cap
# the whole profile would take about 17 hours (`reproduce --profile plateau --plan`); the caps are bounds,
# the runs stop at their plateaus well before. ResNet-18 on the whole image is left out: two hours stopped
# it at 27 epochs still rising, so its Table 1 cells at the plateau are its runs on one GPU without the cap
# (records/baselines/resnet18_plateau_gpu), as the cpu profile leaves it to them too.
PLATEAU_CAP_MIN = {"saccade": 120.0, "ram": 90.0, "oracle_glimpses": 60.0, "proxy_cnn": 15.0}
PLATEAU_MODELS = tuple(PLATEAU_CAP_MIN)
# The paper's method on identification 100², the cell the cpu profile's claims rest on, trains three seeds.
PLATEAU_SEEDS = (0, 1, 2)


def plateau_cap_epochs(task: str, image_side: int, model: str) -> int:
    """The epochs of 20,000 canvases ``model``'s cap pays for on our machine."""
    key = (task, image_side, model)
    if key not in EPOCH_SECONDS:
        raise ValueError(f"no measured epoch time for {model} on {task} at {image_side}²: measure it with "
                         "scripts/probes/epoch_seconds.py (reference/epoch_seconds.json)")
    return max(1, round(60 * PLATEAU_CAP_MIN[model] / EPOCH_SECONDS[key]))


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    return profile


def _beyond_table1(profile: str) -> str:
    """``profile`` for an experiment outside Table 1's cells, which the plateau profile does not train."""
    if check_profile(profile) == "plateau":
        raise ValueError("the plateau profile trains Table 1's cells alone (01 and 02): use the cpu profile "
                         "for this experiment")
    return profile


def _profile_training(profile: str, cpu_minutes: float) -> Training:
    return {"smoke": SMOKE_TRAINING, "cpu": Training(seeds=CPU_SEEDS, budget_min=cpu_minutes),
            "paper": PAPER_TRAINING}[_beyond_table1(profile)]


def _plateau_study(task: str, image_side: int) -> TaskStudy:
    models = ("saccade",) if image_side == LARGE_SIDE else PLATEAU_MODELS
    # The cap is in epochs alone. A clock cap (the cpu profile's safety, at three times a run's minutes) would
    # stop a run sooner wherever its epochs run more than three times slower than measured, as they do two
    # side by side on one thread each on a slower day, and a run's end would then depend on the machine.
    caps = {name: {"epochs": plateau_cap_epochs(task, image_side, name)} for name in models}
    # three seeds of the paper's method on identification 100², the cell the cpu profile's claims rest on
    seeds = PLATEAU_SEEDS if (task, image_side) == ("identification", 100) else (0,)
    return TaskStudy(task=task, image_side=image_side, models=models, profile="plateau", claim_runs=("saccade",),
                     training=Training(seeds=seeds, budget_min=None, epochs=1, train=PLATEAU_TRAIN), model_train=caps)


def task_study(task: str, profile: str = "cpu", image_side: int = 100, **overrides) -> TaskStudy:
    """The 01/02 config for ``profile``; ``overrides`` set TaskStudy or Training fields by name."""
    if check_profile(profile) == "plateau":
        return override(_plateau_study(task, image_side), overrides)
    training = _profile_training(profile, CPU_MINUTES.get((task, image_side), 15.0))
    if profile == "paper" and image_side == LARGE_SIDE:
        training = dataclasses.replace(training.with_train(batch_size=100), epochs=40)
    if profile == "cpu" and image_side == LARGE_SIDE:  # quarter-size epochs: the curve gets 4× the points
        training = training.with_train(train_size=5_000)
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
                                    training=training.with_train(train_size=5_000))
    if profile == "smoke":
        study = dataclasses.replace(study, sigmas=(0.0, 0.5), keeps=(0.25,))
    return override(study, overrides)


def resolution_study(profile: str = "cpu", **overrides) -> ResolutionStudy:
    """06 at ``profile``: smoke trains one epoch on a miniature of Megapixel MNIST (generated, 64 training
    canvases) and on 256 native-size identification canvases. A ``budget_min`` given here applies to
    both tasks."""
    training = _profile_training(profile, CPU_MINUTES["megapixel_majority"]).with_train(train_size=5_000,
                                                                                        val_size=1_000)
    study = ResolutionStudy(training=training, profile=profile)
    if profile == "cpu":
        study = dataclasses.replace(study, claim_runs=tuple(f"megapixel/{m}" for m in RESOLUTION_CLAIMS),
                                    task_budget_min={"identification": CPU_MINUTES["identification_native"]})
    if profile == "smoke":
        # every kind of 06 cell, decoys, IPS and the other labels included, that the cpu profile may take up
        # once its epoch times are measured (scripts/probes/epoch_seconds.py --sides 1500 1000)
        study = dataclasses.replace(study, tasks=(*study.tasks, *SMOKE_DECOY_TASKS), models=(*study.models, "ips"),
                                    labels=MEGAPIXEL_LABELS[1:], proxy_sweep=(32,),
                                    data_root=str(data_dir() / "megapixel_mnist_miniature"),
                                    costed=("saccade_cells", "proxy_cnn"), cost_repeats=1,
                                    training=SMOKE_TRAINING.with_train(batch_size=16, val_size=32, test_size=32))
    if overrides.get("budget_min"):
        study = dataclasses.replace(study, task_budget_min={})
    return override(study, overrides)


def efficiency_study(profile: str = "cpu", **overrides) -> EfficiencyStudy:
    study = EfficiencyStudy(profile=_beyond_table1(profile))
    if profile == "smoke":
        study = dataclasses.replace(study, sides=(128,), repeats=1, quick=True)
    if profile == "paper":
        study = dataclasses.replace(study, device="cuda")
    return override(study, overrides)


def fivek_study(profile: str = "cpu", **overrides) -> FiveKStudy:
    """FiveK at ``profile``: smoke trains one epoch on the miniature at 256² (tiles of 128); cpu trains our
    model alone on the prepared FiveK (one seed, 20 epochs: the 144-tile baseline needs a GPU at 2528²);
    paper trains both, three seeds, on a GPU."""
    _beyond_table1(profile)
    if profile == "smoke":
        study = FiveKStudy(side=256, tile=128, crop=32, miniature=True, profile=profile,
                           training=Training(budget_min=None, epochs=1, train={"batch_size": 16, "device": "cpu"}))
    elif profile == "cpu":
        study = FiveKStudy(models=("saccade",), profile=profile,
                           training=Training(budget_min=None, epochs=20, train={"batch_size": 32, "device": "cpu"}))
    else:
        study = FiveKStudy(training=Training(seeds=(0, 1, 2), budget_min=None, epochs=60,
                                             train={"batch_size": 32, "device": "cuda"}), profile=profile)
    return override(study, overrides)


def override(config, overrides: dict):
    """Notebook parameters onto an experiment config: a name sets a field of the config, of its
    ``training`` (seeds, budget_min, epochs) or a TrainConfig setting of its runs (device, batch_size, …);
    None or "" leaves it as the profile has it (papermill parameters default to that). A budget replaces
    the profile's fixed epochs, and the other way round."""
    training_fields = {f.name for f in dataclasses.fields(Training)} - {"train"}
    loop_fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"task", "epochs", "seed"}
    own = {f.name for f in dataclasses.fields(config)} - {"training"}
    dotted = {}
    for key, value in overrides.items():
        if value is None or value == "":
            continue
        if key in own:
            dotted[key] = value
        elif key in training_fields:
            dotted[f"training.{key}"] = value
        elif key in loop_fields:
            dotted[f"training.train.{key}"] = value
        else:
            valid = ", ".join(sorted(own | training_fields | loop_fields))
            raise ValueError(f"unknown setting {key!r} for {type(config).__name__}; valid: {valid}")
    if "training.budget_min" in dotted and "training.epochs" not in dotted:
        dotted["training.epochs"] = None
    if "training.epochs" in dotted and "training.budget_min" not in dotted:
        dotted["training.budget_min"] = None
    return apply_overrides(config, dotted)

"""The experiments the runner executes, in order (``EXPERIMENTS``), what each needs before it can run,
and the fingerprint of the settings their runs resolve from."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable

from ..config import to_dict
from ..datasets.fivek import HOW_TO_GET, FiveKError, check_prepared
from ..recipes import LARGE_SIDE, RECIPES, TASK_RECIPE
from ..registry import REGISTRY, config_for
from ..settings import without_neutral
from ..tasks import n_classes
from ..train_config import TrainConfig
from .experiments import EPOCH_SECONDS, VAL_SECONDS, resolution_entries
from .profiles import efficiency_study, fivek_study, noise_study, resolution_study, task_study


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
    try:
        check_prepared(fivek_study(profile).root())
    except FiveKError:
        return HOW_TO_GET
    return None


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
# The experiments of Table 1's cells, which the plateau profile trains; the summary renders its column.
PLATEAU_EXPERIMENTS = ("01_two_digit_sum", "02_two_digit_identification_100", "02_two_digit_identification_2528",
                       "00_summary")


def experiments_for(profile: str) -> tuple[Experiment, ...]:
    """The experiments ``profile`` runs, in order: all of them, or Table 1's cells at the plateau profile."""
    if profile == "plateau":
        return tuple(e for e in EXPERIMENTS if e.name in PLATEAU_EXPERIMENTS)
    return EXPERIMENTS


TABLE1_EXPERIMENTS = {("sum", 100): "01_two_digit_sum", ("identification", 100): "02_two_digit_identification_100",
                      ("identification", LARGE_SIDE): "02_two_digit_identification_2528",
                      ("fivek", LARGE_SIDE): "04_fivek"}


def settings_fingerprint(profile: str = "cpu") -> str:
    """A hash of the library settings every experiment's runs resolve from: the recipes, the calibration,
    each registered model's default config per task, the training defaults and the profile's experiment
    configs. The runner records it, so an experiment is not skipped as up to date after any changed. A
    setting added later at its neutral value (``settings.NEUTRAL_SETTINGS``) changes no run, nor this."""
    studies = {f"{task}/{side}": to_dict(task_study(task, profile, side))
               for task, side in (("sum", 100), ("identification", 100), ("identification", LARGE_SIDE))}
    if profile != "plateau":  # it trains Table 1's cells alone
        studies.update(noise=to_dict(noise_study(profile)), efficiency=to_dict(efficiency_study(profile)),
                       fivek=to_dict(fivek_study(profile)), resolution=to_dict(resolution_study(profile)))
    payload = {"recipes": RECIPES, "task_recipe": TASK_RECIPE,
               "epoch_seconds": sorted([*key, value] for key, value in EPOCH_SECONDS.items()),
               "val_seconds": sorted([*key, value] for key, value in VAL_SECONDS.items()),
               "models": {f"{name}/{task}": without_neutral(to_dict(config_for(name, n_classes(task))), "model")
                          for name in REGISTRY for task in ("sum", "identification")},
               "train": without_neutral(to_dict(TrainConfig()), "train"), "studies": studies}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

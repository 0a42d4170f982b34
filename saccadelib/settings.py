"""One settings resolver: a model's name, a task, a recipe and ``KEY=VALUE`` overrides become the model's
config, the training config and the run's identity, for the command line, the study and ``train_model``
alike. Which settings name a run (its identity: what must match to resume, and the hash of a study's run
folder) is decided here too, with the one table of settings added after runs were made
(``NEUTRAL_SETTINGS``)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from .config import apply_overrides, to_dict
from .recipes import recipe as named_recipe
from .train_config import TrainConfig
from .names import multilabel
from .registry import config_for
from .tasks import class_names

# Settings added after runs were made, at the value with which a run is what it was before: a run's
# identity (its folder's hash, whether a checkpoint may resume) leaves them out at that value. Model
# settings by their dotted names (``window.narrow_to``); they apply to every model's config.
NEUTRAL_SETTINGS = {
    "model": {"reader_lr_scale": 1.0, "policy_lr_scale": 1.0, "classifier_pool": "mean",
              "reward": "correct", "step_loss": False, "policy_trains_core": False, "retina": "supersample",  # RAM's
              "window.narrow_to": None, "window.narrow_epochs": 10, "window.jitter": 0.0,  # the window's (sampler.WindowConfig)
              "loss.cell_reward": "label"},
    "train": {"policy_warmup_epochs": 0, "plateau_test": "margin", "optimizer": "adam"},
}
# What a training config says about how a run is shown, timed, placed or scored: never part of its identity.
NOT_IDENTITY = ("time_budget_s", "progress", "threads", "workers", "test", "eval_batch_size", "test_size", "device",
                "channels_last", "compile")


@dataclass(frozen=True)
class Resolved:
    """A run's settings, resolved: the model's config, what its checkpoints record of the model (``meta``)
    and the training config."""
    model_cfg: object
    meta: dict
    train_cfg: TrainConfig

    def identity(self) -> list:
        """What names the run: the model meta and the training settings that decide its weights."""
        resumable = resumable_settings(self.train_cfg)
        resumable["epochs"] = self.train_cfg.epochs  # a different length is a different run
        return [model_identity(self.meta), resumable]

    def key(self) -> str:
        """The identity's hash (a study's run folder ends in it)."""
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:10]

    def __iter__(self):  # (model_cfg, meta, train_cfg), as the three are most often taken
        return iter((self.model_cfg, self.meta, self.train_cfg))


def resolve(model: str, task: str, recipe: str | None = None, model_overrides: dict | None = None,
            train_overrides: dict | None = None) -> Resolved:
    """The run ``model`` on ``task`` with the named ``recipe``'s model settings under ``model_overrides``
    (``KEY=VALUE``: strings typed by the configs' one override parser, or values) and ``train_overrides``."""
    settings = {**(named_recipe(recipe) if recipe else {}), **(model_overrides or {})}
    train_cfg = apply_overrides(TrainConfig(task=task), train_overrides)
    names = class_names(task, train_cfg.data_root, train_cfg.manifest)
    model_cfg = config_for(model, len(names), settings)
    if getattr(model_cfg, "classifier_pool", "mean") == "vote" and multilabel(task):
        raise ValueError(f"classifier_pool=vote averages one class per glimpse; {task} labels a set of classes: "
                         "leave classifier_pool at mean")
    # every checkpoint says what its outputs mean (a folder's classes are the user's)
    meta = {"name": model, "task": task, "config": to_dict(model_cfg), "class_names": list(names)}
    return Resolved(model_cfg, meta, train_cfg)


def model_identity(meta: dict) -> dict:
    """A run's model meta less the model settings at their neutral value: what must match to resume, and
    what names a study's run."""
    if meta.get("task") != "folder":  # a generated or stored task's class names follow from the task itself
        meta = {k: v for k, v in meta.items() if k != "class_names"}
    config = meta.get("config")
    if not isinstance(config, dict):
        return meta
    return {**meta, "config": _without_neutral(config, NEUTRAL_SETTINGS["model"])}


def without_neutral(config: dict, part: str) -> dict:
    """A model's (``part="model"``) or a training config's (``"train"``) settings as a dict, less those at
    their neutral value: what a setting added later leaves unchanged."""
    return _without_neutral(config, NEUTRAL_SETTINGS[part])


def _without_neutral(config: dict, neutral: dict, prefix: str = "") -> dict:
    """``config`` less the settings at their neutral value, nested dicts by dotted name (``window.narrow_to``)."""
    kept = {}
    for key, value in config.items():
        name = prefix + key
        if isinstance(value, dict):
            kept[key] = _without_neutral(value, neutral, name + ".")
        elif not (name in neutral and value == neutral[name]):
            kept[key] = value
    return kept


def resumable_settings(cfg: TrainConfig) -> dict:
    """The training settings that must match to resume: not the epochs of a run whose schedule does not
    depend on them (more may be added), nor how the run is displayed, timed, placed or scored."""
    values = asdict(cfg)
    if cfg.lr_schedule != "cosine":  # the others do not depend on the epoch count
        values.pop("epochs")
    if cfg.lr_schedule != "plateau":  # then the rule only says when to stop, not what the weights are
        for key in ("lr_decays", "plateau_epochs", "plateau_margin", "plateau_test"):
            values.pop(key)
    # Settings added after runs were made count only when they change something, so those runs keep their
    # identity (and their resumable checkpoints) when a later version adds a setting.
    values = _without_neutral(values, NEUTRAL_SETTINGS["train"])
    for key in NOT_IDENTITY:
        values.pop(key)
    return values

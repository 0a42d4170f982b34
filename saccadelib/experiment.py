"""Build a model by name from a config with dotted overrides, and train it with the shared loop.

``python -m saccadelib train --task identification --out runs/id --set glimpses=4 --set loss.kl_weight=1``
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from . import data as twodigit
from .model import ModelConfig
from .train import TrainConfig, fit


def _coerce(text: str, like, optional: bool = True):
    """Parse an override value as the type of the default it replaces ("none" is None only where the
    field accepts None, so ``progress=none`` stays the string)."""
    if isinstance(like, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean, got {text!r}")
    if text.lower() in ("none", "null") and (optional or like is None):
        return None
    if isinstance(like, int):
        return int(text)
    if isinstance(like, float) or like is None:
        try:
            return float(text) if like is not None or "." in text or "e" in text.lower() else int(text)
        except ValueError:
            return text
    return text


def apply_overrides(config, overrides: dict):
    """``{"loss.kl_weight": "5", "glimpses": "2"}`` → a new frozen dataclass with those fields changed."""
    nested: dict[str, dict] = {}
    direct = {}
    names = {f.name: f for f in dataclasses.fields(config)}
    for key, text in overrides.items():
        head, _, rest = key.partition(".")
        if head not in names:
            raise ValueError(f"unknown setting {key!r} for {type(config).__name__}; "
                             f"valid: {', '.join(sorted(names))}")
        if rest:
            nested.setdefault(head, {})[rest] = text
        else:
            direct[head] = text if not isinstance(text, str) else _coerce(text, getattr(config, head),
                                                                             "None" in str(names[head].type))
    for head, sub in nested.items():
        direct[head] = apply_overrides(getattr(config, head), sub)
    return dataclasses.replace(config, **direct)


def config_for(name: str, task: str, overrides: dict | None = None):
    """The registered model ``name``'s config for ``task``, with dotted overrides applied."""
    from . import baselines

    return apply_overrides(baselines.default_config(name, n_classes(task)), overrides or {})


def n_classes(task: str) -> int:
    if task == "fivek":
        from .fivek import SUBJECTS

        return len(SUBJECTS)
    return twodigit.task_spec(task).n_classes


def model_config_for(task: str, overrides: dict | None = None) -> ModelConfig:
    return config_for("saccade", task, overrides)


def train_model(name: str, task: str, out_dir: str | Path, model_overrides: dict | None = None,
                train_overrides: dict | None = None) -> dict:
    """Train the registered model ``name`` (``baselines.REGISTRY``) on ``task`` with the shared loop."""
    from . import baselines
    from .train import seed_everything

    model_cfg, meta, train_cfg = resolved_settings(name, task, model_overrides, train_overrides)
    seed_everything(train_cfg.seed)  # the weights' initialization is part of the run's seed
    model = baselines.build(name, model_cfg)
    return fit(model, train_cfg, out_dir, model_meta=meta)


def resolved_settings(name: str, task: str, model_overrides: dict | None = None,
                      train_overrides: dict | None = None):
    """(model config, the model_meta a run records, TrainConfig) for these overrides under today's defaults."""
    model_cfg = config_for(name, task, model_overrides)
    train_cfg = apply_overrides(TrainConfig(task=task), train_overrides or {})
    meta = {"name": name, "task": task, "config": json.loads(json.dumps(model_cfg.to_dict()))}
    return model_cfg, meta, train_cfg


def stale_reason(run_dir: str | Path, name: str, task: str, model_overrides: dict | None = None,
                 train_overrides: dict | None = None) -> str | None:
    """Why the run in ``run_dir`` no longer matches these settings (a default changed since it was trained),
    or None when it matches or has not started. Its config.json is written before the first epoch."""
    from .train import _resumable

    path = Path(run_dir) / "config.json"
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    model_cfg, meta, train_cfg = resolved_settings(name, task, model_overrides, train_overrides)
    model = saved.get("model", {})
    if (model.get("name"), model.get("task")) != (name, task):
        return f"it holds {model.get('name')} on {model.get('task')}"
    try:  # a field added since reads as the value it had then (the config class's LEGACY)
        old = json.loads(json.dumps(type(model_cfg).from_dict(model.get("config", {})).to_dict()))
    except (TypeError, ValueError) as err:
        return f"its model settings no longer parse ({err})"
    if old != meta["config"]:
        changed = sorted(k for k in meta["config"] if old.get(k) != meta["config"][k])
        return f"model settings differ from today's ({', '.join(changed)})"
    try:
        saved_train = _resumable(TrainConfig(**saved["train"]))
    except (KeyError, TypeError, ValueError) as err:
        return f"its training settings no longer parse ({err})"
    if saved_train != _resumable(train_cfg):
        changed = sorted(k for k in saved_train if saved_train[k] != _resumable(train_cfg).get(k))
        return f"training settings differ from today's ({', '.join(changed)})"
    return None


def train_saccade(task: str, out_dir: str | Path, model_overrides: dict | None = None,
                  train_overrides: dict | None = None) -> dict:
    return train_model("saccade", task, out_dir, model_overrides, train_overrides)


def record_run(run_dir: str | Path, record_dir: str | Path, command: list[str]) -> Path:
    """Copy a finished run's small outputs (history, metrics, config) to ``record_dir`` (e.g. under
    results/) with the command that produced them, so the numbers there can be regenerated."""
    import shlex
    import shutil

    from .paths import atomic_path, write_text_atomic

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

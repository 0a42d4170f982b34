"""How fast each part learns and when a run stops: the learning-rate schedules, the plateau rule, and the
optimizer's parameter groups per part. Each is a function of the config, the epoch and the validation
history alone, so a resumed run follows the same rates and stops where an uninterrupted one would.
``cfg`` is a ``train_config.TrainConfig``."""
from __future__ import annotations

import math


def learning_rate(cfg, epoch: int, history: list[dict] = ()) -> float:
    """The epoch's learning rate: a function of the epoch and the validation history before it alone, so
    a resumed run follows it exactly."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "plateau":
        return cfg.lr * 0.1 ** min(plateaus(history[:epoch], cfg.plateau_epochs, cfg.plateau_margin), cfg.lr_decays)
    floor = 0.01
    return cfg.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * epoch / cfg.epochs)))


def part_lr_scale(cfg, group: dict, epoch: int) -> float:
    """A parameter group's learning rate as a multiple of the epoch's: its part's scale (the model's
    setting), and 0 (frozen) for the policy during its warm-up epochs."""
    if group["part"] == "policy" and epoch < cfg.policy_warmup_epochs:
        return 0.0
    return group.get("lr_scale", 1.0)


def parameter_groups(model, cfg) -> list[dict]:
    """The optimizer's parameter groups: the model's own (``model.parameter_groups()``: its parts and their
    learning-rate scales) when a part's rate differs from the rest or the policy warms up, else one for
    all (the optimizer state of a run without per-part rates keeps one shape). A warm-up on a model
    without parts is refused."""
    parts = model.parameter_groups() if hasattr(model, "parameter_groups") else None
    if cfg.policy_warmup_epochs and parts is None:
        raise ValueError(f"{type(model).__name__} has no policy part to freeze: leave policy_warmup_epochs unset for it")
    if parts is None or (not cfg.policy_warmup_epochs and len({g["lr_scale"] for g in parts}) == 1
                         and parts[0]["lr_scale"] == 1.0):
        return [{"params": list(model.parameters()), "part": "all"}]
    return [group for group in parts if group["params"]]


def plateaus(history: list[dict], epochs: int | None, margin: float) -> int:
    """How many plateaus the history holds: runs of ``epochs`` epochs in which validation accuracy did not
    rise above its last rise by at least ``margin`` (nor at all, when the margin is 0). The count starts
    again after each, against the same mark (the best rise so far); 0 without a rule."""
    if not epochs:
        return 0
    mark, flat, count = -math.inf, 0, 0
    for row in history:
        if row["val_accuracy"] > mark and row["val_accuracy"] >= mark + margin:  # a rise, by the margin
            mark, flat = row["val_accuracy"], 0
        else:
            flat += 1
            if flat == epochs:
                count, flat = count + 1, 0
    return count


def plateaued(history: list[dict], epochs: int | None, margin: float) -> bool:
    """Whether validation accuracy has reached a plateau (``plateaus``): the plateau rule."""
    return plateaus(history, epochs, margin) > 0

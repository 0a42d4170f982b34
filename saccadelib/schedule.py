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
        return cfg.lr * 0.1 ** min(plateaus(history[:epoch], cfg.plateau_epochs, cfg.plateau_margin, cfg.plateau_test),
                                   cfg.lr_decays)
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


PLATEAU_TESTS = ("margin", "slope")
# Standard errors by which a fitted rise must clear the margin to count as one in the plateau rule. Over 30
# epochs with 0.6 points of epoch-to-epoch noise, one error calls a curve rising 0.6 points per 10 epochs
# flat in 3% of 120-epoch runs and a flat one flat at its 30th epoch (records/plateau_rule/).
RISE_Z = 1.0


def curve_slope(values) -> tuple[float, float]:
    """(slope, its standard error) of the least-squares line through ``values`` (one per epoch), per epoch:
    the error from the residuals' spread, so it is as large as the curve's own epoch-to-epoch noise."""
    n = len(values)
    if n < 3:
        raise ValueError(f"a slope and its error need at least 3 epochs, got {n}")
    x_mean, y_mean = (n - 1) / 2, sum(values) / n
    sxx = sum((x - x_mean) ** 2 for x in range(n))
    slope = sum((x - x_mean) * (y - y_mean) for x, y in enumerate(values)) / sxx
    residual = sum((y - y_mean - slope * (x - x_mean)) ** 2 for x, y in enumerate(values))
    return slope, math.sqrt(residual / (n - 2) / sxx)


def rising(values, margin: float = 0.0, z: float | None = None) -> bool:
    """Whether a curve rises beyond its noise: the line fitted through it rises over its span by more than
    ``margin``, with ``z`` standard errors to spare."""
    slope, error = curve_slope(values)
    return (slope - (RISE_Z if z is None else z) * error) * len(values) > margin


def plateaus(history: list[dict], epochs: int | None, margin: float, test: str = "margin") -> int:
    """How many plateaus the history holds; 0 without a rule (``epochs`` None).

    - ``margin``: runs of ``epochs`` epochs in which validation accuracy did not rise above its last rise by
      at least ``margin`` (nor at all, when the margin is 0). The count starts again after each, against the
      same mark (the best rise so far). One lucky epoch sets a mark that noise then fails to beat, so on a
      noisy curve it fires while the curve still rises.
    - ``slope``: each stretch of ``epochs`` epochs since the last plateau, looked at after every epoch,
      whose fitted line does not rise by more than ``margin`` beyond ``RISE_Z`` standard errors (``rising``):
      the decision is taken on the trend, so it tells a plateau from noise.
    """
    if not epochs:
        return 0
    if test not in PLATEAU_TESTS:
        raise ValueError(f"unknown plateau test {test!r}; valid: {', '.join(PLATEAU_TESTS)}")
    if test == "slope":
        count, start = 0, 0
        values = [row["val_accuracy"] for row in history]
        for end in range(len(values)):
            if end + 1 - start >= epochs and not rising(values[end + 1 - epochs:end + 1], margin):
                count, start = count + 1, end + 1
        return count
    mark, flat, count = -math.inf, 0, 0
    for row in history:
        if row["val_accuracy"] > mark and row["val_accuracy"] >= mark + margin:  # a rise, by the margin
            mark, flat = row["val_accuracy"], 0
        else:
            flat += 1
            if flat == epochs:
                count, flat = count + 1, 0
    return count


def plateaued(history: list[dict], epochs: int | None, margin: float, test: str = "margin") -> bool:
    """Whether validation accuracy has reached a plateau (``plateaus``): the plateau rule."""
    return plateaus(history, epochs, margin, test) > 0

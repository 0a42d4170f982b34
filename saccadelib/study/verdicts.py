"""A Table 1 cell's verdict against the paper: reproduced, or short by how much, read from each run's
validation curve (still rising at its end, or a learning rate cut while it still rose) and from what
stopped it (the plateau rule or a cap)."""
from __future__ import annotations

from pathlib import Path
from ..plots import read_history
from ..schedule import rising


def paper_value(paper: str) -> float | None:
    """The paper's number in a Table 1 cell ("95.42 ± 0.002" → 95.42); None for "–"."""
    head = str(paper).split("±")[0].strip()
    try:
        return float(head)
    except ValueError:
        return None


STOP_NAMES = {"plateau": "plateau", "time_budget": "cap", "epochs": "epoch count"}  # metrics.json's reasons
REPRODUCED_WITHIN = 0.5  # points of the paper's number that count as reproduced
# A verdict reads a run's curve: over its last CURVE_EPOCHS epochs at its last learning rate (the step a
# rate cut gives is no trend), the least-squares line of validation accuracy rising beyond VERDICT_Z standard
# errors is "still rising", whatever stopped the run.
CURVE_EPOCHS = 30
VERDICT_Z = 2.0


def _stages(history: str | Path) -> list[list[float]]:
    """A run's validation accuracies, one list per stretch of epochs at one learning rate, in order."""
    stages, rate = [], None
    for row in read_history(history) if Path(history).exists() else []:
        if row["lr"] != rate:
            stages.append([])
            rate = row["lr"]
        stages[-1].append(row["val_accuracy"])
    return stages


def _rises(values: list[float]) -> bool | None:
    values = values[-CURVE_EPOCHS:]
    return rising(values, 0.0, VERDICT_Z) if len(values) >= 3 else None


def curve_rises(history: str | Path) -> bool | None:
    """Whether a run's validation curve still rises at its end (``CURVE_EPOCHS``, ``VERDICT_Z``); None for a
    run of fewer than 3 epochs at its last rate or without a history."""
    stages = _stages(history)
    return _rises(stages[-1]) if stages else None


def cut_while_rising(history: str | Path) -> bool:
    """Whether a run's learning rate was cut while its curve still rose at the rate before."""
    return any(_rises(stage) for stage in _stages(history)[:-1])


def verdict(accuracy: float, paper: str, stopped: list[str], rises: list[bool | None] = (),
            cut_rising: list[bool] = ()) -> str:
    """A plateau cell's verdict: reproduced (within REPRODUCED_WITHIN points of the paper), or short by X,
    read from its runs' curves (``rises``: still rising at their end, per run) and what stopped them: "still
    rising" where any run's curve rises, "at its plateau" where every run was stopped by the plateau rule on
    a flat curve, "flat at the cap" where a cap stopped a flat one; and where a run's rate was cut while its
    curve still rose (``cut_rising``), that too. Without curves, from the stops alone."""
    target = paper_value(paper)
    if target is None:
        return "no paper number"
    gap = target - accuracy
    if gap <= REPRODUCED_WITHIN:
        return "reproduced"
    by_rule = bool(stopped) and all(reason == "plateau" for reason in stopped)
    cut = ", a rate cut while still rising" if any(cut_rising) else ""
    if any(rises):
        return f"short by {gap:.1f}, still rising " + ("when the plateau rule stopped it" if by_rule else "at the cap") + cut
    if by_rule:
        return f"short by {gap:.1f} at its plateau{cut}"
    if rises and all(r is False for r in rises):
        return f"short by {gap:.1f}, flat at the cap{cut}"
    return f"short by {gap:.1f}, still rising at the cap{cut}"

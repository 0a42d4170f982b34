"""What a planned profile's training costs and where its runs stand: the minutes each run's epochs take on
our machine (from the measured epoch times), and what each run's folder has clocked so far (``reproduce
--plan``; the runner's measured cost of each experiment)."""
from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from ..paths import runs_dir
from ..schedule import curve_slope
from .experiments import COMMITTED_PROFILE
from .runs import RunSpec, experiment_runs, measured_seconds


PLANNED_PROFILES = (COMMITTED_PROFILE, "plateau")  # the profiles with a plan from our machine's measured epochs


def planned_run_minutes(spec: RunSpec) -> float:
    """One run's minutes of training and validation on our machine, from its measured epoch times (at the
    plateau profile its epochs are its cap: the plateau rule may stop it sooner)."""
    t = spec.train_overrides
    train_s, val_s = measured_seconds(*spec.calibration)
    return t["epochs"] * (train_s * t["train_size"] / 20_000 + val_s * t["val_size"] / 2_000) / 60


def run_progress(folder: Path) -> tuple[float, int, bool]:
    """What a run's folder has clocked so far: seconds of training and validation (its history.csv, which
    a resumed run carries over), epochs done, and whether it has finished (its metrics.json)."""
    seconds, epochs = 0.0, 0
    history = folder / "history.csv"
    if history.exists():
        with history.open(newline="") as handle:
            for row in csv.DictReader(handle):
                seconds += float(row.get("train_s") or 0) + float(row.get("val_s") or 0)
                epochs += 1
    return seconds, epochs, (folder / "metrics.json").exists()


def planned_minutes(profile: str = "cpu", runs_root: str | Path | None = None) -> "pd.DataFrame":
    """What a planned profile's training will cost, from the calibration: per experiment, its runs, their
    epochs and the minutes of training and validation those epochs take on our machine (at the plateau
    profile, the most: each run's cap). Then what has run so far under ``runs_root`` (default runs/):
    the runs finished, the minutes their folders clocked, and the most the experiment can take now
    (``at_most_min``: finished runs as measured, the rest at their caps less the epochs done). The runner's
    measured total (reports.profile_time) adds the notebooks' own work (test scoring, figures, 05)."""
    if profile not in PLANNED_PROFILES:
        raise ValueError(f"planned minutes come from our 2-core machine's measured epochs: only the "
                         f"{' and '.join(PLANNED_PROFILES)} profiles have them, not {profile!r}")
    root = Path(runs_root) if runs_root else runs_dir()
    rows = []
    for name, specs in experiment_runs(profile).items():
        planned = measured = at_most = 0.0
        finished = 0
        for spec in specs:
            cap = planned_run_minutes(spec)
            seconds, epochs, done = run_progress(root / "study" / profile / name / spec.folder())
            spent = seconds / 60
            left = 0.0 if done else cap * max(0.0, 1 - epochs / spec.train_overrides["epochs"])
            planned += cap
            measured += spent
            at_most += spent + left
            finished += done
        rows.append({"experiment": name, "runs": len(specs), "seeds": len({s.seed for s in specs}),
                     "planned_min": round(planned, 1), "finished": finished, "measured_min": round(measured, 1),
                     "at_most_min": round(at_most, 1)})
    frame = pd.DataFrame(rows)
    total = {"experiment": "total", "runs": int(frame["runs"].sum()), "seeds": int(frame["seeds"].max()),
             **{c: round(float(frame[c].sum()), 1) for c in ("planned_min", "measured_min", "at_most_min")},
             "finished": int(frame["finished"].sum())}
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


def run_table(profile: str = "cpu", runs_root: str | Path | None = None) -> "pd.DataFrame":
    """Where each started run of a planned profile stands (a long profile shows nothing else while a notebook
    trains): epochs done of its planned ones (the cap, at the plateau profile), the epochs after which its
    rate was cut, its best validation accuracy and when, for a plateau-scheduled run the rise of its last
    ``plateau_epochs`` epochs of validation along their least-squares line with its standard error (points
    over those epochs: what the plateau rule reads), the minutes clocked and whether it has finished. Runs
    not started are left out."""
    root = Path(runs_root) if runs_root else runs_dir()
    rows = []
    for name, specs in experiment_runs(profile).items():
        for spec in specs:
            history = root / "study" / profile / name / spec.folder() / "history.csv"
            if not history.exists():
                continue
            with history.open(newline="") as handle:
                epochs = list(csv.DictReader(handle))
            if not epochs:
                continue
            accuracy = [float(row["val_accuracy"]) * 100 for row in epochs]
            best = max(range(len(accuracy)), key=accuracy.__getitem__)
            window = spec.train_overrides.get("plateau_epochs")  # a plateau-scheduled run's; else no slope
            recent = accuracy[-window:] if window else []
            slope, error = curve_slope(recent) if len(recent) >= 3 else (None, None)
            seconds, done_epochs, finished = run_progress(history.parent)
            rows.append({"experiment": name, "run": spec.folder(), "epochs": done_epochs,
                         "planned_epochs": spec.train_overrides["epochs"],
                         "rate_cut_after": " ".join(str(int(a["epoch"])) for a, b in zip(epochs, epochs[1:])
                                                    if a.get("lr") != b.get("lr")),
                         "best_val_%": round(accuracy[best], 2), "best_epoch": int(epochs[best]["epoch"]),
                         "recent_slope": "" if slope is None else f"{slope * len(recent):+.2f} ± {error * len(recent):.2f}",
                         "minutes": round(seconds / 60, 1), "finished": finished})
    return pd.DataFrame(rows)

"""Table 1's rows that come from runs recorded on a GPU (one-off runs under records/, each with its
command): the 144-tile ResNet-18's short run at 2528², beside its measured CPU costs, and ResNet-18 on the
whole 100² image trained to its plateau, beside its capped CPU cell."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..datasets.twodigit import TASKS
from ..paths import REPO_ROOT


def tile_costs(results_root: Path) -> tuple[str, int | None]:
    """What Table 1 says for the 144-tile ResNet-18 on our CPU: its measured per-image costs from
    05_efficiency (batch 1, first side), and its parameter count."""
    path = results_root / "05_efficiency" / "efficiency_cpu.json"
    if not path.exists():
        return "not trained on CPU; costs: run 05_efficiency", None
    rows = json.loads(path.read_text())["rows"]
    naive = {r["phase"]: r for r in rows if r["variant"] == "tiles_naive" and r["source"] == "lazy"
             and r["batch"] == 1 and "error" not in r}
    if not {"infer", "train"} <= set(naive):
        return "not trained on CPU; costs: see 05_efficiency", None
    side = naive["infer"]["side"]
    text = (f"not trained on CPU: {naive['infer']['median_s']:.2f} s per {side}² image to infer, "
            f"{naive['train']['median_s']:.1f} s per training step (05_efficiency)")
    return text + _gpu_tiles_run(results_root), naive["infer"].get("parameters")


GPU_TILES_RUN = Path("records") / "baselines" / "identification_2528_resnet18_tiles_h100"  # scripts/gpu/tiles_run.sh


def _gpu_tiles_run(results_root: Path) -> str:
    """The short GPU run of the 144-tile ResNet-18 (a recorded one-off run): said beside the CPU costs,
    because it is the only time that model trained here (and it is far from the paper's budget)."""
    path = REPO_ROOT / GPU_TILES_RUN / "metrics.json"
    if not path.exists():
        return ""
    metrics = json.loads(path.read_text())
    chance = 100 / TASKS["identification"].n_classes
    return (f"; trained {metrics['train_s'] / 60:.0f} min on one GPU ({metrics['epochs_run']} short epochs): "
            f"{metrics['test']['accuracy'] * 100:.1f}% test (chance {chance:.1f}%; {GPU_TILES_RUN.as_posix()})")


GPU_PLATEAU_RUNS = Path("records") / "baselines" / "resnet18_plateau_gpu"  # scripts/gpu/plateau_resnet_run.sh
GPU_PLATEAU_SYSTEM = "resnet18"
GPU_PLATEAU_LABEL = "on one GPU without the cap"


def gpu_plateau_runs(task: str, folder: Path | None = None) -> "pd.DataFrame | None":
    """ResNet-18 on the whole 100² image trained to its plateau on one GPU (recorded runs, one folder per
    task and seed), as ``runs.csv`` rows: our CPUs stop it at the plateau profile's cap while still
    rising, so these runs say where its curve ends. None where no run of ``task`` is recorded."""
    folder = folder or REPO_ROOT / GPU_PLATEAU_RUNS
    rows = []
    for run in sorted(folder.glob(f"{task}_s*")):
        metrics = json.loads((run / "metrics.json").read_text())
        train = json.loads((run / "config.json").read_text())["train"]
        rows.append({"label": GPU_PLATEAU_SYSTEM, "seed": train["seed"], "test_accuracy": metrics["test"]["accuracy"],
                     "stopped": metrics["stopped"]["reason"], "epochs_run": metrics["epochs_run"],
                     "canvases_seen": metrics["epochs_run"] * train["train_size"],
                     "train_min": metrics["train_s"] / 60, "val_min": metrics["val_s"] / 60,
                     "device": train["device"], "history": run / "history.csv"})
    return pd.DataFrame(rows) if rows else None
